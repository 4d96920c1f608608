"""Figures for Mamba-2 and state space duality (chapter 11): the L × L matrices of sequence
mixers side by side, the chunk structure of a semiseparable matrix, arithmetic by kind.

Every builder takes tensors or numbers computed by `mamba_edu.ssd` (or any tensors of the
documented shapes) and returns a `plotly.graph_objects.Figure`; nothing here computes the math.

Glossary
    M        one head's L × L matrix (rows: output token t, columns: input token s)
    q        chunk length;  ranks: (c, c) ranks of the q × q blocks (`mamba_edu.ssd.block_ranks`)
    counts   {method: {"matmul": flops, "elementwise": flops}} (`mamba_edu.ssd.ssd_flops`)
"""

from __future__ import annotations

from typing import Mapping

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._style import COLORS, DIVERGING, LEGEND_BELOW, SEQUENTIAL, style

_ROW, _COL = "output token t", "input token s"


def _causal_np(M: torch.Tensor, name: str, func: str):
    """M (l, l) as float64 numpy with the entries above the diagonal blank (NaN): they are not part
    of a causal map, and leaving them out keeps the colour scale for the entries that are."""
    if not isinstance(M, torch.Tensor) or M.dim() != 2 or M.shape[0] != M.shape[1]:
        shape = tuple(M.shape) if isinstance(M, torch.Tensor) else type(M).__name__
        raise ValueError(f"{func}: panel '{name}' must be a square (L, L) tensor; got {shape}.")
    A = M.detach().cpu().to(torch.float64).clone()
    A[torch.ones_like(A, dtype=torch.bool).triu(1)] = float("nan")
    return A.numpy()


def _signed(Mn) -> bool:
    import numpy as np

    return bool(np.nanmin(Mn) < 0)


def sequence_matrices(panels: Mapping[str, torch.Tensor], title: str | None = None,
                      height: int = 340) -> go.Figure:
    """The L × L matrix of each sequence mixer as a heatmap, side by side (causal part only).

    panels: {name: (L, L) tensor}, e.g. the decay mask L, the scores C Bᵀ, M = L ∘ C Bᵀ and
    softmax attention. A panel with negative entries uses the diverging scale centred on 0, a
    non-negative one the sequential scale; each has its own colour bar. Row t is the output
    token, column s the input token; the blank triangle above the diagonal is the future.
    """
    names = list(panels)
    mats = [_causal_np(panels[k], k, "sequence_matrices") for k in names]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    gap = 0.08
    width = (1 - gap * (len(names) - 1)) / len(names)
    for i, (name, Mn) in enumerate(zip(names, mats)):
        signed = _signed(Mn)
        bar = dict(x=i * (width + gap) + width + 0.005, len=0.85, thickness=8, tickfont=dict(size=9))
        fig.add_trace(go.Heatmap(z=Mn, colorscale=DIVERGING if signed else SEQUENTIAL,
                                 zmid=0.0 if signed else None, colorbar=bar, name=name,
                                 hovertemplate="t = %{y}, s = %{x}<br>%{z:.4g}<extra>" + name + "</extra>"),
                      row=1, col=i + 1)
        l = Mn.shape[0]
        fig.update_xaxes(title_text=_COL, range=[-0.5, l - 0.5], constrain="domain", row=1, col=i + 1)
        fig.update_yaxes(range=[l - 0.5, -0.5], scaleanchor=f"x{i + 1}" if i else "x", constrain="domain",
                         row=1, col=i + 1)
    fig.update_yaxes(title_text=_ROW, row=1, col=1)
    return style(fig, title, height=height)


def chunk_structure(M: torch.Tensor, chunk: int, ranks: torch.Tensor | None = None, title: str | None = None,
                    height: int = 460) -> go.Figure:
    """One head's matrix M (L, L) cut into q × q blocks, as the chunked algorithm sees it.

    Diagonal blocks (outlined solid) are computed directly as small masked matrices (step 1);
    blocks below the diagonal (dashed) are never formed: they go through the state at the chunk
    boundary (steps 2–4). `ranks` (c, c), e.g. `mamba_edu.ssd.block_ranks(M, chunk)`, writes each
    block's rank in it: at most n below the diagonal.
    """
    Mn = _causal_np(M, "M", "chunk_structure")
    l = Mn.shape[0]
    c = -(-l // chunk)
    if ranks is not None and tuple(ranks.shape) != (c, c):
        raise ValueError(f"chunk_structure: argument 'ranks' must have shape ({c}, {c}); got {tuple(ranks.shape)}.")
    signed = _signed(Mn)
    fig = go.Figure(go.Heatmap(z=Mn, colorscale=DIVERGING if signed else SEQUENTIAL, zmid=0.0 if signed else None,
                               colorbar=dict(title="M[t, s]"), name="M",
                               hovertemplate="t = %{y}, s = %{x}<br>%{z:.4g}<extra></extra>"))
    for i in range(c):
        for j in range(i + 1):
            lo_r, hi_r = i * chunk - 0.5, min((i + 1) * chunk, l) - 0.5
            lo_c, hi_c = j * chunk - 0.5, min((j + 1) * chunk, l) - 0.5
            diag = i == j
            fig.add_shape(type="rect", x0=lo_c, x1=hi_c, y0=lo_r, y1=hi_r,
                          line=dict(color=COLORS[1] if diag else COLORS[0], width=2 if diag else 1.5,
                                    dash="solid" if diag else "dash"))
            if ranks is not None:
                fig.add_annotation(x=(lo_c + hi_c) / 2, y=(lo_r + hi_r) / 2, text=f"rank {int(ranks[i, j])}",
                                   showarrow=False, font=dict(size=11, color="#111827"),
                                   bgcolor="rgba(255,255,255,0.7)")
    # legend entries for the two kinds of block (lines only, no data)
    for name, color, dash in (("diagonal block: masked matrix products (step 1)", COLORS[1], "solid"),
                              ("below the diagonal: through the state (steps 2–4)", COLORS[0], "dash")):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line=dict(color=color, dash=dash)))
    fig.update_xaxes(range=[-0.5, l - 0.5], constrain="domain")
    fig.update_yaxes(range=[l - 0.5, -0.5], scaleanchor="x", constrain="domain")
    style(fig, title, x=_COL, y=_ROW, height=height)
    fig.update_layout(legend=LEGEND_BELOW,
                      margin=dict(b=90))
    return fig


def flops_by_kind(counts: Mapping[str, Mapping[str, float]], title: str | None = None,
                  height: int = 380) -> go.Figure:
    """Stacked bars: for each method, its floating-point operations that are matrix products
    (tensor-core work) and those that are elementwise. counts: {method: {"matmul", "elementwise"}}."""
    methods = list(counts)
    fig = go.Figure()
    for k, (kind, label) in enumerate((("matmul", "matrix products (tensor cores)"),
                                       ("elementwise", "elementwise (CUDA cores)"))):
        ys = [float(counts[m][kind]) for m in methods]
        fig.add_trace(go.Bar(x=methods, y=ys, name=label, marker_color=COLORS[2 if k == 0 else 6],
                             hovertemplate="%{x}: %{y:.3s} FLOP<extra>" + label + "</extra>"))
    fig.update_layout(barmode="stack")
    return style(fig, title, x="method", y="floating-point operations (FLOP)", height=height)
