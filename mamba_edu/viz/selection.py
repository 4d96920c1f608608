"""Figures for selection (chapter 06): Δ per token, Δ as a gate, what the state keeps, no kernel.

Builders
    gate_curves       keep = exp(Δ·A) and take = 1 − exp(Δ·A) against Δ (log axis): Δ as a gate
    delta_heatmap     log₁₀ Δ of several channels over the tokens of one sequence (tokens on x)
    token_series      one value per token for several models on the same input (Δ, ‖h_t‖ …),
                      the positions of chosen tokens (e.g. the data tokens) shaded
    kept_bars         how much of what each token wrote is still in the state at step t, one row of
                      bars per model, coloured by the token's role (data, noise, marker …)
    mixing_matrices   M[t, s], the weight of input s in output t, one heatmap per model: a Toeplitz
                      (convolution) band for LTI, token-dependent columns for a selective model

Every builder takes tensors computed by `mamba_edu.probe` (or the caller) and returns a go.Figure.

Glossary
    Δ      step size (b, d, l) in the library; here one sequence: (d, l) or (l,)
    t, s   token positions: t the output (or the moment we look at the state), s an input
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..probe import DELTA_FLOOR
from ._style import AXIS_CHARS, COLORS, DIVERGING, SEQUENTIAL, decade_ticks, style, wrap
from .tasks import ROLES


def _np(v, ndim: int, name: str, func: str):
    t = torch.as_tensor(v).detach().cpu().to(torch.float64)
    if t.dim() != ndim:
        raise ValueError(f"{func}: argument '{name}' must be {ndim}-D; got shape {tuple(t.shape)}.")
    return t.numpy()


MAX_TICK_LABELS = 12  # token labels under an axis: more overlap on a half-width chart or a phone


def _token_axis(fig: go.Figure, labels: Sequence[str] | None, n: int, **where) -> None:
    """Write the token ids (or any labels) under the positions: at most MAX_TICK_LABELS of them, evenly
    spaced, so that they never overlap (every label is in the hover text)."""
    if labels is None:
        return
    if len(labels) != n:
        raise ValueError(f"token labels must have one entry per position ({n}); got {len(labels)}.")
    step = max(1, -(-n // MAX_TICK_LABELS))
    fig.update_xaxes(tickmode="array", tickvals=list(range(0, n, step)), ticktext=list(labels)[::step],
                     tickangle=0, **where)


def _hover_labels(fig: go.Figure, labels: Sequence[str] | None) -> None:
    """Put each position's label (token id) into the hover text of every trace of `fig`."""
    if labels is None:
        return
    for tr in fig.data:
        if tr.hoverinfo != "skip":
            tr.update(customdata=list(labels), hovertemplate="t = %{x} (token %{customdata}): %{y:.4g}"
                                                              "<extra>%{fullData.name}</extra>")


def _shade(fig: go.Figure, positions: Sequence[int], color: str, name: str) -> None:
    """Shade the columns [p − ½, p + ½] of the given positions: one filled trace of rectangles on a hidden
    overlaid axis spanning the plot's height (linear in the number of positions; shapes would cost one
    layout object each, quadratic to add and slow to draw)."""
    xs, ys = [], []
    for p in sorted(set(int(p) for p in positions)):
        xs += [p - 0.5, p - 0.5, p + 0.5, p + 0.5, None]
        ys += [0, 1, 1, 0, None]
    if not xs:
        return
    fig.add_trace(go.Scatter(x=xs, y=ys, yaxis="y2", mode="lines", fill="toself", fillcolor=color, opacity=0.15,
                             line=dict(width=0), name=name, hoverinfo="skip", showlegend=True))
    fig.update_layout(yaxis2=dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True))


def gate_curves(delta, keep, take, title: str | None = None, height: int = 360) -> go.Figure:
    """keep and take (how much of the old state survives, how much of the input comes in) against Δ,
    all (m,), on a log Δ axis."""
    x = _np(delta, 1, "delta", "gate_curves")
    fig = go.Figure()
    for i, (name, v) in enumerate((("keep the state: exp(Δ·A)", keep), ("take the input: 1 − exp(Δ·A)", take))):
        fig.add_trace(go.Scatter(x=x, y=_np(v, 1, "keep/take", "gate_curves"), name=name, mode="lines",
                                 line=dict(color=COLORS[i], width=2)))
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(range=[-0.02, 1.02])
    return style(fig, title, x="step size Δ (log scale)", y="weight", height=height)


