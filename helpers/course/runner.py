"""Execute notebooks with papermill under a profile, and collect one summary table per run."""
import ast
import csv
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..measure import GPU_PEAK_FILE, PeakMemory, read_gpu_peak
from ..profiles import resolve_profile
from ..records import read_metrics
from . import COURSE_ROOT
from .executed import write_run_info


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


# What a run writes: its executed notebooks and the models they train (outputs/). Measured under `cpu`:
# lesson 02 alone 0.52 GB, every lesson and solution 2.1 GB; a margin on top, so a disk that fills up
# stops a run before it starts, not in a lesson's save cell with a safetensors I/O error.
DISK_GB_PER_NOTEBOOK = 0.25
DISK_GB_MARGIN = 1.0


def check_free_disk(root: Path, runs: int) -> None:
    """Refuse `runs` notebook runs whose folder's disk lacks the space they write."""
    existing = next(folder for folder in [root, *root.parents] if folder.exists())
    free_gb = shutil.disk_usage(existing).free / 1e9
    needed_gb = DISK_GB_MARGIN + DISK_GB_PER_NOTEBOOK * runs
    if free_gb < needed_gb:
        raise ValueError(f"Only {free_gb:.1f} GB free on the disk of {root}; running {runs} notebook(s) "
                         f"needs about {needed_gb:.1f} GB (the models they train go under each run's outputs/). "
                         f"Free some space (earlier runs in {root} keep theirs: `du -sh {root}/*`) "
                         "or pass --runs-dir on a larger disk.")


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
    """Execute one notebook into `out`; never raises for a failing notebook, reports it instead.

    Ctrl-C interrupts the running cell and returns the row with status "interrupted"."""
    start = time.perf_counter()
    gpu_file = out.with_name(f".{out.stem}.gpu-peak")  # the kernel writes its GPU peak here (helpers.measure)
    gpu_file.unlink(missing_ok=True)
    os.environ[GPU_PEAK_FILE] = str(gpu_file)  # the kernel inherits it; one notebook runs at a time
    cpu_before = children_cpu_seconds()
    try:
        with PeakMemory(interval=0.5, children=True) as memory:
            status, error = execute_interruptibly(notebook, out, parameters, timeout)
    finally:
        del os.environ[GPU_PEAK_FILE]
    cpu = cpu_time_columns(cpu_before, children_cpu_seconds())
    metrics = read_metrics(out) if out.exists() else {}
    gpu_peak = read_gpu_peak(gpu_file)
    gpu_file.unlink(missing_ok=True)
    gpu = {} if gpu_peak is None else {"gpu_peak_memory_gb": round(gpu_peak, 2)}
    return {"notebook": notebook.stem, "status": status, "seconds": round(time.perf_counter() - start, 1),
            "peak_memory_gb": round(memory.peak_gb, 2), **gpu, **cpu, **metrics, "error": error}


