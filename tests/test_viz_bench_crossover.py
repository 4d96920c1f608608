"""mamba_edu.viz.bench: the attention crossover and the comparison of several results, on synthetic
results whose crossover is known exactly, and on the shipped H100 results."""

import math

import pytest

from mamba_edu import bench
from mamba_edu.viz import bench as vb

LENGTHS = [2**k for k in range(6, 14)]


def _results(t_scan, t_att, lengths=LENGTHS, name="GPU X", shape=(1, 64, 16)):
    b, d, n = shape
    cases = []
    for L in lengths:
        for impl, t in (("fused", t_scan), ("attention", t_att)):
            for pass_ in ("forward", "forward_backward"):
                cases.append({"impl": impl, "pass": pass_, "batch": b, "dim": d, "L": L, "N": n, "dtype": "bfloat16",
                              "status": "ok", "ms": t(L) * (3 if pass_ == "forward_backward" else 1)})
    return {"schema": bench.SCHEMA, "date": "2026-01-01 00:00 UTC", "device": {"name": name},
            "versions": {}, "floors": {}, "settings": {"batch": b, "dim": d, "N": n}, "cases": cases}


def test_crossover_of_a_linear_and_a_quadratic_cost_is_exact():
    # scan 0.01·L ms, attention 1e-5·L² ms: equal at L* = 1000, between measured lengths 512 and 1024
    res = bench.validate_results(_results(lambda L: 0.01 * L, lambda L: 1e-5 * L * L))
    for pass_ in ("forward", "forward_backward"):
        assert vb.crossover_length(res, pass_=pass_) == pytest.approx(1000.0, rel=1e-9)


def test_no_crossover_in_range_is_none():
    res = _results(lambda L: 0.01 * L, lambda L: 1e-9 * L * L)  # attention faster up to L = 10^7
    assert vb.crossover_length(res) is None
    res = _results(lambda L: 0.01 * L, lambda L: 1.0 * L * L)  # attention slower everywhere
    assert vb.crossover_length(res) is None


def test_attention_crossover_figure_plots_the_measured_ratios_and_marks_the_crossover():
    res = _results(lambda L: 0.01 * L, lambda L: 1e-5 * L * L)
    fig = vb.attention_crossover(res).to_dict()
    fwd, fb = fig["data"]
    assert fwd["name"] == "forward" and fb["name"] == "forward + backward"
    assert list(fwd["x"]) == LENGTHS
    assert list(fwd["y"]) == pytest.approx([1e-5 * L * L / (0.01 * L) for L in LENGTHS])
    vlines = [s for s in fig["layout"]["shapes"] if s["type"] == "line" and s["x0"] == s["x1"]]
    assert [s["x0"] for s in vlines] == pytest.approx([1000.0, 1000.0])
    assert any("L ≈ 1,000" in a["text"] for a in fig["layout"]["annotations"])
    assert fig["layout"]["xaxis"]["title"]["text"] == "sequence length L (tokens)"


def test_compare_runs_draws_one_line_per_result():
    a = _results(lambda L: 0.01 * L, lambda L: 1e-5 * L * L, name="GPU A")
    b = _results(lambda L: 0.02 * L, lambda L: 1e-5 * L * L, name="GPU B", lengths=LENGTHS[:3], shape=(2, 32, 8))
    fig = vb.compare_runs({"A": a, "B": b}, impl="fused", pass_="forward").to_dict()
    assert [t["name"] for t in fig["data"]] == ["A (batch 1, dim 64, N 16)", "B (batch 2, dim 32, N 8)"]
    assert list(fig["data"][1]["x"]) == LENGTHS[:3]
    assert list(fig["data"][1]["y"]) == pytest.approx([0.02 * L for L in LENGTHS[:3]])


def test_shipped_h100_crossover_lies_between_the_bracketing_measurements():
    path = bench.BENCH_DIR / "h100.json"
    if not path.exists():
        pytest.skip("no shipped H100 results")
    res = bench.load_results(path)
    b, d, n = vb.sweep_shape(res)
    L_star = vb.crossover_length(res)
    if L_star is None:
        return
    t = {i: {c["L"]: c["ms"] for c in bench.ok_cases(res, "forward", impl=i, batch=b, dim=d, N=n)}
         for i in ("fused", "attention")}
    below = max(L for L in t["fused"] if L <= L_star and L in t["attention"])
    above = min(L for L in t["fused"] if L > L_star and L in t["attention"])
    assert t["attention"][below] <= t["fused"][below] and t["attention"][above] > t["fused"][above]
    assert math.log2(above) - math.log2(below) == 1
