"""Generate the student notebooks in exercises/ from the solved ones in solutions/.

In a solution notebook, a solved block is marked like this:

    # BEGIN SOLUTION -> messages = ...
    messages = [{"role": "user", "content": "Hi"}]
    # END SOLUTION

The student copy keeps everything else and replaces the block with the placeholder after `->`
(here `messages = ...  # TODO: your answer`). The check cells see the `...` and report "not done
yet" instead of failing. Outputs are stripped.

In a Markdown cell (the worked answers of a lesson's "why" questions), the block sits between
`<!-- BEGIN SOLUTION -->` and `<!-- END SOLUTION -->` lines and becomes `*Your answer:*`.
"""
import re
from pathlib import Path

import nbformat

from .colab import with_colab_cells

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(?:\s*->\s*(.+))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
MARKDOWN_BEGIN = re.compile(r"^()<!-- BEGIN SOLUTION -->\s*$")
MARKDOWN_END = re.compile(r"^\s*<!-- END SOLUTION -->\s*$")


def strip_markdown_solutions(source: str) -> str:
    return strip_solutions(source, MARKDOWN_BEGIN, MARKDOWN_END, placeholder="*Your answer:*")


def strip_solutions(source: str, begin_marker=BEGIN, end_marker=END, placeholder=None) -> str:
    lines, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        begin = begin_marker.match(line)
        if begin:
            if inside:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside another solution block")
            indent, answer = (begin.groups() + (None,))[:2]
            lines.append(placeholder or f"{indent}{answer or 'pass'}  # TODO: your answer")
            inside = True
        elif end_marker.match(line):
            if not inside:
                raise ValueError(f"line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ValueError("a BEGIN SOLUTION block is never closed with END SOLUTION")
    return "\n".join(lines)


def exercise_notebook(solution_path: Path):
    notebook = nbformat.read(solution_path, as_version=4)
    for cell in notebook.cells:
        try:
            cell.source = (strip_solutions if cell.cell_type == "code" else strip_markdown_solutions)(cell.source)
        except ValueError as e:
            raise ValueError(f"{solution_path.name}, cell {cell.get('id')}: {e}") from None
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)
    return with_colab_cells(notebook, f"exercises/{solution_path.name}")


def exercise_path(solution_path: Path) -> Path:
    return solution_path.parent.parent / "exercises" / solution_path.name


def write_exercises(solutions_dir: Path) -> list:
    """(Re)write every exercise notebook from its solution; returns the paths written."""
    written = []
    for solution in sorted(Path(solutions_dir).glob("*.ipynb")):
        target = exercise_path(solution)
        nbformat.write(exercise_notebook(solution), target)
        written.append(target)
    return written
