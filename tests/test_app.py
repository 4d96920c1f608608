"""The app's entry point, navigation, home page and shared helpers, through streamlit.testing.v1.AppTest."""

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import mamba_edu
from mamba_edu.machine import describe_device

APP = Path(__file__).resolve().parents[1] / "app"
sys.path.insert(0, str(APP))
import _common  # noqa: E402


def _home(app_dir: Path = APP) -> AppTest:
    at = AppTest.from_file(str(app_dir / "Home.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_pages_list_matches_the_agreed_files():
    assert [p.file for p in _common.PAGES] == ["home.py", "state_explorer.py", "hippo.py", "selection.py",
                                               "inside_mamba.py", "scans.py", "memory.py", "kernel_timing.py"]
    present = [p.file for p in _common.present_pages()]
    assert present == [p.file for p in _common.PAGES if (APP / "pages" / p.file).exists()]
    assert {"home.py", "state_explorer.py", "hippo.py"} <= set(present)


def test_home_page_device_map_and_registry():
    at = _home()
    assert at.title[0].value == "Home"
    dev = describe_device()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] == ("GPU" if dev.kind == "cuda" else "CPU only")
    if dev.kind == "cuda":
        assert metrics["Streaming multiprocessors"] == str(dev.multiprocessors)
    else:
        assert metrics["GPU memory"] == "none" and metrics["CPU cores"] == str(os.cpu_count())
    assert metrics["torch"] == torch.__version__.split("+")[0] and metrics["Triton"] == (dev.triton or "none")
    assert dev.summary() in at.markdown[1].value
    # the map of pages: one row per agreed page, links to the pages that exist
    pages_md = next(m.value for m in at.markdown if m.value.startswith("| page |"))
    rows = pages_md.splitlines()[2:]
    assert len(rows) == len(_common.PAGES)
    present = {p.file for p in _common.present_pages()}
    for info, row in zip(_common.PAGES, rows):
        linked = info.file in present and info.file != "home.py"
        assert row.startswith(f"| [{info.title}]({info.file[:-3]})" if linked else f"| {info.title}"), row
        assert ("*(coming)*" in row) == (info.file not in present)
    assert "03 HiPPO: memory as projection" in rows[2]  # the chapter title read from notebooks/03_hippo.ipynb
    # the map of notebooks: every notebook in notebooks/, with the pages that show it
    nb_md = next(m.value for m in at.markdown if m.value.startswith("| chapter |"))
    chapters = _common.notebook_chapters()
    assert len(nb_md.splitlines()) == 2 + len(chapters)
    assert "| 03 | HiPPO: memory as projection | `notebooks/03_hippo.ipynb` | HiPPO memory |" in nb_md
    # what runs where: the registry as the library reports it
    table = at.dataframe[0].value
    assert list(table["implementation"]) == list(mamba_edu.implementations())
    target = "cuda" if dev.kind == "cuda" else "cpu"
    for name, runs in zip(table["implementation"], table["runs here"]):
        ok, why = mamba_edu.implementations()[name].available(target)
        assert runs == ("yes" if ok else f"no: {why}")
    assert at.sidebar.caption[0].value.startswith("Running on: " + dev.summary())


def test_app_runs_while_pages_are_missing(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "_common")  # the copy must import its own _common (restored afterwards)
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    for page in (app / "pages").glob("*.py"):
        if page.name not in ("home.py", "hippo.py"):
            page.unlink()
    at = _home(app)
    assert at.title[0].value == "Home"
    at.switch_page("pages/hippo.py").run()
    assert not at.exception and at.title[0].value == "HiPPO memory"
    with pytest.raises(ValueError, match="Could not find page"):
        at.switch_page("pages/state_explorer.py")


def test_header_links_the_notebook_chapter():
    chapters = _common.notebook_chapters()
    name, title = chapters[3]
    assert name == "03_hippo.ipynb" and title.startswith("03")
    assert _common.notebook_link(3) == f"[{title}]({_common.LAB_URL}{name}) (`notebooks/{name}`)"
    assert _common.notebook_link(99) == "chapter 99 (in preparation)"


def _boundary_script():
    import streamlit as st
    from _common import Refused, error_boundary

    kind = st.session_state.get("kind", "value")
    st.write("before")
    with error_boundary("the test"):
        if kind == "value":
            raise ValueError("f: argument 'x' must be positive; got -1.")
        if kind == "refused":
            raise Refused("N = 512 is too large here.")
        if kind == "bug":
            raise ZeroDivisionError("division by zero")
        st.write("fine")
    st.write("after")


@pytest.mark.parametrize("kind, element, text", [
    ("value", "error", "These settings cannot be computed: f: argument 'x' must be positive; got -1."),
    ("refused", "warning", "N = 512 is too large here."),
    ("bug", "error", "Something went wrong while computing the test (ZeroDivisionError: division by zero)"),
    ("none", None, None),
])
def test_error_boundary_shows_a_message_not_a_traceback(kind, element, text):
    at = AppTest.from_function(_boundary_script, default_timeout=30)
    at.session_state["kind"] = kind
    at.run()
    assert not at.exception
    written = [m.value for m in at.markdown]
    assert written[0] == "before" and written[-1] == "after"  # the page goes on after the boundary
    if element is None:
        assert "fine" in written and not at.error and not at.warning
    else:
        shown = getattr(at, element)
        assert len(shown) == 1 and shown[0].value.startswith(text)
