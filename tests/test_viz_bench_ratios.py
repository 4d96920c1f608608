"""The same-run comparison with the official kernel: bench.same_run_ratios and viz.bench.official_ratios."""

import copy

import pytest

from mamba_edu import bench
from mamba_edu.viz import bench as vb
from plotly_data import arr, title


def _case(impl, pass_, L, ms, peak=None, status="ok"):
    return dict(impl=impl, **{"pass": pass_}, batch=1, dim=8, L=L, N=4, dtype="bfloat16", status=status, ms=ms,
                peak_bytes=peak)


RESULTS = {"schema": bench.SCHEMA, "device": {"name": "GPU"}, "date": "2026-01-01 00:00 UTC", "versions": {},
           "floors": {"copy_bytes_per_s": 1e12, "exp_per_s": 1e12}, "cases": [_case("fused", "forward", 16, 1.0, 100), _case("official", "forward", 16, 2.5, 200),
                                   _case("fused", "forward", 32, 4.0), _case("official", "forward", 32, 2.0),
                                   _case("fused", "forward_backward", 16, 3.0),
                                   _case("official", "forward_backward", 16, 1.0, status="wrong"),
                                   _case("parallel", "forward", 16, 9.0)]}


def test_same_run_ratios_pairs_only_cases_where_both_ran():
    rows = bench.same_run_ratios(RESULTS)
    assert [(r["pass"], r["L"]) for r in rows] == [("forward", 16), ("forward", 32)]  # fwd+bwd: official wrong
    assert rows[0]["ratio"] == pytest.approx(2.5) and rows[0]["memory"] == pytest.approx(0.5)
    assert rows[1]["ratio"] == pytest.approx(0.5) and rows[1]["memory"] is None
    (par,) = bench.same_run_ratios(RESULTS, impl="parallel")
    assert (par["L"], par["ms"], par["peer_ms"]) == (16, 9.0, 2.5)
    assert bench.same_run_ratios(RESULTS, impl="triton_scan") == []


def test_official_ratios_figure_draws_every_ratio_and_marks_the_slower():
    fig = vb.official_ratios(RESULTS).to_plotly_json()
    bar = fig["data"][0]
    assert list(arr(bar["x"])) == pytest.approx([2.5, 0.5])
    assert list(bar["y"]) == ["forward 1×8×16×4", "forward 1×8×32×4"]
    assert bar["marker"]["color"][1] == "#d62728" and bar["marker"]["color"][0] != "#d62728"
    assert "1 of 2 cases slower" in title(fig)  # (the title wraps for a phone: one line here)
    no_official = copy.deepcopy(RESULTS)
    no_official["cases"] = [c for c in no_official["cases"] if c["impl"] != "official"]
    assert vb.official_ratios(no_official) is None


def test_the_recorded_h100_run_has_the_official_kernel_beside_fused():
    results = bench.load_results(bench.BENCH_DIR / "h100.json")
    rows = bench.same_run_ratios(results)
    assert len(rows) >= 20  # every shape of the full preset where both ran
    fig = vb.official_ratios(results)
    assert len(fig.data[0].x) == len(rows)


def test_the_html_report_holds_the_ratio_chart_when_official_ran(tmp_path):
    with_official = vb.write_report(RESULTS, tmp_path / "a.html").read_text()
    assert "same run (1 of 2 cases slower" in with_official.replace("\\u003cbr\\u003e", " ")
    no_official = dict(RESULTS, cases=[c for c in RESULTS["cases"] if c["impl"] != "official"])
    assert "same run (" not in vb.write_report(no_official, tmp_path / "b.html").read_text()
