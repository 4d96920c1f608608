"""HiPPO: remember a whole signal in N numbers (Gu, Dao, Ermon, Rudra, Ré, NeurIPS 2020).

Idea: at every time t, project the history of a signal f onto N basis functions of a memory
window; the N coefficients c(t) then obey a linear ODE driven by f, so they can be updated
online, one sample at a time. That ODE's (A, B) is the "HiPPO matrix" that S4 starts from.

Glossary
    N        number of coefficients (the state size)
    f        the signal, sampled: f_k, shape (L,)
    L        number of samples;  dt: sampling step;  t_k = (k + 1)·dt the time after sample k
    c        coefficients c(t) (N,);  over a whole signal c_k, shape (L, N)
    A, B     the HiPPO operator: A (N, N), B (N,), signs included in A
                 LegT, FouT (time-invariant):  c'(t) = A c(t) + B f(t)
                 LegS (scale-invariant):       c'(t) = (1/t) A c(t) + (1/t) B f(t)
    θ        window length of the translated measures LegT and FouT (`theta`)
    x        position inside the memory window, 0 = its oldest end, 1 = now (t)
    r        fraction of the window ago, r = 1 - x  (the LegT/FouT derivations use r)
    P_n      Legendre polynomial of degree n on [-1, 1]
    g_n(x)   basis function n on the window: f(s) ≈ Σ_n c_n(t) g_n(x(s))
    Ab, Bb   discrete operator of one step (see `mamba_edu.discretize`)

The three measures (their windows, and how the coefficients reconstruct the signal)
    legs   window [0, t] (all history, stretched); x = s/t
               g_n(x) = sqrt(2n+1) P_n(2x - 1)               (orthonormal for the uniform measure)
    legt   window [t - θ, t] (sliding, length θ); x = (s - t + θ)/θ, r = 1 - x
               g_n(x) = P_n(2r - 1) = P_n(1 - 2x)            (the LMU convention: f(t - θr) ≈ Σ c_n P_n(2r - 1))
    fout   window [t - θ, t]; g_0 = 1, g_2k = √2 cos(2πk r), g_2k+1 = √2 sin(2πk r)   (k ≥ 1)
               state layout of the S4 code: cos/sin pairs at (2k, 2k+1); slot 1 (sin of frequency 0) stays 0

All three are verified numerically in tests/test_hippo.py: project a smooth signal online, then
reconstruct it from the last coefficients; the error falls as N grows.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_choice, check_finite, check_float, check_int, check_tensor, fail
from .discretize import discretize

MEASURES = ("legs", "legt", "fout")
METHODS = ("bilinear", "zoh")


def _check_dtype(func: str, dtype) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        fail(func, "dtype", "torch.float32 or torch.float64", dtype)
    return dtype


# ----------------------------------------------------------------------------------------------
# The operators
# ----------------------------------------------------------------------------------------------


def hippo_legs(N: int, dtype: torch.dtype = torch.float64):
    """Scaled Legendre (LegS): c'(t) = (1/t) A c + (1/t) B f, window [0, t].

        A[n, k] = -sqrt(2n+1) sqrt(2k+1)   if n > k
                = -(n + 1)                  if n = k
                = 0                         if n < k       (lower triangular: eigenvalues -(n+1))
        B[n]    = sqrt(2n+1)
    """
    N = check_int("hippo_legs", "N", N)
    dtype = _check_dtype("hippo_legs", dtype)
    q = torch.arange(N, dtype=dtype)                              # (n,)
    R = torch.sqrt(2 * q + 1)                                     # (n,)
    A = -torch.tril(R[:, None] * R[None, :], diagonal=-1)         # (n, n)  strictly lower part
    A = A - torch.diag(q + 1)                                     # (n, n)  diagonal -(n+1)
    B = R.clone()                                                 # (n,)
    return A, B


def hippo_legs_nplr(N: int, dtype: torch.dtype = torch.float64):
    """LegS as normal plus low rank (S4):  A = S − P Pᵀ  → (S (n, n), P (n,)).

        P[n] = sqrt(n + 1/2)                  (P Pᵀ adds (2n+1)^{1/2}(2k+1)^{1/2} / 2 everywhere)
        S    = A + P Pᵀ = −I/2 + (a skew-symmetric matrix)
    S is normal (S Sᵀ = Sᵀ S), so it is diagonalised by a UNITARY matrix (condition number 1), whereas A
    itself is diagonalisable only by an exponentially ill-conditioned one. Every eigenvalue of S has real
    part −1/2; S4D-LegS keeps the diagonal of S's eigenvalues and drops P.
    """
    A, _ = hippo_legs(N, dtype)                                   # (n, n)
    P = torch.sqrt(torch.arange(N, dtype=A.dtype) + 0.5)          # (n,)
    return A + torch.outer(P, P), P                               # (n, n), (n,)


def eigenvector_condition(A: torch.Tensor) -> float:
    """κ(V) = ‖V‖₂ ‖V⁻¹‖₂ of the eigenvector matrix V of a square A (A = V Λ V⁻¹): how much rounding
    errors grow when A is applied through its eigendecomposition. 1 for a normal matrix."""
    check_tensor("eigenvector_condition", "A", A, ndim=2)
    if A.shape[0] != A.shape[1]:
        fail("eigenvector_condition", "A", "a square matrix", f"shape {tuple(A.shape)}")
    _, V = torch.linalg.eig(A.to(torch.float64) if not A.is_complex() else A)  # (n, n) complex
    return torch.linalg.cond(V).item()


def hippo_legt(N: int, theta: float = 1.0, dtype: torch.dtype = torch.float64):
    """Translated Legendre (LegT) in the LMU form: c' = A c + B f, window [t - θ, t].

        A[n, k] = (2n+1)/θ · (-1            if n < k
                              (-1)^(n-k+1)  if n ≥ k)
        B[n]    = (2n+1)(-1)^n / θ

    with f(t - θr) ≈ Σ_n c_n(t) P_n(2r - 1) for r in [0, 1]. Derivation: c_n = (2n+1)∫_0^1 f(t-θr)
    P_n(2r-1) dr; differentiate in t, integrate by parts; the boundary terms are f(t) P_n(-1) and
    f(t-θ) P_n(1), and f(t-θ) ≈ Σ_k c_k closes the system. The S4 code's normalised 'legt' is this
    operator with θ = 2 after the change of basis c_n -> (-1)^n c_n / sqrt(2n+1).
    """
    N = check_int("hippo_legt", "N", N)
    theta = check_float("hippo_legt", "theta", theta, positive=True)
    dtype = _check_dtype("hippo_legt", dtype)
    q = torch.arange(N, dtype=dtype)                              # (n,)
    n, k = q[:, None], q[None, :]                                 # (n, 1), (1, n)
    sign = torch.where(n < k, -1.0, (-1.0) ** (n - k + 1)).to(dtype)  # (n, n)
    A = (2 * n + 1) / theta * sign                                # (n, n)
    B = (2 * q + 1) * (-1.0) ** q / theta                         # (n,)
    return A, B


def hippo_fout(N: int, theta: float = 1.0, dtype: torch.dtype = torch.float64):
    """Translated Fourier (FouT): c' = A c + B f, window [t - θ, t]; N even.

    With g_n(r) the Fourier basis of the window (r = time ago / θ) and e = g(0) = g(1):
        e[0] = 1, e[2k] = √2 (k ≥ 1), e[odd] = 0
        Ω[2k, 2k+1] = -2πk, Ω[2k+1, 2k] = +2πk                    (d/dr of the cos/sin pairs)
        A = (Ω - 2 e eᵀ)/θ,  B = 2e/θ
    Derivation: c' = (1/θ)(e f(t) - e f(t-θ)) + Ω c/θ, and a Fourier series converges to the mean
    of its two ends, eᵀc ≈ (f(t) + f(t-θ))/2, so f(t-θ) ≈ 2eᵀc - f(t). The S4 code's 'fout'
    (A = π·skew(k) - e eᵀ, B = e) is this operator with θ = 2.
    """
    N = check_int("hippo_fout", "N", N, minimum=2)
    if N % 2:
        fail("hippo_fout", "N", "an even integer (cos/sin pairs)", N)
    theta = check_float("hippo_fout", "theta", theta, positive=True)
    dtype = _check_dtype("hippo_fout", dtype)
    e = torch.zeros(N, dtype=dtype)                               # (n,)
    e[0::2] = math.sqrt(2.0)                                      # (n,)  e = g(0): √2 for the cosines
    e[0] = 1.0                                                    # (n,)  and 1 for the constant
    k = torch.arange(N // 2, dtype=dtype)                         # (n/2,)  frequencies
    Om = torch.zeros(N, N, dtype=dtype)                           # (n, n)
    Om[0::2, 1::2] = torch.diag(-2 * math.pi * k)                 # Ω[2k, 2k+1] = -2πk
    Om[1::2, 0::2] = torch.diag(2 * math.pi * k)                  # Ω[2k+1, 2k] = +2πk
    A = (Om - 2 * e[:, None] * e[None, :]) / theta                # (n, n)
    B = 2 * e / theta                                             # (n,)
    return A, B


def hippo_operator(name: str, N: int, theta: float = 1.0, dtype: torch.dtype = torch.float64):
    """(A, B) of the measure `name` in 'legs' | 'legt' | 'fout' (theta is unused by LegS)."""
    check_choice("hippo_operator", "name", name, MEASURES)
    if name == "legs":
        return hippo_legs(N, dtype)
    return (hippo_legt if name == "legt" else hippo_fout)(N, theta, dtype)


# ----------------------------------------------------------------------------------------------
# Basis functions
# ----------------------------------------------------------------------------------------------


def legendre(N: int, x: torch.Tensor) -> torch.Tensor:
    """P_0(x), ..., P_{N-1}(x) by the three-term recurrence; x (...,) -> (..., N).

        P_0 = 1,  P_1 = x,  (n+1) P_{n+1} = (2n+1) x P_n - n P_{n-1}
    """
    N = check_int("legendre", "N", N)
    check_tensor("legendre", "x", x, dtypes=(torch.float32, torch.float64))
    P = [torch.ones_like(x), x]                                   # each (...,)
    for n in range(1, N - 1):
        P.append(((2 * n + 1) * x * P[n] - n * P[n - 1]) / (n + 1))  # (...,)  P_{n+1}
    return torch.stack(P[:N], dim=-1)                             # (..., n)


def basis(measure: str, N: int, x: torch.Tensor) -> torch.Tensor:
    """The basis g_n(x) of `measure` at window positions x in [0, 1] (0 = oldest, 1 = now) -> (..., N)."""
    check_choice("basis", "measure", measure, MEASURES)
    N = check_int("basis", "N", N, minimum=2 if measure == "fout" else 1)
    if measure == "fout" and N % 2:
        fail("basis", "N", "an even integer for 'fout'", N)
    check_tensor("basis", "x", x, dtypes=(torch.float32, torch.float64))
    if measure == "legs":
        # g_n(x) = sqrt(2n+1) P_n(2x - 1)
        R = torch.sqrt(2 * torch.arange(N, dtype=x.dtype, device=x.device) + 1)  # (n,)
        return legendre(N, 2 * x - 1) * R                         # (..., n)
    r = 1 - x                                                     # (...,)  fraction of the window ago
    if measure == "legt":
        # g_n = P_n(2r - 1)
        return legendre(N, 2 * r - 1)                             # (..., n)
    # fout: g_0 = 1, g_2k = √2 cos(2πkr), g_2k+1 = √2 sin(2πkr)
    k = torch.arange(N // 2, dtype=x.dtype, device=x.device)      # (n/2,)
    w = 2 * math.pi * r[..., None] * k                            # (..., n/2)
    G = math.sqrt(2.0) * torch.stack([torch.cos(w), torch.sin(w)], dim=-1)  # (..., n/2, 2)
    G = G.flatten(-2)                                             # (..., n)  cos, sin interleaved
    G[..., 0] = 1.0                                               # (..., n)  g_0 = 1
    return G


# ----------------------------------------------------------------------------------------------
# Online projection and reconstruction
# ----------------------------------------------------------------------------------------------


def hippo_project(f: torch.Tensor, measure: str, N: int, dt: float, theta: float = 1.0,
                  method: str = "bilinear") -> torch.Tensor:
    """Online HiPPO coefficients of a sampled signal: f (L,) -> c (L, N), c_k at time t_k = (k+1)·dt.

    Sample k is held over the step ((k)·dt, (k+1)·dt] (sample f at step midpoints for 2nd-order
    accuracy); the history before time 0 is zero. Each step is c_k = Ab_k c_{k-1} + Bb_k f_k.

    LegT, FouT: time-invariant, so (Ab, Bb) = discretize(A, B, dt, method) once, c_{-1} = 0.
    LegS: in log-time τ = log t the ODE c' = (A c + B f)/t becomes dc/dτ = A c + B f, which is
    time-invariant again, with steps Δτ_k = log(t_k / t_{k-1}) = log((k+1)/k). So
        c_0 = -A^{-1} B f_0              (the projection of the constant f_0 on [0, t_0]: f_0·e_0)
        (Ab_k, Bb_k) = discretize(A, B, Δτ_k, method)   for k ≥ 1
    dt plays no role for LegS: it is scale-invariant. ZOH is exact for a piecewise-constant f.
    (The HiPPO code's bilinear step uses A/(k+1) with step 1 instead; log((k+1)/k) ≈ 1/(k+½)
    is the same to second order once k is large.)
    """
    func = "hippo_project"
    check_choice(func, "measure", measure, MEASURES)
    check_choice(func, "method", method, METHODS)
    check_tensor(func, "f", f, ndim=1, dims="(L,)", dtypes=(torch.float32, torch.float64))
    if f.shape[0] < 1:
        fail(func, "f", "a signal of length L >= 1", f"shape {tuple(f.shape)}")
    check_finite(func, "f", f)
    dt = check_float(func, "dt", dt, positive=True)
    theta = check_float(func, "theta", theta, positive=True)
    N = check_int(func, "N", N)
    A, B = hippo_operator(measure, N, theta, f.dtype)            # (n, n), (n,)
    A, B = A.to(f.device), B.to(f.device)
    L = f.shape[0]
    if measure == "legs":
        c = torch.linalg.solve(A, -B) * f[0]                      # (n,)  c_0 = -A^{-1}B f_0
        cs = [c]
        for k in range(1, L):
            # Δτ_k = log(t_k / t_{k-1}) = log((k+1)/k): LegS is time-invariant in log-time
            Ab, Bb = discretize(A, B, math.log((k + 1) / k), method)  # (n, n), (n,)
            c = Ab @ c + Bb * f[k]                                # (n,)  c_k = Ab_k c_{k-1} + Bb_k f_k
            cs.append(c)
        return torch.stack(cs)                                    # (l, n)
    Ab, Bb = discretize(A, B, dt, method)                         # (n, n), (n,)
    c = torch.zeros(N, dtype=f.dtype, device=f.device)            # (n,)  c_{-1} = 0: no history
    cs = []
    for k in range(L):
        c = Ab @ c + Bb * f[k]                                    # (n,)  c_k = Ab c_{k-1} + Bb f_k
        cs.append(c)
    return torch.stack(cs)                                        # (l, n)


def hippo_reconstruct(c: torch.Tensor, measure: str, t: float, s: torch.Tensor,
                      theta: float = 1.0) -> torch.Tensor:
    """The signal at times s recovered from coefficients c taken at time t: f(s) ≈ Σ_n c_n g_n(x(s)).

    c (..., N), s (M,) -> (..., M). The times must lie in the memory window: [0, t] for LegS
    (x = s/t), [t - θ, t] for LegT and FouT (x = (s - t + θ)/θ).
    """
    func = "hippo_reconstruct"
    check_choice(func, "measure", measure, MEASURES)
    check_tensor(func, "c", c, dtypes=(torch.float32, torch.float64))
    if c.dim() < 1 or c.shape[-1] < 1:
        fail(func, "c", "a tensor (..., N) of coefficients", f"shape {tuple(c.shape)}")
    check_tensor(func, "s", s, ndim=1, dims="(M,)", dtypes=(c.dtype,), device=c.device)
    check_finite(func, "s", s)
    t = check_float(func, "t", t, positive=True)
    theta = check_float(func, "theta", theta, positive=True)
    lo = 0.0 if measure == "legs" else t - theta
    width = t - lo
    x = (s - lo) / width                                          # (m,)  position in the window
    tol = 1e-9 * max(1.0, abs(t))
    if bool(((s < lo - tol) | (s > t + tol)).any()):
        fail(func, "s", f"times inside the memory window [{lo:.6g}, {t:.6g}]",
             f"values in [{float(s.min()):.6g}, {float(s.max()):.6g}]")
    G = basis(measure, c.shape[-1], x.clamp(0, 1))                # (m, n)
    return c @ G.T                                                # (..., m)
