"""`make test-latest`: the course against today's releases, in an environment of its own.

A learner on Colab installs whatever is newest. This builds `.venv-latest` with the newest
transformers, trl, peft, datasets, accelerate and lighteval (torch stays the course's pinned CPU
wheel, every other package its pin), runs the unit tests and lessons 00-01 there, and writes what
broke to `runs/latest-<date>/report.md`. It never touches the course's own `.venv`.
"""
import json
import os
import re
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

from . import COURSE_ROOT

UNPINNED = ("transformers", "trl", "peft", "datasets", "accelerate", "lighteval")


def latest_requirements(pyproject: Path = COURSE_ROOT / "pyproject.toml") -> list:
    """The course's requirements (test extras included), with the UNPINNED packages left free."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    return [name if name in UNPINNED else requirement
            for requirement in requirements for name in [re.split(r"[=<>!~ ]", requirement)[0]]]


def pins(pyproject: Path = COURSE_ROOT / "pyproject.toml") -> dict:
    project = tomllib.loads(pyproject.read_text())["project"]
    return dict(r.split("==") for r in project["dependencies"] if "==" in r)


def build(venv: Path, python: str, torch_pip_args: list) -> subprocess.CompletedProcess:
    """A fresh environment with the newest releases; the pip output is returned, not raised."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    steps = [[python, "-m", "venv", "--clear", str(venv)],
             pip + [*torch_pip_args, f"torch=={pins()['torch']}"],
             pip + ["--upgrade", *latest_requirements()],
             pip + ["--no-deps", "-e", str(COURSE_ROOT)],
             [str(venv / "bin" / "python"), "-m", "helpers", "assets", "--install"]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            return result
    return result


def installed_versions(venv: Path) -> dict:
    names = list(UNPINNED) + ["torch", "huggingface-hub"]
    code = f"import importlib.metadata as m, json; print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    return json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                                     text=True, check=True).stdout)


def held_back(venv: Path, versions: dict) -> dict:
    """name -> why pip installed an older release than the newest published one (pip's own words)."""
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    reasons = {}
    for name in UNPINNED:
        listing = subprocess.run(pip + ["index", "versions", name], capture_output=True, text=True).stdout
        newest = re.match(rf"{name} \((.+?)\)", listing.strip())
        if newest and newest.group(1) != versions[name]:
            others = [r for r in latest_requirements() if r != name]
            trial = subprocess.run(pip + ["install", "--dry-run", "-q", f"{name}=={newest.group(1)}", *others],
                                   capture_output=True, text=True)
            why = [line for line in trial.stderr.splitlines() if line.startswith("ERROR")][-1:]
            reasons[name] = f"newest is {newest.group(1)}, not installable with the rest: " + \
                (why[0][:300] if why else "pip's resolver chose an older one")
    return reasons


def run_checks(venv: Path, report_dir: Path) -> list:
    """(name, status line, output tail) for the unit tests and lessons 00-01."""
    python = str(venv / "bin" / "python")
    env_cache = {"COURSE_CACHE_DIR": str(venv / "model-cache")}  # convert the models with these releases too
    checks = [("unit tests", [python, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "tests"]),
              ("lessons 00-01", [python, "-m", "helpers", "run", "00", "01", "--profile", "cpu",
                                 "--runs-dir", str(report_dir)])]
    results = []
    for name, command in checks:
        done = subprocess.run(command, capture_output=True, text=True, cwd=COURSE_ROOT,
                              env={**os.environ, **env_cache, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
        lines = (done.stdout + done.stderr).strip().splitlines()
        verdict = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), "") \
            if name == "unit tests" else "\n".join(line for line in lines if re.match(r"\S+\s+(ok|failed)\s", line))
        results.append((name, "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})", verdict,
                        "\n".join(lines[-60:])))
    return results


def report(versions: dict, reasons: dict, results: list) -> str:
    pinned = pins()
    lines = ["# The course on today's releases", "",
             f"{datetime.now():%Y-%m-%d %H:%M}, Python {sys.version.split()[0]}", "",
             "| package | course pin | installed here | note |", "|---|---|---|---|"]
    lines += [f"| {name} | {pinned.get(name, '-')} | {version} | {reasons.get(name, '')} |"
              for name, version in versions.items()]
    for name, status, verdict, tail in results:
        lines += ["", f"## {name}: {status}", "", "```", verdict or "(no summary line)", "```"]
        if status != "ok":
            lines += ["", "<details><summary>last lines</summary>", "", "```", tail, "```", "</details>"]
    return "\n".join(lines) + "\n"


def main(venv=".venv-latest", python=sys.executable, torch_pip_args=()) -> int:
    venv = Path(venv).resolve()
    report_dir = COURSE_ROOT / "runs" / f"latest-{datetime.now():%Y%m%d-%H%M%S}"
    report_dir.mkdir(parents=True)
    print(f"Building {venv} with the newest {', '.join(UNPINNED)} (a few minutes) ...", flush=True)
    built = build(venv, python, list(torch_pip_args))
    if built.returncode != 0:
        text = f"# The course on today's releases\n\nThe environment did not install:\n\n```\n{built.stderr[-4000:]}\n```\n"
        results = None
    else:
        print("Running the unit tests and lessons 00-01 there ...", flush=True)
        results = run_checks(venv, report_dir)
        versions = installed_versions(venv)
        text = report(versions, held_back(venv, versions), results)
    (report_dir / "report.md").write_text(text)
    print(text + f"\n(saved as {report_dir / 'report.md'})")
    return 0 if results and all(status == "ok" for _, status, _, _ in results) else 1
