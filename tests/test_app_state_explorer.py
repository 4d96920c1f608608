"""The state explorer page through AppTest: defaults, every control at its extremes, the figures' data
decoded from the plotly spec and compared with the library."""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mamba_edu import explore, probe, tasks
from mamba_edu.tokenizer import text_targets, text_to_tokens
from mamba_edu.train import load_checkpoint
from plotly_data import by_prefix, charts_by_title as charts, tensor as arr

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "results" / "tasks" / "checkpoints"


def page(**widgets) -> AppTest:
    """The page after setting widgets {key: value} (in order, one run after each, as a user would)."""
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("pages/state_explorer.py").run()
    for key, value in widgets.items():
        widget = next(w for w in at.main if getattr(w, "key", None) == key)
        widget.set_value(value)
        at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def expected(system="hippo-legs", N=16, dt=0.02, method="zoh", kind="impulse", L=256, seed=0, text=""):
    s = explore.make_system(system, N, seed)
    u, _ = explore.make_input(kind, L, seed=seed, text=text)
    return u, explore.run_lti(s, u, dt, method)


def check_lti(at, **kw):
    u, run = expected(**kw)
    figs = charts(at)
    assert len(figs) == 4
    player = by_prefix(figs, explore.SYSTEMS[kw.get("system", "hippo-legs")])
    heat, marker, bars = player["data"]
    n = run.finite_steps
    states, u, y, K = run.states[:n], u[:n], run.y[:n], run.K[:n]
    assert torch.allclose(arr(heat["z"]), states.T, atol=1e-12, rtol=1e-9)
    assert len(player["frames"]) == min(60, len(u))
    k = int(states.norm(dim=1).argmax())  # the player opens at the largest state
    shown = int(player["frames"][player["layout"]["sliders"][0]["active"]]["name"])
    assert abs(shown - k) <= len(u) // 59 + 1
    assert torch.allclose(arr(bars["y"]), states[shown], atol=1e-12, rtol=1e-9)
    io = figs["Input and output"]
    assert torch.allclose(arr(io["data"][0]["y"]), u)
    assert torch.allclose(arr(io["data"][1]["y"]), y, atol=1e-9, rtol=1e-9)
    kernel = figs["Kernel K<sub>l</sub> = C Ā<sup>l</sup> B̄"]
    assert torch.allclose(arr(kernel["data"][0]["y"]), K, atol=1e-12, rtol=1e-9)
    assert float(arr(kernel["data"][0]["x"])[1]) == pytest.approx(kw.get("dt", 0.02))  # the lag axis in seconds
    eig = figs["Eigenvalues of Ā"]
    z = torch.complex(arr(eig["data"][1]["x"]), arr(eig["data"][1]["y"])).to(torch.complex128)
    assert torch.allclose(z.abs().sort().values, run.eigenvalues.abs().sort().values, atol=1e-9)
    assert at.metric[0].value == f"{run.spectral_radius:.4f}"
    return run


def test_defaults_match_the_library():
    at = page()
    assert at.title[0].value == "State explorer"
    assert "04_lti_two_modes.ipynb" in at.caption[0].value and "02_discretization.ipynb" in at.caption[0].value
    run = check_lti(at)
    assert run.spectral_radius < 1 and "stable: the state decays" in at.caption[1].value


@pytest.mark.parametrize("system", [s for s in explore.SYSTEMS if s != "hippo-legs"])
def test_each_system(system):
    check_lti(page(se_system=system), system=system)


@pytest.mark.parametrize("widgets, kw", [
    (dict(se_N=2), dict(N=2)),
    (dict(se_N=64), dict(N=64)),
    (dict(se_dt=0.001), dict(dt=0.001)),
    (dict(se_dt=1.0, se_method="bilinear"), dict(dt=1.0, method="bilinear")),
    (dict(se_L=16), dict(L=16)),
    (dict(se_L=4096, se_system="s4d-lin"), dict(L=4096, system="s4d-lin")),
    (dict(se_system="random", se_seed=9999, se_input="noise"), dict(system="random", seed=9999, kind="noise")),
])
def test_controls_at_their_extremes(widgets, kw):
    check_lti(page(**widgets), **kw)


def test_euler_with_a_large_step_is_shown_unstable():
    at = page(se_dt=1.0, se_method="euler")
    run = check_lti(at, dt=1.0, method="euler")
    assert run.spectral_radius > 1 and "unstable: the state blows up" in at.caption[1].value
    n = run.finite_steps
    assert 0 < n < 256 and f"overflowed after {n} of 256 steps" in at.warning[0].value


@pytest.mark.parametrize("kind", ["step", "sine", "selective-copy", "text"])
def test_inputs(kind):
    at = page(se_input=kind)
    text = at.text_input(key="se_text").value if kind == "text" else ""
    check_lti(at, kind=kind, text=text, L=len(text) if kind == "text" else 256)


def test_too_large_settings_are_refused_with_a_message():
    at = page(se_N=64, se_L=4096)
    assert not at.get("plotly_chart")
    assert "Reduce N or L" in at.warning[0].value
    at = page(se_input="text")
    at.text_input(key="se_text").set_value("😀" * 200).run()  # 800 byte tokens (the box keeps 512 characters)
    assert not at.exception and "makes 800 tokens" in at.warning[0].value and "at most 512" in at.warning[0].value


def selective_expected(name, layer=0, seed=0, text=None):
    model, meta = load_checkpoint(CKPT / name)
    cfg = meta["config"]
    if text is None:
        kw = {"n_data": cfg["n_data"]} if cfg["task"] == "selective-copy" else {}
        batch = tasks.make_batch(cfg["task"], 1, cfg["seq_len"], cfg["vocab_size"], seed=seed, **kw)
        tokens, targets = batch.tokens[0], batch.targets[0]
    else:
        tokens = text_to_tokens(text, cfg["vocab_size"], cfg["task"])
        targets = text_targets(tokens, cfg["task"])
    trace = probe.trace_layer(model, tokens[None], layer)
    with torch.no_grad():
        predictions = model(tokens[None])[0].argmax(-1)
    return trace, targets, predictions


def check_selective(at, name, channel=None, **kw):
    trace, targets, predictions = selective_expected(name, **kw)
    if channel is None:
        channel = int(probe.channel_selectivity(trace).argmax())
    figs = charts(at)
    player = by_prefix(figs, f"{name}, layer {kw.get('layer', 0)}, channel {channel}")
    h = trace.h[0, channel].T.double()  # (T, n)
    assert torch.allclose(arr(player["data"][0]["z"]), h.T, atol=1e-6)
    delta = figs["Δ<sub>t</sub> changes with every token: no fixed kernel"]["data"][0]["y"]
    assert torch.allclose(arr(delta), trace.delta[0, channel].double(), rtol=1e-6)
    io = figs["Input and output"]
    y = probe.ssm_output(trace)[0, channel].double()
    assert torch.allclose(arr(io["data"][1]["y"]), y, atol=1e-6)
    eig = figs["Eigenvalues of Ā<sub>t</sub> = exp(Δ<sub>t</sub> A)"]
    points = sum(len(arr(tr["x"])) for tr in eig["data"][1:])
    assert points == trace.a[0, channel].numel()  # every decay of every token, grouped by the token's role
    xs = torch.cat([arr(tr["x"]) for tr in eig["data"][1:]])
    assert float(xs.min()) >= 0 and float(xs.max()) <= 1  # exp(Δ·A) with A < 0 lies in (0, 1]
    answers = targets != tasks.IGNORE
    if bool(answers.any()):
        right = int((predictions[answers] == targets[answers]).sum())
        assert at.metric[0].value == f"{right} / {int(answers.sum())}"
    return trace


def test_trained_selective_copying_model():
    at = page(se_system="trained Mamba: copy-mamba")
    check_selective(at, "copy-mamba")
    assert at.metric[0].value == "4 / 4"  # the shipped checkpoint copies this sequence right


@pytest.mark.parametrize("widgets, kw", [
    (dict(se_channel_copy_mamba_0=0), dict(channel=0)),
    (dict(se_layer_copy_mamba=1), dict(layer=1)),
    (dict(se_seq_seed=9999), dict(seed=9999)),
])
def test_trained_model_controls(widgets, kw):
    # widget keys carry the checkpoint name: map the test's short names onto them
    keys = {"se_channel_copy_mamba_0": "se_channel_copy-mamba_0", "se_layer_copy_mamba": "se_layer_copy-mamba"}
    at = page(se_system="trained Mamba: copy-mamba", **{keys.get(k, k): v for k, v in widgets.items()})
    check_selective(at, "copy-mamba", **kw)


def test_trained_model_last_channel_and_typed_text():
    at = page(se_system="trained Mamba: copy-mamba", **{"se_channel_copy-mamba_0": 63})
    check_selective(at, "copy-mamba", channel=63)
    at = page(se_system="trained Mamba: copy-mamba", se_source="text")
    text = at.text_input(key="se_text_selective-copy").value
    check_selective(at, "copy-mamba", text=text)
    assert "expected" in at.caption[1].value


def test_induction_model():
    at = page(se_system="trained Mamba: induction-mamba")
    check_selective(at, "induction-mamba")


def test_empty_text_is_a_message_not_a_traceback():
    at = page(se_input="text")
    at.text_input(key="se_text").set_value("").run()
    assert not at.exception and not at.get("plotly_chart")
    assert "argument 'text' must be at least one character; got an empty text" in at.error[0].value
    at = page(se_system="trained Mamba: copy-mamba", se_source="text")
    at.text_input(key="se_text_selective-copy").set_value("").run()
    assert not at.exception and "the text is empty" in at.error[0].value
