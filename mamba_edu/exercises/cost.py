"""Checks for chapter 01 (why a state?): the KV cache, a fixed-size recurrent state, a memory budget.

    check_kv_cache_bytes(fn)        fn(n_layers, n_heads, head_dim, L, batch, bytes_per_element) -> int
    check_ssm_step(fn)              fn(h, delta, A, B, C, u) -> (y, h_new), one token of a selective SSM
    check_max_attention_length(fn)  fn(budget_bytes, n_heads, batch, bytes_per_element) -> int

Each compares the learner's function with the library (`mamba_edu.cost`,
`mamba_edu.selective.selective_scan_ref`, the key-value cache of `mamba_edu.models.AttentionBlock`)
on several cases and returns a Verdict; none raises.
"""

from __future__ import annotations

import torch

from .. import cost
from ..models import AttentionBlock, state_bytes
from ..selective import S6, selective_scan_naive, selective_scan_parallel, selective_scan_ref
from ..viz.cost import human_bytes
from ._core import Mismatch, Verdict, compare, gen, run_check, seed_all


def _as_int(got, what: str) -> int:
    """The learner's count as an int: ints and integer-valued floats are fine, anything else is reported."""
    if got is None:
        raise Mismatch(f"{what}: your function returned None (is there a `return`?)")
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise Mismatch(f"{what}: expected a whole number, got {type(got).__name__}")
    if isinstance(got, float) and not got.is_integer():
        raise Mismatch(f"{what}: expected a whole number, got {got}")
    return int(got)


# ----------------------------------------------------------------------------------------------
# Exercise: the KV cache
# ----------------------------------------------------------------------------------------------

# (name, n_layers, n_heads, head_dim, L, batch, bytes_per_element)
_KV_CASES = [
    ("7B-like (32 layers, 32 heads of 128), 4K tokens, fp16", 32, 32, 128, 4096, 1, 2),
    ("tiny model, 256 tokens, fp32", 2, 2, 32, 256, 1, 4),
    ("batch of 8, 8 KV heads (grouped-query), 100K tokens, bf16", 80, 8, 128, 100_000, 8, 2),
    ("no tokens yet (L = 0)", 4, 4, 64, 0, 1, 2),
]


def _kv_hint(got: int, want: int, n_layers: int, batch: int, s: int) -> str:
    if want and got * 2 == want:
        return " (exactly half: count both the keys AND the values)"
    if want and got * n_layers == want and n_layers > 1:
        return " (too small by the number of layers: every layer keeps its own cache)"
    if want and got * batch == want and batch > 1:
        return " (too small by the batch size: every sequence keeps its own cache)"
    if want and got * s == want and s > 1:
        return " (that is a number of elements: multiply by bytes_per_element)"
    return ""


def _kv_case(args):
    name, nl, nh, hd, L, b, s = args

    def test(fn):
        want = cost.kv_cache_bytes(nl, nh, hd, L, batch=b, bytes_per_element=s)
        got = _as_int(fn(nl, nh, hd, L, b, s), "bytes")
        if got != want:
            raise Mismatch(f"expected {want} bytes ({human_bytes(want)}), got {got} ({human_bytes(got)})"
                           + _kv_hint(got, want, nl, b, s))
    return name, test


def _kv_measured(fn):
    """The formula against a real cache: a 2-layer attention model decodes 5 tokens."""
    from ..models import TinyLM, state_bytes

    seed_all(0)
    model = TinyLM(8, d_model=16, n_layers=2, mixer="attention", n_heads=2).eval()
    state = model.init_state(1)
    with torch.no_grad():
        for t in range(5):
            _, state = model.step(torch.tensor([t % 8]), state)
    want = state_bytes(state)
    got = _as_int(fn(2, 2, 8, 5, 1, 4), "bytes")
    if got != want:
        raise Mismatch(f"a real cache (2 layers, 2 heads of 8, 5 tokens, fp32) takes {want} bytes "
                       f"(measured with models.state_bytes); your formula gives {got}")


def check_kv_cache_bytes(fn, quiet: bool = False) -> Verdict:
    """fn(n_layers, n_heads, head_dim, L, batch, bytes_per_element) -> bytes of the key-value cache."""
    cases = [_kv_case(c) for c in _KV_CASES] + [("a measured cache of a tiny model", _kv_measured)]
    return run_check("kv_cache_bytes", fn, cases, quiet=quiet,
                     forbid=(cost.kv_cache_bytes, state_bytes, AttentionBlock.init_state, AttentionBlock.step),
                     success="correct on every case, and equal to the size of a real cache.")


# ----------------------------------------------------------------------------------------------
# Exercise: one step of a fixed-size recurrent state
# ----------------------------------------------------------------------------------------------


def _ssm_inputs(d: int, n: int, L: int, seed: int, dt_scale: float = 0.5):
    g = gen(seed)
    u = torch.randn(d, L, generator=g, dtype=torch.float64)  # (d, l)
    delta = torch.rand(d, L, generator=g, dtype=torch.float64) * dt_scale + 1e-3  # (d, l)
    A = -(torch.rand(d, n, generator=g, dtype=torch.float64) * 2 + 0.1)  # (d, n)
    B = torch.randn(n, L, generator=g, dtype=torch.float64)  # (n, l)
    C = torch.randn(n, L, generator=g, dtype=torch.float64)  # (n, l)
    return u, delta, A, B, C


def _ssm_case(name: str, d: int, n: int, L: int, seed: int, dt_scale: float = 0.5):
    def test(fn):
        from ..selective import selective_scan_ref

        u, delta, A, B, C = _ssm_inputs(d, n, L, seed, dt_scale)
        y_ref, h_ref = selective_scan_ref(u[None], delta[None], A, B[None], C[None],
                                          return_last_state=True)  # (1, d, l), (1, d, n)
        h_refs = [_h_after(u, delta, A, B, t) for t in range(L)]  # the library's state after each step
        h = torch.zeros(d, n, dtype=torch.float64)  # (d, n): nothing seen yet
        for t in range(L):
            out = fn(h.clone(), delta[:, t].clone(), A.clone(), B[:, t].clone(), C[:, t].clone(), u[:, t].clone())
            if not (isinstance(out, tuple) and len(out) == 2):
                raise Mismatch(f"step {t}: expected a pair (y, h_new), got {type(out).__name__}")
            y, h_new = out
            try:
                compare(h_new, h_refs[t], f"step {t}: h_new")
            except Mismatch as e:
                euler = (1 + delta[:, t, None] * A) * h + delta[:, t, None] * B[None, :, t] * u[:, t, None]  # (d, n)
                if isinstance(h_new, torch.Tensor) and h_new.shape == euler.shape and torch.allclose(
                        h_new.detach().double(), euler, rtol=1e-5, atol=1e-6):
                    raise Mismatch(f"{e}. Your decay looks like Euler's 1 + Δ·A; the state decays by exp(Δ·A)") from None
                raise
            compare(y, y_ref[0, :, t], f"step {t}: y")
            h = h_new.detach().to(torch.float64)
        compare(h, h_ref[0], f"the state after all {L} steps")
    return name, test


def _h_after(u, delta, A, B, t):
    """The library's state after step t (0-based): the last state of selective_scan_ref on u[:, :t+1]."""
    from ..selective import selective_scan_ref

    d, n = A.shape
    zeros = torch.zeros(1, n, t + 1, dtype=u.dtype)  # (1, n, t+1): C is not needed for the state
    _, h = selective_scan_ref(u[None, :, : t + 1], delta[None, :, : t + 1], A, B[None, :, : t + 1], zeros,
                              return_last_state=True)  # (1, d, n)
    return h[0]


def check_ssm_step(fn, quiet: bool = False) -> Verdict:
    """fn(h (d, n), delta (d,), A (d, n), B (n,), C (n,), u (d,)) -> (y (d,), h_new (d, n)):
    h_new = exp(Δ·A) ⊙ h + Δ·B·u,  y = h_new · C. Run over whole sequences from h = 0 and compared,
    step by step, with `mamba_edu.selective.selective_scan_ref`."""
    cases = [
        _ssm_case("one channel, state size 1, 3 steps", 1, 1, 3, seed=0),
        _ssm_case("3 channels, state size 4, 6 steps", 3, 4, 6, seed=1),
        _ssm_case("large steps Δ (up to 5)", 2, 3, 5, seed=2, dt_scale=5.0),
    ]
    return run_check("ssm_step", fn, cases, quiet=quiet,
                     forbid=(selective_scan_ref, selective_scan_naive, selective_scan_parallel, S6.step, S6.forward),
                     success="correct: your step, looped over the sequence, reproduces the library's scan.")


# ----------------------------------------------------------------------------------------------
# Exercise: how long a sequence fits a memory budget?
# ----------------------------------------------------------------------------------------------

# (name, budget_bytes, n_heads, batch, bytes_per_element)
_BUDGET_CASES = [
    ("1 GiB, one head, fp32 (a perfect square: L² = 2²⁸)", 2**30, 1, 1, 4),
    ("1 GB = 10⁹ bytes, one head, fp32", 10**9, 1, 1, 4),
    ("80 GB GPU, 32 heads, batch 4, fp16", 80 * 10**9, 32, 4, 2),
    ("smaller than one score", 3, 1, 1, 4),
    ("exactly one score per head", 8 * 4, 8, 1, 4),
]


def _budget_case(args):
    name, budget, h, b, s = args

    def test(fn):
        want = cost.max_attention_length(budget, n_heads=h, batch=b, bytes_per_element=s)
        got = _as_int(fn(budget, h, b, s), "L")
        if got != want:
            used = cost.attention_scores_bytes(max(got, 0), n_heads=h, batch=b, bytes_per_element=s)
            why = (f"at L = {got} the scores take {used} bytes > the budget {budget}" if used > budget else
                   f"L = {got + 1} still fits ({cost.attention_scores_bytes(got + 1, h, b, s)} ≤ {budget} bytes)"
                   if got < want else "")
            raise Mismatch(f"expected L = {want}, got {got}" + (f": {why}" if why else ""))
    return name, test


def check_max_attention_length(fn, quiet: bool = False) -> Verdict:
    """fn(budget_bytes, n_heads, batch, bytes_per_element) -> the largest L with
    batch·n_heads·L²·bytes_per_element ≤ budget_bytes (0 if not even L = 1 fits)."""
    return run_check("max_attention_length", fn, [_budget_case(c) for c in _BUDGET_CASES], quiet=quiet,
                     forbid=(cost.max_attention_length, cost.attention_scores_bytes))
