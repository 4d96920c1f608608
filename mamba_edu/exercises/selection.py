"""Checks for chapter 06 (selection): Δ, B, C from the input; a selective SSM as a gated RNN; the
states without a loop over time.

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with the library; it never raises (see `mamba_edu.exercises._core`).

    check_s6_params(fn)              fn(s6, x (b, d, l)) -> (Δ (b, d, l), B (b, n, l), C (b, n, l))
                                     vs S6.delta and S6.projections
    check_gated_rnn(fn)              fn(u (d, L), s (d, L)) -> h (d, L) with
                                     h_t = (1 − σ(s_t))·h_{t−1} + σ(s_t)·u_t
                                     vs ZOH of (A = −1, B = 1) with Δ = softplus(s), then a scan
    check_states_without_a_loop(fn)  fn(delta (d, L), A (d, n), Bu (d, n, L)) -> h (d, n, L)
                                     vs scan_sequential(exp(Δ·A), Bu)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..discretize import _zoh, zoh
from ..scan import scan as scan_fn
from ..scan import scan_blelloch, scan_chunked, scan_hillis_steele, scan_inplace, scan_sequential
from ..selective import S6, selective_scan_naive, selective_scan_parallel, selective_scan_ref
from ._core import Mismatch, Verdict, compare, gen, loops, method_rule, run_check, seed_all

_SCANS = (scan_sequential, scan_hillis_steele, scan_blelloch, scan_chunked, scan_inplace, scan_fn)  # every library scan
_SELECTIVE = (selective_scan_ref, selective_scan_naive, selective_scan_parallel, S6.forward, S6.step)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return gen(seed)


def _triple(got, what: str):
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        n = f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""
        raise Mismatch(f"{what}: expected a tuple (delta, B, C), got {type(got).__name__}{n}")
    return got


# ----------------------------------------------------------------------------------------------
# 1. Δ, B and C computed from the input
# ----------------------------------------------------------------------------------------------


def _s6_case(d: int, n: int, rank: int, b: int, l: int, seed: int, scale: float = 1.0):
    seed_all(seed)
    s6 = S6(d, n, dt_rank=rank)
    with torch.no_grad():  # move the weights away from their initialisation
        for p in (s6.x_proj.weight, s6.dt_proj.weight):
            p.mul_(scale)
    x = torch.randn(b, d, l, generator=_gen(seed))  # (b, d, l)

    def test(fn):
        with torch.no_grad():
            got = _triple(fn(s6, x.clone()), f"d = {d}, n = {n}, dt_rank = {rank}")
            _, B, C = s6.projections(x)  # (b, n, l) each
            want = (s6.delta(x), B, C)
        for name, g, w in zip(("delta", "B", "C"), got, want):
            if isinstance(g, torch.Tensor) and g.shape != w.shape and g.dim() == 3 and g.transpose(1, 2).shape == w.shape:
                raise Mismatch(f"{name}: expected shape {tuple(w.shape)} (channels or state before time), "
                               f"got {tuple(g.shape)}: transpose it")
            compare(g, w, f"d = {d}, n = {n}, dt_rank = {rank}: {name}", rtol=1e-4, atol=1e-6)
    return test


def check_s6_params(fn, quiet: bool = False) -> Verdict:
    """fn(s6, x) -> (delta, B, C): x_proj splits into (dt_rank, n, n); Δ = softplus(dt_proj(·) + bias)."""
    cases = [
        ("a small layer, one token", _s6_case(4, 2, 1, 1, 1, 0)),
        ("a batch of sequences", _s6_case(8, 4, 2, 3, 10, 1)),
        ("full-rank Δ, larger weights", _s6_case(16, 8, 16, 2, 7, 2, scale=3.0)),
    ]
    return run_check("Δ, B and C from the input", fn, cases, quiet=quiet,
                     forbid=(S6.delta, S6.projections) + _SELECTIVE)


# ----------------------------------------------------------------------------------------------
# 2. The selective SSM with one state is a gated RNN
# ----------------------------------------------------------------------------------------------


def gated_rnn_reference(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The selective SSM with A = −1, B = 1, Δ_t = softplus(s_t), zero-order hold, h_{−1} = 0.  (d, L)

        Ab_t = exp(−Δ_t),  Bb_t = 1 − exp(−Δ_t)        (discretize.zoh, one step size per token)
        h_t = Ab_t·h_{t−1} + Bb_t·u_t                   (scan.scan_sequential)
    """
    delta = F.softplus(s)  # (d, L)
    A, B = torch.tensor([-1.0], dtype=u.dtype), torch.tensor([1.0], dtype=u.dtype)  # (1,) a 1-state system
    Ab, Bb = zoh(A, B, delta.reshape(-1), diagonal=True)  # (d·L, 1) each
    return scan_sequential(Ab.reshape(delta.shape), Bb.reshape(delta.shape) * u)  # (d, L)


