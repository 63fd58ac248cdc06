"""The course website (`make site`): built from a real run's executed notebooks, read in Chromium.

`make test` runs this file after the notebooks, so the site is built from what nbval just executed
(the newest complete run in runs/). The pages and a screenshot land in tests/artifacts/.
"""
import base64
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from helpers.course import site
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, free_port

LESSON02 = "02_supervised_fine_tuning"


def test_the_checker_finds_a_broken_link_a_remote_asset_and_a_missing_page(tmp_path):
    (tmp_path / "index.html").write_text('<a href="lessons/gone.html">x</a><script src="https://cdn.example/x.js">'
                                         '</script><a href="https://example.org">fine</a><img src="ok.png">')
    (tmp_path / "ok.png").write_bytes(b"png")
    problems = site.check_site(tmp_path)
    assert "index.html: links to lessons/gone.html, which does not exist" in problems
    assert "index.html: fetches https://cdn.example/x.js from the network" in problems
    assert f"page lessons/{LESSON02}.html is missing" in problems
    assert not any("example.org" in p or "ok.png" in p for p in problems)


def test_a_page_keeps_real_outputs_and_drops_progress_bars_badges_and_tool_data(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n[![Open in Colab](https://colab.research.google.com/assets/"
                                      "colab-badge.svg)](https://colab.research.google.com/github/x/y.ipynb)"),
        nbformat.v4.new_code_cell("train()", outputs=[
            nbformat.v4.new_output("display_data", {site.WIDGET: {"model_id": "1"},
                                                    "text/plain": "Map: 40%|####  | 4/10 [00:01<00:01]"}),
            nbformat.v4.new_output("display_data", {site.WIDGET: {"model_id": "2"}, "text/plain": "explorer text"}),
            nbformat.v4.new_output("display_data", {site.COURSE_MIME + "metrics+json": {"loss": 1.0},
                                                    "text/plain": "loss 1.0"})])])
    nbformat.write(nb, tmp_path / "x.ipynb")
    page = site.page_notebook(tmp_path / "x.ipynb", "> made by a test")
    assert page.cells[1].source == "> made by a test"
    assert "[Open this notebook in Colab](https://colab.research.google.com/github/x/y.ipynb)" in page.cells[0].source
    assert [dict(out.data) for out in page.cells[2].outputs] == [{"text/plain": "explorer text"},
                                                                  {"text/plain": "loss 1.0"}]


def test_an_incomplete_run_is_refused_with_what_it_lacks(tmp_path):
    (tmp_path / "summary.csv").write_text("notebook,status,seconds\n00_setup,ok,5\n01_chat_templates,failed,3\n")
    (tmp_path / "00_setup.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="lacks finished runs of 01_chat_templates, 02_supervised"):
        site.build(tmp_path, tmp_path / "out")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = site.latest_complete_run()
    assert run, ("no run in runs/ executed every lesson and solution: `make test` executes them before this "
                 "file runs, or run `python -m helpers run` and its solutions first")
    start = time.perf_counter()
    html = site.build(run, tmp_path_factory.mktemp("site"))
    size = sum(p.stat().st_size for p in html.rglob("*") if p.is_file())
    print(f"site built from {run} in {time.perf_counter() - start:.0f} s, {size / 2**20:.1f} MB")
    return run, html


slow = pytest.mark.slow  # builds the site from a full run; the browser test drives Chromium


@slow
def test_every_page_says_which_run_and_machine_made_its_outputs(built):
    run, html = built
    info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    for page in ["lessons/00_setup.html", f"lessons/{LESSON02}.html", "solutions/05_evaluation_exercises.html"]:
        text = (html / page).read_text()
        assert "Outputs on this page" in text and run.name in text, page
        assert info.get("date", "recorded no date or machine") in text and info.get("commit", "") in text, page
    assert "Unsolved" in (html / "exercises/02_supervised_fine_tuning_exercises.html").read_text()


def run_images(run, name) -> set:
    """The sha256 of every PNG the run's executed notebook holds."""
    nb = nbformat.read(run / f"{name}.ipynb", as_version=4)
    return {hashlib.sha256(base64.b64decode(out.data["image/png"])).hexdigest()
            for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})}


