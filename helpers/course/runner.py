"""Execute notebooks with papermill under a profile, and collect one summary table per run."""
import ast
import csv
import os
import time
from datetime import datetime
from pathlib import Path

from ..measure import PeakMemory
from ..profiles import resolve_profile
from ..records import read_metrics
from . import COURSE_ROOT


def find_notebooks(names=(), folder: Path | None = None) -> list:
    """Notebook paths for names such as "00", "00_setup" or a path; all lessons if none given."""
    folder = folder or COURSE_ROOT / "notebooks"
    available = sorted(folder.glob("[0-9]*.ipynb"))
    if not names:
        return available
    found = []
    for name in names:
        path = Path(name)
        matches = [path] if path.suffix == ".ipynb" and path.exists() else \
            [nb for nb in available if nb.stem == name or nb.stem.startswith(f"{name}_")]
        if len(matches) != 1:
            raise ValueError(f"No single notebook matches {name!r}. Available: "
                             f"{', '.join(nb.stem for nb in available)} (or give a path).")
        found.append(matches[0])
    return found


def notebook_parameters(path) -> dict:
    """The names and defaults in a notebook's `parameters` cell."""
    import papermill

    return {name: p["default"] for name, p in papermill.inspect_notebook(str(path)).items()}


def parse_value(text: str):
    """Turn a command-line value into a Python value: numbers, True/False/None, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_overrides(notebooks: list, overrides: dict) -> None:
    valid = set().union(*(notebook_parameters(nb) for nb in notebooks)) - {"profile"}
    unknown = set(overrides) - valid
    if unknown:
        raise ValueError(f"Unknown parameter(s) {sorted(unknown)} for "
                         f"{', '.join(nb.stem for nb in notebooks)}. Valid: {', '.join(sorted(valid))}")


def new_run_dir(root: Path, label: str) -> Path:
    """A fresh folder for this run; earlier runs are never overwritten."""
    return first_free_dir(root, f"{datetime.now():%Y%m%d-%H%M%S}-{label}", [f"-{i}" for i in range(2, 1000)])


def first_free_dir(root: Path, stem: str, suffixes) -> Path:
    """Create and return root/stem, or the first root/stem+suffix that does not exist yet."""
    for suffix in ["", *suffixes]:
        try:
            (root / (stem + suffix)).mkdir(parents=True)
            return root / (stem + suffix)
        except FileExistsError:
            continue
    raise RuntimeError(f"{root / stem}: every name is taken; delete some earlier runs")


def run_notebook(notebook: Path, out: Path, parameters: dict, timeout=None) -> dict:
    """Execute one notebook into `out`; never raises for a failing notebook, reports it instead."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start, status, error = time.perf_counter(), "ok", ""
    try:
        with PeakMemory(interval=0.5, children=True) as memory:
            papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=str(out.parent),
                                       progress_bar=True, execution_timeout=timeout)
    except PapermillExecutionError as e:
        first_line = (e.source or "").strip().splitlines()[:1] or [""]
        status, error = "failed", f"cell {e.cell_index} `{first_line[0][:60]}`: {e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died or timed out: the other notebooks still run
        status, error = "failed", f"{type(e).__name__}: {e}"
    metrics = read_metrics(out) if out.exists() else {}
    return {"notebook": notebook.stem, "status": status, "seconds": round(time.perf_counter() - start, 1),
            "peak_memory_gb": round(memory.peak_gb, 2), **metrics, "error": error}


def run_notebooks(notebooks: list, profile: str = "auto", overrides: dict | None = None,
                  runs_root="runs", timeout=None) -> tuple:
    """Run each notebook with the profile and overrides; returns (run folder, summary rows)."""
    overrides = overrides or {}
    profile = resolve_profile(profile)  # "auto" becomes a name; an unknown one is refused before anything runs
    check_overrides(notebooks, overrides)
    if profile == "cpu":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline profile must never wait on the network
    run_dir = new_run_dir(Path(runs_root), profile)
    rows = []
    for i, notebook in enumerate(notebooks, 1):
        own = notebook_parameters(notebook)
        parameters = {"profile": profile, **{k: v for k, v in overrides.items() if k in own}}
        print(f"[{i}/{len(notebooks)}] {notebook.stem} (profile {profile}) ...", flush=True)
        row = run_notebook(notebook, run_dir / notebook.name, parameters, timeout)
        print(f"      {row['status']} in {row['seconds']} s {row['error']}", flush=True)
        rows.append(row)
    write_summary(run_dir, rows)
    return run_dir, rows


def write_summary(run_dir: Path, rows: list, first=()) -> None:
    """summary.csv and summary.md: one row per run with its status, time and metrics (`first` columns lead)."""
    columns = [*first, "notebook", "status", "seconds", "peak_memory_gb"]
    columns += sorted({k for row in rows for k in row} - set(columns) - {"error"}) + ["error"]
    write_table(run_dir, "summary", rows, columns)


def summary_lines(rows: list) -> list:
    """One short line per notebook for a terminal: status, time, peak memory and its headline result
    (the `headline` metric a lesson records, e.g. "exact match 0.02 -> 0.25"), or the error."""
    width = max([len(row["notebook"]) for row in rows] + [8])
    lines = []
    for row in rows:
        tail = row.get("error") or row.get("headline", "")
        lines.append(f"{row['notebook']:<{width}}  {row['status']:<6} {row['seconds']:>7.0f} s "
                     f"{row['peak_memory_gb']:>6.1f} GB  {tail}".rstrip())
    total = sum(row["seconds"] for row in rows)
    lines.append(f"{'all':<{width}}  {'ok' if all(r['status'] == 'ok' for r in rows) else 'failed':<6} "
                 f"{total:>7.0f} s ({total / 60:.1f} min)")
    return lines


def write_table(folder: Path, name: str, rows: list, columns: list, markdown_columns=None) -> None:
    """`name`.csv with every column and `name`.md with `markdown_columns` (default: all)."""
    with open(folder / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    shown = markdown_columns or columns
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in shown) + " |" for row in rows]
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n")


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")[:200]
