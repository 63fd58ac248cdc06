"""The course's measured run times, from `benchmarks/course_times.py`'s results files, and the text that
quotes them: the "Time and memory" paragraph of every notebook's first cell and the README's table.

`sync()` says which of those no longer match the results files (a test calls it), `sync(write=True)`
rewrites them. So every time and memory figure a learner reads there was measured, by one script.
"""
import csv
import json
import re
from pathlib import Path

from . import COURSE_ROOT

RESULTS = COURSE_ROOT / "benchmarks" / "results"
README = COURSE_ROOT / "README.md"
NOTEBOOK_FOLDERS = ("notebooks", "solutions", "exercises")
COLUMNS = ("notebook", "status", "seconds", "peak_memory_gb", "headline", "cpu_seconds", "system_cpu_seconds")
# Each kind of CPU a results file may come from, in the order the text gives them.
KINDS = {
    "cpu-amx": "with bf16 units (AMX)",
    "cpu-avx512-bf16": "with bf16 units (AVX512-BF16, no AMX)",
    "cpu-avx2": "without bf16 units (AVX2)",
    "cpu-avx2-emulated": "without bf16 units (AVX-512 limited to AVX2)",
    "cpu-avx512": "without bf16 units (AVX-512)",
    "cpu-other": "without bf16 units (another CPU)",
}
BF16_UNITS = {"cpu-amx": "AMX", "cpu-avx512-bf16": "AVX512-BF16"}  # what each bf16 kind computes bf16 with
PARAGRAPH = re.compile(r"\*\*Time and memory\*\*.*?(?=\n\n|\Z)", re.S)
AFTER_SETUP = "fresh after `make setup` (models converted, nothing trained)"
TABLE = re.compile(r"(<!-- course-times -->).*?(<!-- /course-times -->)", re.S)


def read_summary(path: Path) -> list:
    """The rows of a run's summary.csv, each cut to the columns the results keep."""
    with open(path, newline="") as f:
        return [{column: row.get(column, "") for column in COLUMNS} for row in csv.DictReader(f)]


