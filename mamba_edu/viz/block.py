"""Figures for the Mamba block and inference (chapter 10): the block's anatomy, parameters by part,
the cost of decoding against the position, throughput against the batch size.

Every builder takes numbers computed by `mamba_edu.models` (or measured by the caller) and returns a
`plotly.graph_objects.Figure`; nothing here computes the math.

Glossary
    stages     records of `models.trace_block`: {"stage", "op", "shape", "parameters", "branch"}
    breakdown  {part: parameter count}, e.g. `models.parameter_breakdown(block)`
    position   how many tokens a decoder has already read (its KV cache's length, for attention)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._style import COLORS, LEGEND_BELOW, style
from .cost import _bytes_ticks, human_bytes

_BOX = dict(showarrow=False, bordercolor="#374151", borderwidth=1, borderpad=6, font=dict(size=11))


def _floats(v) -> list[float]:
    return [float(x) for x in (v.tolist() if hasattr(v, "tolist") else v)]


def block_anatomy(stages: Sequence[Mapping], title: str | None = None, height: int = 330) -> go.Figure:
    """The block as a flow of boxes, left to right, each with its output shape and parameter count;
    the gate branch (stages with branch "gate") runs below and joins at the selective scan.

    stages: the records of `mamba_edu.models.trace_block` (hover a box for its operation).
    """
    main = [s for s in stages if s.get("branch", "main") == "main"]
    gates = [s for s in stages if s.get("branch") == "gate"]
    if not main:
        raise ValueError("block_anatomy: argument 'stages' must hold at least one main-branch stage; got none.")
    pos = {s["stage"]: (float(i), 1.0) for i, s in enumerate(main)}
    names = [s["stage"] for s in main]
    join = next((n for n in names if "scan" in n), names[-1])
    for k, s in enumerate(gates):  # below, between the split (in_proj) and the join
        pos[s["stage"]] = ((1 + names.index(join)) / 2 + k, 0.0)
    fig = go.Figure()
    for s in list(main) + gates:
        x, y = pos[s["stage"]]
        shape = "(" + ", ".join(str(int(v)) for v in s["shape"]) + ")"
        params = f"{int(s['parameters']):,} params" if s["parameters"] else "no parameters"
        color = "#fef3c7" if s.get("branch") == "gate" else ("#dbeafe" if s["parameters"] else "#f3f4f6")
        fig.add_annotation(x=x, y=y, text=f"<b>{s['stage']}</b><br>{shape}<br>{params}", bgcolor=color, **_BOX)
    arrows = list(zip(names[:-1], names[1:]))
    split = names[1] if len(names) > 1 else names[0]
    arrows += [(split, g["stage"]) for g in gates] + [(g["stage"], join) for g in gates]
    for a, b in arrows:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        fig.add_annotation(x=x1 - 0.38 * (x1 - x0 != 0) * (1 if x1 > x0 else -1) if y0 == y1 else x1,
                           y=y1 if y0 == y1 else y1 - 0.22 * (1 if y1 > y0 else -1),
                           ax=x0 + 0.38 if y0 == y1 else x0, ay=y0 if y0 == y1 else y0 + 0.22 * (1 if y1 > y0 else -1),
                           xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2, arrowsize=1.2,
                           arrowwidth=1.5, arrowcolor="#6b7280", text="")
    xs = [pos[s["stage"]][0] for s in list(main) + gates]
    ys = [pos[s["stage"]][1] for s in list(main) + gates]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(size=40, opacity=0), showlegend=False,
                             text=[s.get("op", "") for s in list(main) + gates], hovertemplate="%{text}<extra></extra>"))
    fig.update_xaxes(visible=False, range=[-0.6, len(main) - 0.4])
    fig.update_yaxes(visible=False, range=[-0.6, 1.6])
    return style(fig, title, height=height)


def parameters_by_part(breakdowns: Mapping[str, Mapping[str, float]], title: str | None = None,
                       x_title: str = "parameters", height: int | None = None) -> go.Figure:
    """Stacked horizontal bars: one bar per model {model: {part: count}}, one segment per part (a part
    keeps its colour across bars); hover shows the count and its share of the bar."""
    parts: list[str] = []
    for bd in breakdowns.values():
        parts += [p for p in bd if p not in parts]
    models = list(breakdowns)
    fig = go.Figure()
    for i, part in enumerate(parts):
        vals = [float(breakdowns[m].get(part, 0)) for m in models]
        share = [100 * v / max(sum(breakdowns[m].values()), 1) for v, m in zip(vals, models)]
        fig.add_trace(go.Bar(y=models, x=vals, name=part, orientation="h", marker_color=COLORS[i % len(COLORS)],
                             customdata=share, hovertemplate="%{y}: " + part + " %{x:,} (%{customdata:.1f} %)<extra></extra>"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed")
    style(fig, title, x=x_title, height=height or 160 + 45 * len(models))
    fig.update_layout(legend=LEGEND_BELOW, margin=dict(b=110))
    return fig


def _two_panels(titles: Sequence[str]):
    return make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.12)


def _legend_below(fig: go.Figure) -> go.Figure:
    """Legend under the panels, clear of the subplot titles."""
    fig.update_layout(legend=LEGEND_BELOW, margin=dict(b=110))
    return fig


def decode_cost(positions: Sequence[float], memory: Mapping[str, Sequence[float]], seconds: Mapping[str, Sequence[float]],
                title: str | None = None, log: bool = True, height: int = 400) -> go.Figure:
    """Decoding cost against the position t, two panels: the memory a decoder carries (bytes, left)
    and the time of one step (ms, right); one colour per model, the same in both panels."""
    names = list(dict.fromkeys([*memory, *seconds]))
    color = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)}
    fig = _two_panels(["memory carried to the next token", "time of one decoding step"])
    shown: list[float] = []
    for name, v in memory.items():
        ys = _floats(v)
        shown += ys
        fig.add_trace(go.Scatter(x=_floats(positions), y=ys, name=name, legendgroup=name, mode="lines+markers",
                                 line=dict(color=color[name]), text=[human_bytes(y) for y in ys],
                                 hovertemplate="t = %{x:,}: %{text}<extra>" + name + "</extra>"), row=1, col=1)
    for name, v in seconds.items():
        fig.add_trace(go.Scatter(x=_floats(positions), y=[1e3 * y for y in _floats(v)], name=name, legendgroup=name,
                                 showlegend=name not in memory, mode="lines+markers", line=dict(color=color[name]),
                                 hovertemplate="t = %{x:,}: %{y:.3g} ms<extra>" + name + "</extra>"), row=1, col=2)
    style(fig, title, height=height)
    for col in (1, 2):
        fig.update_xaxes(title_text="position t (tokens already read)", type="log" if log else None, row=1, col=col)
    ticks, text = _bytes_ticks(shown, log)
    fig.update_yaxes(title_text="bytes per sequence", type="log" if log else None, tickvals=ticks, ticktext=text,
                     row=1, col=1)
    fig.update_yaxes(title_text="ms per token (median)", type="log" if log else None, row=1, col=2)
    return _legend_below(fig)


def throughput_vs_batch(batch_sizes: Sequence[float], tokens_per_second: Mapping[str, Sequence[float]],
                        memory: Mapping[str, Sequence[float]] | None = None, title: str | None = None,
                        height: int = 400) -> go.Figure:
    """Decoding throughput (tokens/s, left) and, if given, the memory of the decoding states (bytes,
    right) against the batch size, log–log; one colour per model."""
    names = list(dict.fromkeys([*tokens_per_second, *(memory or {})]))
    color = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)}
    fig = _two_panels(["tokens generated per second", "memory of the decoding states"]) if memory else go.Figure()
    where = dict(row=1, col=1) if memory else {}
    for name, v in tokens_per_second.items():
        fig.add_trace(go.Scatter(x=_floats(batch_sizes), y=_floats(v), name=name, legendgroup=name, mode="lines+markers",
                                 line=dict(color=color[name]),
                                 hovertemplate="batch %{x}: %{y:,.0f} tokens/s<extra>" + name + "</extra>"), **where)
    shown: list[float] = []
    for name, v in (memory or {}).items():
        ys = _floats(v)
        shown += ys
        fig.add_trace(go.Scatter(x=_floats(batch_sizes), y=ys, name=name, legendgroup=name,
                                 showlegend=name not in tokens_per_second, mode="lines+markers",
                                 line=dict(color=color[name]), text=[human_bytes(y) for y in ys],
                                 hovertemplate="batch %{x}: %{text}<extra>" + name + "</extra>"), row=1, col=2)
    style(fig, title, height=height)
    fig.update_xaxes(title_text="batch size (sequences decoded together)", type="log")
    fig.update_yaxes(title_text="tokens per second", type="log", **where)
    if memory:
        ticks, text = _bytes_ticks(shown, True)
        fig.update_yaxes(title_text="bytes", type="log", tickvals=ticks, ticktext=text, row=1, col=2)
    return _legend_below(fig)


__all__ = ["block_anatomy", "parameters_by_part", "decode_cost", "throughput_vs_batch"]
