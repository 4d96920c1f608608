"""Figures for HiPPO (chapter 03): basis functions, online reconstruction, error against N,
operator matrices, and coefficient comparisons.

Every builder takes tensors computed by `mamba_edu.hippo` (or any tensors of the documented
shapes) and returns a `plotly.graph_objects.Figure`; nothing here computes the math.

Glossary
    x        window position in [0, 1]: 0 = the oldest end of the memory window, 1 = now
    G        basis values g_n(x), shape (M, N)
    s        times (M,);  f: the signal at s;  f_hat: its reconstruction from the coefficients
    c        coefficients (N,), or (L, N) over time
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._style import COLORS, DIVERGING, LEGEND_BELOW, style

MEASURE_NAMES = {"legs": "LegS", "legt": "LegT", "fout": "FouT"}


def _np(v):
    """A tensor (or list) as a float64 numpy array for plotting."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().to(torch.float64).numpy()
    return torch.as_tensor(v, dtype=torch.float64).numpy()


def _name(measure: str | None) -> str:
    return MEASURE_NAMES.get(measure, measure) if measure else ""


def hippo_basis(x: torch.Tensor, G: torch.Tensor, measure: str | None = None, title: str | None = None,
                n_show: int | None = None) -> go.Figure:
    """The basis functions g_n(x) of a memory window, one curve per n.

    x (M,) window positions in [0, 1] (0 = oldest, 1 = now); G (M, N) basis values, e.g.
    `mamba_edu.hippo.basis(measure, N, x)`. `n_show` keeps the first n_show functions.
    """
    xs, Gs = _np(x), _np(G)
    N = Gs.shape[1] if n_show is None else min(n_show, Gs.shape[1])
    fig = go.Figure()
    for n in range(N):
        fig.add_trace(go.Scatter(x=xs, y=Gs[:, n], mode="lines", name=f"g_{n}",
                                 line=dict(color=COLORS[n % len(COLORS)], width=2)))
    if title is None:
        title = f"{_name(measure)} basis functions" if measure else "Basis functions"
    style(fig, title, x="window position x (0 = oldest, 1 = now)", y="g_n(x)")
    # one legend entry per function: a column at the right stays clear of the title
    fig.update_layout(legend=LEGEND_BELOW)
    return fig


def hippo_reconstruction(s: torch.Tensor, f: torch.Tensor, f_hat: torch.Tensor,
                         window: tuple[float, float] | None = None, s_hat: torch.Tensor | None = None,
                         label: str = "reconstruction from c(t)", title: str | None = None,
                         time_unit: str = "s") -> go.Figure:
    """A signal and its reconstruction from the memory, with the memory window shaded.

    s (M,) times and f (M,) the signal there; f_hat the reconstruction, at the times s_hat
    (default: s). `window` = (start, now) is shaded and "now" is marked by a dashed line.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=_np(s), y=_np(f), mode="lines", name="signal f",
                             line=dict(color=COLORS[6], width=2)))
    fig.add_trace(go.Scatter(x=_np(s if s_hat is None else s_hat), y=_np(f_hat), mode="lines", name=label,
                             line=dict(color=COLORS[0], width=2.5, dash="dash")))
    if window is not None:
        lo, hi = float(window[0]), float(window[1])
        fig.add_vrect(x0=lo, x1=hi, fillcolor=COLORS[0], opacity=0.08, line_width=0,
                      annotation_text="memory window", annotation_position="top left")
        fig.add_vline(x=hi, line=dict(color=COLORS[1], dash="dot"), annotation_text="now (t)",
                      annotation_position="top right")
    return style(fig, title, x=f"time ({time_unit})" if time_unit else "time", y="value")


def error_vs_N(errors: Mapping[str, tuple[Sequence, Sequence]], title: str | None = None,
               y: str = "relative L2 error", log_x: bool = True) -> go.Figure:
    """Reconstruction error against the number of coefficients N, one line per measure (log axes).

    errors: {name: (Ns, errs)}; names 'legs' | 'legt' | 'fout' are shown as LegS, LegT, FouT.
    """
    fig = go.Figure()
    for i, (name, (Ns, errs)) in enumerate(errors.items()):
        fig.add_trace(go.Scatter(x=_np(Ns), y=_np(errs), mode="lines+markers", name=_name(name),
                                 line=dict(color=COLORS[i % len(COLORS)], width=2)))
    fig.update_yaxes(type="log")
    if log_x:
        ticks = sorted({float(n) for Ns, _ in errors.values() for n in _np(Ns)})
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{n:g}" for n in ticks])
    return style(fig, title, x="N (number of coefficients)", y=y)


def matrix_heatmap(M: torch.Tensor, title: str | None = None, x: str = "column k", y: str = "row n",
                   x_values: Sequence | torch.Tensor | None = None,
                   y_values: Sequence | torch.Tensor | None = None, colorbar: str = "value") -> go.Figure:
    """A matrix as a heatmap on the diverging scale centred on 0, row 0 at the top.

    M (R, K): e.g. a HiPPO A, or coefficients over time c.T (N, L) with x_values = times.
    """
    Mn = _np(M)
    if Mn.ndim != 2:
        raise ValueError(f"matrix_heatmap: argument 'M' must be a 2-D tensor, got shape {tuple(Mn.shape)}")
    fig = go.Figure(go.Heatmap(z=Mn, x=None if x_values is None else _np(x_values),
                               y=None if y_values is None else _np(y_values),
                               colorscale=DIVERGING, zmid=0.0, colorbar=dict(title=colorbar)))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, x=x, y=y, height=420)


def coefficients_compare(panels: Mapping[str, Mapping[str, torch.Tensor]], title: str | None = None,
                         y: str = "coefficient c_n") -> go.Figure:
    """Coefficient vectors side by side: one panel per group, one set of markers per label.

    panels: {panel title: {label: c (N,)}}, e.g. {"LegS": {"original": c1, "stretched ×3": c3}}.
    Labels keep their colour across panels.
    """
    titles = list(panels)
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, shared_yaxes=False)
    colour: dict[str, str] = {}
    symbols = ["circle", "x", "diamond", "square", "triangle-up"]
    for p, name in enumerate(titles):
        for label, c in panels[name].items():
            if label not in colour:
                colour[label] = COLORS[len(colour) % len(COLORS)]
            i = list(colour).index(label)
            cn = _np(c)
            fig.add_trace(go.Scatter(x=list(range(len(cn))), y=cn, mode="markers+lines", name=label,
                                     legendgroup=label, showlegend=p == 0,
                                     marker=dict(color=colour[label], size=9 - 2 * (i % 2),
                                                 symbol=symbols[i % len(symbols)]),
                                     line=dict(color=colour[label], width=1, dash="dot" if i % 2 else "solid")),
                          row=1, col=p + 1)
        fig.update_xaxes(title_text="index n", row=1, col=p + 1)
    fig.update_yaxes(title_text=y, row=1, col=1)
    style(fig, title, height=420)
    # room for the title above the panel titles, and the legend below the panels
    fig.update_layout(margin=dict(t=fig.layout.margin.t + 30), legend=LEGEND_BELOW)  # room for the panel titles
    return fig
