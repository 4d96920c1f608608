"""Discretisation: from the continuous SSM x'(t) = A x(t) + B u(t) to the recurrence x_k = Ab x_{k-1} + Bb u_k.

Glossary
    N        state size
    P        number of input channels of a dense system (B is (N, P); B of shape (N,) means P = 1)
    T        number of step sizes when dt is a 1-D tensor (the outputs get a leading (T,) axis)
    A        continuous state matrix: dense (N, N), or diagonal, given as its diagonal (..., N)
             (real, or complex as in S4D)
    B        continuous input matrix: dense (N,) or (N, P); diagonal: broadcastable against A
    Δ, dt    step size: a Python number, a 0-d tensor, or a 1-D tensor (T,); finite and > 0
    I        identity (N, N)
    Ab, Bb   the discrete ("bar") matrices:  x_k = Ab x_{k-1} + Bb u_k

Three rules, from exact to crude (all agree to first order in Δ):

    zero-order hold (u held constant over each step; exact for such inputs)
        Ab = exp(ΔA)                    Bb = (ΔA)^{-1} (exp(ΔA) - I) ΔB
    bilinear (trapezoid rule, Tustin; maps the left half-plane onto the unit disc)
        Ab = (I - Δ/2 A)^{-1} (I + Δ/2 A)     Bb = (I - Δ/2 A)^{-1} ΔB
    forward Euler (one tangent step; unstable once Δ is large compared to 1/|eigenvalue|)
        Ab = I + ΔA                     Bb = ΔB

Mamba-3's rule (exponential-trapezoidal) is not an (Ab, Bb) pair: it keeps the previous input too,

    x_k = Ab x_{k-1} + Bb_prev u_{k-1} + Bb_cur u_k
    Ab = exp(ΔA)      Bb_prev = (1 - λ) Δ exp(ΔA) B      Bb_cur = λ Δ B       (0 ≤ λ ≤ 1)

λ = 1 is the exponential-Euler rule of Mamba-1/2 (Ab = exp(ΔA), Bb = ΔB); λ = ½ weighs both ends of
the step equally, the trapezoid rule applied to the input integral, one order more accurate.
`exp_trapezoidal` returns the three matrices.

A useful fact: every rule depends on A, B and Δ only through ΔA and ΔB, so discretising
(ΔA, ΔB) with step 1 is the same as discretising (A, B) with step Δ.

Dense or diagonal: `diagonal=None` (the default) reads a 1-D A as the diagonal of a diagonal
matrix and a 2-D A as a dense matrix. Pass `diagonal=True` for a batch of diagonal systems,
e.g. the (H, N) A of an S4D layer (then everything is elementwise).
"""

from __future__ import annotations

import torch

from ._checks import check_choice, check_finite, check_float, check_positive, check_tensor, fail

DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
METHODS = ("zoh", "bilinear", "euler")


# ----------------------------------------------------------------------------------------------
# Validation shared by the three rules
# ----------------------------------------------------------------------------------------------


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype


def _check_dt(func: str, dt, A: torch.Tensor) -> torch.Tensor:
    """dt as a 0-d or 1-D (T,) tensor of A's real dtype; finite and strictly positive."""
    real = _real_dtype(A.dtype)
    if isinstance(dt, torch.Tensor):
        check_tensor(func, "dt", dt, ndim=(0, 1), dims="() or (T,)",
                     dtypes=(torch.float32, torch.float64), device=A.device)
        if dt.numel() == 0:
            fail(func, "dt", "a non-empty tensor of step sizes", f"shape {tuple(dt.shape)}")
        check_positive(func, "dt", dt)
        return dt.to(real)
    return torch.tensor(check_float(func, "dt", dt, positive=True), dtype=real, device=A.device)


def _check_system(func: str, A, B, dt, diagonal: bool | None):
    """Validate (A, B, dt); return (A, B, dt tensor, diagonal flag)."""
    check_tensor(func, "A", A, dtypes=DTYPES)
    if diagonal is None:
        check_tensor(func, "A", A, ndim=(1, 2), dims="(N,) diagonal or (N, N) dense", dtypes=None)
        diagonal = A.dim() == 1
    if diagonal and A.dim() < 1:
        fail(func, "A", "a tensor (..., N) holding the diagonal", f"shape {tuple(A.shape)}")
    if not diagonal and (A.dim() != 2 or A.shape[0] != A.shape[1]):
        fail(func, "A", "a square (N, N) matrix", f"shape {tuple(A.shape)}")
    if A.shape[-1] < 1:
        fail(func, "A", "of state size N >= 1", f"shape {tuple(A.shape)}")
    check_finite(func, "A", A)
    n = A.shape[-1]
    check_tensor(func, "B", B, dtypes=DTYPES, device=A.device)
    if _real_dtype(B.dtype) != _real_dtype(A.dtype):
        fail(func, "B", f"of A's precision ({_real_dtype(A.dtype)}, real or complex)", B.dtype)
    if diagonal:
        try:
            torch.broadcast_shapes(A.shape, B.shape)
        except RuntimeError:
            fail(func, "B", f"broadcastable against A's shape {tuple(A.shape)}", f"shape {tuple(B.shape)}")
    elif B.dim() not in (1, 2) or B.shape[0] != n:
        fail(func, "B", f"of shape (N,) or (N, P) with N = {n}", f"shape {tuple(B.shape)}")
    check_finite(func, "B", B)
    return A, B, _check_dt(func, dt, A), diagonal


