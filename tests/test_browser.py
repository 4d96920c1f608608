"""The app in a real browser: Debian's chromium driven by Playwright (no browser download).

Starts `mamba-edu app` headless on a free port and walks every page of the navigation as a learner would,
on a laptop (1400 × 900) and on a phone (390 × 844):
- a deep link to every page as the first request of a fresh server gets the navigation (Home's layout);
- every page renders without an exception or error, its plots drawn by plotly.js, and the browser's
  console has no error or warning (Streamlit's own 404 probes aside);
- measured from element boxes (tests/browser_layout.js): no chart title, legend, axis title, annotation or
  tick label over another, no text outside its chart, no metric or select box cut off, and at 390 px the
  page is no wider than the screen;
- one interaction (the first slider one step right and back, else the first select box) changes a plot;
  the time from the key press to a still page is recorded in build/browser_report.json (median and
  worst per page) and fails only far above the goal (3×: a timing, not a flaky assertion);
- the state explorer's player: the heatmap stays drawn while ▶ plays and after scrubbing the slider.
A screenshot of each page at each size goes to build/screenshots/<page>[_phone].png; with
MAMBA_EDU_UPDATE_SCREENSHOTS=1 the ones the README shows are also copied to docs/img/.
Skipped only where chromium is not installed (CI installs it: see .ci/run and the Makefile).
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
SHOTS = BUILD / "screenshots"
REPORT = BUILD / "browser_report.json"
README_SHOTS = {"home": "app_home.png", "state_explorer": "app_state_explorer.png", "hippo": "app_hippo.png",
                "kernel_timing": "app_kernel_timing.png", "home_phone": "app_home_phone.png",
                "state_explorer_phone": "app_state_explorer_phone.png"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOTS = ".js-plotly-plot .main-svg"
LAPTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
LAYOUT_JS = (Path(__file__).parent / "browser_layout.js").read_text()
# Key press to a still page at default settings, on a 2-core machine: the goal, and the failure bound (3×)
GOAL_MEDIAN_S, GOAL_WORST_S, SLACK = 0.8, 1.5, 3.0

sys.path.insert(0, str(ROOT / "app"))
from _common import present_pages  # noqa: E402  (the pages in the navigation, as app/Home.py builds it)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
PAGES = present_pages()
TIMINGS: dict[str, dict] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_app():
    """`mamba-edu app` on a free port, as a user starts it; (process, url) once it answers."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mamba_edu.cli", "app", "--headless", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(url: str) -> None:
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail("the app did not start within 120 s")


def _stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def app_url():
    proc, url = _start_app()
    try:
        _wait_healthy(url)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Console:
    """The browser console's errors and warnings and the page's uncaught errors, Streamlit's 404 probes aside."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))

    def _message(self, m) -> None:
        text = m.text
        if m.type in ("error", "warning") or (m.type == "trace" and text.startswith("WARN")):
            if "status of 404" not in text:  # Streamlit probes for optional files (favicons, host config)
                self.problems.append(f"{m.type}: {text[:200]}")


def _open(browser, url: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    return page, Console(page)


def _settle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the script run is over: Streamlit's "running" indicator gone for half a second."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        if page.locator("[data-testid='stStatusWidget']").count() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
        page.wait_for_timeout(100)
    pytest.fail(f"the page was still running after {timeout_ms / 1000:.0f} s")


def _load(page, url: str, info) -> None:
    page.goto(url if info.file == "home.py" else f"{url}/{info.file[:-3]}")
    page.wait_for_selector("h1", timeout=90_000)
    _settle(page)
    if info.file != "home.py":
        page.wait_for_selector(PLOTS, timeout=60_000)
    page.wait_for_timeout(500)


def _healthy(page, console: Console, what: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, f"an exception {what}"
    errors = page.locator("[data-testid='stAlertContentError']")
    assert errors.count() == 0, f"an error {what}: {errors.first.inner_text()}"
    assert not console.problems, f"the browser console {what}: {console.problems[:5]} ({len(console.problems)} in all)"


def _layout(page, where: str) -> None:
    m = page.evaluate(LAYOUT_JS)
    problems = m["overlaps"] + m["cut"]
    if m["pageWidth"] > m["viewport"] + 1:
        problems.append(f"the page is {m['pageWidth']} px wide on a {m['viewport']} px screen")
    assert not problems, f"{where}: " + "; ".join(problems[:12])


def _screenshot(page, stem: str, width: int) -> None:
    """build/screenshots/<stem>.png of the whole page (the viewport grown to the page's height)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(max(900, height), 4000)})
    page.wait_for_timeout(800)  # let plotly redraw at the new size
    shot = SHOTS / f"{stem}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("MAMBA_EDU_UPDATE_SCREENSHOTS") == "1" and stem in README_SHOTS:
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "img" / README_SHOTS[stem])


