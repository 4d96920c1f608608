"""Checks for chapter 11 (Mamba-2 and state space duality).

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.ssd`; it never raises (see `mamba_edu.exercises._core`).

    check_segsum(fn)                fn(x (..., T)) -> (..., T, T) segment sums, −∞ above the diagonal
    check_semiseparable_matrix(fn)  fn(dt (L,), A, B (L, N), C (L, N)) -> M (L, L), one head
    check_chunk_states(fn)          fn(Xb (c, q, p), log_a (c, q), B (c, q, N)) -> states (c, p, N)
"""

from __future__ import annotations

import torch

from .. import ssd
from ._core import Mismatch, Verdict, compare, gen, run_check

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return gen(seed)


def _close(got, cand) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == cand.shape
            and torch.allclose(got.detach().to(F64), cand.to(F64), rtol=1e-6, atol=1e-9, equal_nan=True))


def _compare_with_hints(got, want, what: str, hints, rtol=1e-6, atol=1e-9):
    """compare(), and when it fails, say which known mistake the answer matches (if any)."""
    try:
        compare(got, want, what, rtol=rtol, atol=atol)
    except Mismatch as e:
        for cand, hint in hints:
            if _close(got, cand):
                raise Mismatch(f"{e}: {hint}") from None
        raise


# ----------------------------------------------------------------------------------------------
# 1. Segment sums
# ----------------------------------------------------------------------------------------------


def _segsum_case(x: torch.Tensor, stability: bool = False):
    def test(fn):
        want = ssd.segsum(x)  # (..., T, T)
        got = fn(x.clone())
        if got is None:
            raise Mismatch("your function returned None (is there a `return`?)")
        if not isinstance(got, torch.Tensor):
            raise Mismatch(f"expected a torch.Tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            raise Mismatch(f"expected shape {tuple(want.shape)} (one T × T matrix per sequence), got {tuple(got.shape)}")
        future = torch.isinf(want)  # above the diagonal
        T = x.shape[-1]
        if not bool(torch.isneginf(got[future]).all()):
            zero = bool((got[future] == 0).all())
            raise Mismatch("entries above the diagonal (s > t) must be −∞, so that exp(segsum) is exactly 0 there"
                           + (" (yours are 0, which exp turns into 1)" if zero else ""))
        if bool(torch.isinf(got[~future]).any()):
            raise Mismatch("an entry on or below the diagonal is infinite: only s > t should be −∞")
        g, w = got.masked_fill(future, 0), want.masked_fill(future, 0)
        inclusive = w + x[..., None, :].expand_as(w).masked_fill(future, 0)  # Σ_{k=s..t}: x_s included
        hints = [(inclusive, "the sum runs over k = s+1 … t: x_s itself is not included (the diagonal is 0)"),
                 (w.transpose(-1, -2), "rows are t (the end), columns s (the start): your matrix is transposed")]
        if stability:
            cs = torch.cumsum(x, dim=-1)
            hints.append(((cs[..., :, None] - cs[..., None, :]).masked_fill(future, 0),
                          "you subtracted cumulative sums: with one huge value early on, float32 cannot hold the "
                          "small later sums next to it (catastrophic cancellation). Sum only the segment, e.g. "
                          "with a masked cumulative sum"))
        tol = dict(rtol=1e-5, atol=1e-7) if x.dtype == torch.float32 else dict(rtol=1e-9, atol=1e-12)
        _compare_with_hints(g, w, f"T = {T}, segsum", hints, **tol)
    return test


def check_segsum(fn, quiet: bool = False) -> Verdict:
    """fn(x (..., T)) -> (..., T, T) with out[..., t, s] = x_{s+1} + … + x_t for s ≤ t (0 on the
    diagonal) and −∞ for s > t; compared with `mamba_edu.ssd.segsum`."""
    g = _gen(21)
    cases = [
        ("T = 1", _segsum_case(torch.tensor([0.7], dtype=F64))),
        ("x = (1, 2, 3, 4)", _segsum_case(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))),
        ("a batch (2, 3, 6) of random x", _segsum_case(torch.randn(2, 3, 6, generator=g, dtype=F64))),
        ("float32, a huge first value then small ones",
         _segsum_case(torch.tensor([-1e6, 1e-3, 2e-3, 1e-3, 3e-3], dtype=torch.float32), stability=True)),
    ]
    return run_check("segsum", fn, cases, quiet=quiet, forbid=(ssd.segsum, ssd.decay_matrix))


# ----------------------------------------------------------------------------------------------
# 2. The semiseparable matrix of one head
# ----------------------------------------------------------------------------------------------


