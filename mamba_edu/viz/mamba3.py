"""Figures for Mamba-3 (chapter 12, the app's State explorer): the error order of the discretisation
rules, a rotating state pair tracking parity, accuracy against length for the trained models, and
MIMO's decode step (time and FLOP rate against the rank).

Every builder takes numbers computed by `mamba_edu.mamba3` (or the training results) and returns a
`plotly.graph_objects.Figure`; nothing here computes the math.

Glossary
    dts, errors   step sizes and {rule: errors} (`mamba3.trapezoid_error`)
    pair          (l, 2) a rotating pair of state entries over the tokens; labels (l,) the running
                  answer (e.g. the parity) to colour the points by
    rows          {model: [(length, accuracy), …]} (`train.extrapolate`)
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch

from ._style import COLORS, style


def _floats(v, name: str, func: str) -> list[float]:
    try:
        out = [float(x) for x in (v.tolist() if isinstance(v, torch.Tensor) else v)]
    except (TypeError, ValueError):
        raise ValueError(f"{func}: argument '{name}' must be a sequence of numbers; got {type(v).__name__}.") from None
    return out


def error_order(dts: Sequence[float], errors: Mapping[str, Sequence[float]], slopes: Mapping[str, float] | None = None,
                title: str | None = None, height: int = 380) -> go.Figure:
    """Global error against the step Δ, log–log, one line per rule; the fitted slope (the order) in
    the legend when `slopes` gives it."""
    x = _floats(dts, "dts", "error_order")
    fig = go.Figure()
    for i, (name, err) in enumerate(errors.items()):
        y = _floats(err, f"errors[{name!r}]", "error_order")
        if len(y) != len(x):
            raise ValueError(f"error_order: argument 'errors[{name!r}]' must have {len(x)} values (one per Δ); "
                             f"got {len(y)}.")
        label = f"{name} (order {slopes[name]:.2f})" if slopes and name in slopes else name
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, line=dict(color=COLORS[i % len(COLORS)]),
                                 hovertemplate=f"{name}<br>Δ = %{{x:.3g}}<br>error %{{y:.3g}}<extra></extra>"))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", exponentformat="power")
    return style(fig, title, "step Δ", "largest |error| over the run", height=height)


def rotating_pair(pair: torch.Tensor, labels: Sequence[int] | None = None, label_name: str = "parity so far",
                  title: str | None = None, height: int = 420) -> go.Figure:
    """A pair of state entries (l, 2) as points in the plane, joined in token order: a real decay
    moves them along a line towards 0, a rotation turns them around it. Colour: `labels` (l,)."""
    if not isinstance(pair, torch.Tensor) or pair.dim() != 2 or pair.shape[1] != 2:
        got = tuple(pair.shape) if isinstance(pair, torch.Tensor) else type(pair).__name__
        raise ValueError(f"rotating_pair: argument 'pair' must be an (l, 2) tensor; got {got}.")
    p = pair.detach().cpu().double()
    l = p.shape[0]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=p[:, 0].tolist(), y=p[:, 1].tolist(), mode="lines", name="path",
                             line=dict(color="#9ca3af", width=1), hoverinfo="skip"))
    if labels is None:
        groups = {"state": list(range(l))}
    else:
        lab = [int(v) for v in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
        if len(lab) != l:
            raise ValueError(f"rotating_pair: argument 'labels' must have {l} values; got {len(lab)}.")
        groups = {f"{label_name} = {v}": [t for t in range(l) if lab[t] == v] for v in sorted(set(lab))}
    for i, (name, idx) in enumerate(groups.items()):
        fig.add_trace(go.Scatter(x=[float(p[t, 0]) for t in idx], y=[float(p[t, 1]) for t in idx], mode="markers",
                                 name=name, marker=dict(size=8, color=COLORS[i % len(COLORS)]),
                                 text=[f"token {t}" for t in idx],
                                 hovertemplate="%{text}<br>(%{x:.3g}, %{y:.3g})<extra>" + name + "</extra>"))
    r = float(p.norm(dim=1).max()) if l else 1.0
    r = r if r > 0 else 1.0
    fig.update_xaxes(range=[-1.15 * r, 1.15 * r], zeroline=True)
    fig.update_yaxes(range=[-1.15 * r, 1.15 * r], zeroline=True, scaleanchor="x", scaleratio=1)
    return style(fig, title, "state entry 2i", "state entry 2i + 1", height=height)


def accuracy_vs_length(rows: Mapping[str, Sequence[tuple[float, float]]], chance: float | None = None,
                       title: str | None = None, height: int = 380) -> go.Figure:
    """Token accuracy (%) against the sequence length (log axis) for each model; a dotted line at chance."""
    fig = go.Figure()
    xs_all = []
    for i, (name, pts) in enumerate(rows.items()):
        pts = [(float(L), float(a)) for L, a in pts if a is not None]
        xs_all += [L for L, _ in pts]
        fig.add_trace(go.Scatter(x=[L for L, _ in pts], y=[100 * a for _, a in pts], mode="lines+markers", name=name,
                                 line=dict(color=COLORS[i % len(COLORS)]),
                                 hovertemplate=f"{name}<br>L = %{{x}}<br>%{{y:.1f}} %<extra></extra>"))
    if chance is not None and xs_all:
        fig.add_trace(go.Scatter(x=[min(xs_all), max(xs_all)], y=[100 * chance] * 2, mode="lines", name="chance",
                                 line=dict(color="#6b7280", dash="dot")))
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 105])
    return style(fig, title, "sequence length L (tokens)", "token accuracy (%)", height=height)


def mimo_decode(ranks: Sequence[int], seconds: Sequence[float], flops: Sequence[float], title: str | None = None,
                height: int = 380) -> go.Figure:
    """MIMO decode: the time of one step (left axis) and the FLOP rate it reaches (right axis)
    against the rank r. A memory-bound step keeps its time while the FLOPs grow with r."""
    r = _floats(ranks, "ranks", "mimo_decode")
    s = _floats(seconds, "seconds", "mimo_decode")
    f = _floats(flops, "flops", "mimo_decode")
    if not len(r) == len(s) == len(f):
        raise ValueError(f"mimo_decode: arguments 'ranks', 'seconds', 'flops' must have the same length; "
                         f"got {len(r)}, {len(s)}, {len(f)}.")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=r, y=[1e6 * v for v in s], mode="lines+markers", name="time per step (µs)",
                             line=dict(color=COLORS[0])))
    fig.add_trace(go.Scatter(x=r, y=[fl / max(sec, 1e-12) / 1e9 for fl, sec in zip(f, s)], mode="lines+markers",
                             name="GFLOP/s reached", yaxis="y2", line=dict(color=COLORS[1], dash="dash")))
    fig.update_layout(yaxis2=dict(overlaying="y", side="right", title="GFLOP/s", rangemode="tozero"))
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(type="log", tickvals=r, ticktext=[str(int(v)) if v == math.floor(v) else str(v) for v in r])
    return style(fig, title, "MIMO rank r", "µs per decoding step", height=height)


__all__ = ["error_order", "rotating_pair", "accuracy_vs_length", "mimo_decode"]
