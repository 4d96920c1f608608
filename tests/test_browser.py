"""The app in a real browser: Debian's chromium driven by Playwright (no browser download).

Starts `mamba-edu app` headless on a free port and opens every page of the navigation in chromium:
the page renders without an exception, its plots are drawn by plotly.js (`.js-plotly-plot .main-svg`),
and one interaction (the first slider one step to the right, else the first select box) changes a
plot; on the state explorer the player's ▶ button animates the state. A screenshot of each page goes to build/screenshots/<page>.png; with
MAMBA_EDU_UPDATE_SCREENSHOTS=1 the ones the README shows are also copied to docs/img/.
Skipped only where chromium is not installed (CI installs it: see .ci/run and the Makefile).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "screenshots"
README_SHOTS = {"home": "app_home.png", "state_explorer": "app_state_explorer.png", "hippo": "app_hippo.png"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOTS = ".js-plotly-plot .main-svg"

sys.path.insert(0, str(ROOT / "app"))
from _common import present_pages  # noqa: E402  (the pages in the navigation, as app/Home.py builds it)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mamba_edu.cli", "app", "--headless", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run is over: Streamlit's "running" indicator gone for half a second."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
        page.wait_for_timeout(100)
    pytest.fail("the page was still running after 60 s")


def _plots_html(page) -> str:
    return page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .main-svg')]"
                         ".map(e => e.outerHTML).join('')")


def _interact(page) -> str:
    """Move the first enabled slider one step right, or else pick another option of the first select box."""
    # Streamlit's slider thumb is an <input type="range"> (newer releases) or a [role="slider"] element
    slider = page.locator("[data-testid='stMain'] [data-testid='stSlider'] input[type='range']:not([disabled]), "
                          "[data-testid='stMain'] [data-testid='stSlider'] [role='slider']:not([aria-disabled='true'])")
    if slider.count():
        slider.first.focus()
        slider.first.press("ArrowRight")
        return "slider"
    box = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']")
    assert box.count(), "the page has neither a slider nor a select box to interact with"
    box.first.click()
    page.locator("[role='option']").nth(1).click()
    return "select box"


def _screenshot(page, stem: str) -> None:
    """build/screenshots/<stem>.png of the whole page (the viewport grown to the page's height)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(1000, height), 3000)})
    page.wait_for_timeout(800)  # let plotly redraw at the new size
    shot = SHOTS / f"{stem}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("MAMBA_EDU_UPDATE_SCREENSHOTS") == "1" and stem in README_SHOTS:
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "img" / README_SHOTS[stem])


PAGES = present_pages()


@pytest.mark.parametrize("info", PAGES, ids=[p.file[:-3] for p in PAGES])
def test_page_renders_plots_and_reacts(app_url, browser, info):
    stem = info.file[:-3]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(app_url if info.file == "home.py" else f"{app_url}/{stem}")
        page.wait_for_selector("h1", timeout=60_000)
        _settle(page)
        assert info.title in page.inner_text("h1")
        assert page.locator("[data-testid='stException']").count() == 0
        errors = page.locator("[data-testid='stAlertContentError']")
        assert errors.count() == 0, errors.first.inner_text()
        if info.file == "home.py":
            page.wait_for_selector("[data-testid='stDataFrame']", timeout=30_000)
            assert page.locator("[data-testid='stMetric']").count() >= 4
        else:
            page.wait_for_selector(PLOTS, timeout=30_000)
        _screenshot(page, stem)  # at the default settings
        if stem == "state_explorer":  # the state player's ▶ animates the state bars in the browser (no rerun)
            player = page.locator(".js-plotly-plot").first
            state_now = "e => JSON.stringify([e.data[1].x, e.data[2].y])"
            before = player.evaluate(state_now)
            player.locator(".updatemenu-button").first.click()
            page.wait_for_timeout(1500)
            assert player.evaluate(state_now) != before
            player.locator(".updatemenu-button").nth(1).click()  # pause, so that only the rerun changes plots below
            page.wait_for_timeout(300)
        if info.file != "home.py":
            before = _plots_html(page)
            how = _interact(page)
            page.wait_for_function(
                "old => [...document.querySelectorAll('.js-plotly-plot .main-svg')].map(e => e.outerHTML).join('') !== old",
                arg=before, timeout=60_000)
            _settle(page)
            assert page.locator("[data-testid='stException']").count() == 0, f"an exception after moving the {how}"
            assert page.locator(PLOTS).count() > 0
    finally:
        page.close()
