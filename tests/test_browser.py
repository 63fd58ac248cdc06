"""The learner's view in a real browser: JupyterLab on localhost, lesson 01 run in Chromium, the explorer used.

Needs Debian's chromium (`make test` installs it) and Playwright's Python package (a test extra);
the screenshot lands in tests/artifacts/ for a person to look at.
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here loads the real model or runs notebooks

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google on this closed network.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of lesson 01 (the lab autosaves; the committed notebook stays clean)."""
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium package"
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "01_chat_templates.ipynb", root)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(root / ".jupyter")}
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
                              stdout=subprocess.DEVNULL, stderr=open(root / "lab.log", "w"), env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start: " + (root / "lab.log").read_text()[-2000:])
    yield f"{url}/lab/tree/01_chat_templates.ipynb?token={token}"
    server.terminate()
    server.wait(timeout=30)


def run_all_cells(page, lab_url):
    """Open the notebook, start its kernel, and run every cell, as a learner would from the menu."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(lab_url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    select = page.get_by_role("button", name="Select", exact=True)  # a fresh JupyterLab asks for the kernel
    try:
        select.wait_for(timeout=20_000)
        select.click()
    except PlaywrightTimeout:
        pass  # it started the notebook's kernel without asking
    page.get_by_text("Kernel status: Idle").first.wait_for(state="attached", timeout=120_000)  # the kernel is up
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def changed_html(page, element, before: str) -> str:
    page.wait_for_function("([el, old]) => el.innerHTML !== old", arg=[element.element_handle(), before])
    return element.inner_html()


def test_lesson01_runs_in_jupyterlab_and_the_explorer_reacts(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        run_all_cells(page, lab)
        # the explorer is the widget with a "Template" dropdown; it appears when its cell has run
        explorer = page.locator(".widget-vbox").filter(has_text="assistant-only loss").first
        try:
            explorer.wait_for(timeout=600_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "lesson01_explorer_missing.png"))
            raise
        explorer.scroll_into_view_if_needed()
        rendered = explorer.locator(".widget-html-content").last
        before = rendered.inner_html()
        assert "France" in before
        explorer.locator(".widget-dropdown select").nth(4).select_option("assistant")  # the last message's role
        after_role = changed_html(page, rendered, before)
        explorer.locator(".widget-checkbox").filter(has_text="assistant-only loss").locator("input").click()
        after_mask = changed_html(page, rendered, after_role)
        mask_off_text = rendered.inner_text()
        news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's news prompt, out of the screenshot
        if news.is_visible():
            news.click()
        page.screenshot(path=str(ARTIFACTS / "lesson01_explorer.png"), full_page=False)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t]
        browser.close()
    assert before != after_role != after_mask
    assert re.search(r"masked\s+0\s+tokens", mask_off_text), "with the mask off every token is trained"
    assert "two assistant messages in a row" in mask_off_text  # the role change reached the explorer's check
    assert not tracebacks, tracebacks[0][-1500:]