def delta_heatmap(delta, token_labels: Sequence[str] | None = None, channel_labels: Sequence[str] | None = None,
                  title: str | None = None, height: int | None = None, floor: float = DELTA_FLOOR) -> go.Figure:
    """log₁₀ Δ (d, l) as a heatmap: tokens on x (their ids written under the axis), channels on y.
    Values below `floor` (Δ that underflowed to 0) are drawn at log₁₀ floor."""
    D = _np(delta, 2, "delta", "delta_heatmap")
    z = np.log10(np.maximum(D, floor))  # (d, l)
    d, l = z.shape
    y = list(channel_labels) if channel_labels is not None else [f"ch {i}" for i in range(d)]
    fig = go.Figure(go.Heatmap(z=z, x=list(range(l)), y=y, colorscale=SEQUENTIAL,
                               colorbar=dict(title="log₁₀ Δ"),
                               hovertemplate="t = %{x}, %{y}: log₁₀ Δ = %{z:.2f}<extra></extra>"))
    fig = style(fig, title, x="token (position t; id below)", y="channel", height=height or 160 + 14 * d)
    _token_axis(fig, token_labels, l)
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def token_series(series: Mapping[str, object], token_labels: Sequence[str] | None = None, *, y_title: str,
                 highlight: Sequence[int] = (), log_y: bool = False, normalize: bool = False,
                 title: str | None = None, height: int = 360, highlight_name: str = "data tokens") -> go.Figure:
    """One value per token for each model: {name: (l,)} on the same positions. `highlight` shades the
    given positions (e.g. the data tokens; `highlight_name` in the legend); `normalize` divides each series by its largest |value|
    (to compare shapes when scales differ; the y title then says so)."""
    fig = go.Figure()
    n = None
    for i, (name, v) in enumerate(series.items()):
        y = _np(v, 1, name, "token_series")
        n = len(y)
        if normalize:
            peak = abs(y).max()
            y = y / peak if peak > 0 else y
        fig.add_trace(go.Scatter(x=list(range(n)), y=y, name=name, mode="lines+markers",
                                 marker=dict(size=4), line=dict(color=COLORS[i % len(COLORS)], width=2)))
    _shade(fig, highlight, ROLES["data"][1], highlight_name)
    fig = style(fig, title, x="token (position t; id below)", y=f"{y_title} / max" if normalize else y_title,
                height=height)
    if n is not None:
        _token_axis(fig, token_labels, n)
        _hover_labels(fig, token_labels)
    if log_y:
        fig.update_layout(yaxis=dict(type="log", exponentformat="power"))  # not yaxis2 (the shading's)
    return decade_ticks(fig)


def kept_bars(kept: Mapping[str, object], roles: Sequence[str], token_labels: Sequence[str] | None = None,
              t: int | None = None, normalize: bool = True, title: str | None = None,
              height: int | None = None) -> go.Figure:
    """One row of bars per model: bar s is ‖c_s‖, how much of what token s wrote is still in the
    state at step t (`probe.kept_norm`), coloured by the token's role (`roles`, one per token, keys
    of viz.tasks.ROLES). `normalize` divides each row by its largest bar."""
    names = list(kept)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=names)
    n = 0
    for i, name in enumerate(names):
        y = _np(kept[name], 1, name, "kept_bars")
        n = len(y)
        if len(roles) < n:
            raise ValueError(f"kept_bars: argument 'roles' must have at least {n} entries; got {len(roles)}.")
        if normalize:
            peak = abs(y).max()
            y = y / peak if peak > 0 else y
        fig.add_trace(go.Bar(x=list(range(n)), y=y, name=name, showlegend=False,
                             marker_color=[ROLES[r][1] for r in roles[:n]],
                             customdata=list(roles[:n]), hovertemplate="s = %{x} (%{customdata}): %{y:.3g}<extra></extra>"),
                      row=i + 1, col=1)
        fig.update_yaxes(title_text="‖c_s‖ / max" if normalize else "‖c_s‖", row=i + 1, col=1)
    at = f" at t = {t}" if t is not None else ""
    fig = style(fig, title, height=height or 150 + 170 * len(names))
    fig.update_xaxes(title_text=wrap(f"token s (what it wrote that is still in the state{at})", AXIS_CHARS),
                     row=len(names), col=1)
    if token_labels is not None:
        for i in range(len(names)):
            _token_axis(fig, list(token_labels)[:n], n, row=i + 1, col=1)
    return fig


def mixing_matrices(matrices: Mapping[str, object], title: str | None = None, height: int = 420) -> go.Figure:
    """M[t, s] (l, l) per model, side by side: the weight of input s in output t (0 above the diagonal:
    causal). Each panel has its own symmetric diverging scale."""
    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for i, name in enumerate(names):
        M = _np(matrices[name], 2, name, "mixing_matrices")
        zmax = float(abs(M).max()) or 1.0
        fig.add_trace(go.Heatmap(z=M, colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax, showscale=False,
                                 hovertemplate="t = %{y}, s = %{x}: %{z:.3g}<extra>" + name + "</extra>"),
                      row=1, col=i + 1)
        fig.update_xaxes(title_text="input s", row=1, col=i + 1)
        fig.update_yaxes(title_text="output t" if i == 0 else None, autorange="reversed", row=1, col=i + 1)
    return style(fig, title, height=height)


__all__ = ["DELTA_FLOOR", "gate_curves", "delta_heatmap", "token_series", "kept_bars", "mixing_matrices"]
