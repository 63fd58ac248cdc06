"""What `make setup` does besides installing: the Python floor, and the git filter for editors."""
import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbstripout import strip_output

from helpers.course.git_filter import install_git_filter

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb"))


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def test_make_setup_on_an_old_python_stops_with_the_reason(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\ncase "$1" in --version) echo "Python 3.10.12";; *) exit 1;; esac\n')
    old.chmod(0o755)
    result = subprocess.run(["make", "-C", str(ROOT), "setup", f"PYTHON={old}", f"VENV={tmp_path / 'venv'}"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and not (tmp_path / "venv").exists()
    assert (f"The course needs Python 3.11 or newer (transformers and trl require it); {old} is Python 3.10.12. "
            "Install Python 3.11+ and run: make setup PYTHON=python3.11") in result.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_filter_leaves_every_committed_notebook_as_it_is(path):
    # else `git status` would show every notebook as changed the moment the filter is installed
    stripped = strip_output(nbformat.read(path, as_version=4), keep_output=False, keep_count=False, keep_id=True)
    assert nbformat.writes(stripped) + "\n" == path.read_text()


def test_the_filter_strips_an_executed_notebook_as_it_is_staged_and_keeps_cell_ids(tmp_path):
    lesson = tmp_path / "lesson.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_setup.ipynb", lesson)
    git(tmp_path, "init", "-q")
    assert install_git_filter(tmp_path)
    git(tmp_path, "add", "lesson.ipynb")
    git(tmp_path, "commit", "-qm", "clean lesson")
    executed = json.loads(lesson.read_text())
    code = next(c for c in executed["cells"] if c["cell_type"] == "code")
    code.update(execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}])
    executed["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    lesson.write_text(json.dumps(executed, indent=1))
    git(tmp_path, "add", "lesson.ipynb")
    assert git(tmp_path, "status", "--porcelain") == ""  # staged == committed: outputs stripped, ids kept
    assert git(tmp_path, "show", ":lesson.ipynb") == (ROOT / "notebooks" / "00_setup.ipynb").read_text()


def test_outside_a_git_checkout_the_filter_changes_nothing(tmp_path):
    assert install_git_filter(tmp_path) is False and not (tmp_path / ".git").exists()
