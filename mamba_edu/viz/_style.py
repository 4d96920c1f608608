"""The project's look: one template, one qualitative palette, one sequential and one diverging scale."""

from __future__ import annotations

import plotly.graph_objects as go

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"]
SEQUENTIAL = "Viridis"  # magnitudes (|h|, time, error)
DIVERGING = "RdBu_r"  # signed values centred on 0 (states, kernels)


def style(fig: go.Figure, title: str | None = None, x: str | None = None, y: str | None = None,
          height: int = 380) -> go.Figure:
    """Apply the common layout: title, axis labels, white template, compact margins."""
    fig.update_layout(template="plotly_white", title=title, height=height, colorway=COLORS,
                      margin=dict(l=60, r=20, t=50 if title else 20, b=50),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig
