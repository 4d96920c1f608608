"""Figures for state space models: trajectories, eigenvalues, impulse responses, states over time.

Builders
    trajectories               curves over a shared or own axis: {name: x} or {name: (t, x)}
                               (continuous ones as lines, sampled ones with markers)
    eigenvalues_vs_unit_circle eigenvalues of Ab per method in the complex plane with |z| = 1
    impulse_responses          the kernel K_l = C Ab^l Bb per method, as stems over the lag
    state_heatmap              a state trajectory h (L, N): time × state entry, diverging colours
    input_output               the input u on top, one or more outputs y below, same time axis
    state_player               a state trajectory h (L, N) to scrub or play through: heatmap with a
                               time marker, and the state vector at that time as bars

Every builder takes tensors or numbers computed by the library and returns a go.Figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._style import COLORS, DIVERGING, decade_ticks, diverging_colors, style


def _list(v) -> list:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        return (v.double() if not v.is_complex() else v).flatten().tolist()
    return [float(x) for x in v]


def _series(t, v):
    """A series is values over the shared axis `t`, or its own (t, values) pair."""
    if isinstance(v, tuple) and len(v) == 2:
        return _list(v[0]), _list(v[1])
    if t is None:
        vals = _list(v)
        return list(range(len(vals))), vals
    return _list(t), _list(v)


_SYMBOLS = ("circle-open", "diamond", "circle", "square-open", "x", "triangle-up")


def _color(colors: Mapping[str, str] | None, name: str, i: int) -> str:
    return (colors or {}).get(name, COLORS[i % len(COLORS)])


def trajectories(t, series: Mapping[str, object], *, x_title: str = "time t (s)", y_title: str = "x(t)",
                 title: str | None = None, markers: Sequence[str] | bool = (), dashed: Sequence[str] = (),
                 colors: Mapping[str, str] | None = None, log_x: bool = False, log_y: bool = False,
                 y_range: Sequence[float] | None = None, hline: float | None = None, height: int = 380) -> go.Figure:
    """Curves {name: values over t} or {name: (t_i, values)}, one colour each.

    markers   names drawn with markers (sampled, discrete-time series), each with its own symbol so
              that coinciding points stay visible; True: every series
    dashed    names drawn as dashed reference curves on top of the others (e.g. the exact solution)
    colors    {name: colour} to keep a method's colour the same across figures (default: by order)
    hline     a dotted horizontal reference line (e.g. a spectral radius of 1)
    y_range   fix the y axis (a diverging method then leaves the picture instead of rescaling it)
    """
    fig = go.Figure()
    items = list(enumerate(series.items()))
    order = [it for it in items if it[1][0] not in dashed] + [it for it in items if it[1][0] in dashed]
    k = 0
    for i, (name, v) in order:
        x, y = _series(t, v)
        mk = markers is True or name in (markers or ())
        symbol = _SYMBOLS[k % len(_SYMBOLS)] if mk else None
        k += int(mk)
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers" if mk else "lines",
                                 line=dict(color=_color(colors, name, i), dash="dash" if name in dashed else None,
                                           width=1.5 if mk else 2),
                                 marker=dict(size=8 if symbol and symbol.endswith("open") else 6, symbol=symbol)))
    if hline is not None:
        fig.add_hline(y=hline, line=dict(color="#9ca3af", dash="dot", width=1))
    style(fig, title, x=x_title, y=y_title, height=height)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return decade_ticks(fig)


def eigenvalues_vs_unit_circle(eigvals: Mapping[str, torch.Tensor], *, labels: Mapping[str, Sequence[str]] | None = None,
                               colors: Mapping[str, str] | None = None, title: str | None = None, height: int = 440,
                               limit: float | None = None) -> go.Figure:
    """Eigenvalues (any shape, complex or real) per method as points in the complex plane, with the
    unit circle |z| = 1: inside means the recurrence x_k = Ab x_{k-1} decays (stable), outside
    that it blows up. `labels` {name: one hover text per eigenvalue} (e.g. the step Δ of each);
    `colors` {name: colour} (default: by order).
    `limit` fixes both axes to [-limit, limit] (points beyond it leave the picture)."""
    fig = go.Figure()
    theta = torch.linspace(0, 2 * torch.pi, 241, dtype=torch.float64)  # (241,)
    fig.add_trace(go.Scatter(x=torch.cos(theta).tolist(), y=torch.sin(theta).tolist(), name="|z| = 1",
                             mode="lines", line=dict(color="#9ca3af", width=1)))
    for i, (name, ev) in enumerate(eigvals.items()):
        z = torch.as_tensor(ev).detach().cpu().to(torch.complex128).flatten()  # (m,)
        text = list((labels or {}).get(name, [])) or None
        fig.add_trace(go.Scatter(x=z.real.tolist(), y=z.imag.tolist(), name=name, mode="markers",
                                 marker=dict(color=_color(colors, name, i + 1), size=7, opacity=0.8),
                                 text=text, hovertemplate="Re %{x:.3f}, Im %{y:.3f}<br>%{text}<extra>%{fullData.name}</extra>"
                                 if text else None))
    style(fig, title, x="Re z", y="Im z", height=height)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_xaxes(constrain="domain")  # a square plot: the circle stays round without widening the range
    if limit is not None:
        fig.update_xaxes(range=[-limit, limit])
        fig.update_yaxes(range=[-limit, limit])
    return fig


def impulse_responses(responses: Mapping[str, object], t=None, *, continuous: Mapping[str, tuple] | None = None,
                      colors: Mapping[str, str] | None = None, x_title: str = "lag l", y_title: str = "K_l",
                      title: str | None = None, y_range: Sequence[float] | None = None,
                      height: int = 380) -> go.Figure:
    """The response to a unit impulse per method: {name: K (L,)} over `t` (default: lags 0..L-1)
    or {name: (t_i, K)}, drawn as markers joined by thin lines; `continuous` {name: (t, h(t))}
    adds dashed reference curves on top (e.g. the continuous system's C·exp(tA)·B).
    `colors` {name: colour} (default: by order); `y_range` fixes the y axis."""
    fig = go.Figure()
    for i, (name, v) in enumerate(responses.items()):
        x, y = _series(t, v)
        symbol = _SYMBOLS[i % len(_SYMBOLS)]
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers",
                                 line=dict(color=_color(colors, name, i), width=1),
                                 marker=dict(size=8 if symbol.endswith("open") else 6, symbol=symbol)))
    for name, (x, y) in (continuous or {}).items():
        fig.add_trace(go.Scatter(x=_list(x), y=_list(y), name=name, mode="lines",
                                 line=dict(color=(colors or {}).get(name, COLORS[6]), dash="dash")))
    fig.add_hline(y=0, line=dict(color="#9ca3af", width=1))
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return style(fig, title, x=x_title, y=y_title, height=height)


def state_heatmap(h: torch.Tensor, t=None, *, x_title: str = "time step t", y_title: str = "state entry n",
                  state_labels: Sequence[str] | None = None, title: str | None = None,
                  colorbar_title: str = "h", height: int = 360) -> go.Figure:
    """A state trajectory h (L, N) as a heatmap: time on x, state entry on y, a diverging scale
    centred on 0 (blue negative, red positive)."""
    h = torch.as_tensor(h).detach().cpu()
    if h.dim() != 2:
        raise ValueError(f"state_heatmap: argument 'h' must be a 2-D (L, N) tensor; got shape {tuple(h.shape)}.")
    h = (2 * h.real if h.is_complex() else h).double()  # (l, n)
    L, N = h.shape
    x = _list(t) if t is not None else list(range(L))
    y = list(state_labels) if state_labels is not None else list(range(N))
    zmax = float(h.abs().max()) or 1.0
    fig = go.Figure(go.Heatmap(z=h.T.tolist(), x=x, y=y, colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax,
                               colorbar=dict(title=colorbar_title)))
    return style(fig, title, x=x_title, y=y_title, height=height)


def input_output(u, y, t=None, *, x_title: str = "time step t", u_title: str = "input u",
                 y_title: str = "output y", title: str | None = None, height: int = 440) -> go.Figure:
    """Two rows sharing the time axis: the input u (L,) on top, the output(s) below; y is one
    (L,) series or {name: (L,) series} (e.g. one output per step size Δ)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    xs, us = _series(t, u)
    fig.add_trace(go.Scatter(x=xs, y=us, name="u", mode="lines", line=dict(color=COLORS[6], shape="hv")),
                  row=1, col=1)
    outs = y if isinstance(y, Mapping) else {"y": y}
    for i, (name, v) in enumerate(outs.items()):
        x, vals = _series(t, v)
        fig.add_trace(go.Scatter(x=x, y=vals, name=name, mode="lines", line=dict(color=COLORS[i % len(COLORS)])),
                      row=2, col=1)
    style(fig, title, height=height)
    fig.update_xaxes(title_text=x_title, row=2, col=1)
    fig.update_yaxes(title_text=u_title, row=1, col=1)
    fig.update_yaxes(title_text=y_title, row=2, col=1)
    return fig


def state_player(h: torch.Tensor, t=None, *, x_title: str = "time step t", y_title: str = "state entry n",
                 state_labels: Sequence[str] | None = None, title: str | None = None, colorbar_title: str = "h",
                 start: int | None = None, max_frames: int = 60, height: int = 560) -> go.Figure:
    """A state trajectory h (L, N) to scrub through: the heatmap of every state (top, time on x, a
    diverging scale centred on 0) with a marker at the chosen time, and the state vector h_t at that
    time as bars (bottom). A slider under the plot scrubs the time and a play button plays it from the
    start (plotly frames: only the marker and the bars change, so the figure stays small); at most
    `max_frames` evenly spaced times, always including the first and the last. `start` is the time
    index shown first (default: the last).

    Every frame redraws the figure (redraw=True): an animation without it removes the heatmap, which
    plotly cannot animate, until the next full draw. The bars' colours are given as colours (numbers
    with a colour scale make plotly warn on every bar of every frame). Every animation call queues after
    the running one (mode "afterall"): none interrupts another, so none is rejected (an interrupted
    plotly animation rejects its promise, an uncaught error in the page), and there is no pause button.
    """
    h = torch.as_tensor(h).detach().cpu()
    if h.dim() != 2:
        raise ValueError(f"state_player: argument 'h' must be a 2-D (L, N) tensor; got shape {tuple(h.shape)}.")
    h = (2 * h.real if h.is_complex() else h).double()  # (l, n)
    L, N = h.shape
    x = _list(t) if t is not None else list(range(L))
    y = list(state_labels) if state_labels is not None else list(range(N))
    zmax = float(h.abs().max()) or 1.0
    m = max(2, min(max_frames, L))
    idx = sorted({round(i * (L - 1) / (m - 1)) for i in range(m)}) if L > 1 else [0]
    k0 = idx[-1] if start is None else min(idx, key=lambda i: abs(i - start))
    ybar = [-0.5, N - 0.5] if state_labels is None else [y[0], y[-1]]

    def marker(k):
        return go.Scatter(x=[x[k], x[k]], y=ybar, mode="lines", line=dict(color="#111827", width=2),
                          name="chosen time", showlegend=False, hoverinfo="skip")

    def bars(k):
        vals = h[k].tolist()
        return go.Bar(x=y, y=vals, name="state at the chosen time", marker=dict(color=diverging_colors(vals, zmax)),
                      showlegend=False, hovertemplate="entry %{x}: %{y:.4g}<extra></extra>")

    fig = make_subplots(rows=2, cols=1, row_heights=[0.6, 0.4], vertical_spacing=0.16)
    fig.add_trace(go.Heatmap(z=h.T.tolist(), x=x, y=y, colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax,
                             colorbar=dict(title=colorbar_title, len=0.55, y=1, yanchor="top")), row=1, col=1)
    fig.add_trace(marker(k0), row=1, col=1)
    fig.add_trace(bars(k0), row=2, col=1)
    fig.frames = [go.Frame(name=str(k), data=[marker(k), bars(k)], traces=[1, 2]) for k in idx]
    step_args = dict(mode="afterall", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    fig.update_layout(
        sliders=[dict(active=idx.index(k0), x=0.12, len=0.88, y=-0.04, yanchor="top", pad=dict(t=30),
                      font=dict(color="rgba(0,0,0,0)"),  # no label under every step: the current value says it
                      currentvalue=dict(prefix=f"{x_title}: ", xanchor="right", font=dict(color="#111827")),
                      steps=[dict(method="animate", label=f"{x[k]:.4g}", args=[[str(k)], step_args])
                             for k in idx])],
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.04, xanchor="left", yanchor="top",
                          pad=dict(t=38, r=8), showactive=False,
                          buttons=[dict(label="▶", method="animate",
                                        args=[None, dict(mode="afterall", fromcurrent=False,
                                                         frame=dict(duration=60, redraw=True),
                                                         transition=dict(duration=0))])])])
    style(fig, title, height=height)
    fig.update_layout(margin=dict(b=110))
    fig.update_xaxes(title_text=x_title, row=1, col=1)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_xaxes(title_text=y_title, row=2, col=1)
    fig.update_yaxes(title_text=f"{colorbar_title} at the chosen time", range=[-1.05 * zmax, 1.05 * zmax], row=2, col=1)
    return fig
