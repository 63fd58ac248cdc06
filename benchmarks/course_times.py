"""The whole course's time and peak memory on this machine: every lesson and solution notebook under
the `cpu` profile, run as `make course` runs the lessons, one results file per kind of machine.

    make course-times                                           # as `make course` runs: its malloc settings
    .venv/bin/python benchmarks/course_times.py                 # a first run after `make setup`: recipes trained
    .venv/bin/python benchmarks/course_times.py --warm          # with this machine's model cache as it is
    .venv/bin/python benchmarks/course_times.py --from runs/X   # read a run `python -m helpers run` already made
    .venv/bin/python benchmarks/course_times.py --write-docs    # put the results into the README and headers

Writes `results/course-times-<kind>.csv` (one row per notebook: status, seconds, peak memory in GB,
its headline result) and `.md` (the same table with the machine, the CPU's flags, the date and the
commit). By default the run gets a fresh model cache (`COURSE_CACHE_DIR` in a temporary folder) in
which the offline models are first converted from GGUF, as `make setup` converts them (timed and
recorded apart: `setup_conversion_seconds`); the course then pays what a learner's first run pays
after setup, training what lesson 04 and the exercises cache. The results record the malloc the
notebooks ran on: tcmalloc under `make course-times` where the system has it, glibc's when the script
runs without the Makefile's variables. How long it takes: the README's "Time and memory" table
(13-17 minutes on 2 cores, up to 1.5x longer on a busy shared machine).
Afterwards the temporary cache and the run's `outputs/` (the models it trained, about 2 GB) are
deleted; its executed notebooks and summaries stay.

`--write-docs` rewrites the "Time and memory" paragraph of every notebook's first cell and the
README's table from the results files (`helpers.course.course_times`);
`tests/course/test_course_times.py` fails when they disagree.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.course import course_times  # noqa: E402
from helpers.hardware import _cpu_flags, _cpu_name, _torch_cpu_capability, machine_kind  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) + sorted((ROOT / "solutions").glob("[0-9]*.ipynb"))
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def run_course(runs_dir: Path, warm: bool) -> tuple:
    """(the run's folder, seconds `make setup`'s model conversion took in a fresh cache, or None when warm)."""
    env = dict(os.environ)
    cache = None if warm else tempfile.mkdtemp(prefix="course-cache-")
    conversion = None
    if cache:
        env["COURSE_CACHE_DIR"] = cache
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from helpers.models import prepare_offline_models; "
                        "prepare_offline_models()"], cwd=ROOT, env=env, check=True)
        conversion = round(time.perf_counter() - start, 1)
    before = set(runs_dir.glob("*")) if runs_dir.exists() else set()
    command = [sys.executable, "-m", "helpers", "run", "--profile", "cpu", *map(str, NOTEBOOKS), "--runs-dir", str(runs_dir)]
    try:
        finished = subprocess.run(command, cwd=ROOT, env=env)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    (run_dir,) = set(runs_dir.glob("*")) - before
    shutil.rmtree(run_dir / "outputs", ignore_errors=True)  # trained models: only the times are this script's
    if finished.returncode != 0:
        print(f"some notebooks failed (exit {finished.returncode}); their rows say so", file=sys.stderr)
    return run_dir, conversion


def malloc_in_use() -> str:
    """tcmalloc and its release rate when this process runs on it (the Makefile's preload), else glibc's."""
    maps = Path("/proc/self/maps")
    if maps.exists() and "libtcmalloc" in maps.read_text():
        return f"tcmalloc (TCMALLOC_RELEASE_RATE={os.environ.get('TCMALLOC_RELEASE_RATE', 'its default')})"
    return "glibc"


def machine() -> dict:
    flags = set(_cpu_flags().split())
    return {"kind": machine_kind(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "flags": " ".join(f for f in FLAGS_OF_INTEREST if f in flags),
            "torch_capability": _torch_cpu_capability(), "date": date.today().isoformat(),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "none"),  # the Makefile's 2 MB pages, or not
            "malloc": malloc_in_use(),  # the notebooks' processes inherit this one's
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="run_dir", type=Path, help="a run folder with summary.csv, instead of running")
    parser.add_argument("--warm", action="store_true", help="keep this machine's model cache (not a first run)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "course-times")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--write-docs", action="store_true", help="only rewrite the README and notebook headers")
    args = parser.parse_args()
    if args.write_docs:
        changed = course_times.sync(write=True)
        print("rewrote:", ", ".join(map(str, changed)) if changed else "nothing (already in sync)")
        return
    if machine_kind() not in course_times.KINDS:
        sys.exit(f"This script times the `cpu` profile on a CPU; this machine is {machine_kind()!r}.")
    run_dir, conversion = (args.run_dir, None) if args.run_dir else run_course(args.runs_dir, args.warm)
    rows = course_times.read_summary(run_dir / "summary.csv")
    cache = "as that run had it" if args.run_dir else "warm" if args.warm else course_times.AFTER_SETUP
    info = {**machine(), "cache": cache, **({"setup_conversion_seconds": conversion} if conversion else {})}
    csv_path, md_path = course_times.write_results(args.out, info, rows)
    print(md_path.read_text())
    print(f"wrote {csv_path} and {md_path}; `--write-docs` puts them into the README and headers")


if __name__ == "__main__":
    main()
