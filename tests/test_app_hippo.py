"""The HiPPO page through AppTest: defaults, every control at its extremes, typed formulas (good and
hostile), the figures' data decoded from the plotly spec and compared with the library."""

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mamba_edu import explore
from mamba_edu.formula import PRESETS, parse_formula
from mamba_edu.hippo import hippo_project
from plotly_data import tensor as arr, title

ROOT = Path(__file__).resolve().parents[1]
T, L = 3.0, 300  # as on the page
NAMES = {"legs": "LegS", "legt": "LegT", "fout": "FouT"}


def page(**widgets) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("pages/hippo.py").run()
    for key, value in widgets.items():
        widget = next(w for w in at.main if getattr(w, "key", None) == key)
        widget.set_value(value)
        at.run()
    assert not at.exception, at.exception
    return at


def charts(at) -> list:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def check(at, formula=PRESETS["two tones"], measure="legs", N=24, t=2.0, theta=1.0):
    """The three figures and the three metrics against the library."""
    signal = parse_formula(formula)
    f = signal(explore.sample_times(T, L))
    k = explore.step_at(t, T, L)
    tk = (k + 1) * T / L
    recon, curve, heat = charts(at)
    # the reconstruction: the signal, and the window rebuilt from c_k alone
    c = hippo_project(f, measure, N, T / L, theta=theta)  # (L, N)
    s, f_win, f_hat, (lo, hi) = explore.hippo_window(signal, c[k], measure, tk, theta)
    err = explore.relative_error(f_hat, f_win)
    assert title(recon) == f"{NAMES[measure]}, N = {N}, t = {tk:.2f} s: error {err:.1%}"
    sig_trace, rec_trace = recon["data"]
    assert torch.allclose(arr(rec_trace["x"]), s) and torch.allclose(arr(rec_trace["y"]), f_hat, atol=1e-9)
    xs = arr(sig_trace["x"])
    assert torch.allclose(arr(sig_trace["y"]), explore.history(signal, xs))
    rect = recon["layout"]["shapes"][0]
    assert (rect["x0"], rect["x1"]) == pytest.approx((lo, hi))
    # the error curves: all three measures, at the page's N points
    assert [tr["name"] for tr in curve["data"]] == ["LegS", "LegT", "FouT"]
    for tr, m in zip(curve["data"], NAMES):
        mems = {n: hippo_project(f, m, n, T / L, theta=theta) for n in arr(tr["x"]).long().tolist()}
        want = explore.hippo_errors_vs_N(signal, mems, m, tk, T, theta)
        assert arr(tr["y"]).tolist() == pytest.approx(list(want.values()), rel=1e-6)
    # the memory over time
    assert torch.allclose(arr(heat["data"][0]["z"]), c.T, atol=1e-9)
    # the metrics: each measure's error at this N and t
    for metric, m in zip(at.metric, NAMES):
        cm = hippo_project(f, m, N, T / L, theta=theta)
        _, fw, fh, _ = explore.hippo_window(signal, cm[k], m, tk, theta)
        assert metric.label == f"{NAMES[m]} error, N = {N}"
        assert metric.value == f"{explore.relative_error(fh, fw):.2%}"
    return err


def test_defaults():
    at = page()
    assert at.title[0].value == "HiPPO memory" and "03_hippo.ipynb" in at.caption[0].value
    err = check(at)
    assert err < 0.05  # 24 coefficients remember two seconds of two tones well


@pytest.mark.parametrize("widgets, kw", [
    (dict(hp_measure="legt"), dict(measure="legt")),
    (dict(hp_measure="fout", hp_theta=0.25), dict(measure="fout", theta=0.25)),
    (dict(hp_measure="legt", hp_theta=3.0, hp_t=3.0), dict(measure="legt", theta=3.0, t=3.0)),
    (dict(hp_N=2), dict(N=2)),
    (dict(hp_N=64, hp_measure="fout"), dict(N=64, measure="fout")),
    (dict(hp_t=0.05), dict(t=0.05)),
])
def test_controls_at_their_extremes(widgets, kw):
    check(page(**widgets), **kw)


def test_more_coefficients_remember_better():
    assert check(page(hp_N=64), N=64) < check(page(hp_N=2), N=2)


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "two tones"])
def test_presets(name):
    check(page(hp_signal=name), formula=PRESETS[name])


def test_a_typed_formula_is_used():
    at = page(hp_signal="your formula")
    at.text_input(key="hp_formula").set_value("exp(-t) * sin(2*pi*2*t) + t^2/9").run()
    assert not at.exception and not at.error
    check(at, formula="exp(-t) * sin(2*pi*2*t) + t^2/9")


@pytest.mark.parametrize("text, says", [
    ("__import__('os').system('ls')", "a call through attribute access"),
    ("t.__class__", "attribute access"),
    ("(lambda: 0)()", "a lambda"),
    ("9**9**9", "finite values at every time"),
    ("sin(2*pi*t", "a valid arithmetic expression"),
])
def test_hostile_or_wrong_formulas_are_refused_and_the_last_good_one_stays(text, says):
    at = page(hp_signal="your formula")
    at.text_input(key="hp_formula").set_value("cos(2*pi*t)").run()
    at.text_input(key="hp_formula").set_value(text).run()
    assert not at.exception
    assert len(at.error) == 1 and says in at.error[0].value and "Still showing `cos(2*pi*t)`" in at.error[0].value
    check(at, formula="cos(2*pi*t)")
