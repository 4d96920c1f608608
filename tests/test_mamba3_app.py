"""The State explorer's Mamba-3 view (chapter 12) through AppTest: the three trained parity models on
the same bits, their accuracies against a direct computation, the rotating model's phase figure,
and typed input at its extremes (spaces, letters, emoji, too long, no parity change)."""

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mamba_edu import tasks
from mamba_edu.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "results" / "tasks" / "checkpoints"
SYSTEM = "trained Mamba-3 vs real states: parity"
NAMES = ("parity-mamba3", "parity-mamba3-real", "parity-mamba")

pytestmark = pytest.mark.skipif(not all((CKPT / f"{n}.pt").exists() for n in NAMES), reason="no parity checkpoints")


def page(**widgets) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("pages/state_explorer.py").run()
    for key, value in {"se_system": SYSTEM, **widgets}.items():
        next(w for w in at.main if getattr(w, "key", None) == key).set_value(value)
        at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def direct(bits: str) -> dict:
    tokens = torch.tensor([int(c) for c in bits])
    parity = tokens.cumsum(0) % 2
    out = {}
    for n in NAMES:
        model, _ = load_checkpoint(CKPT / n)
        with torch.no_grad():
            out[n] = float((model(tokens[None])[0].argmax(-1) == parity).float().mean())
    return out


def metrics(at) -> list[float]:
    return [float(m.value.rstrip(" %")) / 100 for m in at.metric]


def phase_points(at) -> int:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (spec,) = [s for s in specs if s["layout"]["title"]["text"].startswith("parity-mamba3: the phase")]
    return sum(len(tr["x"]) for tr in spec["data"] if tr["mode"] == "markers")


def test_random_bits_three_models_side_by_side():
    at = page(se_parity_L=40, se_parity_seed=3)
    bits = "".join(str(int(b)) for b in tasks.parity(1, seq_len=40, seed=3).tokens[0])
    want = direct(bits)
    assert metrics(at) == pytest.approx([want[n] for n in NAMES], abs=0.0006)
    assert metrics(at)[0] > 0.95 and max(metrics(at)[1:]) < 0.8
    assert phase_points(at) == 40  # one point per bit


@pytest.mark.parametrize("typed,n", [("0110 1001 1", 9), ("1" * 7, 7)])
def test_typed_bits(typed, n):
    at = page(se_parity_source="typed", se_parity_bits=typed)
    bits = typed.replace(" ", "")
    assert metrics(at) == pytest.approx([direct(bits)[k] for k in NAMES], abs=0.0006)
    assert phase_points(at) == n  # all ones still alternate the parity: both groups are there


def test_no_parity_change_gives_a_caption_not_a_figure():
    at = page(se_parity_source="typed", se_parity_bits="0000")
    assert not [c for c in at.get("plotly_chart") if "the phase" in c.proto.spec]
    assert any("same after every bit" in c.value for c in at.caption)


@pytest.mark.parametrize("typed", ["01a1", "0🙂1", "", "0" * 600])
def test_bad_bits_are_refused_with_a_message(typed):
    at = page(se_parity_source="typed", se_parity_bits=typed)
    assert at.warning and not at.metric
