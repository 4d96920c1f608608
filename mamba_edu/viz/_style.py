"""The project's look: one template, one qualitative palette, one sequential and one diverging scale,
and one layout that stays readable from a phone (a chart ~350 px wide) to a laptop.

Layout rules (every builder goes through `style`):
- the title sits at the top left and wraps at TITLE_CHARS characters (plotly never wraps a title);
- the legend sits at the bottom of the figure, under the x axis title, in rows that wrap with the
  width (plotly grows the bottom margin to fit them): it never meets the title or a curve's label;
- plotly's toolbar is not shown by the app (its buttons would cover the title on a phone).
"""

from __future__ import annotations

import re

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


def style(fig: go.Figure, title: str | None = None, x: str | None = None, y: str | None = None,
          height: int = 380) -> go.Figure:
    """Apply the common layout: title (wrapped), axis labels (wrapped), white template, compact margins,
    the legend under the plot."""
    title = wrap(title, TITLE_CHARS)
    fig.update_layout(template="plotly_white", height=height, colorway=COLORS,
                      title=dict(text=title, x=0, xref="container", xanchor="left", y=1, yref="container",
                                 yanchor="top", pad=dict(l=12, t=10), font=dict(size=TITLE_SIZE)),
                      margin=dict(l=60, r=20, t=20 + LINE_PX * lines(title), b=50),
                      legend=LEGEND_BELOW)
    if x is not None:
        fig.update_xaxes(title_text=wrap(x, AXIS_CHARS))
    if y is not None:
        fig.update_yaxes(title_text=wrap(y, AXIS_CHARS))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig
