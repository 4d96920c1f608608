"""Figures of a Mamba language model reading a text (the app's Inside Mamba page).

Builders
    token_strip        the text as a strip of byte tokens, wrapped like text, coloured by a value per
                       token (how surprised the model was, Δ); the chosen token outlined; clickable
    block_flow         one Mamba block's data flow for one token, stage by stage, each stage drawn as
                       the actual vector (or channel × state matrix) it computes
    state_update       h_{s−1} ⊙ Ā_s + write_s = h_s, four heatmaps (channels × state entries)
    delta_by_channel   Δ of every channel at the chosen token, against its median over the text
    kept_over_time     how much of what the chosen token wrote is still in the state, per layer
    next_token_bars    the k most likely next bytes and their probabilities
    memory_by_position the bytes a decoder holds: the KV cache grows with the position, the state does not
    reading_player     play through the text: the state after each byte, animated

Every builder takes numbers computed by the library (`mamba_edu.probe`) and returns a go.Figure.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from ._style import COLORS, DIVERGING, LEGEND_BELOW, SEQUENTIAL, diverging_colors, style
from .cost import human_bytes


def _np(v) -> list:
    v = torch.as_tensor(v).detach().cpu().double()
    return v.tolist()


def _legend_inside(fig: go.Figure, right: bool = False) -> go.Figure:
    """The legend in a top corner inside the plot (not over the title)."""
    fig.update_layout(legend=dict(orientation="v", x=0.99 if right else 0.01, xanchor="right" if right else "left",
                                  y=0.99, yanchor="top", bgcolor="rgba(255,255,255,0.75)"))
    return fig


def token_strip(labels: Sequence[str], values, selected: int | None = None, *, per_row: int = 40,
                color_title: str = "", title: str | None = None, hover: Sequence[str] | None = None,
                colorscale: str = "YlOrRd") -> go.Figure:
    """The tokens as squares in rows of `per_row` (like lines of text), labelled with their text and
    coloured by `values` (T,) (NaN: grey; the default scale is light at low values, so the dark text
    stays readable); `selected` outlined. Point i of trace 0 is token i, so a
    click (Streamlit's `on_select`) names the token."""
    T = len(labels)
    vals = _np(values)
    if len(vals) != T:
        raise ValueError(f"token_strip: argument 'values' must have one value per label ({T}); got {len(vals)}.")
    rows = max(1, math.ceil(T / per_row))
    x = [i % per_row for i in range(T)]
    y = [i // per_row for i in range(T)]
    finite = [v for v in vals if not math.isnan(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    colors = np.asarray(vals, dtype=np.float64)  # NaN stays NaN: covered by a grey square below
    text = [f"#{i} {lab!r}: {v:.3g}" for i, (lab, v) in enumerate(zip(labels, vals))] if hover is None else list(hover)
    fig = go.Figure(go.Scatter(
        x=x, y=y, mode="markers+text", text=list(labels), textfont=dict(size=13, color="#111827"),
        hovertext=text, hoverinfo="text", customdata=list(range(T)), name="tokens", showlegend=False,
        marker=dict(symbol="square", size=22, color=colors, colorscale=colorscale, cmin=lo, cmax=hi if hi > lo else lo + 1,
                    line=dict(width=0.5, color="#d1d5db"),
                    colorbar=dict(title=color_title, thickness=12, len=max(0.5, min(1.0, 0.35 * rows))))))
    missing = [i for i, v in enumerate(vals) if math.isnan(v)]
    if missing:  # no value (e.g. the last byte: nothing came after it): grey, not a colour of the scale
        fig.add_trace(go.Scatter(x=[x[i] for i in missing], y=[y[i] for i in missing], mode="markers+text",
                                 text=[labels[i] for i in missing], textfont=dict(size=13, color="#111827"),
                                 marker=dict(symbol="square", size=22, color="#e5e7eb"), hoverinfo="skip",
                                 name="no value", showlegend=False))
    if selected is not None and 0 <= selected < T:
        fig.add_trace(go.Scatter(x=[x[selected]], y=[y[selected]], mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="square-open", size=30, color="#111827", line=dict(width=3)),
                                 name="chosen token", showlegend=False))
    style(fig, title, height=70 + 30 * rows + (40 if title else 0))
    fig.update_layout(margin=dict(l=10, r=10, t=40 if title else 10, b=10), dragmode=False, clickmode="event+select")
    fig.update_xaxes(visible=False, range=[-0.7, per_row - 0.3], fixedrange=True)
    fig.update_yaxes(visible=False, range=[rows - 0.4, -0.6], fixedrange=True)
    return fig


def _panel(values: torch.Tensor, signed: bool, axis: str) -> dict:
    """A stage's values as a heatmap on axes x{axis}/y{axis}: a vector (m,) as one column, a matrix (m, k) as it is."""
    v = torch.as_tensor(values).detach().cpu().double()
    z = (v[:, None] if v.dim() == 1 else v).numpy()
    zmax = float(abs(z).max()) or 1.0
    kw = dict(colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax) if signed else dict(colorscale=SEQUENTIAL)
    return dict(type="heatmap", z=z, showscale=False, xaxis=f"x{axis}", yaxis=f"y{axis}",
                hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>", **kw)


def block_flow(stages: Sequence[Mapping], *, title: str | None = None, per_row: int = 7, height: int = 620) -> go.Figure:
    """One block's data flow for one token: `stages` is a list of {"name", "op", "values" (a vector
    (m,) or a channel × state matrix (m, k)), "signed"}; each is drawn as a heatmap (rows: channels),
    in order, left to right and then on the next row, with arrows between them.

    The layout is written out directly (not with make_subplots): 14 panels through plotly's
    validators take most of a second on a CPU, this way a few milliseconds."""
    n = len(stages)
    if n == 0:
        raise ValueError("block_flow: argument 'stages' must hold at least one stage; got none.")
    rows = math.ceil(n / per_row)
    cols = min(per_row, n)
    # about 90 px between rows for the two-line titles, never more than 40 % of the height in all
    gap_x, gap_y = min(0.045, 0.4 / max(1, cols - 1)), min(0.16, 90 / height, 0.4 / max(1, rows - 1))
    w = (1 - gap_x * (cols - 1)) / cols
    h = (1 - gap_y * (rows - 1)) / rows
    layout, notes, data = {}, [], []
    for i, s in enumerate(stages):
        r, c = divmod(i, per_row)
        x0, y1 = c * (w + gap_x), 1 - r * (h + gap_y)
        ax = "" if i == 0 else str(i + 1)
        layout[f"xaxis{ax}"] = dict(domain=[x0, min(1.0, x0 + w)], anchor=f"y{ax}", showticklabels=False, showgrid=False,
                                    zeroline=False, fixedrange=True)
        layout[f"yaxis{ax}"] = dict(domain=[max(0.0, y1 - h), y1], anchor=f"x{ax}", autorange="reversed", showgrid=False,
                                    zeroline=False, fixedrange=True, tickfont=dict(size=9))
        data.append(_panel(s["values"], s.get("signed", True), ax))
        notes.append(dict(text=f"<b>{i + 1}. {s['name']}</b><br><sub>{s['op']}</sub>", x=x0 + w / 2, y=y1, xref="paper",
                          yref="paper", xanchor="center", yanchor="bottom", yshift=6, showarrow=False, font=dict(size=11)))
        if c + 1 < per_row and i + 1 < n and per_row > 2:  # an arrow to the next panel of the row (two per row:
            # a phone's gap is all tick labels; the numbered titles give the order)
            notes.append(dict(text="➜", x=x0 + w + gap_x * 0.05, y=y1 - h / 2, xref="paper", yref="paper",
                              xanchor="left", showarrow=False, font=dict(size=12, color="#6b7280")))  # clear of the tick labels
    fig = go.Figure(data=data, layout=dict(annotations=notes, **layout))
    style(fig, title, height=height)
    if not title:
        fig.update_layout(margin=dict(t=60))  # room for the panels' two-line titles (with a title: style's pad)
    return fig


def state_update(before, decay, write, after, *, title: str | None = None, height: int = 360) -> go.Figure:
    """h_{s−1} ⊙ Ā_s + write_s = h_s: four (channels, state entries) matrices side by side, entries on
    the rows (n) and channels along x (e); one diverging scale for the three states/writes."""
    mats = [torch.as_tensor(m).detach().cpu().double() for m in (before, decay, write, after)]
    zmax = max(float(m.abs().max()) for m in (mats[0], mats[2], mats[3])) or 1.0
    names = ["before h<sub>s−1</sub>", "⊙ decay Ā<sub>s</sub>", "+ write Δ·B·u", "= after h<sub>s</sub>"]
    gap = 0.06
    w = (1 - 3 * gap) / 4
    layout, data, notes = {}, [], []
    for i, m in enumerate(mats):
        ax, x0 = ("" if i == 0 else str(i + 1)), i * (w + gap)
        kw = (dict(colorscale=SEQUENTIAL, zmin=0, zmax=1, showscale=False)  # 0 (dark): forgets, 1 (yellow): keeps
              if i == 1 else dict(colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax, showscale=i == 3,
                                  colorbar=dict(title="h", thickness=10)))
        data.append(dict(type="heatmap", z=m.T.numpy(), xaxis=f"x{ax}", yaxis=f"y{ax}",
                         hovertemplate="channel %{x}, entry %{y}: %{z:.4g}<extra></extra>", **kw))
        layout[f"xaxis{ax}"] = dict(domain=[x0, min(1.0, x0 + w)], anchor=f"y{ax}", title=dict(text="channel"), fixedrange=True)
        layout[f"yaxis{ax}"] = dict(domain=[0, 0.86], anchor=f"x{ax}", fixedrange=True,
                                    title=dict(text="state entry n" if i == 0 else ""))
        notes.append(dict(text=names[i], x=x0 + w / 2, y=0.88, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font=dict(size=13)))
    fig = go.Figure(data=data, layout=dict(annotations=notes, **layout))
    return style(fig, title, height=height)


def delta_by_channel(delta, typical, *, title: str | None = None, height: int = 320) -> go.Figure:
    """Δ of every channel at the chosen token (bars) and each channel's median Δ over the text (a line),
    on a log scale: above the line the token is taken in more than usual (the state forgets faster)."""
    d, m = _np(delta), _np(typical)
    ch = list(range(len(d)))
    fig = go.Figure([go.Bar(x=ch, y=d, name="Δ at this token", marker_color=COLORS[0]),
                     go.Scatter(x=ch, y=m, name="median Δ over the text", mode="lines", line=dict(color=COLORS[1], width=1.5))])
    style(fig, title, x="channel", y="Δ (log scale)", height=height)
    fig.update_yaxes(type="log")
    fig.update_layout(legend=LEGEND_BELOW)  # under the plot: inside it, a phone's title runs into it
    return fig


def kept_over_time(kept: Mapping[str, tuple], *, title: str | None = None, height: int = 320) -> go.Figure:
    """{layer: (positions, fraction)}: ‖Π Ā · write_s‖ / ‖write_s‖ at each later position t."""
    fig = go.Figure()
    for i, (name, (pos, frac)) in enumerate(kept.items()):
        fig.add_trace(go.Scatter(x=_np(pos), y=_np(frac), name=name, mode="lines+markers", marker=dict(size=4),
                                 line=dict(color=COLORS[i % len(COLORS)])))
    style(fig, title, x="position t (bytes read)", y="fraction of the write still in h_t", height=height)
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(legend=LEGEND_BELOW)  # under the plot: inside it, a phone's title runs into it
    return fig


def next_token_bars(labels: Sequence[str], probs, actual: str | None = None, *, title: str | None = None,
                    height: int = 300) -> go.Figure:
    """The most likely next tokens (most likely on top), the one that actually came next in red."""
    p = _np(probs)
    colors = [COLORS[1] if actual is not None and lab == actual else COLORS[0] for lab in labels]
    ylab = [f"{i + 1}. {lab}" for i, lab in enumerate(labels)]
    fig = go.Figure(go.Bar(x=p, y=ylab, orientation="h", marker_color=colors, text=[f"{v:.1%}" for v in p],
                           textposition="auto", hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    style(fig, title, x="probability", height=height)
    fig.update_yaxes(autorange="reversed", fixedrange=True)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", fixedrange=True)
    return fig


def memory_by_position(positions, series: Mapping[str, Sequence[float]], now: int, *, title: str | None = None,
                       height: int = 400) -> go.Figure:
    """Bytes held after each position for each model (lines), with the current position marked."""
    x = _np(positions)
    fig = go.Figure()
    top = 1.0
    for i, (name, ys) in enumerate(series.items()):
        y = _np(ys)
        top = max(top, max(y))
        at = min(range(len(x)), key=lambda k: abs(x[k] - now))
        fig.add_trace(go.Scatter(x=x, y=y, name=f"{name}: {human_bytes(y[at])}", mode="lines",
                                 line=dict(color=COLORS[i % len(COLORS)], width=2.5)))
    fig.add_trace(go.Scatter(x=[now, now], y=[0, 1.04 * top], mode="lines", line=dict(color="#111827", dash="dot"),
                             name=f"now: {now} bytes read", hoverinfo="skip"))
    style(fig, title, x="position (bytes read)", y="bytes held for decoding", height=height)
    fig.update_yaxes(range=[0, 1.08 * top])
    fig.update_layout(legend=LEGEND_BELOW)
    return fig


def reading_player(h, labels: Sequence[str], entry_labels: Sequence[str], *, start: int | None = None,
                   max_frames: int = 60, title: str | None = None, height: int = 520) -> go.Figure:
    """Play through a text: the state h (T, m) after each byte as a heatmap (bytes along x, the m state
    entries down), a marker at the current byte, and the state vector there as bars; ▶ animates the
    bars and the marker over at most `max_frames` evenly spaced bytes (the first and last included).

    The same picture as `viz.ssm.state_player`, written as plain dicts with numpy arrays: plotly
    validates 60 frames of them in milliseconds instead of most of a second.
    """
    h = torch.as_tensor(h).detach().cpu().double()
    if h.dim() != 2 or h.shape[0] != len(labels) or h.shape[1] != len(entry_labels):
        raise ValueError(f"reading_player: argument 'h' must be (T, m) = ({len(labels)}, {len(entry_labels)}); "
                         f"got shape {tuple(h.shape)}.")
    T, m = h.shape
    zmax = float(h.abs().max()) or 1.0
    k = max(2, min(max_frames, T))
    idx = sorted({round(i * (T - 1) / (k - 1)) for i in range(k)}) if T > 1 else [0]
    k0 = idx[-1] if start is None else min(idx, key=lambda i: abs(i - start))
    H = h.numpy()
    ys = np.arange(m)

    def marker(t):
        return dict(type="scatter", x=[t, t], y=[-0.5, m - 0.5], mode="lines", line=dict(color="#111827", width=2),
                    hoverinfo="skip", showlegend=False, xaxis="x", yaxis="y")

    def bars(t):
        return dict(type="bar", x=ys, y=H[t], marker=dict(color=diverging_colors(H[t], zmax)),
                    showlegend=False, xaxis="x2", yaxis="y2", hovertemplate="%{x}: %{y:.4g}<extra></extra>")

    heat = dict(type="heatmap", z=H.T, x=np.arange(T), y=ys, colorscale=DIVERGING, zmid=0, zmin=-zmax, zmax=zmax,
                xaxis="x", yaxis="y", hovertemplate="byte #%{x}, entry %{y}: %{z:.4g}<extra></extra>",
                colorbar=dict(title="h", len=0.55, y=1, yanchor="top"))
    # every frame redraws (else plotly drops the heatmap while it animates), every call queues after the running one
    # (an interrupted animation rejects its promise: an uncaught error in the page), so there is no pause button
    step = dict(mode="afterall", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    ticks = dict(tickmode="array", tickvals=list(range(0, m, max(1, m // 8))),
                 ticktext=[entry_labels[i] for i in range(0, m, max(1, m // 8))])
    layout = dict(
        xaxis=dict(domain=[0, 1], anchor="y", title=dict(text="position t (bytes read)")),
        yaxis=dict(domain=[0.46, 1], anchor="x", title=dict(text="state entry"), **ticks),
        xaxis2=dict(domain=[0, 1], anchor="y2", title=dict(text="state entry"), **ticks),
        yaxis2=dict(domain=[0, 0.3], anchor="x2", range=[-1.05 * zmax, 1.05 * zmax], title=dict(text="h at the byte")),
        sliders=[dict(active=idx.index(k0), x=0.1, len=0.9, y=-0.08, yanchor="top", pad=dict(t=30),
                      font=dict(color="rgba(0,0,0,0)"),
                      currentvalue=dict(prefix="byte: ", xanchor="right", font=dict(color="#111827")),
                      steps=[dict(method="animate", label=f"#{t} {labels[t]}", args=[[str(t)], step]) for t in idx])],
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.08, xanchor="left", yanchor="top",
                          pad=dict(t=38, r=8), showactive=False,
                          buttons=[dict(label="▶", method="animate",
                                        args=[None, dict(mode="afterall", fromcurrent=False,
                                                         frame=dict(duration=80, redraw=True), transition=dict(duration=0))])])])
    frames = [dict(name=str(t), data=[marker(t), bars(t)], traces=[1, 2]) for t in idx]
    fig = go.Figure(dict(data=[heat, marker(k0), bars(k0)], layout=layout, frames=frames))
    style(fig, title, height=height)
    fig.update_layout(margin=dict(b=120))
    return fig


__all__ = ["token_strip", "block_flow", "state_update", "delta_by_channel", "kept_over_time", "next_token_bars",
           "memory_by_position", "reading_player"]
