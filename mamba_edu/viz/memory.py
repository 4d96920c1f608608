"""Figures for the memory hierarchy (chapter 08): sizes and bandwidths per level, bytes moved per
implementation, and the roofline.

Builders
    hierarchy_bars  two panels, log scale: the size of every level (registers … HBM) and its bandwidth,
                    one bar colour per device (this machine, H100, A100, …)
    io_bars         bytes each implementation moves through HBM for one shape, against the floor
    roofline_plot   attainable ops/s against arithmetic intensity (log–log): one roof per device, the
                    implementations' modelled points on it and measured runs beneath it

Every builder takes numbers from `mamba_edu.machine` (levels) and `mamba_edu.iomodel` (IO models, measured points); the
roof's two segments come from `iomodel.attainable`.

Glossary
    level       a MemoryLevel: its total size (one SM's share × SMs for per-SM levels) and bandwidth
    intensity   ops per byte moved through HBM (here ops are exponentials, one per state element)
    roof        min(peak ops/s, intensity × bandwidth): the best a kernel of that intensity can do
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import iomodel, machine
from ._style import COLORS, LEGEND_BELOW, style
from .cost import _bytes_ticks, human_bytes

# levels from small and fast to large and slow, GPU and CPU names side by side
LEVEL_ORDER = ["registers", "L1 cache", "shared memory", "L2 cache", "L3 cache", "HBM", "DRAM"]


def human_rate(v: float, unit: str = "B/s") -> str:
    """3.35e12 → '3.35 TB/s' (decimal prefixes, as bandwidths and op rates are quoted)."""
    v = float(v)
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def _level_order(names):
    known = [n for n in LEVEL_ORDER if n in names]
    return known + [n for n in names if n not in known]


def _size_text(level: machine.MemoryLevel) -> str:
    if level.units > 1 and level.bytes_per_unit is not None:
        return f"{human_bytes(level.bytes_per_unit)} × {level.units} SMs = {human_bytes(level.total_bytes)}"
    return human_bytes(level.total_bytes)


def hierarchy_bars(hierarchies: Mapping[str, Sequence[machine.MemoryLevel]], *, title: str | None = None,
                   height: int = 640) -> go.Figure:
    """Sizes (top) and bandwidths (bottom) of every level, log scale, one colour per device
    {device label: levels}. A level without a known size or bandwidth has no bar in that panel; the
    hover says where each number comes from (queried, datasheet, derived or measured)."""
    # one panel above the other: side by side, a phone's panels are too narrow for their axis titles
    fig = make_subplots(rows=2, cols=1, subplot_titles=("size (whole device)", "bandwidth (whole device)"),
                        vertical_spacing=0.2)
    names = _level_order(list(dict.fromkeys(lv.name for levels in hierarchies.values() for lv in levels)))
    sizes = []
    for i, (label, levels) in enumerate(hierarchies.items()):
        color = COLORS[i % len(COLORS)]
        by_name = {lv.name: lv for lv in levels}
        have = [n for n in names if n in by_name and by_name[n].total_bytes]
        sizes += [by_name[n].total_bytes for n in have]
        fig.add_trace(go.Bar(x=have, y=[by_name[n].total_bytes for n in have], name=label, legendgroup=label,
                             marker_color=color,
                             hovertext=[f"{label} · {n}: {_size_text(by_name[n])}<br>{by_name[n].size_source}"
                                        for n in have], hoverinfo="text"), row=1, col=1)
        fast = [n for n in names if n in by_name and by_name[n].bandwidth]
        fig.add_trace(go.Bar(x=fast, y=[by_name[n].bandwidth for n in fast], name=label, legendgroup=label,
                             showlegend=False, marker_color=color,
                             hovertext=[f"{label} · {n}: {human_rate(by_name[n].bandwidth)}<br>"
                                        f"{by_name[n].bandwidth_source}" for n in fast], hoverinfo="text"),
                      row=2, col=1)
    for row in (1, 2):
        fig.update_xaxes(categoryorder="array", categoryarray=names, row=row, col=1)
    fig.update_xaxes(title_text="memory level", row=2, col=1)
    ticks, text = _bytes_ticks(sizes, log=True)
    fig.update_yaxes(type="log", title_text="size (log scale)", tickvals=ticks, ticktext=text, row=1, col=1)
    fig.update_yaxes(type="log", title_text="bandwidth (bytes/s, log)", row=2, col=1)
    style(fig, title, height=height)
    fig.update_layout(barmode="group", legend=LEGEND_BELOW)
    return fig


def io_bars(bytes_by_impl: Mapping[str, float], *, floor: float | None = None,
            times: Mapping[str, float] | None = None, time_label: str = "", title: str | None = None,
            height: int = 360) -> go.Figure:
    """Horizontal bars, log scale: bytes each implementation moves {impl: bytes}; the text gives the
    size and its ratio to `floor` (the unavoidable traffic, a dotted line), and `times` {impl: seconds}
    (e.g. bytes / bandwidth) if given, described by `time_label`."""
    impls = list(bytes_by_impl)
    values = [float(bytes_by_impl[k]) for k in impls]
    text = []
    for k, v in zip(impls, values):
        t = human_bytes(v)
        if floor:
            t += f" ({v / floor:.3g}× the floor)"
        if times and k in times:
            t += f", ≥ {times[k] * 1e3:.3g} ms {time_label}".rstrip()
        text.append(t)
    fig = go.Figure(go.Bar(y=impls, x=values, orientation="h", text=text, textposition="auto",
                           marker_color=[COLORS[i % len(COLORS)] for i in range(len(impls))],
                           hovertemplate="%{y}: %{text}<extra></extra>", name="bytes moved"))
    if floor:
        fig.add_vline(x=float(floor), line=dict(color="#4b5563", dash="dot", width=1.5))
        fig.add_annotation(x=math.log10(float(floor)), y=1.0, yref="paper", text="floor: read inputs, write out",
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=10, color="#4b5563"))
    style(fig, title, x="bytes moved through HBM (log scale)", y="implementation", height=height)
    ticks, labels = _bytes_ticks(values + ([float(floor)] if floor else []), log=True)
    keep = slice(None, None, -(-len(ticks) // 4))  # at most 4 labels: they fit a phone's ~220 px axis
    fig.update_xaxes(type="log", tickvals=ticks[keep], ticktext=[t.replace(".0 ", " ") for t in labels[keep]])
    fig.update_yaxes(categoryorder="array", categoryarray=impls[::-1])  # (the y axis grows to fit the names)
    fig.update_layout(showlegend=False)
    return fig


def roofline_plot(roofs: Mapping[str, tuple[float, float]], *,
                  model: Mapping[str, float] | None = None,
                  measured: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[str]]] | None = None,
                  ops: str = "exp", title: str | None = None, height: int = 480) -> go.Figure:
    """The roofline, log–log.

    roofs     {device label: (peak ops/s, bandwidth bytes/s)}: one roof each, min(peak, I × bandwidth)
    model     {implementation: intensity}: open markers ON the first roof (the best each can reach)
    measured  {series: (intensities, achieved ops/s, hover texts)}: filled markers (measured runs)
    """
    model, measured = dict(model or {}), dict(measured or {})
    xs = [i for i in model.values()] + [x for xs_, _, _ in measured.values() for x in xs_]
    xs += [iomodel.ridge_intensity(p, bw) for p, bw in roofs.values()]
    lo, hi = min(xs) / 4, max(xs) * 4
    fig = go.Figure()
    for i, (label, (peak, bw)) in enumerate(roofs.items()):
        ridge = iomodel.ridge_intensity(peak, bw)
        x = [lo] + ([ridge] if lo < ridge < hi else []) + [hi]
        y = [iomodel.attainable(v, peak, bw) for v in x]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"roof: {label}", line=dict(color=COLORS[i % len(COLORS)],
                                 width=2), hovertemplate=f"{label}<br>peak {human_rate(peak, ops + '/s')}, "
                                 f"bandwidth {human_rate(bw)}<br>ridge at {ridge:.3g} {ops}/B<extra></extra>"))
    if model and roofs:
        peak, bw = next(iter(roofs.values()))
        names = list(model)
        fig.add_trace(go.Scatter(
            x=[model[k] for k in names], y=[iomodel.attainable(model[k], peak, bw) for k in names],
            mode="markers+text", text=names, textposition="top center", name="IO model: the best possible",
            marker=dict(symbol="circle-open", size=12, line=dict(width=2), color="#111827"),
            hovertemplate="%{text}: %{x:.3g} " + ops + "/B, at most %{y:.3g} " + ops + "/s<extra></extra>"))
    for j, (series, (ix, ach, texts)) in enumerate(measured.items()):
        fig.add_trace(go.Scatter(x=list(ix), y=list(ach), mode="markers", name=series, text=list(texts),
                                 marker=dict(size=9, symbol="diamond", color=COLORS[(len(roofs) + j) % len(COLORS)]),
                                 hovertemplate="%{text}<br>%{x:.3g} " + ops + "/B, %{y:.3g} " + ops + "/s<extra>"
                                 + series + "</extra>"))
    style(fig, title, x=f"arithmetic intensity ({ops} per byte of HBM traffic, log)",
          y=f"attainable {ops}/s (log)", height=height)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    fig.update_layout(legend=LEGEND_BELOW,
                      margin=dict(b=120))
    return fig
