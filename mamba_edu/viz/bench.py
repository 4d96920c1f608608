"""Figures for benchmark results (`mamba-edu bench`), shared by the HTML report, notebook 09 and the
app's Kernel timing page.

Builders
    time_vs_length        median time against L per implementation (log–log), forward or fwd+bwd
    speedup_vs_length     each implementation's speed-up over a baseline implementation, against L
    floor_fractions       how close each run gets to the copy-bandwidth and exp2 floors (1 = at the floor)
    attention_crossover   time(attention) / time(scan) against L per pass, the crossovers marked
    compare_runs          one implementation's time against L in several results (GPUs side by side)
    summary_table         a plain-text table of the timed cases (for the terminal)
    write_report          the HTML report: the three figures per pass, the floors and the environment
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import plotly.graph_objects as go

from ..bench import crossover_length, sweep_shape  # noqa: F401 (re-exported: the figures' callers use them)
from ._style import COLORS, style

ORDER = ["naive", "parallel", "triton_simple", "triton_scan", "fused", "official", "attention"]


def _color(impl: str) -> str:
    return COLORS[ORDER.index(impl) % len(COLORS)] if impl in ORDER else COLORS[-1]


def _series(results: dict, pass_: str, batch: int, dim: int, N: int) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for c in results["cases"]:
        if (c["status"] == "ok" and c["pass"] == pass_ and c["batch"] == batch and c["dim"] == dim
                and c["N"] == N):
            by.setdefault(c["impl"], []).append(c)
    return {k: sorted(v, key=lambda c: c["L"]) for k, v in sorted(by.items(), key=lambda kv: _rank(kv[0]))}


def _rank(impl: str) -> int:
    return ORDER.index(impl) if impl in ORDER else len(ORDER)


def _label(results: dict) -> str:
    return f"{results['device']['name']}, {results['date']}"


def time_vs_length(results: dict, pass_: str = "forward", shape: tuple | None = None,
                   height: int = 420) -> go.Figure:
    """Median time (ms) against L, one line per implementation, log–log."""
    b, d, n = shape or sweep_shape(results)
    fig = go.Figure()
    for impl, cases in _series(results, pass_, b, d, n).items():
        fig.add_trace(go.Scatter(x=[c["L"] for c in cases], y=[c["ms"] for c in cases], name=impl,
                                 mode="lines+markers", line=dict(color=_color(impl))))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    what = "forward" if pass_ == "forward" else "forward + backward"
    return style(fig, f"{what}: time against L (batch {b}, dim {d}, N {n}; {_label(results)})",
                 x="sequence length L (tokens)", y="median time (ms)", height=height)


def speedup_vs_length(results: dict, baseline: str = "parallel", pass_: str = "forward",
                      shape: tuple | None = None, height: int = 380) -> go.Figure:
    """time(baseline) / time(impl) against L: above 1, faster than the baseline."""
    b, d, n = shape or sweep_shape(results)
    series = _series(results, pass_, b, d, n)
    base = {c["L"]: c["ms"] for c in series.get(baseline, [])}
    fig = go.Figure()
    for impl, cases in series.items():
        pts = [(c["L"], base[c["L"]] / c["ms"]) for c in cases if c["L"] in base]
        if pts and impl != baseline:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=impl,
                                     mode="lines+markers", line=dict(color=_color(impl))))
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return style(fig, f"speed-up over {baseline} ({'forward' if pass_ == 'forward' else 'forward + backward'})",
                 x="sequence length L (tokens)", y=f"time({baseline}) / time (×)", height=height)


def floor_fractions(results: dict, pass_: str = "forward", shape: tuple | None = None,
                    height: int = 440) -> go.Figure:
    """Fraction of the copy-bandwidth floor (solid) and of the exp2 floor (dashed) each run reaches."""
    b, d, n = shape or sweep_shape(results)
    fig = go.Figure()
    for impl, cases in _series(results, pass_, b, d, n).items():
        if impl == "attention":
            continue
        xs = [c["L"] for c in cases]  # one legend entry per implementation; the line style says which floor
        fig.add_trace(go.Scatter(x=xs, y=[c.get("fraction_bandwidth") for c in cases], name=impl, legendgroup=impl,
                                 mode="lines+markers", line=dict(color=_color(impl)),
                                 hovertemplate="L = %{x}: %{y:.3g} of the bandwidth floor<extra>" + impl + "</extra>"))
        fig.add_trace(go.Scatter(x=xs, y=[c.get("fraction_exp") for c in cases], name=f"{impl}: exp2",
                                 legendgroup=impl, showlegend=False, mode="lines+markers",
                                 line=dict(color=_color(impl), dash="dash"),
                                 hovertemplate="L = %{x}: %{y:.3g} of the exp2 floor<extra>" + impl + "</extra>"))
    for label, dash in (("solid: bytes floor", None), ("dashed: exp2 floor", "dash")):
        fig.add_trace(go.Scatter(x=[None], y=[None], name=label, mode="lines", line=dict(color="#6b7280", dash=dash)))
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return style(fig, "how close to the floors (floor time / measured time; 1 = at the floor)",
                 x="sequence length L (tokens)", y="fraction of the floor", height=height)


def summary_table(results: dict) -> str:
    """One line per timed or refused case, for the terminal."""
    rows = [f"{'impl':14} {'pass':16} {'b':>3} {'dim':>5} {'L':>7} {'N':>4} {'status':8} {'ms':>10} "
            f"{'GB/s':>8} {'bw floor':>8} {'exp floor':>9}"]
    for c in results["cases"]:
        if c["status"] == "skipped":
            continue
        ms = f"{c['ms']:.4f}" if c.get("ms") else "-"
        gbs = f"{c['bytes_per_s'] / 1e9:.0f}" if c.get("bytes_per_s") else "-"
        fb = f"{c['fraction_bandwidth']:.3f}" if c.get("fraction_bandwidth") else "-"
        fe = f"{c['fraction_exp']:.3f}" if c.get("fraction_exp") else "-"
        rows.append(f"{c['impl']:14} {c['pass']:16} {c['batch']:>3} {c['dim']:>5} {c['L']:>7} {c['N']:>4} "
                    f"{c['status']:8} {ms:>10} {gbs:>8} {fb:>8} {fe:>9}")
    return "\n".join(rows)


def write_report(results: dict, path) -> Path:
    """An HTML page with the figures of both passes, the floors and the environment."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = results["floors"]
    head = (f"<h1>mamba-edu bench: {results['device']['name']}</h1><p>{results['date']}; "
            f"versions {results['versions']}; copy bandwidth {f['copy_bytes_per_s'] / 1e12:.2f} TB/s "
            f"(read + written); exp2 {f['exp_per_s'] / 1e12:.2f} T/s. Every timed case was first checked "
            f"against a float64 reference in the same run.</p>")
    parts = [head]
    first = True
    for pass_ in ("forward", "forward_backward"):
        for fig in (time_vs_length(results, pass_), speedup_vs_length(results, "parallel", pass_),
                    floor_fractions(results, pass_)):
            if fig.data:
                parts.append(fig.to_html(full_html=False, include_plotlyjs="cdn" if first else False))
                first = False
    ratios = official_ratios(results)
    if ratios is not None:  # the official kernel was installed where the benchmark ran
        parts.append(ratios.to_html(full_html=False, include_plotlyjs="cdn" if first else False))
    parts.append("<pre>" + summary_table(results) + "</pre>")
    path.write_text("<html><head><meta charset='utf-8'></head><body>" + "\n".join(parts) + "</body></html>")
    return path


