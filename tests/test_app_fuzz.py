"""The app fuzzed through AppTest, as a hostile but fair user: typed text that becomes many byte tokens,
formulas that are finite in the middle of the window and not at its ends, and the time a rerun takes.

Every case asserts no exception, the charts present (or a clear refusal), and records how long the run
took in build/app_timings.json (benchmark-style: the test fails only 10× above the bound the issue sets,
0.5 s for a rerun at defaults and 3 s at any setting, so a busy machine does not make it flaky).
"""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "build" / "app_timings.json"
RERUN_DEFAULTS_S, ANY_SETTING_S, SLACK = 0.5, 3.0, 10.0
TIMES: dict[str, float] = {}


def _record(name: str, seconds: float, bound: float) -> None:
    TIMES[name] = round(seconds, 3)
    REPORT.parent.mkdir(exist_ok=True)
    old = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**old, **TIMES}, indent=1, ensure_ascii=False) + "\n")
    assert seconds <= SLACK * bound, f"{name}: {seconds:.2f} s, more than {SLACK:g}× the bound of {bound} s"


def _timed_run(at) -> float:
    t0 = time.perf_counter()
    at.run()
    return time.perf_counter() - t0


def _ok(at):
    assert not at.exception, at.exception
    return at


def _page(file: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=300).run()
    at.switch_page(f"pages/{file}").run()
    return _ok(at)


@pytest.mark.parametrize("file", ["home.py", "state_explorer.py", "hippo.py", "selection.py", "scans.py",
                                  "memory.py", "kernel_timing.py"])
def test_every_page_reruns_at_defaults_from_its_caches(file):
    at = _page(file)
    _ok(at)
    _record(f"rerun at defaults: {file}", min(_timed_run(at) for _ in range(3)), RERUN_DEFAULTS_S)
    assert not at.error, [e.value for e in at.error]


# text the tokenizer turns into one token per UTF-8 byte: an emoji is 4 tokens, an accented letter 2
TEXTS = {
    "512 '#'": ("#" * 512, True),
    "128 emoji (512 byte tokens)": ("😀" * 128, True),
    "256 accented letters (512 byte tokens)": ("é" * 256, True),
    "mixed scripts": ("αβγ ..m.. שלום 漢字 ????", True),
    "control characters": ("\x00\x01\t\n" * 8, True),
    "129 emoji (516 byte tokens)": ("😀" * 129, False),
    "513 ASCII characters (the box keeps 512)": ("a" * 513, True),
}


@pytest.mark.parametrize("case", list(TEXTS))
def test_typed_text_for_a_trained_model_is_bounded_by_its_tokens(case):
    text, accepted = TEXTS[case]
    at = _page("state_explorer.py")
    at.selectbox(key="se_system").set_value("trained Mamba: copy-mamba").run()
    at.radio(key="se_source").set_value("text").run()
    at.text_input(key="se_text_selective-copy").set_value(text)
    seconds = _timed_run(at)
    _ok(at)
    if accepted:
        assert not at.error and not at.warning, [w.value for w in at.warning]
        assert len(at.get("plotly_chart")) == 4
        _record(f"state explorer, copy-mamba, text: {case}", seconds, ANY_SETTING_S)
        _record(f"state explorer, copy-mamba, text: {case} (rerun)", _timed_run(at), RERUN_DEFAULTS_S)
    else:
        assert not at.get("plotly_chart") and "this page reads at most 512" in at.warning[0].value
        assert "tokens" in at.warning[0].value


def test_typed_text_of_an_lti_system_counts_byte_tokens():
    at = _page("state_explorer.py")
    at.selectbox(key="se_input").set_value("text").run()
    at.text_input(key="se_text").set_value("😀" * 129).run()
    _ok(at)
    assert not at.get("plotly_chart") and "516 tokens" in at.warning[0].value
    at.text_input(key="se_text").set_value("😀" * 128)
    seconds = _timed_run(at)
    _ok(at)
    assert len(at.get("plotly_chart")) == 4 and not at.warning
    _record("state explorer, HiPPO-LegS, text: 128 emoji", seconds, ANY_SETTING_S)


# finite at the midpoints the projection samples, not on the grid the page draws (t = 0 or t = T = 3)
BAD_FORMULAS = ["log(t)", "1/t", "t^-0.5", "1/(t-3)", "sqrt(t-1)", "exp(exp(10*t))", "1e300*t", "tan(pi*t)",
                "0/0", "t**1e400"]


@pytest.mark.parametrize("formula", BAD_FORMULAS)
def test_a_formula_that_cannot_be_drawn_keeps_the_last_valid_one(formula):
    at = _page("hippo.py")
    at.selectbox(key="hp_signal").set_value("your formula").run()
    at.text_input(key="hp_formula").set_value("sin(2*pi*t)").run()
    _ok(at)
    assert not at.error and len(at.get("plotly_chart")) == 3
    at.text_input(key="hp_formula").set_value(formula)
    seconds = _timed_run(at)
    _ok(at)
    assert len(at.error) == 1 and "Still showing `sin(2*pi*t)`" in at.error[0].value, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3  # the charts of the last valid formula stay
    assert at.session_state["hp_last_formula"] == "sin(2*pi*t)"
    _record(f"hippo, formula {formula}", seconds, ANY_SETTING_S)
    at.selectbox(key="hp_signal").set_value("chirp").run()  # a preset, and back: still drawn
    at.selectbox(key="hp_signal").set_value("your formula").run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 3


@pytest.mark.parametrize("measure", ["legs", "legt", "fout"])
def test_a_formula_with_a_jump_at_every_time_and_window(measure):
    """A finite formula on the whole grid gives charts at the extremes of time and window length."""
    at = _page("hippo.py")
    at.selectbox(key="hp_signal").set_value("your formula").run()
    at.text_input(key="hp_formula").set_value("floor(4*t) - 1e5*step(t-2.9)").run()
    at.radio(key="hp_measure").set_value(measure).run()
    for t, theta in ((0.05, 0.25), (3.0, 3.0), (0.05, 3.0), (3.0, 0.25)):
        at.slider(key="hp_t").set_value(t)
        at.slider(key="hp_theta").set_value(theta)
        seconds = _timed_run(at)
        _ok(at)
        assert not at.error and len(at.get("plotly_chart")) == 3, [e.value for e in at.error]
        _record(f"hippo, {measure}, t = {t}, θ = {theta}", seconds, ANY_SETTING_S)