def _gate_case(d: int, L: int, seed: int, s_scale: float = 1.0):
    g = _gen(seed)
    u = torch.randn(d, L, generator=g, dtype=F64)  # (d, L)
    s = s_scale * torch.randn(d, L, generator=g, dtype=F64)  # (d, L)

    def test(fn):
        compare(fn(u.clone(), s.clone()), gated_rnn_reference(u, s), f"d = {d}, L = {L}, h", rtol=1e-7, atol=1e-9)
    return test


def check_gated_rnn(fn, quiet: bool = False) -> Verdict:
    """fn(u, s) -> h (d, L) with h_t = (1 − σ(s_t))·h_{t−1} + σ(s_t)·u_t and h_{−1} = 0."""
    cases = [
        ("one token", _gate_case(2, 1, 0)),
        ("a short sequence", _gate_case(3, 12, 1)),
        ("saturated gates (|s| up to ~20: keep or take completely)", _gate_case(2, 30, 2, s_scale=8.0)),
    ]
    return run_check("A selective SSM is a gated RNN", fn, cases, quiet=quiet,
                     forbid=(gated_rnn_reference, zoh, _zoh) + _SCANS + _SELECTIVE)


# ----------------------------------------------------------------------------------------------
# 3. Every state at once, without a loop over time
# ----------------------------------------------------------------------------------------------


def _loopless_case(d: int, n: int, L: int, seed: int, dt_scale: float = 0.3):
    g = _gen(seed)
    delta = dt_scale * torch.rand(d, L, generator=g, dtype=F64) + 1e-3  # (d, L) positive
    A = -torch.arange(1, n + 1, dtype=F64).repeat(d, 1) * (0.5 + torch.rand(d, 1, generator=g, dtype=F64))  # (d, n)
    Bu = torch.randn(d, n, L, generator=g, dtype=F64)  # (d, n, L)

    def test(fn):
        want = scan_sequential(torch.exp(delta[:, None, :] * A[:, :, None]), Bu)  # (d, n, L)
        compare(fn(delta.clone(), A.clone(), Bu.clone()), want, f"d = {d}, n = {n}, L = {L}, h", rtol=1e-7, atol=1e-9)
    return test


def check_states_without_a_loop(fn, quiet: bool = False) -> Verdict:
    """fn(delta, A, Bu) -> h (d, n, L): h_t = Σ_{s≤t} exp(A·(S_t − S_s))·Bu_s with S_t = Δ_0 + … + Δ_t."""
    cases = [
        ("one token", _loopless_case(2, 3, 1, 0)),
        ("a short sequence", _loopless_case(3, 4, 9, 1)),
        ("large steps (future terms would overflow if not masked before exp)", _loopless_case(2, 8, 40, 2, dt_scale=30.0)),
    ]
    return run_check("The states without a loop", fn, cases, quiet=quiet, forbid=_SCANS + _SELECTIVE,
                     method=method_rule(_without_a_loop))


def _without_a_loop(tree) -> str | None:
    found = loops(tree)
    if found:
        return (f"your function uses {found[0]}: the exercise is every state at once, from cumulative sums of Δ "
                "and one masked (L, L) matrix of decays, with no loop over time")
    return None


__all__ = ["check_s6_params", "gated_rnn_reference", "check_gated_rnn", "check_states_without_a_loop"]
