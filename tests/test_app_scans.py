"""The Scans page through Streamlit's AppTest: defaults, every control at its extremes, decoded figures."""

import json
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mamba_edu.scan import scan_sequential
from app_rerun import rerun_from_cache

APP = Path(__file__).resolve().parents[1] / "app"
PAGE = str(APP / "pages" / "scans.py")
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))  # the pages import _common, as they do under app/Home.py


def run(**controls):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    for key, value in controls.items():
        widget = at.selectbox(key) if key == "method" else at.radio(key) if key == "inputs" else \
            at.number_input(key) if key == "seed" else at.slider(key)
        widget.set_value(value)
        at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def figures(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def metrics(at):
    return {m.label: m.value for m in at.metric}


def cells(spec, row):
    """{position: text} of the cells drawn in row `row` (0 = input, −k = after step k)."""
    out = {}
    for tr in spec["data"]:
        if tr.get("mode") == "markers+text":
            for x, y, t in zip(tr["x"], tr["y"], tr["text"]):
                if y == row:
                    out[x] = t
    return out


def test_defaults_blelloch_L8():
    at = run()
    assert at.title[0].value == "Parallel scans"
    m = metrics(at)
    assert m["Work (⊕ performed)"] == "11" and m["Depth (parallel steps)"] == "5"
    assert m["Equals the sequential scan"] == "yes"
    steps, anim = figures(at)
    assert steps["layout"]["yaxis"]["ticktext"][0] == "input" and len(steps["layout"]["yaxis"]["ticktext"]) == 6
    # the last row's b is the sequential scan of the page's inputs (seed 0)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(8, generator=g, dtype=torch.float64) * 0.5 + 0.5
    b = torch.randn(8, generator=g, dtype=torch.float64)
    want = scan_sequential(a, b)
    last = cells(steps, -5)
    assert [last[i].split("<br>")[1] for i in range(8)] == [f"{v:.2g}" for v in want.tolist()]
    assert len(anim["frames"]) == 6
    table = at.dataframe[0].value
    assert list(table["method"]) == ["sequential (the loop)", "Hillis–Steele", "Blelloch", "chunked (GPU-style)"]
    assert list(table["work (⊕)"]) == [7, 17, 11, 12]  # chunked, C = 4: 2 chunks of 4 ⊕, then 4 fix-ups
    assert list(table["depth (steps)"]) == [7, 3, 5, 4]


def test_rerun_at_defaults_uses_the_cache(monkeypatch):
    at = rerun_from_cache(run(), monkeypatch, ["mamba_edu.scan.scan", "mamba_edu.scan.scan_sequential",
                                               "mamba_edu.viz.scan.scan_steps", "mamba_edu.viz.scan.scan_animation"])
    assert len(figures(at)) >= 2


@pytest.mark.parametrize("method,L,work,depth", [("hillis_steele", 32, 32 * 5 - 31, 5), ("sequential", 1, 0, 0),
                                                 ("blelloch", 32, 2 * 32 - 2 - 5, 9)])
def test_methods_at_length_extremes(method, L, work, depth):
    at = run(method=method, L=L)
    m = metrics(at)
    assert (m["Work (⊕ performed)"], m["Depth (parallel steps)"]) == (str(work), str(depth))
    assert m["Equals the sequential scan"] == "yes"
    steps, _ = figures(at)
    assert len(steps["layout"]["yaxis"]["ticktext"]) == depth + 1
    # long sequences show b only
    assert all("<br>" not in t for t in cells(steps, 0).values()) == (L > 16)


def test_chunked_with_all_ones_counts_the_inputs():
    at = run(method="chunked", inputs="ones", chunk=16, L=32)
    steps, _ = figures(at)
    depth = int(metrics(at)["Depth (parallel steps)"])
    last = cells(steps, -depth)
    assert [last[i] for i in range(32)] == [f"{i + 1:.2g}" for i in range(32)]  # b = 1, 2, …, 32
    at = run(method="chunked", chunk=1, L=5, seed=10_000)
    assert metrics(at)["Equals the sequential scan"] == "yes"
