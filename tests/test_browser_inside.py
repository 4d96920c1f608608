"""The Inside Mamba page in a real browser (Debian's chromium through Playwright, as tests/test_browser.py).

The page renders its plots without an exception; clicking a byte in the token strip (a plotly click,
sent back to Streamlit as a selection) moves the chosen byte and changes the data-flow picture; the
slider does the same from the keyboard. Screenshots at a laptop's 1400×900 and a phone's 390×844 go
to build/screenshots/; with MAMBA_EDU_UPDATE_SCREENSHOTS=1 also to docs/img/ (the README shows them).
"""

import os
import shutil

import pytest
from test_browser import CHROMIUM, PLOTS, ROOT, SHOTS, _settle, app_url, browser  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")

SIZES = {"app_inside_mamba.png": (1400, 900), "app_inside_mamba_phone.png": (390, 844)}
FLOW_TITLE = "() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.layout && e.layout.title && " \
             "e.layout.title.text).find(t => t && t.startsWith('Block '))"
FLOW_DATA = "() => { const e = [...document.querySelectorAll('.js-plotly-plot')].find(e => e.layout && e.layout.title " \
            "&& e.layout.title.text.startsWith('Block ')); return JSON.stringify(e.data.map(d => d.z)); }"

# how many panels the data-flow picture puts side by side (distinct x domains)
FLOW_COLUMNS = "(() => { const e = [...document.querySelectorAll('.js-plotly-plot')].find(e => e.layout && e.layout.title " \
               "&& e.layout.title.text.startsWith('Block ')); return e ? new Set(Object.keys(e.layout)" \
               ".filter(k => k.startsWith('xaxis')).map(k => e.layout[k].domain[0])).size : 0; })()"


def _open(browser, url, width, height):  # noqa: F811
    """The page, reached as a visitor does: the home page, then its link in the navigation."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    page.wait_for_selector("h1", timeout=60_000)
    _settle(page)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Inside Mamba").first.click()
    page.wait_for_function("() => document.querySelector('h1') && document.querySelector('h1').innerText.includes('Inside')",
                           timeout=60_000)
    _settle(page)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_selector(PLOTS, timeout=60_000)
    assert "Inside Mamba" in page.inner_text("h1")
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    return page


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    # the controls above the token strip, the strip and the block's data flow below it
    page.locator("[data-testid='stSlider']").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("MAMBA_EDU_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, ROOT / "docs" / "img" / name)


def _wait_flow_change(page, old_title):
    page.wait_for_function(f"old => ({FLOW_TITLE})() !== old", arg=old_title, timeout=60_000)
    _settle(page)
    assert page.locator("[data-testid='stException']").count() == 0


def test_clicking_a_byte_changes_the_pictures(app_url, browser):  # noqa: F811
    page = _open(browser, app_url, 1400, 900)
    try:
        title, data = page.evaluate(FLOW_TITLE), page.evaluate(FLOW_DATA)
        assert title.startswith("Block 1 at byte #")
        strip = page.locator(".js-plotly-plot").first  # the token strip comes first
        strip.scroll_into_view_if_needed()
        strip.locator(".scatterlayer .trace").first.locator("path.point").nth(2).click(force=True)
        _wait_flow_change(page, title)
        assert page.evaluate(FLOW_TITLE).startswith("Block 1 at byte #2 ")
        assert page.evaluate(FLOW_DATA) != data
        title = page.evaluate(FLOW_TITLE)
        # Streamlit's slider thumb is an <input type="range"> (newer releases) or a [role="slider"] element
        thumb = page.locator("[data-testid='stSlider'] input[type='range'], [data-testid='stSlider'] [role='slider']").first
        thumb.focus()
        thumb.press("ArrowRight")
        _wait_flow_change(page, title)
        assert page.evaluate(FLOW_TITLE).startswith("Block 1 at byte #3 ")
    finally:
        page.close()


@pytest.mark.parametrize("name", list(SIZES))
def test_screenshots(app_url, browser, name):  # noqa: F811
    page = _open(browser, app_url, *SIZES[name])
    try:
        if "phone" in name:  # the page's phone layout: fewer bytes per row, two stages per row
            title = page.evaluate(FLOW_TITLE)
            page.get_by_text("Phone layout").click()
            page.wait_for_function(FLOW_COLUMNS + " === 2", timeout=60_000)
            _settle(page)
            assert page.evaluate(FLOW_TITLE) == title  # the same byte, drawn narrower
        _shot(page, name)
    finally:
        page.close()
