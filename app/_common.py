"""Shared pieces of the app's pages: the page list, the page header, the device, guard rails, errors.

Every page of the app (app/pages/*.py) starts with

    from _common import error_boundary, page_header, show
    page_header("hippo.py", "Two or three sentences on what this page shows.")
    with error_boundary():
        ...                      # controls, library calls, figures (show(fig))

The app's entry point (app/Home.py) builds the navigation from PAGES and puts app/ on sys.path,
so `import _common` works from every page.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

APP_DIR = Path(__file__).resolve().parent
ROOT = APP_DIR.parent
NOTEBOOKS = ROOT / "notebooks"
# JupyterLab as `mamba-edu lab` starts it (notebook dir = notebooks/); override for another server
LAB_URL = os.environ.get("MAMBA_EDU_LAB_URL", "http://localhost:8888/lab/tree/")

log = logging.getLogger("mamba_edu.app")


def _leave_pages_directory_mode() -> None:
    """Make a deep link on a fresh server (a bookmark of /hippo as its first request) get the navigation.

    Streamlit decides once per server, before any script has run, whether the app is a "pages/ folder"
    app: our pages live in app/pages/, so the first request runs its page directly, without app/Home.py
    (no navigation, no wide layout), and only a run of Home's `st.navigation` turns that mode off. A page
    that finds the mode still on turns it off and reruns: the rerun goes through Home.py to the same page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit layout: nothing to do
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


@dataclass(frozen=True)
class PageInfo:
    """One page of the app: its file in app/pages/, where it sits in the navigation, its chapters."""

    file: str
    title: str
    icon: str
    section: str
    summary: str
    chapters: tuple[int, ...] = ()  # notebook chapter numbers (notebooks/NN_*.ipynb), main one first
    runs: str = "CPU or GPU"  # where its computations run


# The agreed pages, in navigation order. A page appears in the app once its file exists.
PAGES = [
    PageInfo("home.py", "Home", ":material/home:", "Start",
             "What this is, the map of pages and notebooks, and the device found here.", (), "anywhere"),
    PageInfo("state_explorer.py", "State explorer", ":material/grid_on:", "Models",
             "Pick an SSM and an input; watch the hidden state evolve, the output, the kernel and "
             "the eigenvalues of the discrete system.", (4, 2), "CPU (small sizes, any machine)"),
    PageInfo("hippo.py", "HiPPO memory", ":material/history:", "Models",
             "Reconstruct a signal's past from N coefficients kept online; LegS vs LegT vs FouT, "
             "and the error against N.", (3,), "CPU (any machine)"),
    PageInfo("selection.py", "Selection", ":material/filter_alt:", "Models",
             "Why an LTI model cannot do selective copying and a selective one can: Δ, B, C from the input.",
             (6, 5), "CPU (any machine)"),
    PageInfo("inside_mamba.py", "Inside Mamba", ":material/visibility:", "Models",
             "A real byte-level language model reads your text: follow one byte through a Mamba block, stage "
             "by stage, its Δ, what it writes into the state and how long that stays, the next-byte guess.",
             (10, 6), "CPU (any machine)"),
    PageInfo("scans.py", "Parallel scans", ":material/account_tree:", "Speed",
             "The associative operator and the sequential, Hillis–Steele and Blelloch scans, step by step.",
             (7,), "CPU (any machine)"),
    PageInfo("memory.py", "Memory hierarchy", ":material/memory:", "Speed",
             "Bytes moved between HBM and SRAM by each selective-scan implementation: the IO model.", (8,),
             "CPU (the model); GPU for measured bandwidth"),
    PageInfo("kernel_timing.py", "Kernel timing", ":material/timer:", "Speed",
             "Time the selective-scan implementations on this machine's GPU against the memory floor.", (9,),
             "GPU (on a CPU: Triton's interpreter, small sizes only)"),
]


def page_info(file: str) -> PageInfo:
    """The PAGES entry of the page file `file` (e.g. "hippo.py")."""
    for p in PAGES:
        if p.file == file:
            return p
    raise KeyError(f"no page '{file}' in PAGES")


