"""Figures for LTI SSMs (chapter 04): convolution kernels, the two modes agreeing, timings.

Every builder takes tensors or numbers computed by `mamba_edu.lti` (or measured by the caller)
and returns a `plotly.graph_objects.Figure`; nothing here computes the math.

Glossary
    K        convolution kernel K_l = C Ab^l Bb, shape (L,) for one channel
    y        output sequence (L,) of one channel
    L        sequence length
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._style import COLORS, LEGEND_BELOW, style


def _np(v):
    """A tensor (or list) as a float64 numpy array for plotting."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().to(torch.float64).numpy()
    return torch.as_tensor(v, dtype=torch.float64).numpy()


def _legend_below(fig: go.Figure) -> go.Figure:
    """Move the legend under the plot, clear of a long title."""
    fig.update_layout(legend=LEGEND_BELOW,
                      margin=dict(b=100))
    return fig


def conv_kernel(kernels: Mapping[str, torch.Tensor], dt: float | None = None, title: str | None = None,
                normalize: bool = False) -> go.Figure:
    """Convolution kernels K_l, one curve per system, against the lag l (or the time l·Δ if dt is given).

    kernels: {name: K (L,)}. `normalize` divides each kernel by its largest |K_l| so that shapes
    with very different scales can share one axis (the y title then says so).
    """
    fig = go.Figure()
    for i, (name, K) in enumerate(kernels.items()):
        Kn = _np(K)
        if Kn.ndim != 1:
            raise ValueError(f"conv_kernel: kernel '{name}' must be 1-D (L,), got shape {tuple(Kn.shape)}")
        if normalize:
            peak = abs(Kn).max()
            Kn = Kn / peak if peak > 0 else Kn
        lags = torch.arange(len(Kn), dtype=torch.float64).numpy()
        fig.add_trace(go.Scatter(x=lags * dt if dt is not None else lags, y=Kn, mode="lines", name=name,
                                 line=dict(color=COLORS[i % len(COLORS)], width=2)))
    x = "time lag l·Δ" if dt is not None else "lag l (steps)"
    y = "K_l / max |K|" if normalize else "K_l"
    return style(fig, title, x=x, y=y)


def modes_agree(y_rec: torch.Tensor, y_conv: torch.Tensor, title: str | None = None,
                labels: tuple[str, str] = ("recurrence", "convolution")) -> go.Figure:
    """Two ways to compute one output, overlaid (top), and their difference (bottom).

    y_rec, y_conv (L,): e.g. `lti_recurrent(...)` and `causal_conv(u, K)` for one channel.
    The bottom panel shows y_conv - y_rec.
    """
    a, b = _np(y_rec), _np(y_conv)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"modes_agree: y_rec and y_conv must be 1-D of one shape, got {a.shape} and {b.shape}")
    k = torch.arange(len(a)).numpy()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.08)
    fig.add_trace(go.Scatter(x=k, y=a, mode="lines", name=labels[0], line=dict(color=COLORS[0], width=3)),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=k, y=b, mode="lines", name=labels[1],
                             line=dict(color=COLORS[1], width=1.5, dash="dash")), row=1, col=1)
    fig.add_trace(go.Scatter(x=k, y=b - a, mode="lines", name=f"difference: {labels[1]} − {labels[0]}",
                             line=dict(color=COLORS[6], width=1)), row=2, col=1)
    fig.update_yaxes(title_text="output y_k", row=1, col=1)
    fig.update_yaxes(title_text="difference", row=2, col=1, exponentformat="e")
    fig.update_xaxes(title_text="step k", row=2, col=1)
    style(fig, title, height=480)
    return _legend_below(fig)


def timings_vs_L(timings: Mapping[str, tuple[Sequence, Sequence]], title: str | None = None,
                 y: str = "time (ms)", scale: float = 1e3) -> go.Figure:
    """Measured run time against the sequence length L, one line per method (log-log axes).

    timings: {method: (Ls, seconds)}; the plotted value is seconds·scale (milliseconds by default,
    pass scale=1e6 and y="time (µs)" for microseconds).
    """
    fig = go.Figure()
    for i, (name, (Ls, secs)) in enumerate(timings.items()):
        fig.add_trace(go.Scatter(x=_np(Ls), y=_np(secs) * scale, mode="lines+markers", name=name,
                                 line=dict(color=COLORS[i % len(COLORS)], width=2)))
    ticks = sorted({float(L) for Ls, _ in timings.values() for L in _np(Ls)})
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{L:g}" for L in ticks])
    fig.update_yaxes(type="log")
    style(fig, title, x="sequence length L", y=y, height=420)
    return _legend_below(fig)