def run_table_cells(run, name, source_start) -> list:
    """The texts of the <td> cells of the first HTML table a cell (found by how its source starts) showed in the run."""
    nb = nbformat.read(run / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    table = next(out.data["text/html"] for out in cell.outputs if "text/html" in out.get("data", {}))
    return [re.sub(r"\s+", " ", html_lib.unescape(td)).strip() for td in re.findall(r"<td>(.*?)</td>", table, re.S)]


@slow
def test_the_site_reads_in_a_browser_with_the_runs_plot_table_and_search(built):
    from playwright.sync_api import sync_playwright

    run, html = built
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(html)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(50):
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            elsewhere = []
            page.on("request", lambda request: elsewhere.append(request.url) if not request.url.startswith(url) else None)
            page.goto(f"{url}/index.html")
            page.get_by_role("link", name="02 · Supervised fine-tuning with TRL").first.click()
            page.wait_for_url(f"**/lessons/{LESSON02}.html")
            images = page.locator("img[src*='_images']")
            sources = images.evaluate_all("els => els.filter(e => e.naturalWidth > 0).map(e => e.getAttribute('src'))")
            table = page.locator("table").filter(has_text="correct after").first  # section 6: before/after
            table.scroll_into_view_if_needed()
            table_text = re.sub(r"\s+", " ", table.inner_text())
            page.screenshot(path=str(ARTIFACTS / "site_lesson02.png"))
            page.goto(f"{url}/search.html?q=memorisation")
            page.locator("#search-results a").first.wait_for(timeout=30_000)
            page.locator("#search-results a").first.click()
            page.wait_for_load_state()
            landed, landed_text = page.url, page.inner_text("body")
            browser.close()
    finally:
        server.terminate()
    shutil.copytree(html, ARTIFACTS / "site", dirs_exist_ok=True)
    shown = {hashlib.sha256((html / "lessons" / s).resolve().read_bytes()).hexdigest() for s in sources}
    assert shown & run_images(run, LESSON02), "lesson 02's plots on the page are not the run's"
    assert len(shown) == len(run_images(run, LESSON02)), "every plot of the run is on the page"
    expected = run_table_cells(run, LESSON02, "after = evaluation.score_held_out")
    assert expected and all(value in table_text for value in expected[:12]), "the before/after table is not the run's"
    assert landed.endswith(".html") and "memorisation" in landed_text.lower()
    assert not elsewhere, f"the site fetched {elsewhere[:3]} from outside"


def test_make_site_with_no_complete_run_runs_every_lesson_and_solution_first(monkeypatch, tmp_path):
    from helpers.course import cli, runner

    ran, built = [], []
    monkeypatch.setattr(site, "latest_complete_run", lambda: None)
    monkeypatch.setattr(runner, "run_notebooks", lambda notebooks, profile: ran.append((notebooks, profile)) or
                        (tmp_path / "run", [{"notebook": "00_setup", "status": "ok", "seconds": 1.0, "peak_memory_gb": 1.0}]))
    monkeypatch.setattr(site, "build", lambda run_dir, out: built.append((run_dir, out)))
    assert cli.main(["site", "--out", str(tmp_path / "out")]) == 0
    (notebooks, profile), = ran
    assert profile == "cpu" and [p.stem for p in notebooks] == site.lesson_names() + site.solution_names()
    assert [p.parent.name for p in notebooks] == ["notebooks"] * 6 + ["solutions"] * 5
    assert built == [(tmp_path / "run", tmp_path / "out")]


def test_nbval_outputs_are_kept_as_a_notebook_stores_them():
    from helpers.course.executed import tidy_outputs

    pieces = [{"output_type": "stream", "name": "stdout", "text": "step 1\n"},
              {"output_type": "stream", "name": "stdout", "text": " 10%|#\r 50%|#####\r100%|##########\ndone\n"},
              {"output_type": "display_data", "data": {"text/plain": "table"}, "metadata": {}}]
    tidied = tidy_outputs(pieces)
    assert [out.output_type for out in tidied] == ["stream", "display_data"]
    assert tidied[0].text == "step 1\n100%|##########\ndone\n"


def cell_item(path):
    """What nbval's item for the one cell of a notebook holding `1 + 1` looks like to the capture."""
    from types import SimpleNamespace

    import nbformat as nbf

    notebook = nbf.v4.new_notebook(cells=[nbf.v4.new_code_cell("1 + 1")])
    return SimpleNamespace(fspath=path, cell=notebook.cells[0], cell_num=0, parent=SimpleNamespace(nb=notebook),
                           test_outputs=[{"output_type": "execute_result", "data": {"text/plain": "2"},
                                          "metadata": {}, "execution_count": 1}])


def test_only_the_courses_own_notebooks_make_a_run(tmp_path):
    from types import SimpleNamespace

    import nbformat as nbf

    from helpers.course.executed import NbvalCapture

    capture = NbvalCapture()
    report = SimpleNamespace(when="call", duration=1.5, failed=False)
    capture.cell_done(cell_item(tmp_path / "toy.ipynb"), report)
    assert capture.write(tmp_path / "runs") is None
    capture.cell_done(cell_item(site.COURSE_ROOT / "notebooks" / "00_setup.ipynb"), report)
    run_dir = capture.write(tmp_path / "runs")
    assert (run_dir / "summary.csv").read_text().splitlines()[1].startswith("00_setup,ok,1.5")
    saved = nbf.read(run_dir / "00_setup.ipynb", as_version=4)
    assert saved.cells[0].outputs[0].data["text/plain"] == "2" and saved.cells[0].execution_count == 1


def test_notebooks_executed_by_several_worker_processes_make_one_run(tmp_path):
    from types import SimpleNamespace

    import nbformat as nbf

    from helpers.course.executed import NbvalCapture

    parts = tmp_path / "parts"
    parts.mkdir()
    for notebook, failed in (("01_chat_templates.ipynb", False), ("00_setup.ipynb", True)):  # one per worker
        worker = NbvalCapture()
        worker.cell_done(cell_item(site.COURSE_ROOT / "notebooks" / notebook), SimpleNamespace(when="call", duration=2.0, failed=failed))
        worker.save(parts)
    controller = NbvalCapture()
    controller.load(parts)
    run_dir = controller.write(tmp_path / "runs")
    assert (run_dir / "summary.csv").read_text().splitlines()[1:] == ["00_setup,failed,2.0,,", "01_chat_templates,ok,2.0,,"]
    assert nbf.read(run_dir / "01_chat_templates.ipynb", as_version=4).cells[0].outputs[0].data["text/plain"] == "2"
    assert not parts.exists()
