"""Generate the student notebooks in exercises/ from the solved ones in solutions/.

In a solution notebook, a solved block is marked like this:

    # BEGIN SOLUTION -> messages = ...
    messages = [{"role": "user", "content": "Hi"}]
    # END SOLUTION

The student copy keeps everything else and replaces the block with the placeholder after `->`
(here `messages = ...  # TODO: your answer`). The check cells see the `...` and report "not done
yet" instead of failing. Outputs are stripped.
"""
import re
from pathlib import Path

import nbformat

from .colab import with_colab_cells

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(?:\s*->\s*(.+))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")


def strip_solutions(source: str) -> str:
    lines, inside = [], False
    for number, line in enumerate(source.splitlines(), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside another solution block")
            indent, placeholder = begin.groups()
            lines.append(f"{indent}{placeholder or 'pass'}  # TODO: your answer")
            inside = True
        elif END.match(line):
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
        if cell.cell_type == "code":
            try:
                cell.source = strip_solutions(cell.source)
            except ValueError as e:
                raise ValueError(f"{solution_path.name}, cell {cell.get('id')}: {e}") from None
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
