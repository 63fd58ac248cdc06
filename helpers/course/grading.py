"""Classroom grading: execute each student's exercise notebook in a clean kernel and tabulate the checks.

Every notebook is matched to its exercise set in exercises/ by its cells (students rename files),
checked for tampering (a check cell edited or deleted, or a helpers function replaced), run with
the reference check cells restored and a time limit per cell, and read back through the results
the checks store in their outputs (`helpers.exercises.checks`). A crash, hang or tampering is reported in
the table; it never stops the batch, and the students' files are never modified.
"""
import ast
import re
import time
from pathlib import Path

import nbformat

from . import COURSE_ROOT
from .runner import write_table
from ..exercises.checks import MIME, PASSED

EXERCISES_DIR = COURSE_ROOT / "exercises"
TODO = "# TODO: your answer"
COLUMNS = ["student", "notebook", "exercise", "result", "hint", "notebook_status", "seconds", "file"]


def is_check_cell(source: str) -> bool:
    return bool(re.search(r"\blesson\d\d\.check_\w+\(", source))


def reference_sets(folder: Path = EXERCISES_DIR) -> dict:
    return {path.stem: nbformat.read(path, as_version=4) for path in sorted(folder.glob("*.ipynb"))}


def match_reference(notebook, references: dict):
    """The exercise set whose check cells this notebook shares most (by cell id or identical source)."""
    def shared(reference):
        checks = [c for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)]
        ids = {c.get("id") for c in notebook.cells}
        sources = {c.source for c in notebook.cells}
        return sum(c.get("id") in ids or c.source in sources for c in checks)
    name, best = max(((name, shared(ref)) for name, ref in references.items()), key=lambda pair: pair[1])
    return (name, references[name]) if best else (None, None)


def tampering(notebook, reference) -> list:
    """What a student changed that they should not have: check cells, or helpers' functions."""
    problems = []
    student_cells = {c.get("id"): c for c in notebook.cells}
    for cell in reference.cells:
        if cell.cell_type == "code" and is_check_cell(cell.source):
            mine = student_cells.get(cell.get("id"))
            if mine is None and cell.source not in {c.source for c in notebook.cells}:
                problems.append(f"check cell {cell.get('id')} deleted")
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


def restored(notebook, reference):
    """A copy to execute: the reference's check cells put back as they were, outputs cleared."""
    copy = nbformat.from_dict(notebook)
    checks = {c.get("id"): c.source for c in reference.cells if c.cell_type == "code" and is_check_cell(c.source)}
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.source = checks.get(cell.get("id"), cell.source)
            cell.outputs, cell.execution_count = [], None
    return copy


def execute(notebook, workdir: Path, timeout: int) -> str:
    """Run every cell (errors recorded, not fatal); returns "ok", "timed out" or "crashed: ..."."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(workdir)}})
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
    results, segment_errors = [], []
    for cell in executed.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.get("id") not in check_ids:
            segment_errors += errors
            continue
        stored = [o["data"][MIME] for o in cell.outputs if MIME in o.get("data", {})]
        first_error = (segment_errors + errors)[:1]
        exercise = f"Exercise {check_ids.index(cell.get('id')) + 1}"
        if first_error and first_error[0]["ename"] == "KeyboardInterrupt":
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
    copy, start = restored(notebook, reference), time.perf_counter()
    status = execute(copy, workdir, timeout)
    nbformat.write(copy, workdir / path.name)  # the executed copy, for the instructor to open
    if problems:
        status = "tampered: " + "; ".join(problems) + ("" if status == "ok" else f"; {status}")
    seconds = round(time.perf_counter() - start, 1)
    return [{**row, "notebook": name, "exercise": exercise, "result": result, "hint": hint,
             "notebook_status": status, "seconds": seconds} for exercise, result, hint in check_results(copy, reference)]


def find_submissions(folder: Path) -> list:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: collect the students' notebooks into one folder first")
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not found:
        raise ValueError(f"no .ipynb files under {folder}: one notebook per student, or one folder per student")
    return found


def grade(submissions, out_dir, timeout: int = 300, references: dict | None = None) -> list:
    """Grade every notebook under `submissions`; writes grades.csv, grades.md and executed copies to out_dir."""
    paths, out_dir = find_submissions(submissions), Path(out_dir)
    if (out_dir / "grades.csv").exists():
        raise ValueError(f"{out_dir} already holds grades: choose a new --out folder (earlier grades are kept)")
    references = references or reference_sets()
    rows = []
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path} ...", flush=True)
        student = student_name(path, Path(submissions))
        rows += grade_notebook(path, student, references, out_dir / "executed" / f"{i:03d}-{student}", timeout)
    write_grades(out_dir, rows)
    return rows


def write_grades(out_dir: Path, rows: list) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir, "grades", rows, COLUMNS, markdown_columns=COLUMNS[:-1])  # the file path only in the CSV
