"""The Selection page through Streamlit's AppTest: defaults, every control at its extremes, decoded figures
compared with the library, and a rerun at defaults served from the cache."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mamba_edu import probe, tasks
from mamba_edu.train import load_checkpoint, predict_forward
from app_rerun import rerun_from_cache
from plotly_data import arr, title

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
PAGE = str(APP / "pages" / "selection.py")
CKPT = ROOT / "results" / "tasks" / "checkpoints"
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))  # the pages import _common, as they do under app/Home.py

pytestmark = pytest.mark.skipif(not (CKPT / "copy-mamba.pt").exists(), reason="results/tasks not generated")


def start():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    return ok(at)


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def figures(at):
    """{title: decoded plotly spec} of the page's charts."""
    out = {}
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        out[title(spec)] = spec
    return out


def metrics(at):
    return {m.label: m.value for m in at.metric}


def expected(seed=0, L=64, lti="copy-s4d", layer=0, n_channels=16):
    """What the page should show, computed here from the library."""
    mamba, meta = load_checkpoint(CKPT / "copy-mamba")
    s4d, _ = load_checkpoint(CKPT / lti)
    seq = tasks.selective_copying(1, seq_len=L, n_data=4, vocab_size=meta["config"]["vocab_size"], seed=seed)
    tr = probe.trace_layer(mamba, seq.tokens, layer)
    tr_lti = probe.trace_layer(s4d, seq.tokens, layer)
    memory = probe.most_selective(tr, n_channels)
    right = [int((predict_forward(m, seq.tokens, seq.answer_mask)[0][seq.answer_mask[0]] == seq.answers[0]).sum())
             for m in (mamba, s4d)]
    return seq, tr, tr_lti, memory, right


def test_defaults_show_both_models_on_one_input():
    at = start()
    assert at.title[0].value == "Selection"
    seq, tr, tr_lti, memory, right = expected()
    m = metrics(at)
    assert m["Answers right (Mamba | LTI)"] == f"{right[0]}/4 | {right[1]}/4"
    share_mamba, share_lti = [int(v.rstrip("%")) for v in m["Data in the state at t (Mamba | LTI)"].split(" | ")]
    assert share_mamba > 60 > 40 > share_lti  # the selective model's state holds the data, the LTI's the noise
    figs = figures(at)
    assert len(figs) == 5

    # the input strip: the tokens written in, a row per model
    strip = figs["Input, targets and both models' answers"]["data"][0]
    assert strip["y"] == ["copy-s4d (LTI)", "copy-mamba (selective)", "target", "input"]
    assert strip["text"][3] == [str(t) for t in seq.tokens[0].tolist()]

    # the heatmap is log10 Δ of the 16 most selective channels
    heat = figs["Mamba, layer 1: its 16 most selective channels"]["data"][0]
    np.testing.assert_allclose(arr(heat["z"]), np.log10(np.maximum(tr.delta[0, memory].double().numpy(),
                                                                   probe.DELTA_FLOOR)), rtol=1e-5, atol=1e-6)
    assert heat["y"] == [f"ch {c}" for c in memory.tolist()]

    # per-token Δ: the LTI line is flat, the selective one is not
    delta = figs["Per-token Δ, layer 1"]["data"]
    np.testing.assert_allclose(arr(delta[0]["y"]), probe.typical_delta(tr, memory)[0].numpy(), rtol=1e-5)
    lti_line = arr(delta[1]["y"])
    assert np.ptp(lti_line) == 0 and np.ptp(np.log10(arr(delta[0]["y"]))) > 2

    # the kept bars at t = L − 1, normalised per model
    bars = figs["What the state holds at t = 63"]["data"]
    kn = probe.kept_norm(tr_lti, 63)[0]
    np.testing.assert_allclose(arr(bars[1]["y"]), (kn / kn.max()).numpy(), rtol=1e-5)
    assert len(arr(bars[0]["y"])) == 64

    # the state norm over time
    norm = figs["‖h<sub>t</sub>‖ over time (each scaled to its maximum)"]["data"]
    want = probe.state_norm(tr_lti)[0]
    np.testing.assert_allclose(arr(norm[1]["y"]), (want / want.max()).numpy(), rtol=1e-5)


def test_seed_lti_model_and_layer_at_their_extremes():
    at = start()
    at.number_input("sel_seed").set_value(9999)
    at.radio("sel_lti").set_value("copy-s4d-wide")
    at.radio("sel_layer").set_value(2)
    ok(at.run())
    seq, tr, tr_lti, memory, right = expected(seed=9999, lti="copy-s4d-wide", layer=1)
    assert metrics(at)["Answers right (Mamba | LTI)"] == f"{right[0]}/4 | {right[1]}/4"
    figs = figures(at)
    strip = figs["Input, targets and both models' answers"]["data"][0]
    assert strip["y"][0] == "copy-s4d-wide (LTI)" and strip["text"][3] == [str(t) for t in seq.tokens[0].tolist()]
    heat = figs["Mamba, layer 2: its 16 most selective channels"]["data"][0]
    assert heat["y"] == [f"ch {c}" for c in memory.tolist()]


def test_channels_and_step_at_their_extremes():
    at = start()
    at.slider("sel_channels").set_value(4)
    at.slider("sel_t_64").set_value(0)
    ok(at.run())
    figs = figures(at)
    assert len(figs["Mamba, layer 1: its 4 most selective channels"]["data"][0]["y"]) == 4
    bars = figs["What the state holds at t = 0"]["data"]
    assert len(arr(bars[0]["y"])) == 1  # only the first token has written anything
    at.slider("sel_channels").set_value(64)
    at.slider("sel_t_64").set_value(67)  # T − 1: the last marker
    ok(at.run())
    figs = figures(at)
    assert len(figs["Mamba, layer 1: its 64 most selective channels"]["data"][0]["y"]) == 64
    assert len(arr(figs["What the state holds at t = 67"]["data"][0]["y"])) == 68


def test_noisy_region_extremes_and_refusal():
    at = start()
    at.select_slider("sel_L").set_value(16)
    ok(at.run())
    assert "What the state holds at t = 15" in figures(at)
    at.select_slider("sel_L").set_value(256)
    ok(at.run())
    figs = figures(at)
    assert len(figs["Input, targets and both models' answers"]["data"][0]["x"]) == 260
    at.select_slider("sel_L").set_value(1024)
    at.run()
    assert not at.exception
    assert at.warning and "L ≤ 256" in at.warning[0].value
    assert not at.get("plotly_chart")


def test_rerun_at_defaults_uses_the_cache(monkeypatch):
    at = rerun_from_cache(start(), monkeypatch, ["mamba_edu.train.load_checkpoint", "mamba_edu.train.predict_forward",
                                                 "mamba_edu.probe.trace_layer", "mamba_edu.viz.selection.delta_heatmap"])
    assert at.get("plotly_chart")
