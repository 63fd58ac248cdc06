"""Classroom grading: execute each student's exercise notebook in a clean kernel and tabulate the checks.

Every notebook is matched to its exercise set in exercises/ by its cells (students rename files),
checked for tampering (a check cell edited or deleted, or a helpers function replaced), run with
the reference check cells restored and a time limit per cell, and read back through the results
the checks store in their outputs (`helpers.exercises.checks`). A crash, hang or tampering is reported in
the table; it never stops the batch, and the students' files are never modified.

Replaced helpers are caught at run time: before each check cell the grader runs a cell of its own
that digests the code of every course function loaded in the kernel (a function's code and the
functions its closure holds) and compares it with a fresh import in the grader's process, so
`lesson01.check_x = ...`, `vars(lesson01)[...] = ...`, edits through `__dict__` and a swapped
closure are all reported, whatever the source text looks like.
"""
import ast
import functools
import importlib
import json
import re
import sys
import time
import types
from pathlib import Path

import nbformat

from . import COURSE_ROOT
from .runner import write_table
from ..exercises.checks import MIME, PASSED

EXERCISES_DIR = COURSE_ROOT / "exercises"
INTEGRITY_MIME = "application/vnd.fine-tuning-course.integrity+json"
INTEGRITY = "integrity-"  # the id prefix of the grader's own cells
# Runs in the grader and, inside each integrity cell, in the student's kernel: the same digest both sides.
DIGEST_SOURCE = """
def _digest(function):
    import hashlib, types

    def add(code, into):  # what the code does, not how marshal happens to lay it out in this process
        into.update(code.co_code)
        into.update(repr((code.co_name, code.co_names, code.co_varnames, code.co_freevars)).encode())
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                add(const, into)
            else:
                into.update(repr(sorted(map(repr, const)) if isinstance(const, frozenset) else const).encode())

    into = hashlib.sha256()
    add(function.__code__, into)
    for cell in function.__closure__ or ():
        try:
            if isinstance(cell.cell_contents, types.FunctionType):
                add(cell.cell_contents.__code__, into)
        except ValueError:  # an empty cell
            pass
    return into.hexdigest()


def _changed(expected):
    import sys, types
    changed = []
    for key, digest in expected.items():
        module_name, _, name = key.partition(":")
        module = sys.modules.get(module_name)
        if module is None:
            continue
        function = module.__dict__.get(name)
        if not isinstance(function, types.FunctionType) or _digest(function) != digest:
            changed.append(module_name.removeprefix("helpers.") + "." + name)
    return changed
"""
TODO = "# TODO: your answer"
COLUMNS = ["student", "notebook", "exercise", "result", "hint", "notebook_status", "seconds", "file"]


def is_check_cell(source: str) -> bool:
    return bool(re.search(r"\blesson\d\d\.check_\w+\(", source))


def reference_sets(folder: Path = EXERCISES_DIR) -> dict:
    return {path.stem: nbformat.read(path, as_version=4) for path in sorted(folder.glob("*.ipynb"))}


def check_call(source: str) -> str | None:
    """`lesson01.check_pirate_messages(`: the call that names an exercise set's check (cell ids repeat across sets)."""
    found = re.search(r"\blesson\d\d\.check_\w+\(", source)
    return found.group(0) if found else None


def match_reference(notebook, references: dict):
    """The exercise set whose check calls this notebook holds most (in any cell: a check cell a student
    edited or turned into Markdown still names its check)."""
    text = "\n".join(cell.source for cell in notebook.cells)

    def shared(reference):
        calls = {check_call(c.source) for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)}
        return sum(call in text for call in calls)
    name, best = max(((name, shared(ref)) for name, ref in references.items()), key=lambda pair: pair[1])
    return (name, references[name]) if best else (None, None)


def tampering(notebook, reference) -> list:
    """What a student changed that they should not have: check cells, or helpers' functions."""
    problems = []
    student_cells = {c.get("id"): c for c in notebook.cells}
    for cell in reference.cells:
        if cell.cell_type == "code" and is_check_cell(cell.source):
            mine = student_cells.get(cell.get("id"))
            if mine is None and cell.source not in {c.source for c in notebook.cells if c.cell_type == "code"}:
                problems.append(f"check cell {cell.get('id')} deleted")
            elif mine is not None and mine.cell_type != "code":
                problems.append(f"check cell {cell.get('id')} turned into {mine.cell_type}")
            elif mine is not None and mine.source.strip() != cell.source.strip():
                problems.append(f"check cell {cell.get('id')} edited")
    reference_sources = {c.source for c in reference.cells}
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source not in reference_sources and _replaces_helpers(cell.source):
            problems.append(f"cell {cell.get('id')} replaces a helpers function")
    return problems