def children_cpu_seconds() -> tuple | None:
    """(user, system) CPU seconds of this process's finished children: the notebook kernels papermill has
    shut down, with what they waited for (lesson 02's `trl sft`). None where `resource` is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def cpu_time_columns(before, after) -> dict:
    """A notebook's CPU seconds (both cores together) and the part of them spent in the operating system's
    kernel: mostly clearing the fresh memory a training step allocates, which a virtual machine whose host
    reclaims freed memory pays again and again (benchmarks/fresh_memory.py)."""
    if before is None or after is None:
        return {}
    user, system = (a - b for a, b in zip(after, before))
    return {"cpu_seconds": round(user + system, 1), "system_cpu_seconds": round(system, 1)}


def execute_interruptibly(notebook: Path, out: Path, parameters: dict, timeout=None) -> tuple:
    """(status, error) of papermill run in a worker thread.

    In the main thread nbclient puts its own Ctrl-C handler on its event loop, and a Ctrl-C ended the
    run with a traceback, no summary and no row for the notebook; from a worker thread it installs
    none, so Ctrl-C (or SIGTERM, see `interrupt_on_signals`) reaches this wait as KeyboardInterrupt,
    which interrupts the kernel, keeps the notebook and lets the run write its summary."""
    outcome, finished = {}, threading.Event()
    threading.Thread(target=_execute, args=(notebook, out, parameters, timeout, outcome, finished),
                     daemon=True).start()
    try:
        while not finished.wait(0.2):  # an Event, not Thread.join: a Ctrl-C inside join() can mark a
            pass                       # running thread as finished (Python before 3.13)
    except KeyboardInterrupt:
        _stop_kernel(finished)
        return "interrupted", "stopped by Ctrl-C; the executed notebook shows where"
    return outcome["status"], outcome["error"]


def _execute(notebook: Path, out: Path, parameters: dict, timeout, outcome: dict, finished) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    status, error = "ok", ""
    try:
        papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=str(out.parent),
                                   progress_bar=True, execution_timeout=timeout,
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no TCP warning per notebook
    except PapermillExecutionError as e:
        first_line = (e.source or "").strip().splitlines()[:1] or [""]
        status, error = "failed", f"cell {e.cell_index} `{first_line[0][:60]}`: {e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died or timed out: the other notebooks still run
        status, error = "failed", f"{type(e).__name__}: {e}"
    finally:
        outcome.update(status=status, error=error)
        finished.set()


def _stop_kernel(finished, grace: float = 10) -> None:
    """Interrupt the kernels this process started (they run in a session of their own, so the
    terminal's Ctrl-C never reaches them), and kill them if the cell does not stop within `grace` s."""
    import psutil

    kernels = [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(_cmdline(p))]
    for sig in (signal.SIGINT, signal.SIGKILL):
        for kernel in kernels:
            try:
                kernel.send_signal(sig)
            except psutil.Error:
                pass
        if finished.wait(grace):  # papermill has written the notebook, with the interrupted cell's traceback
            return


def _cmdline(process) -> list:
    try:
        return process.cmdline()
    except Exception:  # psutil.Error: the process ended meanwhile
        return []


@contextmanager
def interrupt_on_signals():
    """While notebooks run, Ctrl-C and SIGTERM (a batch system's stop, `kill`) raise KeyboardInterrupt.

    Also when SIGINT came ignored: a shell starts its background jobs so (`make course &` in a
    script), and a run then went on through every Ctrl-C."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_notebooks(notebooks: list, profile: str = "auto", overrides: dict | None = None,
                  runs_root="runs", timeout=None) -> tuple:
    """Run each notebook with the profile and overrides; returns (run folder, summary rows).

    The summary is rewritten after each notebook, so a run stopped any way keeps every finished row;
    Ctrl-C stops at the running notebook (its row says "interrupted") and runs no more."""
    overrides = overrides or {}
    profile = resolve_profile(profile)  # "auto" becomes a name; an unknown one is refused before anything runs
    check_overrides(notebooks, overrides)
    if profile == "cpu":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline profile must never wait on the network
    root = Path(runs_root).resolve()  # absolute: papermill changes the working folder
    check_free_disk(root, len(notebooks))
    run_dir = new_run_dir(root, profile)
    write_run_info(run_dir, profile, "python -m helpers run")
    rows = []
    with interrupt_on_signals():
        for i, notebook in enumerate(notebooks, 1):
            own = notebook_parameters(notebook)
            parameters = {"profile": profile, **{k: v for k, v in overrides.items() if k in own}}
            print(f"[{i}/{len(notebooks)}] {notebook.stem} (profile {profile}) ...", flush=True)
            row = run_notebook(notebook, run_dir / notebook.name, parameters, timeout)
            print(f"      {row['status']} in {row['seconds']} s {row['error']}", flush=True)
            rows.append(row)
            write_summary(run_dir, rows)
            if row["status"] == "interrupted":
                break
    return run_dir, rows


def rest_command(notebooks: list, rows: list, profile: str, overrides: dict) -> str:
    """The command that runs the notebooks an interrupted run did not finish."""
    lessons = COURSE_ROOT / "notebooks"
    rest = [nb.stem if nb.parent.resolve() == lessons.resolve() else str(nb) for nb in notebooks[len(rows) - 1:]]
    options = [f"--profile {profile}"] + [f"-p {name} {value!r}" if isinstance(value, str) and " " in value
                                          else f"-p {name} {value}" for name, value in overrides.items()]
    return "python -m helpers run " + " ".join(rest + options)


def write_summary(run_dir: Path, rows: list, first=()) -> None:
    """summary.csv and summary.md: one row per run with its status, time and metrics (`first` columns lead)."""
    columns = [*first, "notebook", "status", "seconds", "peak_memory_gb"]
    columns += sorted({k for row in rows for k in row} - set(columns) - {"error"}) + ["error"]
    write_table(run_dir, "summary", rows, columns)


def summary_lines(rows: list) -> list:
    """One short line per notebook for a terminal: status, time, peak memory (host RAM, and GPU where a
    notebook used one) and its headline result
    (the `headline` metric a lesson records, e.g. "exact match 0.02 -> 0.25"), or the error."""
    width = max([len(row["notebook"]) for row in rows] + [8])
    lines = []
    for row in rows:
        tail = row.get("error") or row.get("headline", "")
        gpu = f" RAM, {row['gpu_peak_memory_gb']:.1f} GB GPU" if row.get("gpu_peak_memory_gb") not in (None, "") else ""
        lines.append(f"{row['notebook']:<{width}}  {row['status']:<6} {row['seconds']:>7.0f} s "
                     f"{row['peak_memory_gb']:>6.1f} GB{gpu}  {tail}".rstrip())
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
