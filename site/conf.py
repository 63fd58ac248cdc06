"""Sphinx configuration of the course website (`make site`; helpers/course/site.py writes the pages)."""
import tomllib
from pathlib import Path

project = "Fine-Tuning Small LLMs"
author = "the course's authors"
extensions = [
    "myst_nb",            # notebooks (with their outputs) and Markdown pages
    "sphinx_copybutton",  # a copy button on every code cell
]
nb_execution_mode = "off"      # never re-run a notebook: every output comes from the run the pages name
nb_output_stderr = "remove"    # progress bars and library warnings: noise on a page, kept in the run's notebooks
nb_merge_streams = True        # one block per cell for the text a cell printed in pieces
myst_heading_anchors = 3       # headings get anchors, for links into a section
suppress_warnings = ["myst.header"]  # the notebooks open with "#" titles and skip levels in places

html_theme = "sphinx_book_theme"  # bundles its fonts, icons and scripts: nothing is fetched at view time
html_title = project
html_theme_options = {
    "repository_url": tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
                      ["project"]["urls"]["Repository"],
    "use_repository_button": True,
    "use_download_button": False,  # it offers the page source, which html_copy_source leaves out
    "show_toc_level": 2,       # each page's table of contents shows its sections and their subsections
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_copy_source = False       # the notebooks are in the repository; do not ship a second copy
html_show_sourcelink = False