def _replaces_helpers(source: str) -> bool:
    """`lesson01.check_x = ...` or `helpers.exercises.checks.report = ...`: an answer that rewrites the grader."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    targets = [t for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    return any(isinstance(t, ast.Attribute) and re.match(r"(helpers|checks|lesson\d\d)\b", ast.unparse(t))
               for t in targets) or "setattr(" in source


@functools.lru_cache(maxsize=1)
def genuine_digests() -> dict:
    """"module:function" -> digest, for every function of the course modules the exercises load."""
    scope = {}
    exec(DIGEST_SOURCE, scope)
    for n in range(1, 6):
        importlib.import_module(f"helpers.exercises.lesson0{n}")
    return {f"{name}:{attribute}": scope["_digest"](value)
            for name, module in list(sys.modules.items())
            if name.startswith("helpers.") and not name.startswith("helpers.course")
            for attribute, value in vars(module).items()
            if isinstance(value, types.FunctionType) and value.__module__ == name}


def integrity_cell(check_id: str, digests: dict):
    """The grader's own cell, run just before a check: which course functions are not the course's?"""
    source = (f"# The grader's own cell: is every course function still the course's own?\n"
              f"__import__('IPython').display.display({{{INTEGRITY_MIME!r}: {{'changed': (lambda scope: (exec("
              f"{DIGEST_SOURCE!r}, scope), scope['_changed']({json.dumps(digests)}))[1])({{}})}}}}, raw=True)")
    return nbformat.v4.new_code_cell(source, id=f"{INTEGRITY}{check_id}")


def replaced_functions(cell) -> list:
    """The course functions an integrity cell found replaced (none for any other cell)."""
    if not str(cell.get("id")).startswith(INTEGRITY):
        return []
    return [name for o in cell.get("outputs", []) if INTEGRITY_MIME in o.get("data", {})
            for name in o["data"][INTEGRITY_MIME]["changed"]]


def with_integrity_cells(notebook, reference, digests: dict):
    checks = {c.get("id") for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)}
    cells = []
    for cell in notebook.cells:
        if cell.get("id") in checks:
            cells.append(integrity_cell(cell.get("id"), digests))
        cells.append(cell)
    notebook.cells = cells
    return notebook


def restored(notebook, reference):
    """A copy to execute: the reference's check cells put back as they were (also one the student deleted
    or turned into Markdown, in its place after the cell before it), outputs cleared."""
    copy = nbformat.from_dict(notebook)
    checks = {c.get("id"): c for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)}
    copy.cells = [cell for cell in copy.cells if cell.get("id") not in checks or cell.cell_type == "code"]
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.source = checks[cell.get("id")].source if cell.get("id") in checks else cell.source
            cell.outputs, cell.execution_count = [], None
    present = {cell.get("id") for cell in copy.cells}
    previous = None
    for cell in reference.cells:
        if cell.get("id") in checks and cell.get("id") not in present:
            ids = [c.get("id") for c in copy.cells]
            at = ids.index(previous) + 1 if previous in ids else len(copy.cells)
            copy.cells.insert(at, nbformat.from_dict({**checks[cell.get("id")], "outputs": [], "execution_count": None}))
        previous = cell.get("id")
    return copy


def execute(notebook, workdir: Path, timeout: int) -> str:
    """Run every cell (errors recorded, not fatal); returns "ok", "timed out" or "crashed: ..."."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    # The kernel app's own log stays at errors: its TCP-without-encryption warning would follow every notebook
    # (IPC transport avoids it, but nbclient then never notices a kernel that died and waits forever).
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    try:
        client.execute()
    except CellTimeoutError:
        return "timed out"
    except DeadKernelError as e:
        return f"crashed: the kernel died ({str(e)[:80]})"
    except Exception as e:  # whatever a student's code does, the batch goes on
        return f"crashed: {type(e).__name__}: {str(e)[:80]}"
    return "ok"


