"""The Mamba block's anatomy and parameters, decoding states and their cost, hybrids, and what a
fixed state can recall (mamba_edu.models, the chapter 10 section)."""

import pytest
import torch

from mamba_edu import cost, measure, models
from mamba_edu.models import (AttentionBlock, MambaBlock, TinyLM, decode_step_seconds, decode_throughput,
                              hybrid_state_bytes, mamba_block_parameters, parameter_breakdown, state_at_position,
                              state_bytes, state_recall, trace_block)


@pytest.mark.parametrize("d,n,k,e,r", [(16, 4, 4, 2, None), (24, 8, 3, 3, 5), (64, 16, 4, 2, None)])
def test_parameter_formula_equals_the_block(d, n, k, e, r):
    with torch.device("meta"):
        block = MambaBlock(d, d_state=n, d_conv=k, expand=e, dt_rank=r)
    formula = mamba_block_parameters(d, n, k, e, r)
    assert parameter_breakdown(block) == formula
    assert set(formula) == set(models.BLOCK_PARTS)
    assert sum(formula.values()) == sum(p.numel() for p in block.parameters())
    assert formula["in_proj"] + formula["out_proj"] == 3 * e * d * d


def test_parameter_breakdown_counts_tied_weights_once():
    lm = TinyLM(20, d_model=16, n_layers=2, mixer="mamba", d_state=4)
    bd = parameter_breakdown(lm)
    assert "lm_head" not in bd and bd["embedding"] == 20 * 16
    assert sum(bd.values()) == sum(p.numel() for p in lm.parameters())
    assert bd["layers.1.mixer.in_proj"] == mamba_block_parameters(16, 4)["in_proj"]
    assert parameter_breakdown(AttentionBlock(16, 2)) == {"qkv": 3 * 16 * 16, "out": 16 * 16}
    with pytest.raises(ValueError, match="'module'"):
        parameter_breakdown("not a module")


def test_trace_block_recomputes_the_forward_pass():
    torch.manual_seed(0)
    block = MambaBlock(12, d_state=4).double()
    x = torch.randn(2, 9, 12, dtype=torch.float64)
    stages = trace_block(block, x)
    torch.testing.assert_close(stages[-1]["output"], block(x), rtol=1e-12, atol=1e-12)
    shapes = {s["stage"]: s["shape"] for s in stages}
    assert shapes["input"] == (2, 9, 12) and shapes["in_proj"] == (2, 9, 24) and shapes["gate branch z"] == (2, 9, 24)
    assert shapes["conv1d"] == (2, 24, 9) and shapes["selective scan"] == (2, 24, 9) and shapes["out_proj"] == (2, 9, 12)
    assert sum(s["parameters"] for s in stages) == sum(p.numel() for p in block.parameters())
    assert [s["branch"] for s in stages].count("gate") == 1
    with pytest.raises(ValueError, match="'x'"):
        trace_block(block, x[0])


@pytest.mark.parametrize("mixer", ["mamba", "attention", "s4d"])
def test_state_at_position_has_the_size_of_a_real_decoding_state(mixer):
    torch.manual_seed(1)
    lm = TinyLM(11, d_model=16, n_layers=2, mixer=mixer).eval()
    state = lm.init_state(3)
    with torch.no_grad():
        for t in range(1, 6):
            _, state = lm.step(torch.randint(0, 11, (3,)), state)
            fake = state_at_position(lm, 3, t)
            assert state_bytes(fake) == state_bytes(state)
            assert [tuple(s.shape) for s in _flat(fake)] == [tuple(s.shape) for s in _flat(state)]
        logits, grown = lm.step(torch.zeros(3, dtype=torch.int64), state_at_position(lm, 3, 7))
    assert logits.shape == (3, 11)
    if mixer == "attention":
        assert state_bytes(grown) == cost.kv_cache_bytes(2, 2, 8, 8, batch=3, bytes_per_element=4)
        assert state_bytes(state_at_position(lm, 3, 1000)) == cost.kv_cache_bytes(2, 2, 8, 1000, 3, 4)
    else:
        assert state_bytes(state_at_position(lm, 3, 1000)) == state_bytes(state)


def _flat(state):
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for s in state for t in _flat(s)]


def test_decode_timing_helpers(monkeypatch):
    lm = TinyLM(11, d_model=16, n_layers=1, mixer="attention").eval()
    secs = decode_step_seconds(lm, [1, 50], batch=2, repeat=2, warmup=0)
    assert len(secs) == 2 and all(s > 0 for s in secs)
    calls = []

    def fake_median(fn, repeat=5, warmup=1):
        logits, state = fn()  # the step really runs on the state of that position
        calls.append(state[0][0].shape[2])
        return 0.25

    monkeypatch.setattr(measure, "median_seconds", fake_median)
    assert decode_throughput(lm, [1, 4, 8], position=30) == [4.0, 16.0, 32.0]
    assert calls == [31, 31, 31]  # a cache of 30 entries, plus this token
    with pytest.raises(ValueError, match="'position'"):
        decode_throughput(lm, [1], position=-1)


def test_hybrid_state_bytes_matches_real_models():
    for mixer, n_att in (("attention", 2), ("mamba", 0)):
        lm = TinyLM(11, d_model=16, n_layers=2, mixer=mixer, **({"d_state": 8} if mixer == "mamba" else {}))
        for t in (0, 5, 300):
            got = hybrid_state_bytes(t, 2, n_att, 16, 2, d_state=8, kv_bytes=4)
            assert got == state_bytes(state_at_position(lm, 1, t))
    one = hybrid_state_bytes(10_000, 8, 1, 64, 2)
    assert one == cost.kv_cache_bytes(1, 2, 32, 10_000) + cost.mamba_state_bytes(7, 64)
    with pytest.raises(ValueError, match="'n_attention'"):
        hybrid_state_bytes(10, 4, 5, 64, 2)
    with pytest.raises(ValueError, match="'n_heads'"):
        hybrid_state_bytes(10, 4, 1, 64, 3)


def test_state_recall_capacity():
    one = state_recall(8, 1)
    assert one["ssm"] < 1e-24 and one["best linear"] < 1e-24  # one unit key: h = v kᵀ, read h k = v
    for m in (2, 4, 8):
        assert state_recall(8, m)["best linear"] < 1e-20  # n numbers hold n pairs exactly
    r = state_recall(8, 32)
    assert abs(r["best linear"] - (1 - 8 / 32)) < 0.05
    assert r["kv cache"] < 1e-3
    ssm = [state_recall(16, m)["ssm"] for m in (2, 8, 32, 64)]
    assert all(a < b for a, b in zip(ssm, ssm[1:]))
    for m, e in zip((8, 32, 64), ssm[1:]):
        assert 0.6 < e / ((m - 1) / 16) < 1.4  # crosstalk of random keys ≈ (m − 1)/n
    with pytest.raises(ValueError, match="'n_state'"):
        state_recall(0, 4)
