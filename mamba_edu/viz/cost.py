"""Figures for cost against sequence length: time and memory of attention against a recurrent state.

Builders
    cost_vs_length     measured points (solid, markers) and an extrapolation (dashed) against L,
                       log–log, with vertical marks at named context lengths (512, 2K, "a novel", …)
    bytes_at_lengths   grouped bars of bytes per method at a few context lengths (log scale)
    human_bytes        1536 → "1.5 KiB": the label every figure and printout uses

Every builder takes numbers computed (measured or by a library formula) elsewhere.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go

from ._style import COLORS, LEGEND_BELOW, style

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float) -> str:
    """A byte count with a binary unit: 0 → '0 B', 1536 → '1.5 KiB', 3·2**30 → '3.0 GiB'."""
    n = float(n)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {_UNITS[-1]}"  # pragma: no cover


def _bytes_ticks(values: Sequence[float], log: bool) -> tuple[list[float], list[str]]:
    """Tick positions and labels in binary units (KiB, MiB, …) for an axis showing `values` bytes."""
    vals = [v for v in values if v > 0]
    if not vals:
        return [], []
    lo, hi = min(vals), max(vals)
    if log:  # powers of 2, every 1, 2, 5 or 10 bits: at most 8 ticks, always on the unit boundaries
        for bits in (1, 2, 5, 10):
            ticks = [2.0**k for k in range(0, 10 * len(_UNITS), bits) if lo / 2 <= 2.0**k <= hi * 2]
            if len(ticks) <= 8:
                break
    else:
        unit = max([1024.0**k for k in range(len(_UNITS)) if 1024.0**k <= hi] or [1.0])
        step = next((m * unit for m in (1, 2, 5, 10, 20, 50, 100, 200, 500) if hi / (m * unit) <= 8), 1000 * unit)
        ticks = [i * step for i in range(int(hi // step) + 2)]
    return ticks, [human_bytes(t) for t in ticks]


def _floats(v) -> list[float]:
    return [float(x) for x in (v.tolist() if hasattr(v, "tolist") else v)]


def _xy(lengths, v):
    """A series is either values over the shared `lengths`, or its own (lengths, values) pair."""
    if isinstance(v, tuple) and len(v) == 2:
        return _floats(v[0]), _floats(v[1])
    return _floats(lengths), _floats(v)


def cost_vs_length(lengths: Sequence[float] | None, measured: Mapping[str, object], *,
                   extrapolated: Mapping[str, tuple] | None = None, marks: Mapping[str, float] | None = None,
                   y_title: str = "time (s)", x_title: str = "sequence length L (tokens)",
                   title: str | None = None, log: bool = True, bytes_axis: bool = False,
                   height: int = 420) -> go.Figure:
    """Cost (time, bytes, …) against L: one colour per method.

    measured      {name: values over `lengths`} or {name: (L values, values)}: solid lines with markers
    extrapolated  {name: (L values, values)}: dashed lines; a name of a measured series takes its
                  colour and is shown as "<name> (extrapolated)", any other name (e.g. a formula) as is
    marks         {label: L}: a dotted vertical line with its label at each L (context lengths)
    bytes_axis    the y ticks and the hover show values as bytes (KiB, MiB, …)
    """
    fig = go.Figure()
    names = list(measured) + [n for n in (extrapolated or {}) if n not in measured]
    color = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)}
    template = "%{x}<br>%{text}<extra>%{fullData.name}</extra>" if bytes_axis else None
    shown: list[float] = []

    def hover(ys):
        return [human_bytes(y) for y in ys] if bytes_axis else None

    for name, v in measured.items():
        x, y = _xy(lengths, v)
        shown += y
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) <= 40 else "lines",
                                 line=dict(color=color[name]), text=hover(y), hovertemplate=template))
    for name, v in (extrapolated or {}).items():
        x, y = _xy(None, v)
        shown += y
        label = f"{name} (extrapolated)" if name in measured else name
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines", line=dict(color=color[name], dash="dash"),
                                 text=hover(y), hovertemplate=template))
    for label, L in (marks or {}).items():
        fig.add_vline(x=float(L), line=dict(color="#9ca3af", dash="dot", width=1))
        # annotations on a log axis take log10 of the position (shapes take the value itself)
        fig.add_annotation(x=math.log10(float(L)) if log else float(L), y=0.02, yref="paper", text=label,
                           showarrow=False, textangle=-90, xanchor="right", yanchor="bottom",
                           font=dict(size=10, color="#4b5563"))
    style(fig, title, x=x_title, y=y_title, height=height)
    if len(fig.data) > 3:  # a long legend goes below the plot, clear of the title
        fig.update_layout(legend=LEGEND_BELOW,
                          margin=dict(b=110))
    if log:
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    if bytes_axis:
        ticks, text = _bytes_ticks(shown, log)
        fig.update_yaxes(tickvals=ticks, ticktext=text)
    return fig


def bytes_at_lengths(labels: Sequence[str], series: Mapping[str, Sequence[float]], *,
                     title: str | None = None, x_title: str = "context length",
                     y_title: str = "memory (log scale)", log: bool = True, height: int = 380) -> go.Figure:
    """Grouped bars: for each context length (a label such as '100K ≈ a novel'), one bar per
    method {name: bytes at each label}; the bar's text is the human-readable size."""
    fig = go.Figure()
    for name, values in series.items():
        ys = _floats(values)
        fig.add_trace(go.Bar(x=list(labels), y=ys, name=name, text=[human_bytes(y) for y in ys],
                             textposition="outside", hovertemplate="%{x}: %{text}<extra>%{fullData.name}</extra>"))
    style(fig, title, x=x_title, y=y_title, height=height)
    fig.update_layout(barmode="group")
    if log:
        fig.update_yaxes(type="log")
    ticks, text = _bytes_ticks([float(y) for values in series.values() for y in _floats(values)], log)
    fig.update_yaxes(tickvals=ticks, ticktext=text)
    return fig
