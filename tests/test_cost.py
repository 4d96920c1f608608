"""The cost helpers of `mamba_edu.cost` and `mamba_edu.measure` (chapter 01): formulas against real tensors, measuring helpers."""

import time

import pytest
import torch

from mamba_edu import cost, measure
from mamba_edu.models import MambaBlock, TinyLM, state_bytes


def test_kv_cache_formula_equals_a_real_cache_at_every_position():
    torch.manual_seed(0)
    model = TinyLM(16, d_model=32, n_layers=3, mixer="attention", n_heads=4).eval()
    state = model.init_state(2)
    assert state_bytes(state) == cost.kv_cache_bytes(3, 4, 8, 0, batch=2, bytes_per_element=4) == 0
    with torch.no_grad():
        for t in range(1, 8):
            _, state = model.step(torch.randint(0, 16, (2,)), state)
            assert state_bytes(state) == cost.kv_cache_bytes(3, 4, 8, t, batch=2, bytes_per_element=4)


def test_kv_cache_of_a_7b_model_by_hand():
    # 2 (K and V) · 32 layers · 32 heads · 128 · 4096 tokens · 2 bytes = 2 GiB
    assert cost.kv_cache_bytes(32, 32, 128, 4096) == 2 * 2**30


def test_mamba_state_formula_equals_the_models_state():
    model = TinyLM(16, d_model=24, n_layers=2, mixer="mamba", d_state=8, d_conv=3, expand=2)
    assert state_bytes(model.init_state(3)) == cost.mamba_state_bytes(2, 24, d_state=8, d_conv=3, expand=2,
                                                                          batch=3)
    with torch.device("meta"):
        block = MambaBlock(2560)  # a 2.8B-sized block, no weights allocated
    assert 64 * state_bytes(block.init_state(1, device="cpu")) == cost.mamba_state_bytes(64, 2560)


def test_score_bytes_equal_the_materialised_tensor_and_the_budget_boundary():
    q, k = torch.randn(2, 3, 50, 8), torch.randn(2, 3, 50, 8)
    S = q @ k.transpose(-1, -2)  # (2, 3, 50, 50)
    assert S.numel() * S.element_size() == cost.attention_scores_bytes(50, n_heads=3, batch=2)
    assert cost.max_attention_length(2**30) == 2**14  # exactly enough: that L fits
    assert cost.max_attention_length(2**30 - 1) == 2**14 - 1
    assert cost.max_attention_length(3) == 0
    for budget in (10**9, 80 * 10**9 + 7):
        L = cost.max_attention_length(budget, n_heads=32, batch=4, bytes_per_element=2)
        assert cost.attention_scores_bytes(L, 32, 4, 2) <= budget < cost.attention_scores_bytes(L + 1, 32, 4, 2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="argument 'L'"):
        cost.kv_cache_bytes(2, 2, 8, -1)
    with pytest.raises(ValueError, match="argument 'n_heads'"):
        cost.attention_scores_bytes(8, n_heads=0)
    with pytest.raises(ValueError, match="argument 'budget_bytes'"):
        cost.max_attention_length(1.5)
    with pytest.raises(ValueError, match="argument 'x, y'"):
        measure.fit_power_law([1, 2], [1, 0])


def test_fit_power_law_recovers_the_exponent():
    L = torch.tensor([256.0, 512, 1024, 2048])
    c, p = measure.fit_power_law(L, 3e-9 * L**2)
    assert p == pytest.approx(2.0, abs=1e-9) and c == pytest.approx(3e-9, rel=1e-9)
    c, p = measure.fit_power_law([1, 2, 4, 8], [5, 10, 20, 40])
    assert p == pytest.approx(1.0) and c == pytest.approx(5.0)


def test_peak_memory_sees_a_temporary_and_not_its_sum():
    n = 1 << 20  # 4 MiB of float32

    def two_temporaries():
        a = torch.ones(n)
        del a
        b = torch.ones(n)
        return float(b[0])

    peak = measure.peak_memory_bytes(two_temporaries)
    assert 4 * n <= peak < 2 * 4 * n  # one at a time, never both
    assert measure.peak_memory_bytes(lambda: None) == 0


def test_median_seconds_and_time_vs_length():
    assert measure.median_seconds(lambda: time.sleep(0.01), repeat=3, warmup=0) >= 0.009
    built = []

    def make(L):
        built.append(L)
        return lambda: torch.zeros(L).sum()

    times = measure.time_vs_length(make, [8, 16], repeat=2)
    assert built == [8, 16] and len(times) == 2 and all(t >= 0 for t in times)
