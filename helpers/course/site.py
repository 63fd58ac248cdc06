"""`make site`: the course as a static website, every output from one real run.

The pages are the lessons and solved exercises as a run executed them (`python -m helpers run`, or
the notebooks `make test` executed under nbval: `helpers.course.executed`), the exercises unsolved,
and the README's sections. Sphinx renders them with myst-nb (notebooks with their outputs, no
re-execution) and the book theme; every asset ships in those packages, so the site builds and
reads with no network. Sphinx runs with warnings as errors, and `check_site` then follows every
local link, image and script of every page: a broken link or a missing page fails the build.
"""
import csv
import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from . import COURSE_ROOT

CONF_DIR = COURSE_ROOT / "site"
WIDGET = "application/vnd.jupyter.widget-view+json"
COURSE_MIME = "application/vnd.fine-tuning-course."  # metrics and check results: data for tools, beside their text
PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+ \[")  # tqdm's text: "Tokenizing:  40%|####  | 4/10 [00:01<00:01, ...]"
COLAB_BADGE = re.compile(r"\[!\[Open in Colab\]\([^)]*\)\]\(([^)]*)\)", re.I)
# The README's sections, by page: (file, title, the "## " headings it takes, in README order).
README_PAGES = [
    ("setup", "Setup and running", ["What you need", "Working in JupyterLab", "Your own data", "Batch runs",
                                     "On Colab", "On an NVIDIA GPU"]),
    ("instructors", "For instructors", ["For instructors: hand out, collect, grade"]),
    ("reference", "Benchmarks and reference", ["Benchmarks", "Layout", "Tested with", "Editing the course",
                                               "Where the offline model and data come from"]),
]


def lesson_names() -> list:
    return sorted(p.stem for p in (COURSE_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def solution_names() -> list:
    return sorted(p.stem for p in (COURSE_ROOT / "solutions").glob("[0-9]*.ipynb"))


def missing_from(run_dir: Path) -> list:
    """The lessons and solutions a run folder lacks or did not finish ("ok")."""
    rows = _summary(run_dir)
    return [name for name in lesson_names() + solution_names()
            if rows.get(name, {}).get("status") != "ok" or not (run_dir / f"{name}.ipynb").exists()]


def _summary(run_dir: Path) -> dict:
    """notebook name -> its row of the run's summary.csv (empty without one)."""
    if not (run_dir / "summary.csv").exists():
        return {}
    with open(run_dir / "summary.csv", newline="") as f:
        return {row["notebook"]: row for row in csv.DictReader(f)}


def latest_complete_run(runs_root: Path = COURSE_ROOT / "runs") -> Path | None:
    """The newest run folder (runs/X or runs/X/Y) that executed every lesson and solution without error."""
    runs = [p.parent for p in list(runs_root.glob("*/summary.csv")) + list(runs_root.glob("*/*/summary.csv"))]
    complete = [run for run in runs if not missing_from(run)]
    return max(complete, key=lambda run: (run / "summary.csv").stat().st_mtime, default=None)


def provenance(run_dir: Path, name: str) -> str:
    """The line each executed page opens with: which run and machine produced its outputs."""
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    seconds = float(_summary(run_dir)[name]["seconds"])
    where = (f"on {info['date']}, profile `{info['profile']}`, {info['hardware']}, commit `{info['commit']}`"
             if info else "(this run recorded no date or machine: it predates run.json)")
    return (f"> **Outputs on this page** come from one run ({info.get('by', 'python -m helpers run')}, "
            f"`{run_dir.name}`) {where}; this notebook took {seconds:.0f} s to run.")


def page_notebook(source: Path, note: str) -> nbformat.NotebookNode:
    """A notebook as a page: `note` under its title, the Colab badge as a plain link (no image
    fetched from Google), no progress bars, other widget views reduced to the text they carry (no
    widget state is saved), and the course's machine-readable outputs (metrics, check results) to
    the text shown beside them."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = COLAB_BADGE.sub(r"[Open this notebook in Colab](\1)", cell.source)
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if not _progress_bar(out)]
        for out in cell.get("outputs", []):
            for mime in [m for m in out.get("data", {}) if m == WIDGET or m.startswith(COURSE_MIME)]:
                del out["data"][mime]
    nb.metadata.pop("widgets", None)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
    return nb


def _progress_bar(output) -> bool:
    """A progress bar's widget: on a page it is frozen at whatever its text showed last."""
    data = output.get("data", {})
    return WIDGET in data and bool(PROGRESS_BAR.search("".join(data.get("text/plain", ""))))


def readme_sections(readme: str) -> dict:
    """README heading -> that section's text (to the next "## " heading)."""
    parts = re.split(r"^## (.+)$", readme, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)} | {"": parts[0]}


def write_sources(run_dir: Path, src: Path) -> None:
    """The site's source folder: index and README pages in Markdown, the notebooks as pages."""
    shutil.rmtree(src, ignore_errors=True)
    for folder in ("lessons", "exercises", "solutions"):
        (src / folder).mkdir(parents=True)

    def write_page(source: Path, note: str, folder: str):
        nbformat.write(page_notebook(source, note), src / folder / source.name)

    for name in lesson_names():
        write_page(run_dir / f"{name}.ipynb", provenance(run_dir, name), "lessons")
    for name in solution_names():
        write_page(run_dir / f"{name}.ipynb", provenance(run_dir, name), "solutions")
        write_page(COURSE_ROOT / "exercises" / f"{name}.ipynb", "> **Unsolved**: the exercises as a learner gets them, "
             f"without outputs. Solved and run: [the solutions](../solutions/{name}.ipynb).", "exercises")
    sections = readme_sections((COURSE_ROOT / "README.md").read_text())
    for page, title, headings in README_PAGES:
        (src / f"{page}.md").write_text(f"# {title}\n\n" + "".join(f"## {h}\n{sections[h]}" for h in headings))
    (src / "index.md").write_text(index_page(sections))


def index_page(sections: dict) -> str:
    def toctree(caption, entries):
        return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n" + "\n".join(entries) + "\n```\n\n"

    solutions = solution_names()
    return (sections[""] + "## The lessons\n" + sections["The lessons"]
            + toctree("Lessons", [f"lessons/{n}" for n in lesson_names()])
            + toctree("Exercises", [f"exercises/{n}" for n in solutions])
            + toctree("Solutions", [f"{_title(COURSE_ROOT / 'solutions' / f'{n}.ipynb')}, solved <solutions/{n}>"
                                    for n in solutions])
            + toctree("Setup, instructors, reference", [page for page, _, _ in README_PAGES]))


def _title(notebook: Path) -> str:
    first = nbformat.read(notebook, as_version=4).cells[0].source
    return re.search(r"^# (.+)$", first, re.M).group(1).strip()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.local, self.remote_assets = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        target = attrs.get("href") if tag in ("a", "link") else attrs.get("src") if tag in ("img", "script") else None
        if not target or target.startswith(("#", "mailto:", "data:", "javascript:")):
            return
        if re.match(r"^(https?:)?//", target):
            if tag in ("img", "script", "link"):
                self.remote_assets.append(target)
        else:
            self.local.append(target.split("#")[0].split("?")[0])


def check_site(html_dir: Path) -> list:
    """Every problem of a built site: a local link, image or script that leads nowhere, an asset
    fetched from another host at view time, or a course page missing."""
    problems = []
    for page in sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts):  # _static: theme templates
        links = _Links()
        links.feed(page.read_text(errors="replace"))
        rel = page.relative_to(html_dir)
        problems += [f"{rel}: links to {t}, which does not exist" for t in links.local
                     if t and not (page.parent / t).resolve().exists()]
        problems += [f"{rel}: fetches {t} from the network" for t in links.remote_assets]
    expected = [f"lessons/{n}.html" for n in lesson_names()] + [f"{f}/{n}.html" for f in ("exercises", "solutions")
                                                                for n in solution_names()]
    expected += ["index.html", "search.html"] + [f"{page}.html" for page, _, _ in README_PAGES]
    problems += [f"page {p} is missing" for p in expected if not (html_dir / p).exists()]
    return problems


def build(run_dir: Path, out: Path) -> Path:
    """Build the site from a complete run folder into out/html; raises with every problem found."""
    missing = missing_from(run_dir)
    if missing:
        raise ValueError(f"{run_dir} lacks finished runs of {', '.join(missing)}. Fix: run them "
                         "(`python -m helpers run` with no names runs every lesson; `make site` with no RUN does it), "
                         "or pass another run folder.")
    start = time.perf_counter()
    write_sources(run_dir, out / "src")
    html = out / "html"
    shutil.rmtree(html, ignore_errors=True)
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                             "-c", str(CONF_DIR), str(out / "src"), str(html)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("Sphinx could not build the site:\n" + result.stderr[-6000:])
    problems = check_site(html)
    if problems:
        raise RuntimeError(f"The site has {len(problems)} problem(s):\n" + "\n".join(problems[:50]))
    size = sum(p.stat().st_size for p in html.rglob("*") if p.is_file())
    print(f"Built {len(list(html.rglob('*.html')))} pages ({size / 2**20:.1f} MB) from {run_dir} in "
          f"{time.perf_counter() - start:.0f} s: open {html / 'index.html'}")
    return html
