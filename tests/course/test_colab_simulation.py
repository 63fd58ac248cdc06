"""Colab simulated: a fresh virtual environment with only torch in it (Colab's own torch is kept by the
install cell; here the course's CPU wheel stands in for it), a stub `google.colab` module imported at
start-up as Colab's kernel has it, and the install cell run exactly as the notebooks have it, cloning
a local copy of the course (`COURSE_REPOSITORY`) into a temporary folder (`COURSE_COLAB_DIR`). Then
lesson 00 and exercise 05 run in that environment from the clone, as a Colab learner runs them.

What it proves: the install cell installs everything those notebooks import and read (the pinned
stack and the offline packages), and the notebooks find the course from Colab's working folder. What
it does not: Colab's GPU, its preinstalled packages or its network; without a GPU `profile="auto"`
is `cpu` here. It clones the committed course (HEAD), not uncommitted edits. About 3 minutes on
2 CPU cores, most of it pip.
"""
import json
import os
import subprocess
import sys

import nbformat
import pytest

from helpers.course import COURSE_ROOT

pytestmark = pytest.mark.slow  # builds an environment and executes notebooks with the real model

STUB = {
    "google/__init__.py": "",
    "google/colab/__init__.py": "from . import output\n",
    # what the install cell calls; the stub records the call so the test can see it happened
    "google/colab/output.py": "import os\n\ndef enable_custom_widget_manager():\n"
                              "    open(os.environ['COLAB_STUB_CALLS'], 'a').write('enable_custom_widget_manager\\n')\n",
    "sitecustomize.py": "import google.colab  # in sys.modules from the start, as in Colab's kernel\n",
}


def install_cell() -> str:
    notebook = nbformat.read(COURSE_ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if c.get("id") == "colab-install"]  # written by helpers.course.colab
    return cell.source


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    root = tmp_path_factory.mktemp("colab")
    for name, text in STUB.items():
        (root / "stub" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "stub" / name).write_text(text)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = str(root / "venv" / "bin" / "python")
    torch_version = __import__("torch").__version__.split("+")[0]
    subprocess.run([python, "-m", "pip", "install", "-q", f"torch=={torch_version}"], check=True)  # Colab's torch
    env = {**os.environ, "PYTHONPATH": str(root / "stub"), "COURSE_REPOSITORY": str(COURSE_ROOT),
           "COURSE_COLAB_DIR": str(root / "content" / "course"), "COLAB_STUB_CALLS": str(root / "calls.txt")}
    env.pop("VIRTUAL_ENV", None)
    return {"root": root, "python": python, "env": env, "course": root / "content" / "course"}


def test_the_install_cell_sets_up_a_fresh_colab_environment(colab):
    check = [colab["python"], "-c", "import sys; print('google.colab' in sys.modules)"]
    assert subprocess.run(check, capture_output=True, text=True, env=colab["env"]).stdout.strip() == "True"
    missing = subprocess.run([colab["python"], "-c", "import helpers"], capture_output=True, env=colab["env"],
                             cwd=colab["root"])
    assert missing.returncode != 0  # nothing of the course is there before the cell runs
    ran = subprocess.run([colab["python"], "-c", install_cell()], capture_output=True, text=True,
                         env=colab["env"], cwd=colab["root"])
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    assert 'profile "auto" picks colab-t4' in ran.stdout
    assert (colab["course"] / "notebooks" / "00_setup.ipynb").is_file()
    assert (colab["root"] / "calls.txt").read_text().splitlines() == ["enable_custom_widget_manager"]
    assets = subprocess.run([colab["python"], "-m", "helpers", "assets"], capture_output=True, text=True,
                            env=colab["env"], cwd=colab["course"])
    assert assets.returncode == 0, assets.stdout  # every required offline package, at its pinned version


@pytest.mark.parametrize("notebook", ["notebooks/00_setup.ipynb", "exercises/05_evaluation_exercises.ipynb"])
def test_lesson_00_and_exercise_05_run_in_it(colab, notebook, tmp_path):
    if not (colab["course"] / notebook).is_file():
        pytest.fail("the install cell did not run: see test_the_install_cell_sets_up_a_fresh_colab_environment")
    executed = tmp_path / "executed.ipynb"
    ran = subprocess.run([colab["python"], "-m", "papermill", str(colab["course"] / notebook), str(executed),
                          "--log-level", "ERROR"], capture_output=True, text=True, env=colab["env"],
                         cwd=colab["root"])
    assert ran.returncode == 0, ran.stderr[-4000:]
    outputs = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert "On Colab: profile" in outputs  # the notebook's own install cell saw Colab and found the clone
    assert "Traceback" not in outputs
