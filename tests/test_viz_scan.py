"""Figure builders of mamba_edu.viz.scan: the cells, edges and counts drawn are the library's scan steps."""

import math

import plotly.graph_objects as go
import pytest
import torch

from mamba_edu.scan import scan, scan_sequential
from mamba_edu.viz.scan import scan_animation, scan_steps, step_ranges, work_depth

F64 = torch.float64


def inputs(L, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(L, generator=g, dtype=F64) + 0.5, torch.randn(L, generator=g, dtype=F64)


@pytest.mark.parametrize("method,kw,L", [("sequential", {}, 5), ("hillis_steele", {}, 8), ("hillis_steele", {}, 13),
                                         ("blelloch", {}, 8), ("blelloch", {}, 11), ("chunked", {"chunk": 3}, 10)])
def test_step_ranges_hold_contiguous_prefixes_and_end_complete(method, kw, L):
    labels, starts = step_ranges(method, L, **kw)
    _, st = scan(*inputs(L), method=method, stats=True, record=True, **kw)
    assert labels == ["input"] + [s.label for s in st.steps]
    assert starts[0] == list(range(L)) and starts[-1] == [0] * L
    for before, after in zip(starts, starts[1:]):
        # a start only moves left, and to the start of the range it was combined with
        assert all(0 <= n <= o <= i for i, (o, n) in enumerate(zip(before, after)))
        for i, (o, n) in enumerate(zip(before, after)):
            if n != o:
                assert before[o - 1] == n, (i, o, n)


def test_step_ranges_of_hillis_steele_follow_the_doubling_rule():
    _, starts = step_ranges("hillis_steele", 8)
    for k, row in enumerate(starts[1:]):
        assert row == [max(0, i - 2 ** (k + 1) + 1) for i in range(8)]


def test_step_ranges_rejects_large_L():
    with pytest.raises(ValueError, match="'L'"):
        step_ranges("blelloch", 65)


def _cells(fig):
    """{(row y, position x): (text, colour)} for the cell traces of a figure."""
    out = {}
    for tr in fig.data:
        if tr.mode == "markers+text":
            for x, y, t in zip(tr.x, tr.y, tr.text):
                out[(y, x)] = (t, tr.marker.color)
    return out


def test_scan_steps_draws_every_recorded_pair_and_the_edges():
    L = 8
    a, b = inputs(L, 3)
    h, st = scan(a, b, method="blelloch", stats=True, record=True)
    fig = scan_steps(a, b, st, step_ranges("blelloch", L))
    assert isinstance(fig, go.Figure)
    cells = _cells(fig)
    assert len(cells) == L * (st.depth + 1)
    # row 0 is the input; the last row holds the scan: b equals the sequential states
    for i in range(L):
        assert cells[(0, i)][0] == f"{a[i].item():.2g}<br>{b[i].item():.2g}"
        assert cells[(-st.depth, i)][0].split("<br>")[1] == f"{scan_sequential(a, b)[i].item():.2g}"
    # every ⊕ is drawn once: the first up-sweep combines positions (0,1), (2,3), …
    edges = [tr for tr in fig.data if tr.mode == "lines"]
    assert len(edges) == st.depth
    n_edges = sum(sum(1 for x in tr.x if x is None) // 2 for tr in edges)
    assert n_edges == st.work == 11
    first = edges[0]
    assert list(first.x[:2]) == [0, 1] and list(first.y[:2]) == [0, -1]
    # the written cells are coloured, the others grey
    colours = {cells[(-1, i)][1] for i in (1, 3, 5, 7)} | {cells[(-1, i)][1] for i in (0, 2, 4, 6)}
    assert len(colours) == 2
    lay = fig.layout
    assert list(lay.yaxis.ticktext) == ["input"] + [s.label for s in st.steps]
    assert lay.xaxis.title.text.startswith("position i")
    assert "11 ⊕" in lay.title.text


def test_scan_steps_shows_b_only_for_longer_sequences_and_checks_its_inputs():
    a, b = inputs(24)
    _, st = scan(a, b, method="hillis_steele", stats=True, record=True)
    fig = scan_steps(a, b, st, step_ranges("hillis_steele", 24))
    assert all("<br>" not in t for t, _ in _cells(fig).values())
    with pytest.raises(ValueError, match="'stats'"):
        scan_steps(a, b, st, step_ranges("blelloch", 24))
    with pytest.raises(ValueError, match="'a'"):
        scan_steps(a[None], b, st, step_ranges("hillis_steele", 24))


def test_scan_animation_frames_count_work_and_depth():
    L = 8
    a, b = inputs(L, 4)
    _, st = scan(a, b, method="hillis_steele", stats=True, record=True)
    fig = scan_animation(a, b, st, step_ranges("hillis_steele", L))
    assert len(fig.frames) == st.depth + 1
    assert [f.name for f in fig.frames] == [str(k) for k in range(st.depth + 1)]
    assert len(fig.layout.sliders[0].steps) == st.depth + 1
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    # every frame has the same traces (plotly animates trace by trace)
    assert len({len(f.data) for f in fig.frames}) == 1
    # running counts: offsets 1, 2, 4 combine 7, 6, 4 positions
    per_step, total = [7, 6, 4], 0
    for k, count in enumerate(per_step, start=1):
        total += count
        assert f"⊕ this step {count}, so far {total} · depth {k}" in fig.frames[k].layout.title.text
    assert total == st.work
    last = fig.frames[-1]
    after = {x: t for tr in last.data if tr.mode == "markers+text" for x, y, t in zip(tr.x, tr.y, tr.text) if y == 0}
    want = scan_sequential(a, b)
    assert [after[i].split("<br>")[1] for i in range(L)] == [f"{v:.2g}" for v in want.tolist()]


def test_work_depth_panels():
    lengths = [2, 4, 8]
    work = {"sequential": [1, 3, 7], "blelloch": [1, 4, 11]}
    depth = {"sequential": [1, 3, 7], "blelloch": [1, 3, 5]}
    fig = work_depth(lengths, work, depth)
    d = fig.to_dict()
    assert [t["name"] for t in d["data"]] == ["sequential", "sequential", "blelloch", "blelloch"]
    assert list(d["data"][2]["y"]) == [1, 4, 11] and list(d["data"][3]["y"]) == [1, 3, 5]
    assert d["data"][2]["xaxis"] == "x" and d["data"][3]["xaxis"] == "x2"
    lay = d["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["yaxis2"]["type"] == "log"
    assert lay["yaxis"]["title"]["text"] == "work (⊕ operations)" and lay["yaxis2"]["title"]["text"] == "depth (steps)"
    assert lay["xaxis"]["title"]["text"] == "sequence length L"
    assert math.isclose(d["data"][0]["y"][2], 7)
