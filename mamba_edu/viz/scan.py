"""Figures for parallel scans (chapter 07): the steps of a scan, as a diagram and as an animation,
and work and depth against L.

Builders
    step_ranges    which inputs every position holds after every step of a method (read from the
                   library's own recording; used by the two step pictures)
    scan_steps     the textbook picture: one row per parallel step, one cell per position with its
                   (a, b) pair, and the ⊕ edges that produced it
    scan_animation the same steps one at a time (plotly frames, a slider and a play button):
                   the row before the step, the row after it, and the ⊕ performed
    work_depth     work (⊕ performed) and depth (parallel steps) against L, one line per method

Timings against L use `mamba_edu.viz.lti.timings_vs_L` (the same picture as chapter 04).

Glossary
    x_i        the input pair (a_i, b_i) at position i
    range      position i holds x_j ⊕ … ⊕ x_i after a step (j = its "start"); every method here keeps
               ranges that end at their own position, so a step that moves a start from j to j'
               combined with the element at position j − 1 (which held x_j' ⊕ … ⊕ x_{j−1})
    work       the number of ⊕ a method performs; depth, the number of parallel steps
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..scan import ScanStats, scan
from ._style import COLORS, LEGEND_BELOW, style

_GREY = "#d1d5db"
_CHANGED = COLORS[0]
_EDGE = COLORS[1]
MAX_PICTURE_L = 64  # beyond this the cells are too small to read


def step_ranges(method: str, L: int, **kw) -> tuple[list[str], list[list[int]]]:
    """(labels, starts): starts[k][i] = j when position i holds x_j ⊕ … ⊕ x_i after step k
    (k = 0 is the input, where j = i). Extra keywords (chunk) go to the scan.

    Read from the library's recording of the scan run on a_i = 2, b_i = 0: the a-part of
    x_j ⊕ … ⊕ x_i is then 2^(i − j + 1), so log2 of the recorded a gives each range's length.
    """
    if not isinstance(L, int) or isinstance(L, bool) or not 1 <= L <= MAX_PICTURE_L:
        raise ValueError(f"step_ranges: argument 'L' must be an integer in [1, {MAX_PICTURE_L}]; got {L!r}.")
    two = torch.full((L,), 2.0, dtype=torch.float64)  # (L,)
    _, st = scan(two, torch.zeros_like(two), method=method, stats=True, record=True, **kw)
    pos = torch.arange(L)
    starts = [pos.tolist()]
    for step in st.steps:
        length = step.a.log2().round().long()  # (L,)
        starts.append((pos - length + 1).tolist())
    return ["input"] + [s.label for s in st.steps], starts


def _edges(before: Sequence[int], after: Sequence[int]) -> list[tuple[int, int]]:
    """(source, destination) of every ⊕ of one step: destination i combined with position start − 1."""
    return [(old - 1, i) for i, (old, new) in enumerate(zip(before, after)) if new != old]


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 1e4 else f"{v:.1e}"


def _x_title(show_pairs: bool) -> str:
    return "position i (time step)" + (" · each cell: a above b" if show_pairs else " · each cell: b")


def _cells(a, b, starts, y: float, changed: set[int], show_pairs: bool, name: str, showlegend: bool):
    """Two traces for one row of cells: the positions left alone (grey) and those just written."""
    traces = []
    for group, color, label in ((False, _GREY, "unchanged"), (True, _CHANGED, "just combined")):
        idx = [i for i in range(len(a)) if (i in changed) == group]
        text = [f"{_fmt(a[i])}<br>{_fmt(b[i])}" if show_pairs else _fmt(b[i]) for i in idx]
        hover = [f"position {i}: holds x{starts[i]} ⊕ … ⊕ x{i}<br>(a, b) = ({a[i]:.4g}, {b[i]:.4g})" for i in idx]
        traces.append(go.Scatter(
            x=idx, y=[y] * len(idx), mode="markers+text", name=f"{label}", legendgroup=label,
            showlegend=showlegend, text=text, hovertext=hover, hoverinfo="text",
            textfont=dict(size=10 if show_pairs else 11, color="#111827"),
            marker=dict(symbol="square", size=34 if show_pairs else 26, color=color,
                        line=dict(color="#6b7280", width=1), opacity=0.85 if group else 1.0)))
    return traces


def _edge_trace(edges, y_from: float, y_to: float, showlegend: bool):
    """All ⊕ of one step as one line trace: source → destination and destination → itself."""
    xs, ys = [], []
    for src, dst in edges:
        xs += [src, dst, None, dst, dst, None]
        ys += [y_from, y_to, None, y_from, y_to, None]
    return go.Scatter(x=xs, y=ys, mode="lines", name="⊕ inputs", legendgroup="edges", showlegend=showlegend,
                      line=dict(color=_EDGE, width=1.5), hoverinfo="skip", opacity=0.7)


def _pairs(stats: ScanStats, a, b) -> list[tuple[list[float], list[float]]]:
    """(a, b) values of every row: the input, then the working arrays after each recorded step."""
    def row(x):
        return [float(v) for v in x.detach().to(torch.float64).reshape(-1).tolist()]

    return [(row(a), row(b))] + [(row(s.a), row(s.b)) for s in stats.steps]


def _check_inputs(func: str, a, b, stats, labels, starts):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.dim() != 1:
            raise ValueError(f"{func}: argument '{name}' must be a 1-D tensor (one sequence); got "
                             f"{type(x).__name__ if not isinstance(x, torch.Tensor) else tuple(x.shape)}.")
    if not isinstance(stats, ScanStats) or len(stats.steps) + 1 != len(starts) or len(labels) != len(starts):
        raise ValueError(f"{func}: argument 'stats' must be the recording (record=True) of the same method as "
                         f"'ranges'; got {len(getattr(stats, 'steps', []))} steps for {len(starts) - 1}.")


def scan_steps(a: torch.Tensor, b: torch.Tensor, stats: ScanStats, ranges: tuple[list[str], list[list[int]]], *,
               title: str | None = None, show_pairs: bool | None = None) -> go.Figure:
    """One row per step (the input on top), one cell per position showing its (a, b) pair (a above b)
    or b alone, the cells written at that step in colour, and lines from the two ⊕ inputs.

    a, b: (L,) one input sequence; stats: from the library's scan with stats=True, record=True;
    ranges: `step_ranges` of the same method and L.
    """
    labels, starts = ranges
    _check_inputs("scan_steps", a, b, stats, labels, starts)
    L = a.shape[0]
    show_pairs = L <= 16 if show_pairs is None else show_pairs
    rows = _pairs(stats, a, b)
    fig = go.Figure()
    for k, (av, bv) in enumerate(rows):
        edges = _edges(starts[k - 1], starts[k]) if k else []
        if edges:
            fig.add_trace(_edge_trace(edges, -(k - 1), -k, showlegend=k == 1))
        last = k == len(rows) - 1  # the last row always has both kinds of cell: it carries the legend
        for tr in _cells(av, bv, starts[k], -k, {d for _, d in edges}, show_pairs, labels[k], showlegend=last):
            fig.add_trace(tr)
    fig.update_yaxes(tickvals=[-k for k in range(len(rows))], ticktext=labels, zeroline=False, showgrid=False,
                     range=[-len(rows) + 0.4, 0.6])
    fig.update_xaxes(tickvals=list(range(L)) if L <= 32 else None, range=[-0.7, L - 0.3], zeroline=False)
    title = title or f"{len(rows) - 1} parallel steps, {stats.work} ⊕ in all"
    style(fig, title, x=_x_title(show_pairs), y=None, height=110 + 58 * len(rows))
    fig.update_layout(margin=dict(l=170))
    return fig


def scan_animation(a: torch.Tensor, b: torch.Tensor, stats: ScanStats, ranges: tuple[list[str], list[list[int]]], *,
                   title: str = "Step by step") -> go.Figure:
    """The steps one at a time: the row before the step (top), the row after it (bottom) and the ⊕
    performed, with the running count of ⊕ and of steps in each frame's title. A slider picks a
    step; the play button runs them in order. Arguments as for `scan_steps`.
    """
    labels, starts = ranges
    _check_inputs("scan_animation", a, b, stats, labels, starts)
    L = a.shape[0]
    show_pairs = L <= 16
    rows = _pairs(stats, a, b)
    n = len(rows) - 1
    frames, total = [], 0

    def frame_data(k):
        edges = _edges(starts[k - 1], starts[k]) if k else []
        before = _cells(*rows[max(k - 1, 0)], starts[max(k - 1, 0)], 1, set(), show_pairs, "", False)
        after = _cells(*rows[k], starts[k], 0, {d for _, d in edges}, show_pairs, "", True)
        return [_edge_trace(edges, 1, 0, True)] + before + after, len(edges)

    for k in range(n + 1):
        data, count = frame_data(k)
        total += count
        head = "the input" if k == 0 else f"step {k} of {n}: {labels[k]}"
        text = f"{title}: {head} · ⊕ this step {count}, so far {total} · depth {k}"
        frames.append(go.Frame(data=data, name=str(k), layout=go.Layout(title_text=text)))
    fig = go.Figure(data=frames[0].data, frames=frames)
    fig.update_yaxes(tickvals=[1, 0], ticktext=["before", "after"], range=[-0.6, 1.6], zeroline=False,
                     showgrid=False)
    fig.update_xaxes(tickvals=list(range(L)) if L <= 32 else None, range=[-0.7, L - 0.3], zeroline=False)
    style(fig, frames[0].layout.title.text, x=_x_title(show_pairs), height=360)
    fig.update_layout(
        margin=dict(l=70, b=120),
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.32, xanchor="left", yanchor="top",
                          buttons=[dict(label="▶ play", method="animate",
                                        args=[None, dict(frame=dict(duration=900, redraw=True), fromcurrent=True,
                                                         transition=dict(duration=0))]),
                                   dict(label="❚❚ pause", method="animate",
                                        args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])],
        sliders=[dict(active=0, x=0.15, len=0.85, y=-0.25, yanchor="top", currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(k), method="animate",
                                  args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                             for k in range(n + 1)])])
    return fig


def work_depth(lengths: Sequence[int], work: Mapping[str, Sequence[float]], depth: Mapping[str, Sequence[float]], *,
               title: str | None = None) -> go.Figure:
    """Two panels against L (log–log): the work (⊕ performed) and the depth (parallel steps) of each
    method, {method: values over `lengths`} for both."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("work: ⊕ performed", "depth: parallel steps"),
                        horizontal_spacing=0.1)
    x = [int(v) for v in lengths]
    for i, name in enumerate(work):
        color = COLORS[i % len(COLORS)]
        for col, series in ((1, work), (2, depth)):
            fig.add_trace(go.Scatter(x=x, y=[float(v) for v in series[name]], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=col == 1, line=dict(color=color)), row=1, col=col)
    fig.update_xaxes(type="log", title_text="sequence length L")
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="work (⊕ operations)", row=1, col=1)
    fig.update_yaxes(title_text="depth (steps)", row=1, col=2)
    style(fig, title, height=420)
    fig.update_layout(legend=LEGEND_BELOW, margin=dict(t=fig.layout.margin.t + 30))  # room for the panel titles
    return fig
