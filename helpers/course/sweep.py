"""Parameter sweeps: one notebook run per point of a grid, as one job that can be resumed.

A job lives in one folder: `job.json` says what it sweeps, each point runs in its own subfolder
(`learning_rate=0.001/`), and a finished point leaves `result.json` there. Running the same job
again skips the points that finished and runs the rest, each in a new folder, so a failed or
interrupted attempt stays for inspection and nothing is overwritten.
"""
import itertools
import json
import re
from pathlib import Path

from .runner import check_free_disk, check_overrides, first_free_dir, parse_value, run_notebook, write_summary
from ..profiles import resolve_profile


def parse_grid(pairs) -> dict:
    """[("learning_rate", "1e-4,1e-3")] -> {"learning_rate": [0.0001, 0.001]}."""
    grid = {}
    for name, values in pairs:
        if name in grid:
            raise ValueError(f"--grid {name} is given twice: list all its values once, comma-separated")
        grid[name] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not grid[name]:
            raise ValueError(f"--grid {name} has no values: give them comma-separated, e.g. --grid {name} 4,8,16")
    if not grid:
        raise ValueError("a sweep needs at least one --grid NAME VALUES, e.g. --grid learning_rate 1e-4,1e-3")
    return grid


def grid_points(grid: dict) -> list:
    """Every combination of the grid's values, as one dict of parameters each."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def point_name(point: dict) -> str:
    """A folder name for one point: "lora_r=8-learning_rate=0.001"."""
    return "-".join(f"{name}={re.sub(r'[^A-Za-z0-9.+_]', '_', str(value))}" for name, value in point.items())


def finished_result(job_dir: Path, point: dict):
    """The result of a successful earlier attempt at this point, if any."""
    for result in sorted(job_dir.glob(f"{point_name(point)}*/result.json")):
        row = json.loads(result.read_text())
        if row["status"] == "ok":
            return row
    return None


def attempt_dir(job_dir: Path, point: dict) -> Path:
    """A new folder for one attempt at a point; earlier attempts keep theirs."""
    return first_free_dir(job_dir, point_name(point), [f"-attempt{i}" for i in range(2, 100)])


def claim_job(job_dir: Path, spec: dict) -> None:
    """Start a job folder, or check that an existing one holds this same sweep (then it resumes)."""
    spec_file = job_dir / "job.json"
    if spec_file.exists():
        earlier = json.loads(spec_file.read_text())
        if earlier != spec:
            raise ValueError(f"{job_dir} holds a different sweep ({earlier}); give this one another --job name")
        return
    job_dir.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec, indent=1))


def run_sweep(notebook: Path, grid: dict, profile="auto", overrides=None, job_dir="runs/sweep", timeout=None):
    """Run the notebook once per grid point; returns (job folder, rows). Resumes an unfinished job."""
    overrides, job_dir = overrides or {}, Path(job_dir)
    profile = resolve_profile(profile)  # "auto" becomes a name; an unknown one is refused before anything runs
    check_overrides([notebook], {**overrides, **grid})
    rows, points = [], grid_points(grid)
    check_free_disk(job_dir.resolve(), len(points))  # finished points count too: an upper bound
    claim_job(job_dir, {"notebook": notebook.stem, "profile": profile, "grid": grid, "overrides": overrides})
    for i, point in enumerate(points, 1):
        done = finished_result(job_dir, point)
        if done:
            print(f"[{i}/{len(points)}] {point_name(point)}: finished earlier, kept", flush=True)
            rows.append(done)
            continue
        print(f"[{i}/{len(points)}] {point_name(point)} ...", flush=True)
        folder = attempt_dir(job_dir, point)
        row = run_notebook(notebook, folder / notebook.name, {"profile": profile, **overrides, **point}, timeout)
        row = {**point, "folder": folder.name, **row}
        (folder / "result.json").write_text(json.dumps(row, indent=1))
        print(f"      {row['status']} in {row['seconds']} s {row['error']}", flush=True)
        rows.append(row)
        if row["status"] == "interrupted":
            print("Interrupted: run the same command again to resume; finished points are kept.", flush=True)
            break
    write_summary(job_dir, rows, first=[*grid, "folder"])
    plot_sweep(job_dir, rows, grid)
    return job_dir, rows


def plot_sweep(job_dir: Path, rows: list, grid: dict) -> Path | None:
    """sweep.png: each numeric metric that changed across the runs, against the first swept parameter."""
    import matplotlib

    matplotlib.use("Agg")  # a file, not a window: sweeps run in batch
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.DataFrame([r for r in rows if r["status"] == "ok"])
    skip = set(grid) | {"seconds", "peak_memory_gb"}
    metrics = [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])
               and table[c].nunique() > 1][:6] if len(table) > 1 else []
    if not metrics:
        return None
    x, others = list(grid)[0], list(grid)[1:]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, group in (table.groupby(others) if others else [("", table)]):
            group = group.sort_values(x)
            values = label if isinstance(label, tuple) else (label,)
            ax.plot(group[x], group[metric], marker="o",
                    label=", ".join(f"{k}={v}" for k, v in zip(others, values)) if others else None)
        numeric = pd.api.types.is_numeric_dtype(table[x])
        if numeric and table[x].min() > 0 and table[x].max() / table[x].min() >= 10:
            ax.set_xscale("log")
        ax.set(xlabel=x, title=metric)
        if others:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(job_dir / "sweep.png", dpi=110)
    plt.close(fig)
    return job_dir / "sweep.png"
