"""Every notebook: committed without outputs, follows the chapter template, and runs top to bottom.

Notebooks are executed with nbclient in a fresh kernel from the notebooks/ folder; an error in
any cell fails the test. Exercise stubs are left as they are: their checks report "not attempted"
and the notebook still reaches its end (tests/test_exercises.py runs the checks on solutions).
"""

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
APPENDICES = sorted((ROOT / "notebooks").glob("[0-9][0-9][a-z]_*.ipynb"))  # optional, no exercises (e.g. 09b)
CELL_TIMEOUT = 300  # s; a whole notebook should take well under 2 minutes on a laptop CPU
TIMES_FILE = ROOT / ".pytest_cache" / "notebook_times.json"


def _source(nb, kind=None):
    return "\n".join(c.source for c in nb.cells if kind is None or c.cell_type == kind)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_and_follows_the_template(path):
    raw = json.loads(path.read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name}: strip outputs"
    nb = nbformat.reads(path.read_text(), as_version=4)
    first = nb.cells[0].source.lower()
    assert nb.cells[0].cell_type == "markdown" and "objectives" in first and "prerequisites" in first
    md = _source(nb, "markdown").lower()
    assert "summary" in md and "further reading" in md
    code = _source(nb, "code")
    checks = code.count("check_")
    assert 2 <= checks, f"{path.name}: needs 2-4 auto-checked exercises, found {checks} check calls"
    assert "mamba_edu.viz" in code or "from mamba_edu import viz" in code


@pytest.mark.parametrize("path", APPENDICES, ids=[p.stem for p in APPENDICES])
def test_appendix_is_stripped_and_has_objectives(path):
    raw = json.loads(path.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in raw["cells"] if c["cell_type"] == "code")
    nb = nbformat.reads(path.read_text(), as_version=4)
    first = nb.cells[0].source.lower()
    assert nb.cells[0].cell_type == "markdown" and "objectives" in first and "prerequisites" in first
    assert "further reading" in _source(nb, "markdown").lower()


@pytest.mark.parametrize("path", NOTEBOOKS + APPENDICES, ids=[p.stem for p in NOTEBOOKS + APPENDICES])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("MAMBA_EDU_TESTING")
    os.environ["MAMBA_EDU_TESTING"] = "1"
    try:
        # IPC sockets, not TCP: TCP ports picked by one process and bound later by the kernel can be
        # taken in between by another kernel started at the same time, which stalls the run.
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=120,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        try:
            client.execute()
        finally:  # a client given its kernel manager does not own it: it leaves the kernel running
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        seconds = time.perf_counter() - t0
    finally:
        if env_before is None:
            os.environ.pop("MAMBA_EDU_TESTING", None)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    TIMES_FILE.parent.mkdir(exist_ok=True)
    times = json.loads(TIMES_FILE.read_text()) if TIMES_FILE.exists() else {}
    times[path.stem] = round(seconds, 1)
    TIMES_FILE.write_text(json.dumps(times, indent=1, sort_keys=True))
    print(f"{path.name}: {seconds:.1f} s")
