"""Checks for chapter 03 (HiPPO): the LegS operator, reconstruction, projection by quadrature.

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.hippo`; it never raises (see `mamba_edu.exercises._core`).

    check_legs_matrices(fn)     fn(N) -> (A (N, N), B (N,))                  vs hippo_legs
    check_legs_reconstruct(fn)  fn(c (N,), x (M,)) -> f_hat (M,)             vs hippo_reconstruct
    check_legs_quadrature(fn)   fn(f_mid (M,), N) -> c (N,)                  vs the midpoint rule
"""

from __future__ import annotations

import torch

from ..hippo import basis, hippo_legs, hippo_operator, hippo_project, hippo_reconstruct
from ._core import Mismatch, Verdict, compare, gen, run_check

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return gen(seed)


# ----------------------------------------------------------------------------------------------
# 1. The LegS operator from its formula
# ----------------------------------------------------------------------------------------------


def _legs_case(N: int):
    def test(fn):
        got = fn(N)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"N = {N}: expected a pair (A, B), got {type(got).__name__}"
                           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
        A, B = hippo_legs(N)                                        # (n, n), (n,)
        compare(got[0], A, f"N = {N}, A")
        compare(got[1], B, f"N = {N}, B")
    return test


def check_legs_matrices(fn, quiet: bool = False) -> Verdict:
    """fn(N) -> (A, B): the LegS operator, A (N, N) with -sqrt(2n+1)sqrt(2k+1) below the diagonal,
    -(n+1) on it and 0 above; B[n] = sqrt(2n+1)."""
    cases = [(f"N = {N}", _legs_case(N)) for N in (1, 2, 5, 16)]
    return run_check("LegS matrices (A, B)", fn, cases, quiet=quiet, forbid=(hippo_legs, hippo_operator))


# ----------------------------------------------------------------------------------------------
# 2. Reconstruction from LegS coefficients
# ----------------------------------------------------------------------------------------------


def _reconstruct_case(c: torch.Tensor, x: torch.Tensor):
    def test(fn):
        got = fn(c.clone(), x.clone())
        # over the window [0, t] with t = 1 the times s are the positions x themselves
        want = hippo_reconstruct(c, "legs", 1.0, x)                 # (m,)
        compare(got, want, f"N = {c.shape[0]}, M = {x.shape[0]}, f_hat")
    return test


def check_legs_reconstruct(fn, quiet: bool = False) -> Verdict:
    """fn(c, x) -> f_hat: f_hat(x) = Σ_n c_n sqrt(2n+1) P_n(2x - 1) for x in [0, 1]; c (N,), x (M,) -> (M,)."""
    g = _gen(3)
    cases = [
        ("a constant (N = 1)", _reconstruct_case(torch.tensor([2.5], dtype=F64),
                                                 torch.tensor([0.0, 0.3, 1.0], dtype=F64))),
        ("N = 2 at the window's two ends", _reconstruct_case(torch.tensor([0.5, -1.0], dtype=F64),
                                                             torch.tensor([0.0, 1.0], dtype=F64))),
        ("N = 6, random c", _reconstruct_case(torch.randn(6, generator=g, dtype=F64),
                                              torch.linspace(0, 1, 11, dtype=F64))),
        ("N = 12, random c and x", _reconstruct_case(torch.randn(12, generator=g, dtype=F64),
                                                     torch.rand(25, generator=g, dtype=F64))),
    ]
    return run_check("LegS reconstruction", fn, cases, quiet=quiet, forbid=(hippo_reconstruct, basis))


# ----------------------------------------------------------------------------------------------
# 3. Projection coefficients by quadrature
# ----------------------------------------------------------------------------------------------


def legs_quadrature_reference(f_mid: torch.Tensor, N: int) -> torch.Tensor:
    """c_n = ∫_0^1 f(x) g_n(x) dx by the midpoint rule: (1/M) Σ_j f(x_j) g_n(x_j), x_j = (j + ½)/M."""
    M = f_mid.shape[0]
    x = (torch.arange(M, dtype=f_mid.dtype) + 0.5) / M              # (m,)  midpoints of [0, 1]
    return basis("legs", N, x).T @ f_mid / M                        # (n,)


def _quadrature_case(f_mid: torch.Tensor, N: int):
    def test(fn):
        got = fn(f_mid.clone(), N)
        compare(got, legs_quadrature_reference(f_mid, N), f"M = {f_mid.shape[0]}, N = {N}, c")
    return test


def check_legs_quadrature(fn, quiet: bool = False) -> Verdict:
    """fn(f_mid, N) -> c: the LegS coefficients of the samples f_mid (M,) taken at the window
    midpoints x_j = (j + ½)/M, by the midpoint rule c_n = (1/M) Σ_j f_mid[j] g_n(x_j); -> (N,)."""
    g = _gen(7)
    xm = (torch.arange(40, dtype=F64) + 0.5) / 40
    cases = [
        ("one sample, N = 1", _quadrature_case(torch.tensor([3.0], dtype=F64), 1)),
        ("a constant signal", _quadrature_case(torch.full((50,), 2.0, dtype=F64), 4)),
        ("a ramp f(x) = x", _quadrature_case(xm, 5)),
        ("random samples, M = 37, N = 7", _quadrature_case(torch.randn(37, generator=g, dtype=F64), 7)),
    ]
    return run_check("LegS coefficients by quadrature", fn, cases, quiet=quiet,
                     forbid=(legs_quadrature_reference, basis, hippo_project))


__all__ = ["check_legs_matrices", "check_legs_reconstruct", "check_legs_quadrature", "legs_quadrature_reference"]
