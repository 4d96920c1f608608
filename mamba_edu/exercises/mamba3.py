"""Checks for chapter 12 (Mamba-3).

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.mamba3`; it never raises (see `mamba_edu.exercises._core`). An answer that
calls `mamba_edu.mamba3` itself is refused: the exercise is to write it.

    check_trapezoid_update(fn)  fn(H (p, n), x_prev (p,), B_prev (n,), x (p,), B (n,), dt, adt, lam) -> H_new (p, n)
    check_rotate_pairs(fn)      fn(v (..., n), theta (..., s)) -> v with pairs (2i, 2i+1), i < s, turned by theta_i
    check_mimo_update(fn)       fn(H (p, n), alpha, gamma, X (r, p), B (r, n), C (r, n)) -> (H_new (p, n), Y (r, p))
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager

import torch

from .. import mamba3
from ._core import Mismatch, Verdict, compare, gen, run_check

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return gen(seed)  # salted by the grader, like every check's inputs


@contextmanager
def _no_library():
    """Record every call into mamba_edu/mamba3.py while the learner's code runs; refuse it after."""
    target = mamba3.__file__
    called: list[str] = []
    previous = sys.getprofile()

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == target and not called:
            called.append(frame.f_code.co_name)

    def refuse():
        return Mismatch(f"your code calls the library (mamba_edu.mamba3.{called[0]}): the exercise is to write it "
                        "yourself with plain tensor operations")

    sys.setprofile(watch)
    try:
        yield
    except Exception:  # the library call failed on the learner's arguments: say why it is refused, not how it failed
        sys.setprofile(previous)
        if called:
            raise refuse() from None
        raise
    finally:
        sys.setprofile(previous)
    if called:
        raise refuse()


def _run(fn, *args):
    with _no_library():
        return fn(*args)


def _hinted(got, want, what, hints, rtol=1e-6, atol=1e-9):
    try:
        compare(got, want, what, rtol=rtol, atol=atol)
    except Mismatch as e:
        for cand, hint in hints:
            if isinstance(got, torch.Tensor) and got.shape == cand.shape and torch.allclose(
                    got.detach().to(F64), cand.to(F64), rtol=1e-6, atol=1e-9):
                raise Mismatch(f"{e}: {hint}") from None
        raise


# ----------------------------------------------------------------------------------------------
# 1. The exponential-trapezoidal update
# ----------------------------------------------------------------------------------------------


def _trap_case(p: int, n: int, seed: int, lam: float | None = None):
    def test(fn):
        g = _gen(seed)
        H, xp, Bp, x, B = (torch.randn(*s, generator=g, dtype=F64) for s in ((p, n), (p,), (n,), (p,), (n,)))
        dt = 0.2 + float(torch.rand((), generator=g, dtype=F64))
        adt = -0.7 * dt
        lm = float(torch.rand((), generator=g, dtype=F64)) if lam is None else lam
        alpha, beta, gamma = (float(c) for c in mamba3.trapezoid_coefficients(torch.tensor(dt, dtype=F64),
                                                                                torch.tensor(adt, dtype=F64),
                                                                                torch.tensor(lm, dtype=F64)))
        want = alpha * H + beta * torch.outer(xp, Bp) + gamma * torch.outer(x, B)  # (p, n)
        hints = [(alpha * H + dt * torch.outer(x, B), "that is exponential-Euler (λ = 1, Mamba-2): the previous "
                  "token's x_{t-1} B_{t-1}ᵀ is missing"),
                 (alpha * H + (1 - lm) * dt * torch.outer(xp, Bp) + gamma * torch.outer(x, B),
                  "the left end's weight is (1 − λ)·Δ·α: the previous input has decayed for one step too"),
                 (alpha * H + lm * dt * alpha * torch.outer(xp, Bp) + (1 - lm) * dt * torch.outer(x, B),
                  "λ weighs the CURRENT token (γ = λΔ) and 1 − λ the previous one")]
        got = _run(fn, H.clone(), xp.clone(), Bp.clone(), x.clone(), B.clone(), dt, adt, lm)
        _hinted(got, want, f"p = {p}, n = {n}, λ = {lm:.3g}", hints)
    return test


