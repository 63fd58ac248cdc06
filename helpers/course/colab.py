"""The "Open in Colab" link and install cell at the top of every notebook, written from one place.

The repository's address is read from pyproject.toml ([project.urls] Repository), so a fork
re-points every link with one edit and `python -m helpers colab-cells`.
"""
import re
import tomllib
from pathlib import Path

import nbformat

from . import COURSE_ROOT as ROOT
FOLDERS = ("notebooks", "exercises", "solutions")
TAG = "colab"  # marks the two cells this module owns, so re-running replaces them instead of adding more

INSTALL = '''\
# On Colab only: fetch the course and its pinned stack (Colab's CUDA torch is kept), then work from
# the course folder. Anywhere else this cell does nothing: run `make setup` there instead.
import os, subprocess, sys

repository = os.environ.get("COURSE_REPOSITORY",  # a fork, or a local clone to test this cell
                            "{repository}")
course = os.environ.get("COURSE_COLAB_DIR", "/content/course")  # where the course is cloned
if "google.colab" in sys.modules and not os.path.exists(course):
    subprocess.run(["git", "clone", "--depth", "1", repository, course], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", course], check=True)
    subprocess.run([sys.executable, "-m", "helpers", "colab-setup"], check=True, cwd=course)
if "google.colab" in sys.modules:
    sys.path.insert(0, course)
    os.chdir(os.path.join(course, "{folder}"))
    from google.colab import output
    output.enable_custom_widget_manager()  # ipywidgets 8 needs it on Colab
    print('On Colab: profile "auto" picks colab-t4 on a GPU runtime (Runtime > Change runtime type > T4 GPU).')'''


def repository() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/")


def badge(repository_url: str, relative_path: str) -> str:
    owner_repo = re.sub(r"^https://github.com/", "", repository_url)
    link = f"https://colab.research.google.com/github/{owner_repo}/blob/main/{relative_path}"
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link})"


def colab_cells(relative_path: str) -> list:
    url = repository()
    link = nbformat.v4.new_markdown_cell(badge(url, relative_path) + "  (on Colab, run the next cell first)")
    install = nbformat.v4.new_code_cell(INSTALL.format(repository=url + ".git", folder=relative_path.split("/")[0]))
    for cell, name in ((link, "colab-link"), (install, "colab-install")):
        cell.id, cell.metadata["tags"] = name, [TAG]
    return [link, install]


def with_colab_cells(notebook, relative_path: str):
    """The notebook with its Colab cells (re)written after the title cell."""
    cells = [c for c in notebook.cells if TAG not in c.metadata.get("tags", [])]
    notebook.cells = cells[:1] + colab_cells(relative_path) + cells[1:]
    return notebook


def write_colab_cells(root: Path = ROOT) -> list:
    written = []
    for folder in FOLDERS:
        for path in sorted((root / folder).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            nbformat.write(with_colab_cells(notebook, f"{folder}/{path.name}"), path)
            written.append(path)
    return written