def check_results(executed, reference) -> list:
    """One (exercise, result, hint) per reference check cell, in order, read from the executed copy.

    An exercise's answer cells are those since the previous check: an error or a timeout there
    is reported as the exercise's result, since the check after it can only say "not defined".
    """
    check_ids = [c.get("id") for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)]
    results, segment_errors, replaced = [], [], []
    for cell in executed.cells:
        outputs = cell.get("outputs", [])  # a Markdown cell has none
        if str(cell.get("id")).startswith(INTEGRITY):
            replaced = replaced_functions(cell)
            continue
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if cell.get("id") not in check_ids or cell.cell_type != "code":
            segment_errors += errors
            continue
        stored = [o["data"][MIME] for o in outputs if MIME in o.get("data", {})]
        first_error = (segment_errors + errors)[:1]
        exercise = f"Exercise {check_ids.index(cell.get('id')) + 1}"
        if replaced:
            results.append((exercise, "tampered", f"replaced before its check ran: {', '.join(replaced)}"))
        elif first_error and first_error[0]["ename"] == "KeyboardInterrupt":
            results.append((exercise, "timed out", "a cell ran past the time limit and was interrupted"))
        elif stored:
            results.append((exercise, stored[-1]["status"], "" if stored[-1]["status"] == PASSED else stored[-1]["message"]))
        elif first_error:
            results.append((exercise, "error", f"{first_error[0]['ename']}: {first_error[0]['evalue']}"[:200]))
        elif cell.get("execution_count") is None:
            results.append((exercise, "not run", "an earlier cell crashed the kernel"))
        else:
            results.append((exercise, "no result", "the check printed no result: was it replaced?"))
        segment_errors = []
    seen = {exercise for exercise, _, _ in results}
    results += [(f"Exercise {n}", "not run", "its check cell was deleted") for n in range(1, len(check_ids) + 1)
                if f"Exercise {n}" not in seen]
    return sorted(results, key=lambda r: int(r[0].split()[-1]))


def student_name(path: Path, submissions: Path) -> str:
    """The folder under `submissions` for one folder per student, else the file's name."""
    parts = path.relative_to(submissions).parts
    return parts[0] if len(parts) > 1 else path.stem


def grade_notebook(path: Path, student: str, references: dict, workdir: Path, timeout: int) -> list:
    row = {"student": student, "file": str(path)}
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as e:
        return [{**row, "notebook": "?", "exercise": "-", "result": "unreadable", "hint": str(e)[:200],
                 "notebook_status": "unreadable", "seconds": 0}]
    name, reference = match_reference(notebook, references)
    if reference is None:
        return [{**row, "notebook": "?", "exercise": "-", "result": "unknown notebook",
                 "hint": "no exercise set's check cells found in it", "notebook_status": "unknown", "seconds": 0}]
    problems = tampering(notebook, reference)
    workdir.mkdir(parents=True, exist_ok=True)
    copy, start = with_integrity_cells(restored(notebook, reference), reference, genuine_digests()), time.perf_counter()
    status = execute(copy, workdir, timeout)
    nbformat.write(copy, workdir / path.name)  # the executed copy, for the instructor to open
    results = check_results(copy, reference)
    replaced = sorted({name for cell in copy.cells for name in replaced_functions(cell)})
    problems += [f"{', '.join(replaced)} replaced at run time"] if replaced else []
    if problems:
        status = "tampered: " + "; ".join(problems) + ("" if status == "ok" else f"; {status}")
    seconds = round(time.perf_counter() - start, 1)
    return [{**row, "notebook": name, "exercise": exercise, "result": result, "hint": hint,
             "notebook_status": status, "seconds": seconds} for exercise, result, hint in results]


def find_submissions(folder: Path) -> list:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: collect the students' notebooks into one folder first")
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not found:
        raise ValueError(f"no .ipynb files under {folder}: one notebook per student, or one folder per student")
    return found


