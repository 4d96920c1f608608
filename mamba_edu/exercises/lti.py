"""Checks for chapter 04 (LTI SSMs): the kernel by powers, the S4D Vandermonde kernel, FFT convolution.

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.lti`; it never raises (see `mamba_edu.exercises._core`).

    check_kernel_by_powers(fn)   fn(Ab (N, N), Bb (N,), C (N,), L) -> K (L,)        vs lti_kernel
    check_s4d_vandermonde(fn)    fn(A, B, C (H, N), dt, L) -> K (H, L)              vs s4d_kernel
    check_causal_fft_conv(fn)    fn(u (..., H, L), K (H, L)) -> y like u            vs causal_conv_direct
"""

from __future__ import annotations

import torch

from ..discretize import _zoh, bilinear, zoh
from ..hippo import hippo_legs
from ..lti import causal_conv, causal_conv_direct, lti_kernel, lti_recurrent, s4d_discretize, s4d_init, s4d_kernel
from ._core import Verdict, called_names, compare, gen, loops, method_rule, run_check

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return gen(seed)


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
    return run_check("Kernel by repeated multiplication", fn, cases, quiet=quiet, forbid=(lti_kernel, lti_recurrent),
                     method=method_rule(_by_multiplication))


_SHORTCUTS = {"matrix_power": "torch.linalg.matrix_power", "matrix_exp": "torch.linalg.matrix_exp",
              "eig": "an eigendecomposition", "eigvals": "an eigendecomposition", "eigh": "an eigendecomposition"}


def _by_multiplication(tree) -> str | None:
    """The exercise is the recurrence v ← Ab·v: no matrix powers, exponentials or eigendecompositions."""
    used = sorted(called_names(tree) & set(_SHORTCUTS))
    if used:
        return (f"your function calls {', '.join(used)} ({_SHORTCUTS[used[0]]}): build each Ab^l·Bb from the "
                "previous one by one multiplication (v ← Ab·v), which is the point of this exercise")
    return None


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
    return run_check("S4D kernel (Vandermonde)", fn, cases, quiet=quiet,
                     forbid=(s4d_kernel, lti_kernel, s4d_discretize, zoh, _zoh), method=method_rule(_no_loop))


def _no_loop(tree) -> str | None:
    """The Vandermonde matrix exp(l·ΔA_n) is built in one broadcast, not step by step."""
    found = loops(tree)
    if found:
        return (f"your function uses {found[0]}: the point of the Vandermonde form is that every power "
                "Ab_n^l = exp(l·ΔA_n) comes from one broadcast (an (H, N, 1) times an (L,) tensor), no loop")
    return None


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
    return run_check("Causal FFT convolution", fn, cases, quiet=quiet, forbid=(causal_conv, causal_conv_direct),
                     method=method_rule(_by_fft))


_FFTS = {"fft", "rfft", "fftn", "rfftn", "fft2", "rfft2"}


def _by_fft(tree) -> str | None:
    """The convolution goes through the frequency domain: an FFT is called, and there is no loop over lags."""
    calls = called_names(tree)
    if not calls & _FFTS:
        direct = sorted(calls & {"conv1d", "convolve", "conv_transpose1d", "unfold"})
        return ("your function calls no FFT" + (f" (it uses {direct[0]})" if direct else "") + ": compute y as "
                "irfft(rfft(u, n=2L) · rfft(K, n=2L)) and keep the first L values; the O(L log L) cost is the "
                "point of this exercise")
    found = loops(tree)
    if found:
        return (f"your function uses {found[0]}: with the FFT there is nothing to loop over (a loop over lags is "
                "the direct O(L²) convolution)")
    return None


__all__ = ["check_kernel_by_powers", "check_s4d_vandermonde", "check_causal_fft_conv"]