def check_trapezoid_update(fn, quiet: bool = False) -> Verdict:
    """fn(H (p, n), x_prev (p,), B_prev (n,), x (p,), B (n,), dt, adt, lam) -> the new state (p, n):

        H_t = α H_{t-1} + β x_{t-1} B_{t-1}ᵀ + γ x_t B_tᵀ,   α = e^{adt}, β = (1 − λ) Δ α, γ = λ Δ
    """
    cases = [("one channel, one state entry", _trap_case(1, 1, 0)), ("λ = ½", _trap_case(3, 4, 1, lam=0.5)),
             ("λ = 1 (Euler)", _trap_case(2, 3, 2, lam=1.0)), ("λ = 0", _trap_case(2, 3, 3, lam=0.0)),
             ("random λ", _trap_case(4, 5, 4))]
    return run_check("trapezoid update", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 2. Rotating pairs of entries (the complex state as a real one)
# ----------------------------------------------------------------------------------------------


def _rotate_case(shape: tuple, s: int, seed: int, theta_value: float | None = None):
    def test(fn):
        g = _gen(seed)
        v = torch.randn(*shape, generator=g, dtype=F64)
        th = (torch.rand(*shape[:-1], s, generator=g, dtype=F64) * 2 * math.pi if theta_value is None
              else torch.full((*shape[:-1], s), theta_value, dtype=F64))
        want = mamba3.rotate(v, th)
        hints = [(mamba3.rotate(v, -th), "the rotation goes the other way: (a, b) → (a cos θ − b sin θ, a sin θ + b cos θ)"),
                 (mamba3.rotate(v, th, halves=True), "pair entry 2i with 2i + 1 (neighbours), not i with i + n/2")]
        got = _run(fn, v.clone(), th.clone())
        _hinted(got, want, f"v {tuple(shape)}, {s} angles", hints)
    return test


def check_rotate_pairs(fn, quiet: bool = False) -> Verdict:
    """fn(v (..., n), theta (..., s)) -> v with each pair (v_{2i}, v_{2i+1}), i < s, turned by θ_i;
    the entries from 2s on unchanged."""
    cases = [("a quarter turn of one pair", _rotate_case((1, 2), 1, 0, theta_value=math.pi / 2)),
             ("half turn (parity's flip)", _rotate_case((3, 4), 2, 1, theta_value=math.pi)),
             ("some entries do not rotate", _rotate_case((2, 8), 2, 2)),
             ("a batch of heads", _rotate_case((2, 3, 6), 3, 3))]
    return run_check("rotate pairs", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 3. One MIMO update
# ----------------------------------------------------------------------------------------------


def _mimo_case(p: int, n: int, r: int, seed: int):
    def test(fn):
        g = _gen(seed)
        H = torch.randn(p, n, generator=g, dtype=F64)
        X, B, C = (torch.randn(r, k, generator=g, dtype=F64) for k in (p, n, n))
        alpha, gamma = 0.9, 0.3
        H_new = alpha * H + gamma * torch.einsum("rp,rn->pn", X, B)  # (p, n)
        Y = torch.einsum("pn,rn->rp", H_new, C)  # (r, p)
        got = _run(fn, H.clone(), alpha, gamma, X.clone(), B.clone(), C.clone())
        if not isinstance(got, tuple) or len(got) != 2:
            raise Mismatch(f"return a pair (H_new, Y); got {type(got).__name__}")
        _hinted(got[0], H_new, f"r = {r}, H_new", [
            (alpha * H + gamma * torch.outer(X[0], B[0]), "sum the r outer products x_ρ B_ρᵀ over ALL ranks ρ, not just the first")])
        _hinted(got[1], Y, f"r = {r}, Y", [
            (torch.einsum("pn,rn->rp", H, C), "read the outputs from the NEW state (after this token's update)")])
    return test


def check_mimo_update(fn, quiet: bool = False) -> Verdict:
    """fn(H (p, n), alpha, gamma, X (r, p), B (r, n), C (r, n)) -> (H_new (p, n), Y (r, p)):

        H_new = α H + γ Σ_ρ x_ρ B_ρᵀ         Y_ρ = H_new C_ρ
    """
    cases = [("rank 1 (SISO)", _mimo_case(3, 4, 1, 0)), ("rank 2", _mimo_case(3, 4, 2, 1)),
             ("rank 4", _mimo_case(5, 8, 4, 2))]
    return run_check("MIMO update", fn, cases, quiet=quiet)


__all__ = ["check_trapezoid_update", "check_rotate_pairs", "check_mimo_update"]
