"""Figures for the synthetic tasks (chapter 05): sequences and predictions, accuracy, length extrapolation.

Builders
    token_roles          the role of each token of a task sequence, for colouring (display only)
    task_sequence        a sequence as a strip of coloured cells (noise, data, marker …) with the token
                         ids written in, the targets and, optionally, each model's predictions below
    accuracy_bars        token (and sequence) accuracy per model, in %, with the chance level
    results_table        the runs of results/tasks/results.json as a table (sizes, time, accuracy)
    training_curves      evaluation accuracy during training, per run (a run's "history")
    extrapolation_curve  accuracy against the evaluated length (log axis), the training length and
                         chance marked, lengths that were not run drawn apart with their reason

Every builder takes numbers computed by `mamba_edu.tasks` / `mamba_edu.train` (or read from the
results they wrote) and returns a go.Figure; nothing here evaluates a model.

Glossary
    T         the number of tokens a model reads (L + k for selective copying)
    IGNORE    the targets' value where nothing is asked (tasks.IGNORE)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
import torch

from .. import tasks
from ._style import COLORS, style

# role -> (code, colour). Answers are drawn green when right and red when wrong.
ROLES = {"noise": (0, "#cbd5e1"), "data": (1, COLORS[0]), "marker": (2, COLORS[4]), "filler": (3, "#d6d3d1"),
         "trigger": (4, COLORS[3]), "key": (5, COLORS[0]), "right": (6, COLORS[2]), "wrong": (7, COLORS[1])}
_COLORSCALE = [[i / (len(ROLES) - 1), c] for i, (_, (_, c)) in enumerate(sorted(ROLES.items(), key=lambda r: r[1][0]))]


def _ints(v) -> list[int]:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        if v.dim() != 1:
            raise ValueError(f"expected a 1-D sequence (T,), got shape {tuple(v.shape)}")
        return [int(x) for x in v.tolist()]
    return [int(x) for x in v]


def token_roles(task: str, tokens) -> list[str]:
    """The role of each token of one sequence (T,): selective copying: noise / data / marker;
    induction heads: filler / trigger (the special token) / key (the token after its first
    appearance). For colouring only."""
    toks = _ints(tokens)
    if task == "selective-copy":
        return ["noise" if t == tasks.NOISE else "marker" if t == tasks.MARKER else "data" for t in toks]
    if task == "induction":
        roles = ["trigger" if t == tasks.SPECIAL else "filler" for t in toks]
        first = roles.index("trigger") if "trigger" in roles else None
        if first is not None and first + 1 < len(toks) - 1:
            roles[first + 1] = "key"
        return roles
    raise ValueError(f"token_roles: argument 'task' must be 'selective-copy' or 'induction'; got {task!r}.")


def task_sequence(task: str, tokens, targets, predictions: Mapping[str, object] | None = None,
                  title: str | None = None, height: int | None = None) -> go.Figure:
    """One sequence as rows of cells over the positions t = 0 … T−1:

        input     every token, coloured by its role, its id written in the cell
        target    the answer at each answer position (blank elsewhere)
        <model>   one row per entry of `predictions` {name: predicted ids (T,)}: the prediction at
                  each answer position, green when it equals the target, red when not

    tokens, targets: (T,) (targets hold tasks.IGNORE off the answers).
    """
    toks, tgts = _ints(tokens), _ints(targets)
    if len(toks) != len(tgts):
        raise ValueError(f"task_sequence: tokens and targets must have the same length; got {len(toks)} and {len(tgts)}.")
    ask = [t != tasks.IGNORE for t in tgts]
    rows, z, text = ["input"], [[ROLES[r][0] for r in token_roles(task, toks)]], [[str(t) for t in toks]]
    rows.append("target")
    z.append([ROLES["key" if task == "induction" else "data"][0] if a else None for a in ask])
    text.append([str(t) if a else "" for t, a in zip(tgts, ask)])
    for name, pred in (predictions or {}).items():
        p = _ints(pred)
        if len(p) != len(toks):
            raise ValueError(f"task_sequence: predictions of '{name}' must have length {len(toks)}; got {len(p)}.")
        rows.append(name)
        z.append([ROLES["right" if q == t else "wrong"][0] if a else None for q, t, a in zip(p, tgts, ask)])
        text.append([str(q) if a else "" for q, a in zip(p, ask)])
    fig = go.Figure(go.Heatmap(z=z[::-1], y=rows[::-1], x=list(range(len(toks))), text=text[::-1],
                               texttemplate="%{text}", textfont=dict(size=9), colorscale=_COLORSCALE,
                               zmin=0, zmax=len(ROLES) - 1, showscale=False, xgap=1, ygap=2,
                               hovertemplate="t = %{x}<br>%{y}: %{text}<extra></extra>"))
    return style(fig, title, x="position t (token)", y=None, height=height or 110 + 34 * len(rows))


def accuracy_bars(accuracy: Mapping[str, float], chance: float | None = None,
                  sequence_accuracy: Mapping[str, float] | None = None, title: str | None = None,
                  height: int = 380) -> go.Figure:
    """Bars of token accuracy (and sequence accuracy, if given) per model, in %, with a dotted line at
    chance. Values are fractions in [0, 1]."""
    names = list(accuracy)
    fig = go.Figure(go.Bar(x=names, y=[100 * float(accuracy[n]) for n in names], name="token accuracy",
                           marker_color=COLORS[0], text=[f"{100 * float(accuracy[n]):.1f} %" for n in names],
                           textposition="outside"))
    if sequence_accuracy is not None:
        fig.add_trace(go.Bar(x=names, y=[100 * float(sequence_accuracy[n]) for n in names],
                             name="sequences all right", marker_color=COLORS[2],
                             text=[f"{100 * float(sequence_accuracy[n]):.1f} %" for n in names], textposition="outside"))
    if chance is not None:
        fig.add_hline(y=100 * chance, line=dict(color="#6b7280", dash="dot"),
                      annotation_text=f"chance {100 * chance:.1f} %", annotation_position="top left")
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 112])
    return style(fig, title, x="model", y="accuracy (%)", height=height)


RESULT_COLUMNS = ("run", "mixer", "layers", "d_model", "d_state", "parameters", "steps × batch",
                  "train time (s)", "token accuracy", "sequences all right")


def results_table(runs: Mapping[str, Mapping], title: str | None = None) -> go.Figure:
    """The runs {name: entry of results.json's "runs"} as a table: sizes, training, accuracy."""
    cols: dict[str, list] = {c: [] for c in RESULT_COLUMNS}
    for name, r in runs.items():
        c = r["config"]
        cols["run"].append(name)
        cols["mixer"].append(c["model"])
        cols["layers"].append(c["n_layers"])
        cols["d_model"].append(c["d_model"])
        cols["d_state"].append(c["d_state"] if c["model"] != "attention" else f"– ({c['n_heads']} heads)")
        cols["parameters"].append(f"{r['parameters']:,}")
        cols["steps × batch"].append(f"{c['steps']} × {c['batch_size']}")
        cols["train time (s)"].append(f"{r['train_seconds']:.0f}")
        cols["token accuracy"].append(f"{100 * r['accuracy']:.1f} %")
        cols["sequences all right"].append(f"{100 * r['sequence_accuracy']:.1f} %")
    fig = go.Figure(go.Table(header=dict(values=list(RESULT_COLUMNS), fill_color="#e5e7eb", align="left"),
                             cells=dict(values=[cols[c] for c in RESULT_COLUMNS], align="left")))
    fig = style(fig, title, height=90 + 28 * len(cols["run"]))
    return fig


def training_curves(histories: Mapping[str, Sequence[Mapping]], metric: str = "accuracy",
                    chance: float | None = None, title: str | None = None, height: int = 380) -> go.Figure:
    """Evaluation `metric` (a fraction, shown in %) against the training step, one line per run;
    histories {name: [{"step": …, metric: …}, …]} as train.train records them."""
    fig = go.Figure()
    for i, (name, hist) in enumerate(histories.items()):
        fig.add_trace(go.Scatter(x=[int(h["step"]) for h in hist], y=[100 * float(h[metric]) for h in hist],
                                 name=name, mode="lines+markers", line=dict(color=COLORS[i % len(COLORS)])))
    if chance is not None:
        fig.add_hline(y=100 * chance, line=dict(color="#6b7280", dash="dot"))
    fig.update_yaxes(range=[0, 105])
    return style(fig, title, x="training step", y=f"{metric.replace('_', ' ')} (%)", height=height)


def extrapolation_curve(rows: Mapping[str, Sequence[Mapping]], train_len: int | None = None,
                        chance: float | None = None, title: str | None = None, height: int = 400) -> go.Figure:
    """Accuracy (%) against the evaluated length L on a log₂ axis, one line per model.

    rows {name: [{"length", "status", "accuracy", …}, …]} as `train.extrapolate` returns them (or as
    results.json stores them). Lengths whose status is not "ok" (too slow, cannot run, out of
    memory) are drawn as crosses on the x axis, their reason in the hover text. `train_len` marks
    the training length, `chance` the accuracy of a uniform guess.
    """
    fig = go.Figure()
    for i, (name, rs) in enumerate(rows.items()):
        ok = [r for r in rs if r["status"] == "ok"]
        skipped = [r for r in rs if r["status"] != "ok"]
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=[r["length"] for r in ok], y=[100 * float(r["accuracy"]) for r in ok], name=name,
                                 mode="lines+markers", line=dict(color=color),
                                 customdata=[r.get("seconds") or 0.0 for r in ok],
                                 hovertemplate="L = %{x}: %{y:.1f} % (%{customdata:.1f} s)<extra>" + name + "</extra>"))
        if skipped:
            fig.add_trace(go.Scatter(x=[r["length"] for r in skipped], y=[0.0] * len(skipped),
                                     name=f"{name}: not run", mode="markers",
                                     marker=dict(symbol="x", size=10, color=color), text=[r["status"] for r in skipped],
                                     hovertemplate="L = %{x}: %{text}<extra></extra>"))
    if train_len is not None:  # a trace, so that the legend names it
        fig.add_trace(go.Scatter(x=[train_len, train_len], y=[-5, 105], mode="lines", name="training length",
                                 line=dict(color="#6b7280", dash="dash", width=1), hoverinfo="skip"))
    if chance is not None:
        fig.add_hline(y=100 * chance, line=dict(color="#6b7280", dash="dot"), annotation_text="chance",
                      annotation_position="bottom right")
    lengths = sorted({int(r["length"]) for rs in rows.values() for r in rs} | ({int(train_len)} if train_len else set()))
    fig.update_xaxes(type="log", tickvals=lengths, ticktext=[f"{n:,}" for n in lengths])  # a tick per length
    fig.update_yaxes(range=[-5, 105])
    return style(fig, title, x="sequence length L (tokens, log scale)", y="accuracy (%)", height=height)


__all__ = ["ROLES", "token_roles", "task_sequence", "accuracy_bars", "RESULT_COLUMNS", "results_table",
           "training_curves", "extrapolation_curve"]
