"""Executed notebooks as a run folder: what `python -m helpers run` writes, and what `make test` keeps.

A run folder (`runs/<date>-<time>-<profile>[-nbval]/`) holds the executed notebooks, `summary.csv`
(one row per notebook: status, seconds, ...) and `run.json` (when, where and on which commit it ran).
`make site` builds the website from the newest complete one. Under `make test`, nbval executes the
notebooks cell by cell and keeps no copy; `NbvalCapture` (called from the root conftest.py) writes
what nbval executed as such a folder, so CI builds the site without running the course twice.
"""
import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

from . import COURSE_ROOT

COURSE_FOLDERS = {(COURSE_ROOT / name).resolve() for name in ("notebooks", "solutions", "exercises")}


def run_info(profile: str) -> dict:
    """When, where and on which commit a run happened: each site page quotes it."""
    from ..hardware import detect_hardware, machine_kind

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=COURSE_ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"date": f"{datetime.now():%Y-%m-%d %H:%M}", "profile": profile, "kind": machine_kind(),
            "hardware": detect_hardware().describe(), "commit": commit or "unknown"}


def write_run_info(run_dir: Path, profile: str, by: str) -> None:
    """run.json: `run_info`, and which command made the run."""
    (run_dir / "run.json").write_text(json.dumps({**run_info(profile), "by": by}, indent=1) + "\n")


def tidy_outputs(outputs: list) -> list:
    """nbval's outputs as a notebook stores them: consecutive stream pieces joined, and of a progress
    bar's carriage-return redraws only the last state of each line."""
    import nbformat  # not at the top: `python -m helpers colab-setup` imports this module before nbformat exists

    tidied = []
    for out in outputs:
        out = nbformat.from_dict(dict(out))
        if out.output_type == "stream" and tidied and tidied[-1].output_type == "stream" \
                and tidied[-1].name == out.name:
            tidied[-1].text += out.text
        else:
            tidied.append(out)
    for out in tidied:
        if out.output_type == "stream":
            out.text = "\n".join(re.split(r"\r(?!\n)", line)[-1] for line in out.text.split("\n"))
    return tidied


class NbvalCapture:
    """Collects each notebook nbval executes (its cells' outputs, time and outcome) and writes a run folder."""

    def __init__(self):
        self.notebooks = {}  # path -> {"nb", "seconds", "failed"}

    def cell_done(self, item, report) -> None:
        folder = Path(str(item.fspath)).resolve().parent
        if not hasattr(item, "cell") or folder not in COURSE_FOLDERS:  # a test's own toy notebooks are not a run
            return
        entry = self.notebooks.setdefault(str(item.fspath), {"nb": item.parent.nb, "seconds": 0.0, "failed": False})
        entry["seconds"] += report.duration
        entry["failed"] |= report.failed
        if report.when == "call":
            item.cell.outputs = tidy_outputs(getattr(item, "test_outputs", None) or [])
            item.cell.execution_count = item.cell_num + 1

    def save(self, folder: Path) -> None:
        """One process's notebooks, for the process that writes the run folder (`load`): under pytest-xdist
        each worker executes some of them."""
        import nbformat

        for index, (path, entry) in enumerate(self.notebooks.items()):
            part = {"path": path, "seconds": entry["seconds"], "failed": entry["failed"],
                    "nb": nbformat.writes(entry["nb"])}
            (Path(folder) / f"{Path(path).stem}-{os.getpid()}-{index}.json").write_text(json.dumps(part))

    def load(self, folder: Path) -> None:
        """The notebooks the worker processes `save`d in `folder`, in path order; the folder is removed."""
        import shutil

        import nbformat

        parts = [json.loads(p.read_text()) for p in Path(folder).glob("*.json")]
        for part in sorted(parts, key=lambda part: part["path"]):
            self.notebooks[part["path"]] = {"nb": nbformat.reads(part["nb"], as_version=4),
                                            "seconds": part["seconds"], "failed": part["failed"]}
        shutil.rmtree(folder, ignore_errors=True)

    def write(self, runs_root: Path = COURSE_ROOT / "runs") -> Path | None:
        """The run folder, or None when nbval executed no notebook."""
        if not self.notebooks:
            return None
        import nbformat

        from ..profiles import resolve_profile
        from .runner import new_run_dir, write_summary

        profile = resolve_profile("auto")  # nbval runs each notebook's parameters cell as committed
        run_dir = new_run_dir(Path(runs_root), f"{profile}-nbval")
        rows = []
        for path, entry in self.notebooks.items():
            nbformat.write(entry["nb"], run_dir / Path(path).name)
            rows.append({"notebook": Path(path).stem, "status": "failed" if entry["failed"] else "ok",
                         "seconds": round(entry["seconds"], 1), "peak_memory_gb": ""})
        write_summary(run_dir, rows)
        write_run_info(run_dir, profile, "make test (nbval)")
        return run_dir
