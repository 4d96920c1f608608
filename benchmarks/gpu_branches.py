"""Run every notebook and every app page on this machine's GPU branch, and report what ran.

The notebooks' GPU cells and the app's GPU branches ("measured on this GPU", "Run the benchmark" on a
GPU) only run where CUDA is; CI has none. On a GPU machine this script:

    notebooks   executes every notebooks/NN_*.ipynb top to bottom with nbclient (GPU cells included);
                records time, the first error (cell, exception) and how many cells used CUDA
    app pages   runs every app/pages/*.py with streamlit's AppTest; on the Kernel timing page it also
                submits "Run the benchmark" (the GPU run: every case checked, then timed); records
                time and every exception or error the page shows

and writes a JSON report (`--out`) and a table. Exit status 1 if anything failed.

    python benchmarks/gpu_branches.py --out build/gpu_branches.json
    python benchmarks/gpu_branches.py --only 08,09,memory     # a subset (names contain one of these)
    python benchmarks/gpu_branches.py --allow-cpu              # try the script itself where there is no GPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
PAGES = sorted((ROOT / "app" / "pages").glob("*.py"))
CELL_TIMEOUT = 600  # s


def run_notebook(path: Path) -> dict:
    """Execute one notebook in a fresh kernel; time, first error, and the cells that touched CUDA."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    rec = dict(kind="notebook", name=path.stem, status="ok", seconds=None, error=None,
               cuda_cells=sum("cuda" in c.source for c in nb.cells if c.cell_type == "code"))
    with tempfile.TemporaryDirectory() as tmp:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(tmp) / "kernel"))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=120,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as e:
            rec.update(status="error", error=str(e).strip().splitlines()[-1][:500])
        except Exception as e:  # a kernel that died, a timeout
            rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:500]}")
        rec["seconds"] = round(time.perf_counter() - t0, 1)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        errs = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errs and rec["status"] == "ok":
            rec.update(status="error", error=f"code cell {i}: {errs[0].ename}: {errs[0].evalue[:400]}")
    return rec


def _page_problems(at) -> list[str]:
    return [f"exception: {e.value[:400]}" for e in at.exception] + [f"error: {e.value[:400]}" for e in at.error]


def run_page(path: Path) -> dict:
    """Run one page with AppTest; on Kernel timing, also press "Run the benchmark" (the GPU branch)."""
    from streamlit.testing.v1 import AppTest

    rec = dict(kind="page", name=path.stem, status="ok", seconds=None, error=None, actions=["load"])
    t0 = time.perf_counter()
    try:
        at = AppTest.from_file(str(path), default_timeout=600)
        at.run()
        problems = _page_problems(at)
        buttons = [b for b in at.get("button") if getattr(b, "key", None) == "kt_go"]
        if not problems and buttons:
            buttons[0].click()
            at.run()
            rec["actions"].append("run the benchmark")
            problems = _page_problems(at)
        rec["charts"] = len(at.get("plotly_chart"))
        if problems:
            rec.update(status="error", error="; ".join(problems)[:1000])
    except Exception as e:
        rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:500]}",
                   trace=traceback.format_exc()[-1500:])
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/gpu_branches.json", help="the JSON report to write")
    ap.add_argument("--only", default="", help="comma-separated parts of notebook/page names to run")
    ap.add_argument("--allow-cpu", action="store_true", help="run without a GPU (checks the script, not the branches)")
    ap.add_argument("--no-notebooks", action="store_true")
    ap.add_argument("--no-pages", action="store_true")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        ap.exit(2, "gpu_branches: no CUDA GPU here: these are the GPU branches (use --allow-cpu to try the script)\n")
    wanted = [w for w in args.only.split(",") if w]

    def keep(p):
        return not wanted or any(w in p.stem for w in wanted)

    sys.path.insert(0, str(ROOT / "app"))  # the pages import _common, as under app/Home.py
    os.environ.setdefault("MAMBA_EDU_TESTING", "1")
    records = []
    # pages first, then the notebooks with the most GPU cells: a run cut short has done those
    notebooks = sorted((p for p in NOTEBOOKS if keep(p)), key=lambda p: -p.read_text().count("cuda"))
    todo = ([] if args.no_pages else [(run_page, p) for p in PAGES if keep(p)]) + \
           ([] if args.no_notebooks else [(run_notebook, p) for p in notebooks])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no GPU)"
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), device=device,
                  torch=torch.__version__, records=records)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for fn, path in todo:
        rec = fn(path)
        records.append(rec)
        print(f"{rec['kind']:8} {rec['name']:28} {rec['status']:6} {rec['seconds']:7.1f} s  {rec['error'] or ''}",
              flush=True)
        out.write_text(json.dumps(report, indent=1) + "\n")  # after each: a run cut short keeps what it did
    out.write_text(json.dumps(report, indent=1) + "\n")
    bad = [r["name"] for r in records if r["status"] != "ok"]
    print(f"{len(records) - len(bad)} ran, {len(bad)} failed on {device}" + (f": {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
