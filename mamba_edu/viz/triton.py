"""Figures for chapter 09 (Triton): which program of a launch grid owns which element.

Glossary
    program   one instance of a Triton kernel, numbered by tl.program_id along each grid axis
    lane      one position of a program's block, tl.arange(0, BLOCK)
    masked    a lane whose offset lies past the end of the data: its loads and stores are switched off

Builders
    program_map   a 2-D table of program ids (−1: no program owns the cell, e.g. a masked lane) as
                  coloured cells, each labelled (e.g. with the element index it handles)

The table is what a kernel wrote (the notebook runs a kernel that stores its own program id), so
the picture shows what Triton actually did, not a drawing of what it should do.
"""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
import torch

from .._checks import fail
from ._style import COLORS, style

MASKED = "#e5e7eb"  # a cell that no program owns


def _rows(table) -> list[list[int]]:
    if isinstance(table, torch.Tensor):
        table = table.detach().cpu().tolist()
    return [[int(v) for v in row] for row in table]


def _discrete_scale(n: int) -> list:
    """A colour scale on [0, n] with a flat band of one colour per integer: value p + 0.5 gets COLORS[p]."""
    scale = []
    for i in range(n):
        c = COLORS[i % len(COLORS)]
        scale += [[i / n, c], [(i + 1) / n, c]]
    return scale


def program_map(owner, *, text=None, x_title: str = "lane", y_title: str = "program",
                x_labels: Sequence | None = None, y_labels: Sequence | None = None, title: str | None = None,
                masked_text: str = "masked", height: int = 320) -> go.Figure:
    """Cells coloured by the program that owns them (one colour per program id, cycling through the
    palette), grey where owner is −1; `text` (same shape) labels each owned cell.

    owner: 2-D ints (rows × columns), e.g. programs × lanes or batch × channels.
    """
    rows = _rows(owner)
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        fail("program_map", "owner", "a non-empty 2-D table of program ids (rows of equal length)",
             f"{len(rows)} rows of lengths {sorted({len(r) for r in rows})}")
    labels = _rows(text) if text is not None else rows
    xs = list(x_labels) if x_labels is not None else list(range(len(rows[0])))
    ys = list(y_labels) if y_labels is not None else list(range(len(rows)))
    n = len(COLORS)
    z = [[(p % n) + 0.5 if p >= 0 else None for p in row] for row in rows]
    z_masked = [[1.0 if p < 0 else None for p in row] for row in rows]
    txt = [[str(lab) if p >= 0 else masked_text for p, lab in zip(row, lrow)] for row, lrow in zip(rows, labels)]
    hover = [[f"{y_title} {y}, {x_title} {x}: " + (f"program {p}" if p >= 0 else "no program (masked)")
              for x, p in zip(xs, row)] for y, row in zip(ys, rows)]
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=z_masked, x=xs, y=ys, colorscale=[[0, MASKED], [1, MASKED]], showscale=False,
                             name="masked", text=txt, texttemplate="%{text}", hovertext=hover,
                             hovertemplate="%{hovertext}<extra></extra>", xgap=2, ygap=2))
    fig.add_trace(go.Heatmap(z=z, x=xs, y=ys, colorscale=_discrete_scale(n), zmin=0, zmax=n, showscale=False,
                             name="programs", text=txt, texttemplate="%{text}", hovertext=hover,
                             hovertemplate="%{hovertext}<extra></extra>", xgap=2, ygap=2,
                             customdata=rows))
    style(fig, title, x=x_title, y=y_title, height=height)
    fig.update_xaxes(type="category", showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    fig.update_layout(showlegend=False)
    return fig