def _plots_html(page) -> str:
    return page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot .main-svg')]"
                         ".map(e => e.outerHTML).join('')")


_WATCH = """() => { window.__lastChange = performance.now();
  if (!window.__watcher) { window.__watcher = new MutationObserver(() => { window.__lastChange = performance.now(); });
    window.__watcher.observe(document.querySelector('[data-testid="stMain"]'),
                             {subtree: true, childList: true, attributes: true, characterData: true}); } }"""


def _timed(page, action) -> float:
    """Seconds from `action` (a key press) to a still page: the last change of the page's main area
    before Streamlit is idle and nothing has changed for 0.7 s."""
    page.evaluate(_WATCH)
    t0 = page.evaluate("() => performance.now()")
    action()
    page.wait_for_timeout(200)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        quiet = page.evaluate("() => performance.now() - window.__lastChange")
        if not running and quiet > 700:
            break
        page.wait_for_timeout(100)
    return (page.evaluate("() => window.__lastChange") - t0) / 1000


def _slider(page):
    s = page.locator("[data-testid='stMain'] [data-testid='stSlider'] input[type='range']:not([disabled]), "
                     "[data-testid='stMain'] [data-testid='stSlider'] [role='slider']:not([aria-disabled='true'])")
    return s.first if s.count() else None


def _reruns(page, stem: str) -> None:
    """The first slider one step right, then back (defaults again), three times each: every key press
    must change a plot; the times from key press to a still page go to the report."""
    slider = _slider(page)
    if slider is None:  # no slider: pick the next option of the first select box (one rerun, timed)
        box = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']")
        assert box.count(), "the page has neither a slider nor a select box to interact with"
        before = _plots_html(page)

        def pick():
            box.first.click()
            page.locator("[role='option']").nth(1).click()
        times = [_timed(page, pick)]
        assert _plots_html(page) != before, "choosing another option changed no plot"
    else:
        times = []
        for key in ("ArrowRight", "ArrowLeft") * 3:
            before = _plots_html(page)
            slider.focus()
            times.append(_timed(page, lambda: slider.press(key)))
            assert _plots_html(page) != before, f"pressing {key} on the first slider changed no plot"
    TIMINGS[stem] = {"median_s": round(statistics.median(times), 3), "worst_s": round(max(times), 3),
                     "runs": [round(t, 3) for t in times]}
    _write_report()
    assert TIMINGS[stem]["median_s"] <= SLACK * GOAL_MEDIAN_S and TIMINGS[stem]["worst_s"] <= SLACK * GOAL_WORST_S, \
        f"{stem}: key press to a still page {TIMINGS[stem]} (goal: median {GOAL_MEDIAN_S} s, worst {GOAL_WORST_S} s)"


def _write_report() -> None:
    BUILD.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({"goal": {"median_s": GOAL_MEDIAN_S, "worst_s": GOAL_WORST_S, "fails_at": SLACK},
                                  "cpu_count": os.cpu_count(), "rerun_at_defaults": TIMINGS}, indent=1) + "\n")


def test_a_deep_link_on_a_fresh_server_gets_the_navigation(browser):
    """The first request of a fresh server is a page other than Home (a bookmark): the page runs inside
    Home's navigation (sections, titles, wide layout), not alone with raw file names in the sidebar.
    One fresh server per page, started together."""
    pages = [p for p in PAGES if p.file != "home.py"]
    servers = [_start_app() for _ in pages]
    try:
        for (proc, url), info in zip(servers, pages):
            _wait_healthy(url)
            page, console = _open(browser, url, LAPTOP)
            try:
                page.goto(f"{url}/{info.file[:-3]}")
                page.wait_for_selector("h1", timeout=90_000)
                _settle(page)
                assert info.title in page.inner_text("h1")
                nav = page.locator("[data-testid='stSidebarNav']").inner_text()
                assert "Models" in nav and "Speed" in nav and "State explorer" in nav, nav
                assert "state explorer" not in nav and "kernel timing" not in nav, f"raw file names: {nav}"
                width = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
                                      ".getBoundingClientRect().width")
                assert width > 900, f"the narrow layout ({width:.0f} px): Home's set_page_config did not run"
            finally:
                page.close()
    finally:
        for proc, _ in servers:
            _stop(proc)


@pytest.mark.parametrize("info", PAGES, ids=[p.file[:-3] for p in PAGES])
def test_page_on_a_laptop_and_a_phone(app_url, browser, info):
    stem = info.file[:-3]
    page, console = _open(browser, app_url, LAPTOP)
    try:
        _load(page, app_url, info)
        assert info.title in page.inner_text("h1")
        _healthy(page, console, "after loading")
        if info.file == "home.py":
            page.wait_for_selector("[data-testid='stDataFrame']", timeout=30_000)
            assert page.locator("[data-testid='stMetric']").count() >= 4
        _layout(page, f"{stem} at 1400 px")
        if info.file != "home.py":
            _reruns(page, stem)
            _healthy(page, console, "after the interaction")
        _screenshot(page, stem, LAPTOP["width"])
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(1500)  # plotly redraws every chart at the new width
        phone = page.locator("[data-testid='stMain'] label", has_text="Phone layout")
        if phone.count():  # a page with its own phone layout (fewer panels per row): as a phone user would
            phone.first.click()
            _settle(page)
            page.wait_for_timeout(1000)
        _layout(page, f"{stem} at 390 px")
        _screenshot(page, f"{stem}_phone", PHONE["width"])
        _healthy(page, console, "on a phone")
    finally:
        page.close()


_HEATMAP = "e => { const im = e.querySelector('.heatmaplayer image'); return !!im && !!im.getAttribute('href'); }"


def test_state_player_keeps_the_heatmap_through_play_and_scrub(app_url, browser):
    """The page says "scrub or play the time under the heatmap": while ▶ plays and after the slider is
    scrubbed the heatmap stays drawn, the bars change, and the console stays clean."""
    page, console = _open(browser, app_url, LAPTOP)
    try:
        _load(page, app_url, next(p for p in PAGES if p.file == "state_explorer.py"))
        player = page.locator(".js-plotly-plot").first
        bars = "e => JSON.stringify(e.data[2].y)"
        assert player.evaluate(_HEATMAP)
        before = player.evaluate(bars)
        player.locator(".updatemenu-button").first.click()
        seen = []
        for _ in range(30):  # ~3 s of the ~4 s it plays
            page.wait_for_timeout(100)
            seen.append(player.evaluate(_HEATMAP))
        assert sum(seen) >= 0.8 * len(seen), f"the heatmap was missing in {seen.count(False)} of {len(seen)} looks"
        page.wait_for_timeout(2500)
        assert player.evaluate(_HEATMAP), "the heatmap is gone after playing"
        assert player.evaluate(bars) != before, "▶ did not change the state bars"
        rail = player.locator(".slider-rail-rect").first.bounding_box()
        after_play = player.evaluate(bars)
        for frac in (0.3, 0.6, 0.1):  # scrub: click the slider's rail at three places
            page.mouse.click(rail["x"] + frac * rail["width"], rail["y"] + rail["height"] / 2)
            page.wait_for_timeout(400)
            assert player.evaluate(_HEATMAP), f"the heatmap is gone after scrubbing to {frac:.0%}"
        assert player.evaluate(bars) != after_play, "scrubbing did not change the state bars"
        _healthy(page, console, "while playing and scrubbing")
        # a trained model: its name in the select box is not cut off, its charts' labels do not overlap
        box = page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first
        box.click()
        page.locator("[role='option']", has_text="trained").first.click()
        _settle(page)
        page.wait_for_timeout(800)
        _healthy(page, console, "with a trained model")
        _layout(page, "state explorer with a trained model at 1400 px")
    finally:
        page.close()