def _steps(dt: torch.Tensor, ndim: int) -> torch.Tensor:
    """Δ shaped to broadcast against a tensor with `ndim` dims: () -> (1,..,1); (T,) -> (T, 1,..,1)."""
    return dt.reshape(dt.shape + (1,) * ndim)


# ----------------------------------------------------------------------------------------------
# The rules. Each private function takes validated inputs; the public ones validate first.
# ----------------------------------------------------------------------------------------------


def _zoh(A, B, dt, diagonal):
    if diagonal:
        nd = max(A.dim(), B.dim())
        dA = _steps(dt, nd) * A                                    # (t, ..., n)
        dB = _steps(dt, nd) * B                                    # (t, ..., n)
        Ab = torch.exp(dA)                                         # (t, ..., n)
        # Bb = (exp(ΔA) - 1)/(ΔA) · ΔB, computed with expm1; its limit at ΔA = 0 is ΔB
        safe = torch.where(dA == 0, torch.ones_like(dA), dA)      # (t, ..., n)
        phi = torch.where(dA == 0, torch.ones_like(dA), torch.expm1(dA) / safe)  # (t, ..., n)
        return Ab, phi * dB                                        # (t, ..., n), (t, ..., n)
    # Dense: one matrix exponential of the augmented (N+P, N+P) matrix gives both at once:
    #   exp(Δ [[A, B], [0, 0]]) = [[exp(ΔA), ∫_0^Δ exp(sA) ds B], [0, I]]
    # and ∫_0^Δ exp(sA) ds B = (ΔA)^{-1}(exp(ΔA) - I)ΔB, but the integral needs no inverse (A may be singular).
    n = A.shape[0]
    Bm = B if B.dim() == 2 else B[:, None]                         # (n, p)
    p = Bm.shape[1]
    dtype = torch.promote_types(A.dtype, B.dtype)
    M = torch.zeros(n + p, n + p, dtype=dtype, device=A.device)   # (n+p, n+p)
    M[:n, :n] = A
    M[:n, n:] = Bm
    E = torch.linalg.matrix_exp(_steps(dt, 2) * M)                 # (t, n+p, n+p)
    Ab = E[..., :n, :n] if A.is_complex() else E[..., :n, :n].real  # (t, n, n)
    Bb = E[..., :n, n:]                                            # (t, n, p)
    return Ab, (Bb if B.dim() == 2 else Bb[..., 0])                # (t, n, n), (t, n, p) or (t, n)


def _singular():
    """I − Δ/2·A has no inverse: some eigenvalue λ of A has Δλ = 2 (the rule's pole)."""
    fail("bilinear", "dt", "a step where I − (dt/2)·A is invertible (the rule has a pole at dt·λ = 2 for each "
         "eigenvalue λ of A)", "dt·λ = 2 for an eigenvalue λ of A")


def _bilinear(A, B, dt, diagonal):
    if diagonal:
        nd = max(A.dim(), B.dim())
        half = _steps(dt, nd) / 2 * A                              # (t, ..., n)
        # Ab = (1 + Δ/2 A)/(1 - Δ/2 A),  Bb = ΔB/(1 - Δ/2 A)   (elementwise)
        if bool((1 - half == 0).any()):
            _singular()
        Ab = (1 + half) / (1 - half)                               # (t, ..., n)
        Bb = _steps(dt, nd) * B / (1 - half)                       # (t, ..., n)
        return Ab, Bb
    n = A.shape[0]
    I = torch.eye(n, dtype=A.dtype, device=A.device)               # (n, n)
    Bm = B if B.dim() == 2 else B[:, None]                         # (n, p)
    half = _steps(dt, 2) / 2 * A                                   # (t, n, n)
    # Ab = (I - Δ/2 A)^{-1}(I + Δ/2 A),  Bb = (I - Δ/2 A)^{-1} ΔB   (solve, never inv)
    try:
        Ab = torch.linalg.solve(I - half, I + half)                # (t, n, n)
        dB = (_steps(dt, 2) * Bm).to(torch.promote_types(A.dtype, B.dtype))  # (t, n, p)
        Bb = torch.linalg.solve((I - half).to(dB.dtype), dB)       # (t, n, p)
    except torch.linalg.LinAlgError:
        _singular()
    return Ab, (Bb if B.dim() == 2 else Bb[..., 0])                # (t, n, n), (t, n, p) or (t, n)