def attention_crossover(results: dict, impl: str = "fused", passes: tuple = ("forward", "forward_backward"),
                        shape: tuple | None = None, height: int = 380) -> go.Figure:
    """time(attention) / time(impl) against L, one line per pass: above 1 the scan is faster. A dotted
    vertical line marks each pass's `crossover_length`."""
    b, d, n = shape or sweep_shape(results)
    fig = go.Figure()
    for i, pass_ in enumerate(passes):
        series = _series(results, pass_, b, d, n)
        scan = {c["L"]: c["ms"] for c in series.get(impl, [])}
        att = {c["L"]: c["ms"] for c in series.get("attention", [])}
        Ls = sorted(set(scan) & set(att))
        if not Ls:
            continue
        what = "forward" if pass_ == "forward" else "forward + backward"
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=Ls, y=[att[L] / scan[L] for L in Ls], name=what, mode="lines+markers",
                                 line=dict(color=color)))
        L_star = crossover_length(results, impl, "attention", pass_, (b, d, n))
        if L_star is not None:  # (a log axis places annotations at log10 of the value)
            fig.add_vline(x=L_star, line=dict(color=color, dash="dot", width=1.5))
            fig.add_annotation(x=math.log10(L_star), y=0.98 - 0.08 * i, yref="paper", text=f"{what}: L ≈ {L_star:,.0f}",
                               showarrow=False, xanchor="right", font=dict(size=11, color=color))
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return style(fig, f"attention against the {impl} scan (batch {b}, dim {d}, N {n}; {_label(results)})",
                 x="sequence length L (tokens)", y=f"time(attention) / time({impl}) (×)", height=height)


