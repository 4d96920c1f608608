"""The project's look: one template, one qualitative palette, one sequential and one diverging scale,
and one layout that stays readable from a phone (a chart ~350 px wide) to a laptop.

Layout rules (every builder goes through `style`):
- the title sits at the top left and wraps at TITLE_CHARS characters (plotly never wraps a title);
- the legend sits at the bottom of the figure, under the x axis title, in rows that wrap with the
  width (plotly grows the bottom margin to fit them): it never meets the title or a curve's label;
- plotly's toolbar is not shown by the app (its buttons would cover the title on a phone).
"""

from __future__ import annotations

import math
import re

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"]
SEQUENTIAL = "Viridis"  # magnitudes (|h|, time, error)
DIVERGING = "RdBu_r"  # signed values centred on 0 (states, kernels)

TITLE_CHARS = 44  # a 15 px title of this many characters fits a phone's chart (~350 px)
AXIS_CHARS = 42  # axis titles wrap too (the y title runs along a ~250 px high plot)
TITLE_SIZE = 15
LINE_PX = 20  # height of one title line
# The legend: horizontal rows at the bottom of the figure (container coordinates), left-aligned.
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left",
                    font=dict(size=12))


def diverging_colors(values, zmax: float) -> list[str]:
    """The colours of `values` on the DIVERGING scale over [-zmax, zmax], as 'rgb(r, g, b)' strings.

    For bars whose colour is animated: plotly cannot animate numbers on a colour scale (it warns once
    per bar and frame, "Invalid color specifier", and draws them black)."""
    scale = pc.get_colorscale(DIVERGING)
    pos = np.array([p for p, _ in scale], dtype=float)
    rgb = np.array([pc.hex_to_rgb(c) if c.startswith("#") else pc.unlabel_rgb(c) for _, c in scale], dtype=float)
    v = np.clip(0.5 + 0.5 * np.asarray(values, dtype=float) / (zmax or 1.0), 0.0, 1.0)  # (m,)
    out = np.stack([np.interp(v, pos, rgb[:, i]) for i in range(3)], axis=-1).round().astype(int)  # (m, 3)
    return [f"rgb({r}, {g}, {b})" for r, g, b in out]


def wrap(text: str | None, width: int) -> str | None:
    """`text` with <br> between words so that no line is longer than `width` characters (existing <br>
    kept; a single longer word stays on its own line). Plotly draws <br> as a line break."""
    if not text:
        return text
    out = []
    for part in re.split(r"<br\s*/?>", text):
        line = ""
        for word in part.split(" "):
            if line and len(_visible(line)) + 1 + len(_visible(word)) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "<br>".join(out)


def _visible(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)  # the characters drawn (no <sub>, <b> tags)


def lines(text: str | None) -> int:
    return 0 if not text else text.count("<br>") + 1


def _title_pad(fig: go.Figure) -> int:
    """Room between the title and the plot: more where panel titles (annotations at the top) sit there,
    one line (16 px) for each line of the tallest of them."""
    top = [a for a in fig.layout.annotations if getattr(a, "yref", None) == "paper" and (a.y or 0) >= 0.99]
    return 14 + 16 * max(lines(a.text) for a in top) if top else 8


def _span_decades(fig: go.Figure, axis: str) -> float:
    """How many decades the data drawn on `axis` ("xaxis", "yaxis2", …) span (0 if unknown)."""
    letter, ref = axis[0], axis[0] + axis[5:]  # "yaxis2" → "y", "y2"
    values = []
    for tr in fig.data:
        if (getattr(tr, letter + "axis", None) or letter) != ref:
            continue
        for v in getattr(tr, letter, None) if getattr(tr, letter, None) is not None else ():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v):
                values.append(v)
    return math.log10(max(values) / min(values)) if values else 0.0


def decade_ticks(fig: go.Figure) -> go.Figure:
    """Label only the powers of ten on every log axis whose data span more than a decade (plotly
    also labels 2 and 5 of each decade, which overlap on a small chart)."""
    for name in [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        ax = fig.layout[name]
        if ax.type == "log" and ax.tickvals is None and ax.dtick is None and _span_decades(fig, name) > 1:
            ax.update(dtick=1)
    return fig


def style(fig: go.Figure, title: str | None = None, x: str | None = None, y: str | None = None,
          height: int = 380) -> go.Figure:
    """Apply the common layout: title (wrapped), axis labels (wrapped), white template, compact margins,
    the legend under the plot."""
    title = wrap(title, TITLE_CHARS)
    fig.update_layout(template="plotly_white", height=height, colorway=COLORS,
                      title=dict(text=title, x=0, xref="container", xanchor="left", y=1, yref="paper",
                                 yanchor="bottom", pad=dict(l=12, b=_title_pad(fig)), font=dict(size=TITLE_SIZE),
                                 automargin=True),  # above the plot (and the panel titles); the margin grows to fit
                      margin=dict(l=60, r=20, t=20 if title else 16, b=50),
                      legend=LEGEND_BELOW)
    if x is not None:
        fig.update_xaxes(title_text=wrap(x, AXIS_CHARS))
    if y is not None:
        fig.update_yaxes(title_text=wrap(y, AXIS_CHARS))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return decade_ticks(fig)