def present_pages() -> list[PageInfo]:
    """The pages whose file exists (the app runs while pages are still being added)."""
    return [p for p in PAGES if (APP_DIR / "pages" / p.file).exists()]


# ----------------------------------------------------------------------------------------------
# Notebooks
# ----------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False)
def notebook_chapters() -> dict[int, tuple[str, str]]:
    """{chapter number: (file name, title)} of the notebooks in notebooks/, titles read from the
    first heading of each notebook's first cell."""
    out = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        title = path.stem
        try:
            cells = json.loads(path.read_text())["cells"]
            first = "".join(cells[0]["source"]).strip().splitlines()[0] if cells else ""
            title = first.lstrip("#").strip() or title
        except (OSError, ValueError, KeyError, IndexError):
            pass
        out[int(path.name[:2])] = (path.name, title)
    return out


def notebook_link(chapter: int) -> str:
    """Markdown for one chapter: a link into JupyterLab, or a note that it is still being written."""
    chapters = notebook_chapters()
    if chapter not in chapters:
        return f"chapter {chapter:02d} (in preparation)"
    name, title = chapters[chapter]
    return f"[{title}]({LAB_URL}{name}) (`notebooks/{name}`)"


# ----------------------------------------------------------------------------------------------
# Layout
# ----------------------------------------------------------------------------------------------


def page_header(file: str, intro: str) -> PageInfo:
    """The page's title, its two or three sentences of explanation and the link to its notebook(s)."""
    _leave_pages_directory_mode()
    info = page_info(file)
    st.title(info.title)
    st.markdown(intro)
    if info.chapters:
        main, *more = info.chapters
        text = ":material/menu_book: Notebook: " + notebook_link(main)
        if more:
            text += " · see also " + ", ".join(notebook_link(c) for c in more)
        st.caption(text + " — open the notebooks with `mamba-edu lab`.")
    return info


def show(fig, key: str | None = None) -> None:
    """Draw a mamba_edu.viz figure with its own styling (the same look as in the notebooks)."""
    # no plotly toolbar: on a phone it covers the title (drag still zooms, a double click resets)
    st.plotly_chart(fig, theme=None, key=key, config={"displaylogo": False, "displayModeBar": False})


# ----------------------------------------------------------------------------------------------
# The device, and guard rails for a CPU
# ----------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def device():
    """The device found here (`mamba_edu.machine.describe_device`), looked up once per server."""
    from mamba_edu.machine import describe_device

    return describe_device()


def on_gpu() -> bool:
    return device().kind == "cuda"


def device_caption() -> str:
    """One line: the device and the Triton mode."""
    dev = device()
    return f"{dev.summary()} · Triton: {dev.triton_mode}"


class Refused(Exception):
    """A setting too large for this machine: the page says so instead of computing it."""


def refuse_if(condition: bool, message: str) -> None:
    """Refuse a setting that would not stay responsive here (shown as a warning by error_boundary)."""
    if condition:
        raise Refused(message)


@contextmanager
def error_boundary(what: str = "this page"):
    """Show a friendly message instead of a traceback when the page's computation fails.

    Refused settings are a warning; the library's ValueErrors (bad arguments, with a message that
    names the argument) an error with that message; anything else an error with the exception's
    one-line message, the traceback going to the server log only. Streamlit's own control flow
    (st.stop, st.rerun) is a BaseException and passes through.
    """
    try:
        yield
    except Refused as e:
        st.warning(f"{e}", icon=":material/speed:")
    except ValueError as e:
        st.error(f"These settings cannot be computed: {e}", icon=":material/error:")
    except Exception as e:  # noqa: BLE001 - the boundary of the page
        log.exception("error while computing %s", what)
        st.error(f"Something went wrong while computing {what} ({type(e).__name__}: {e}). "
                 "Try other settings; the details are in the server's log.", icon=":material/error:")