def compare_runs(runs: Mapping[str, dict], impl: str = "fused", pass_: str = "forward",
                 height: int = 400) -> go.Figure:
    """Median time of `impl` against L in several benchmark results {label: results}, one line each,
    each at its own sweep shape (given in the legend)."""
    fig = go.Figure()
    for i, (label, res) in enumerate(runs.items()):
        b, d, n = sweep_shape(res)
        cases = _series(res, pass_, b, d, n).get(impl, [])
        if cases:
            fig.add_trace(go.Scatter(x=[c["L"] for c in cases], y=[c["ms"] for c in cases],
                                     name=f"{label} (batch {b}, dim {d}, N {n})", mode="lines+markers",
                                     line=dict(color=COLORS[i % len(COLORS)])))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    what = "forward" if pass_ == "forward" else "forward + backward"
    return style(fig, f"{impl}, {what}: the same implementation on each machine", x="sequence length L (tokens)",
                 y="median time (ms)", height=height)


def official_ratios(results: dict, impl: str = "fused", height: int | None = None) -> go.Figure | None:
    """official time / `impl` time for every case where both ran in this one result (`bench.same_run_ratios`),
    one horizontal bar per case on a log axis: right of 1, `impl` is faster; the target is 2. Red bars: slower.
    None when the result has no such case (the official kernel was not installed where it ran)."""
    from ..bench import same_run_ratios

    rows = same_run_ratios(results, impl=impl)
    if not rows:
        return None
    labels = [f"{'fwd+bwd' if r['pass'] == 'forward_backward' else 'forward'} {r['batch']}×{r['dim']}×{r['L']}×{r['N']}"
              for r in rows]
    colors = [COLORS[2] if r["ratio"] >= 2 else (COLORS[0] if r["ratio"] >= 1 else "#d62728") for r in rows]
    hover = [f"{lab}<br>{impl} {r['ms']:.3f} ms, official {r['peer_ms']:.3f} ms<br>ratio {r['ratio']:.2f}"
             + ("" if r["memory"] is None else f"<br>peak memory {r['memory']:.2f}× official's")
             for lab, r in zip(labels, rows)]
    fig = go.Figure(go.Bar(y=labels, x=[r["ratio"] for r in rows], orientation="h", marker_color=colors,
                           hovertext=hover, hoverinfo="text", name="official / " + impl))
    fig.add_vline(x=1.0, line_dash="dot", line_color="gray")
    fig.add_vline(x=2.0, line_dash="dash", line_color=COLORS[2])
    fig.update_xaxes(type="log")
    fig.update_yaxes(autorange="reversed", automargin=True)
    slower = sum(r["ratio"] < 1 for r in rows)
    return style(fig, f"official time / {impl} time, same run ({slower} of {len(rows)} cases slower; "
                      f"> 1: {impl} faster, dashed: 2×)", x="", y="",
                 height=height or max(320, 22 * len(rows) + 120))