def _euler(A, B, dt, diagonal):
    if diagonal:
        nd = max(A.dim(), B.dim())
        shape = torch.broadcast_shapes(A.shape, B.shape)
        # Ab = 1 + ΔA,  Bb = ΔB   (elementwise)
        Ab = 1 + _steps(dt, nd) * A                                # (t, ..., n)
        Bb = (_steps(dt, nd) * B).expand(dt.shape + shape)         # (t, ..., n)
        return Ab, Bb.clone()
    I = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)      # (n, n)
    # Ab = I + ΔA,  Bb = ΔB
    Ab = I + _steps(dt, 2) * A                                     # (t, n, n)
    Bb = _steps(dt, B.dim()) * B                                   # (t, n) or (t, n, p)
    return Ab, Bb


_RULES = {"zoh": _zoh, "bilinear": _bilinear, "euler": _euler}


def exp_trapezoidal(A: torch.Tensor, B: torch.Tensor, dt, lam: float = 0.5, diagonal: bool | None = None):
    """Mamba-3's exponential-trapezoidal rule: x_k = Ab x_{k-1} + Bb_prev u_{k-1} + Bb_cur u_k.

        Ab = exp(ΔA)       Bb_prev = (1 − λ)·Δ·exp(ΔA)·B       Bb_cur = λ·Δ·B

    The input integral ∫_0^Δ exp((Δ−s)A) B u(t_{k−1}+s) ds is approximated by weighing its two
    ends: λ on the right end (s = Δ: factor B u_k) and 1 − λ on the left end (s = 0: factor
    exp(ΔA) B u_{k−1}). λ = 1 gives the exponential-Euler rule of Mamba-1/2; λ = ½ the trapezoid
    rule, whose error per step is O(Δ³) instead of O(Δ²). Returns (Ab, Bb_prev, Bb_cur); a 1-D dt
    (T,) adds a leading (T,) axis, as for the other rules.
    """
    A, B, dt, diagonal = _check_system("exp_trapezoidal", A, B, dt, diagonal)
    lam = check_float("exp_trapezoidal", "lam", lam)
    if not 0.0 <= lam <= 1.0:
        fail("exp_trapezoidal", "lam", "a number in [0, 1]", lam)
    Ab, _ = _zoh(A, B, dt, diagonal)                               # (t, ..., n) or (t, n, n): exp(ΔA)
    if diagonal:
        nd = max(A.dim(), B.dim())
        dB = _steps(dt, nd) * B                                    # (t, ..., n)
        return Ab, (1 - lam) * Ab * dB, lam * dB                   # exp(ΔA)·ΔB elementwise
    Bm = B if B.dim() == 2 else B[:, None]                         # (n, p)
    dB = (_steps(dt, 2) * Bm).to(Ab.dtype)                         # (t, n, p)
    prev, cur = (1 - lam) * Ab @ dB, lam * dB                      # (t, n, p)
    if B.dim() == 1:
        prev, cur = prev[..., 0], cur[..., 0]                      # (t, n)
    return Ab, prev, cur


def zoh(A: torch.Tensor, B: torch.Tensor, dt, diagonal: bool | None = None):
    """Zero-order hold: Ab = exp(ΔA), Bb = (ΔA)^{-1}(exp(ΔA) - I)ΔB.

    Exact when u is constant over each step. Dense A uses the augmented-matrix exponential (no
    inverse, so singular A is fine); diagonal A uses expm1, with the limit ΔB where A = 0.
    Returns (Ab, Bb); a 1-D dt of shape (T,) adds a leading (T,) axis to both.
    """
    return _zoh(*_check_system("zoh", A, B, dt, diagonal))


def bilinear(A: torch.Tensor, B: torch.Tensor, dt, diagonal: bool | None = None):
    """Bilinear (Tustin): Ab = (I - Δ/2 A)^{-1}(I + Δ/2 A), Bb = (I - Δ/2 A)^{-1}ΔB.

    Keeps every stable A stable for every Δ > 0 (|(1 + Δλ/2)/(1 - Δλ/2)| < 1 when Re λ < 0).
    Returns (Ab, Bb); a 1-D dt of shape (T,) adds a leading (T,) axis to both.
    """
    return _bilinear(*_check_system("bilinear", A, B, dt, diagonal))


def euler(A: torch.Tensor, B: torch.Tensor, dt, diagonal: bool | None = None):
    """Forward Euler: Ab = I + ΔA, Bb = ΔB.

    Stable only while |1 + Δλ| < 1 for every eigenvalue λ of A, i.e. for small enough Δ.
    Returns (Ab, Bb); a 1-D dt of shape (T,) adds a leading (T,) axis to both.
    """
    return _euler(*_check_system("euler", A, B, dt, diagonal))


def discretize(A: torch.Tensor, B: torch.Tensor, dt, method: str = "zoh", diagonal: bool | None = None):
    """Discretise (A, B) with step dt by `method` in 'zoh' | 'bilinear' | 'euler'; returns (Ab, Bb)."""
    check_choice("discretize", "method", method, METHODS)
    return _RULES[method](*_check_system("discretize", A, B, dt, diagonal))