def grade_safely(path: Path, student: str, references: dict, workdir: Path, timeout: int) -> list:
    """`grade_notebook`, but whatever goes wrong becomes the student's row instead of stopping the batch."""
    try:
        return grade_notebook(path, student, references, workdir, timeout)
    except Exception as e:  # a notebook no one foresaw: report it, grade the others
        return [{"student": student, "file": str(path), "notebook": "?", "exercise": "-", "result": "grader error",
                 "hint": f"{type(e).__name__}: {str(e)[:160]} (grade this notebook by hand)",
                 "notebook_status": "grader error", "seconds": 0}]


def grade(submissions, out_dir, timeout: int = 300, references: dict | None = None, jobs: int = 1) -> list:
    """Grade every notebook under `submissions`, `jobs` at a time, into out_dir: grades.csv and grades.md
    (one row per exercise), points.csv (one row per student, for an LMS) and the executed copies.

    Each finished notebook is saved to out_dir/progress.jsonl at once, so an interrupted batch keeps
    its grades: run the same command again and it grades only the notebooks not yet done.
    """
    paths, out_dir, submissions = find_submissions(submissions), Path(out_dir), Path(submissions)
    if (out_dir / "grades.csv").exists():
        raise ValueError(f"{out_dir} already holds grades: choose a new --out folder (earlier grades are kept)")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    references = references or reference_sets()
    done = read_progress(out_dir)
    if done:
        print(f"resuming: {len(done)} of {len(paths)} notebooks graded already in {out_dir / PROGRESS}")
    todo = [(i, path) for i, path in enumerate(paths, 1) if str(path) not in done]
    for path, rows in _graded(todo, submissions, out_dir, references, timeout, jobs):
        done[str(path)] = rows
        append_progress(out_dir, str(path), rows)
    rows = [row for path in paths for row in done[str(path)]]
    write_grades(out_dir, rows)
    return rows


def _graded(todo: list, submissions: Path, out_dir: Path, references: dict, timeout: int, jobs: int):
    """(path, rows) for each notebook as it finishes; with jobs > 1, that many kernels at once."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    def arguments(i, path):
        student = student_name(path, submissions)
        return path, student, references, out_dir / "executed" / f"{i:03d}-{student}", timeout

    if jobs == 1:
        for n, (i, path) in enumerate(todo, 1):
            print(f"[{n}/{len(todo)}] {path} ...", flush=True)
            yield path, grade_safely(*arguments(i, path))
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_share_the_cores, initargs=(jobs,)) as pool:
        futures = {pool.submit(grade_safely, *arguments(i, path)): path for i, path in todo}
        for n, future in enumerate(as_completed(futures), 1):
            print(f"[{n}/{len(todo)}] {futures[future]} graded", flush=True)
            yield futures[future], future.result()


def _share_the_cores(jobs: int) -> None:
    """In a grading worker: the kernels it starts use their share of the cores. Each kernel's torch would
    otherwise start a thread per core, and N kernels training at once on the same cores slow each other
    down more than running them one after the other."""
    import os

    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)


PROGRESS = "progress.jsonl"


def read_progress(out_dir: Path) -> dict:
    """file -> rows of the notebooks an earlier, interrupted run of this batch finished."""
    import json

    path = out_dir / PROGRESS
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the batch was stopped
            continue
        done[entry["file"]] = entry["rows"]
    return done


def append_progress(out_dir: Path, file: str, rows: list) -> None:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / PROGRESS, "a") as f:
        f.write(json.dumps({"file": file, "rows": rows}) + "\n")
        f.flush()


def points_rows(rows: list) -> tuple:
    """One row per student: 1 point per passed exercise, a column per (notebook, exercise), and the total."""
    columns = sorted({f"{r['notebook']} {r['exercise']}" for r in rows if r["exercise"] != "-"})
    students = {}
    for r in rows:
        student = students.setdefault(r["student"], {"student": r["student"], **dict.fromkeys(columns, 0)})
        if r["exercise"] != "-":
            student[f"{r['notebook']} {r['exercise']}"] = int(r["result"] == PASSED)
    for student in students.values():
        student["total"] = sum(student[c] for c in columns)
        student["out of"] = len(columns)
    return list(students.values()), ["student", *columns, "total", "out of"]


def write_grades(out_dir: Path, rows: list) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir, "grades", rows, COLUMNS, markdown_columns=COLUMNS[:-1])  # the file path only in the CSV
    points, columns = points_rows(rows)
    write_table(out_dir, "points", points, columns)
