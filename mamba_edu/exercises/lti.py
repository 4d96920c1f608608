"""Checks for chapter 04 (LTI SSMs): the kernel by powers, the S4D Vandermonde kernel, FFT convolution.

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.lti`; it never raises (see `mamba_edu.exercises._core`).

    check_kernel_by_powers(fn)   fn(Ab (N, N), Bb (N,), C (N,), L) -> K (L,)        vs lti_kernel
    check_s4d_vandermonde(fn)    fn(A, B, C (H, N), dt, L) -> K (H, L)              vs s4d_kernel
    check_causal_fft_conv(fn)    fn(u (..., H, L), K (H, L)) -> y like u            vs causal_conv_direct
"""

from __future__ import annotations

import torch

from ..discretize import bilinear
from ..hippo import hippo_legs
from ..lti import causal_conv_direct, lti_kernel, s4d_init, s4d_kernel
from ._core import Verdict, compare, run_check

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# 1. K_l = C Ab^l Bb by repeated multiplication
# ----------------------------------------------------------------------------------------------


def _powers_case(Ab: torch.Tensor, Bb: torch.Tensor, C: torch.Tensor, L: int):
    def test(fn):
        got = fn(Ab.clone(), Bb.clone(), C.clone(), L)
        want = lti_kernel(Ab[None], Bb[None], C[None], L)[0]        # (l,)
        compare(got, want, f"N = {Ab.shape[0]}, L = {L}, K", rtol=1e-6, atol=1e-9)
    return test


def check_kernel_by_powers(fn, quiet: bool = False) -> Verdict:
    """fn(Ab, Bb, C, L) -> K with K_l = C Ab^l Bb for l = 0..L-1; Ab (N, N), Bb (N,), C (N,) -> (L,)."""
    g = _gen(11)
    A, B = hippo_legs(4)
    Ab, Bb = bilinear(A, B, 0.1)                                    # (4, 4), (4,)
    R = torch.randn(6, 6, generator=g, dtype=F64)
    Ar = 0.9 * R / torch.linalg.matrix_norm(R, ord=2)               # (6, 6)  a stable, non-symmetric matrix
    cases = [
        ("L = 1 (just C·Bb)", _powers_case(Ab, Bb, torch.randn(4, generator=g, dtype=F64), 1)),
        ("a scalar system N = 1", _powers_case(torch.tensor([[0.8]], dtype=F64), torch.tensor([2.0], dtype=F64),
                                               torch.tensor([0.5], dtype=F64), 6)),
        ("HiPPO-LegS, bilinear Δ = 0.1", _powers_case(Ab, Bb, torch.randn(4, generator=g, dtype=F64), 20)),
        ("a random non-symmetric Ab", _powers_case(Ar, torch.randn(6, generator=g, dtype=F64),
                                                    torch.randn(6, generator=g, dtype=F64), 15)),
    ]
    return run_check("Kernel by repeated multiplication", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 2. The S4D kernel by a Vandermonde product
# ----------------------------------------------------------------------------------------------


def _s4d_case(kind: str, H: int, N: int, dt: float, L: int, seed: int):
    g = _gen(seed)
    A = s4d_init(H, N, kind)                                        # (h, n) or (h, n/2) complex
    B = torch.ones_like(A)
    C = torch.randn(A.shape, generator=g, dtype=F64).to(A.dtype)
    if A.is_complex():
        C = C + 1j * torch.randn(A.shape, generator=g, dtype=F64)

    def test(fn):
        got = fn(A.clone(), B.clone(), C.clone(), dt, L)
        want = s4d_kernel(A, B, C, dt, L)                           # (h, l)
        compare(got, want, f"S4D-{kind.capitalize()} with H = {H}, N = {N}, Δ = {dt}, L = {L}, K",
                rtol=1e-6, atol=1e-9)
    return test


def check_s4d_vandermonde(fn, quiet: bool = False) -> Verdict:
    """fn(A, B, C, dt, L) -> K (H, L): ZOH (Ab = exp(ΔA), Bb = (exp(ΔA) - 1)/A · B), then
    K_l = Σ_n C_n Bb_n Ab_n^l via the Vandermonde matrix exp(l·ΔA_n); 2·Re(K) for complex A."""
    cases = [
        ("S4D-Lin, complex", _s4d_case("lin", 2, 8, 0.1, 16, 0)),
        ("S4D-Real, real A (no doubling)", _s4d_case("real", 1, 3, 0.5, 10, 1)),
        ("S4D-Inv, L = 1", _s4d_case("inv", 3, 6, 0.01, 1, 2)),
        ("S4D-Inv, long kernel", _s4d_case("inv", 2, 16, 0.05, 64, 3)),
    ]
    return run_check("S4D kernel (Vandermonde)", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 3. Causal convolution with the FFT
# ----------------------------------------------------------------------------------------------


def _conv_case(u_shape: tuple[int, ...], seed: int):
    g = _gen(seed)
    H, L = u_shape[-2:]
    u = torch.randn(u_shape, generator=g, dtype=F64)                # (..., h, l)
    K = torch.randn(H, L, generator=g, dtype=F64)                   # (h, l)  a long, non-decaying kernel

    def test(fn):
        got = fn(u.clone(), K.clone())
        compare(got, causal_conv_direct(u, K), f"u of shape {tuple(u_shape)}, y", rtol=1e-6, atol=1e-9)
    return test


def check_causal_fft_conv(fn, quiet: bool = False) -> Verdict:
    """fn(u, K) -> y with y_l = Σ_{j≤l} K_j u_{l-j}, computed with the FFT; u (b, H, L) or (H, L),
    K (H, L) -> y like u."""
    cases = [
        ("L = 1", _conv_case((2, 1), 0)),
        ("odd L, no batch axis", _conv_case((2, 7), 1)),
        ("a batch", _conv_case((3, 2, 16), 2)),
        ("a longer sequence", _conv_case((1, 4, 100), 3)),
    ]
    return run_check("Causal FFT convolution", fn, cases, quiet=quiet)


__all__ = ["check_kernel_by_powers", "check_s4d_vandermonde", "check_causal_fft_conv"]