def write_results(folder: Path, machine: dict, rows: list) -> tuple:
    """results/course-times-<kind>.csv (the rows) and .md (the machine, then the rows as a table)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"course-times-{machine['kind']}"
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    stem.with_suffix(".json").write_text(json.dumps(machine, indent=1) + "\n")
    total = total_seconds(rows)
    share = system_share(rows)
    lines = [f"# Course times on {machine['kind']}", "",
             *(f"- {key}: {value}" for key, value in machine.items()), f"- total: {total / 60:.1f} min",
             *([f"- CPU time in the operating system's kernel: {share:.0%} of all the notebooks' CPU time"]
               if share is not None else []), "",
             "| notebook | status | seconds | peak memory (GB) | CPU s (both cores) | of it in the OS kernel | headline |",
             "|---|---|---|---|---|---|---|",
             *(f"| {r['notebook']} | {r['status']} | {r['seconds']} | {r['peak_memory_gb']} | {r.get('cpu_seconds', '')} "
               f"| {r.get('system_cpu_seconds', '')} | {r['headline']} |" for r in rows)]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".csv"), stem.with_suffix(".md")


def total_seconds(rows) -> float:
    """A results file's time for the whole course: the sum of its notebooks' rows."""
    return sum(float(row["seconds"]) for row in rows)


def system_share(rows) -> float | None:
    """The share of the notebooks' CPU time spent in the operating system's kernel (None for a results file
    measured before the runner counted CPU time)."""
    if not rows or any(row.get("cpu_seconds") in (None, "") for row in rows):
        return None
    cpu = sum(float(row["cpu_seconds"]) for row in rows)
    return sum(float(row["system_cpu_seconds"]) for row in rows) / cpu if cpu else None


def measured(folder: Path = RESULTS) -> dict:
    """kind -> (machine, {notebook name: row}) for each results file there, in KINDS order."""
    found = {}
    for kind in KINDS:
        rows_file = folder / f"course-times-{kind}.csv"
        if rows_file.exists():
            machine = json.loads(rows_file.with_suffix(".json").read_text())
            found[kind] = machine, {row["notebook"]: row for row in read_summary(rows_file)}
    return found


def stand_in_speed(folder: Path = RESULTS) -> float | None:
    """How much faster the AVX2-limited stand-in trains than a real AVX2 CPU: plain TRL's tokens/s in the two
    training-speed results files (None when one is missing). Plain TRL runs none of the course's code, so the
    ratio is the machines' alone even when the course's own path changed between the two runs."""
    def plain_trl_speed(kind):
        path = folder / f"training-speed-{kind}.json"
        if not path.exists():
            return None
        rows = json.loads(path.read_text())["training"]
        return next((r["tokens_per_second"] for r in rows if r["name"].startswith("plain TRL")), None)
    real, stand_in = plain_trl_speed("cpu-avx2"), plain_trl_speed("cpu-avx2-emulated")
    return stand_in / real if real and stand_in else None


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def describe(kind: str, machine: dict, folder: Path = RESULTS) -> str:
    """Where a results file was measured: the CPU and what it computes bf16 with (or the limit torch was
    run under), the date; for the stand-in, how much slower a real AVX2 CPU trains."""
    if kind == "cpu-avx2-emulated":
        cpu = f"{machine['cpu']} limited to AVX2"
    elif kind in BF16_UNITS:
        cpu = f"{machine['cpu']} with {BF16_UNITS[kind]}"
    else:
        cpu = machine["cpu"]
    speed = stand_in_speed(folder) if kind == "cpu-avx2-emulated" else None
    return f"{cpu}, {machine['date']}" + (f"; a real 2-core AVX2 CPU trains {speed:.1f}x slower" if speed else "")


def header_paragraph(notebook: str, folder: Path = RESULTS) -> str:
    """The "Time and memory" paragraph of a notebook's first cell, from every results file that ran it
    (an exercise set, in solutions/ or exercises/, quotes the solved set's times)."""
    runs = measured(folder)
    parts = [f"{duration(float(rows[notebook]['seconds']))} and {float(rows[notebook]['peak_memory_gb']):.1f} GB at "
             f"the peak on a CPU {KINDS[kind].split(' (')[0]} ({describe(kind, machine, folder)})"
             for kind, (machine, rows) in runs.items() if notebook in rows]
    what = "every cell of the solved notebook" if notebook.endswith("_exercises") else "every cell"
    if not parts:
        return f"**Time and memory** to run {what} on 2 CPU cores: not measured yet (`benchmarks/course_times.py`)."
    caches = {machine["cache"].split(" ")[0] for machine, _ in runs.values()}  # "fresh ...", "empty ...", "warm"
    how = "one run of the course"
    if caches == {"fresh"}:
        how = "one run of the whole course right after setup, nothing cached but the converted models"
    elif caches == {"empty"}:
        how = "one run of the whole course from an empty model cache"
    return (f"**Time and memory** to run {what} on 2 CPU cores: " + "; ".join(parts)
            + f". Measured by `benchmarks/course_times.py` in {how}; not measured on a GPU yet (none was lent "
            "to the course's sessions).")


def readme_table(folder: Path = RESULTS) -> str:
    """The README's table: one row per notebook, time and peak memory per kind of machine, and a total."""
    runs = measured(folder)
    names = list(dict.fromkeys(name for _, rows in runs.values() for name in rows))
    header = "| notebook | " + " | ".join(f"{KINDS[kind]}: time, peak memory" for kind in runs) + " |"
    lines = [header, "|---|" + "---|" * len(runs)]
    for name in names:
        cells = [f"{duration(float(rows[name]['seconds']))}, {float(rows[name]['peak_memory_gb']):.1f} GB"
                 if name in rows else "" for _, rows in runs.values()]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    totals = {kind: total_seconds(rows.values()) for kind, (_, rows) in runs.items()}
    lines.append("| all | " + " | ".join(f"**{seconds / 60:.1f} min**" for seconds in totals.values()) + " |")
    lines.append("")
    for kind, (machine, _) in runs.items():
        lines.append(f"- {KINDS[kind]}: {describe(kind, machine, folder)}; commit {machine['commit']}, "
                     f"model cache {machine['cache']}"
                     + (f"; the conversion took {machine['setup_conversion_seconds']:.0f} s in setup."
                        if "setup_conversion_seconds" in machine else "."))
    speed = stand_in_speed(folder)
    if "cpu-avx2-emulated" in totals and "cpu-avx2" not in totals and speed:
        lines[-1] += (f" Scaled by that ratio, about {totals['cpu-avx2-emulated'] * speed / 60:.0f} minutes on a "
                      "real 2-core AVX2 CPU: an estimate from runs on different days, not a measurement.")
    return "\n".join(lines)


def _notebooks():
    for folder in NOTEBOOK_FOLDERS:
        yield from sorted((COURSE_ROOT / folder).glob("[0-9]*.ipynb"))


def sync(write: bool = False, folder: Path = RESULTS) -> list:
    """The files whose time and memory text differs from the results files (rewritten when `write`)."""
    import nbformat

    stale = []
    for path in _notebooks():
        notebook = nbformat.read(path, as_version=4)
        first = notebook.cells[0].source
        if not PARAGRAPH.search(first):
            stale.append(path)  # every notebook states its time and memory
            continue
        wanted = PARAGRAPH.sub(lambda _: header_paragraph(path.stem, folder), first)
        if wanted != first:
            stale.append(path)
            if write:
                notebook.cells[0].source = wanted
                nbformat.write(notebook, path)
    readme = README.read_text()
    wanted = TABLE.sub(lambda m: f"{m.group(1)}\n{readme_table(folder)}\n{m.group(2)}", readme)
    if wanted != readme or not TABLE.search(readme):
        stale.append(README)
        if write:
            README.write_text(wanted)
    return stale