def _matrix_case(L: int, N: int, A: float, seed: int):
    def test(fn):
        g = _gen(seed)
        dt = torch.rand(L, generator=g, dtype=F64) * 0.5 + 0.05  # (L,)
        B, C = torch.randn(2, L, N, generator=g, dtype=F64).unbind(0)  # (L, N) each
        At = torch.tensor([A], dtype=F64)
        want = ssd.semiseparable_matrix(dt[None, :, None], At, B[None], C[None])[0, 0]  # (L, L)
        got = fn(dt.clone(), A, B.clone(), C.clone())
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        Lmask = ssd.decay_matrix(dt[None, :, None], At)[0, 0]  # (L, L)
        if (isinstance(got, torch.Tensor) and got.shape == want.shape and bool(torch.isfinite(got).all())
                and _close(got.masked_fill(~causal, 0), want) and not _close(got, want)):
            raise Mismatch("right on and below the diagonal, but the entries above it (s > t, the future) must be 0")
        hints = [((C @ B.T).masked_fill(~causal, 0), "no decay: that is causal linear attention, C Bᵀ masked; "
                  "multiply by a_{s+1}⋯a_t = exp(A·(Δ_{s+1} + … + Δ_t))"),
                 (want * torch.exp(A * dt)[None, :], "the decay product starts at k = s+1, not at s: "
                  "token s is written after its own decay"),
                 (Lmask * (B @ C.T), "rows are outputs t and read with C_t; columns are inputs s written with B_s "
                  "(you have B_t·C_s)")]
        _compare_with_hints(got, want, f"L = {L}, N = {N}, A = {A}, M", hints)
    return test


def check_semiseparable_matrix(fn, quiet: bool = False) -> Verdict:
    """fn(dt (L,), A (a number < 0), B (L, N), C (L, N)) -> M (L, L) with
    M[t, s] = (C_t · B_s) · exp(A · (Δ_{s+1} + … + Δ_t)) for s ≤ t and 0 above the diagonal."""
    cases = [
        ("L = 1", _matrix_case(1, 2, -1.0, 1)),
        ("L = 6, N = 2, A = −1", _matrix_case(6, 2, -1.0, 2)),
        ("L = 9, N = 4, fast decay A = −5", _matrix_case(9, 4, -5.0, 3)),
        ("L = 7, N = 3, no decay A = 0 (linear attention)", _matrix_case(7, 3, 0.0, 4)),
    ]
    return run_check("semiseparable_matrix", fn, cases, quiet=quiet,
                     forbid=(ssd.semiseparable_matrix, ssd.decay_matrix, ssd.segsum, ssd.ssd_by_matrix))


# ----------------------------------------------------------------------------------------------
# 3. Step 2 of the chunked algorithm: the state each chunk leaves at its end
# ----------------------------------------------------------------------------------------------


def _states_case(c: int, q: int, p: int, n: int, seed: int):
    def test(fn):
        g = _gen(seed)
        Xb = torch.randn(c, q, p, generator=g, dtype=F64)  # (c, q, p)
        log_a = -torch.rand(c, q, generator=g, dtype=F64) * 0.8  # (c, q)
        B = torch.randn(c, q, n, generator=g, dtype=F64)  # (c, q, n)
        want = ssd.ssd_chunk_states(Xb[None, :, :, None], log_a[None, None], B[None, :, :, None])[0, :, 0]  # (c, p, n)
        got = fn(Xb.clone(), log_a.clone(), B.clone())
        cum = torch.cumsum(log_a, -1)  # (c, q)

        def with_decay(w):
            return torch.einsum("csp,cs,csn->cpn", Xb, w, B)

        hints = [(with_decay(torch.ones_like(log_a)), "no decay: an early token must fade by a_{s+1}⋯a_end "
                  "before the chunk ends"),
                 (with_decay(torch.exp(cum[:, -1:] - cum + log_a)), "the decay runs from s+1 to the end: a_s "
                  "acts before token s is written, so it must not decay x_s"),
                 (with_decay(torch.exp(cum)), "that decays from the chunk's start to s; the state needs the decay "
                  "from s to the chunk's END, a_{s+1}⋯a_end"),
                 (want.transpose(-1, -2), "each state is p × N (head dim × state size): yours is transposed")]
        _compare_with_hints(got, want, f"c = {c}, q = {q}, p = {p}, N = {n}, states", hints)
    return test


def check_chunk_states(fn, quiet: bool = False) -> Verdict:
    """fn(Xb (c, q, p), log_a (c, q), B (c, q, N)) -> states (c, p, N) with
    states[c] = Σ_s exp(log_a[c, s+1] + … + log_a[c, q−1]) · Xb[c, s] ⊗ B[c, s]  (one head)."""
    cases = [
        ("one chunk of one token", _states_case(1, 1, 2, 3, 5)),
        ("one chunk, q = 4", _states_case(1, 4, 2, 3, 6)),
        ("three chunks, q = 5, p = 3, N = 4", _states_case(3, 5, 3, 4, 7)),
    ]
    return run_check("chunk_states", fn, cases, quiet=quiet,
                     forbid=(ssd.ssd_chunk_states, ssd.ssd_chunked, ssd.ssd_state_passing, ssd.ssd_scan_ref))


__all__ = ["check_segsum", "check_semiseparable_matrix", "check_chunk_states"]
