"""HiPPO: closed forms of the operators, the basis, and online projection -> reconstruction."""

import math

import pytest
import torch

from mamba_edu.hippo import (basis, hippo_fout, hippo_legs, hippo_legt, hippo_operator, hippo_project,
                             hippo_reconstruct, legendre)

F64 = torch.float64


r3, r5, r7 = math.sqrt(3), math.sqrt(5), math.sqrt(7)


def signal(s):
    """A smooth test signal: three sines of unrelated frequencies."""
    return (torch.sin(2 * math.pi * 1.3 * s + 0.4) + 0.5 * torch.cos(2 * math.pi * 3.1 * s)
            + 0.3 * torch.sin(2 * math.pi * 0.7 * s + 1.0))


def periodic_signal(s):
    """Integer frequencies: periodic with period 1, so its Fourier series on a unit window is finite."""
    return (torch.sin(2 * math.pi * s + 0.4) + 0.5 * torch.cos(2 * math.pi * 3 * s)
            + 0.3 * torch.sin(4 * math.pi * s + 1))


def last_window_error(fn, measure, N, T, L, theta=1.0, method="bilinear", dtype=F64):
    """Project fn over [0, T] online (L samples at step midpoints), reconstruct the last window.

    Returns (relative L2 error over the window, c_k, the window's sample times).
    """
    dt = T / L
    tm = (torch.arange(L, dtype=dtype) + 0.5) * dt            # sample k is held over (k dt, (k+1) dt]
    c = hippo_project(fn(tm), measure, N, dt, theta=theta, method=method)
    lo = 0.0 if measure == "legs" else T - theta
    s = tm[tm >= lo]
    f_hat = hippo_reconstruct(c[-1], measure, T, s, theta=theta)   # c_{L-1} is at time L·dt = T
    return float((f_hat - fn(s)).norm() / fn(s).norm()), c, s


# ----------------------------------------------------------------------------------------------
# The operators in closed form
# ----------------------------------------------------------------------------------------------


def test_legs_closed_form():
    A, B = hippo_legs(4)
    want_A = torch.tensor([[-1, 0, 0, 0],
                           [-r3, -2, 0, 0],
                           [-r5, -r3 * r5, -3, 0],
                           [-r7, -r3 * r7, -r5 * r7, -4]], dtype=F64)
    torch.testing.assert_close(A, want_A)
    torch.testing.assert_close(B, torch.tensor([1, r3, r5, r7], dtype=F64))


def test_legs_structure():
    A, B = hippo_legs(16)
    assert torch.equal(A, torch.tril(A))                                   # lower triangular
    eig = torch.linalg.eigvals(A).real.sort().values
    torch.testing.assert_close(eig, -torch.arange(16, 0, -1, dtype=F64))   # eigenvalues -(n+1)
    # the S4 code's construction: A = -T (tril(2n+1) - diag(n)) T^{-1}, T = diag(sqrt(2n+1))
    q = torch.arange(16, dtype=F64)
    M = -(torch.tril((2 * q + 1)[None, :].expand(16, 16)) - torch.diag(q))   # M[n, k] = -(2k+1), n ≥ k
    T = torch.diag(torch.sqrt(2 * q + 1))
    torch.testing.assert_close(A, T @ M @ torch.linalg.inv(T))
    assert hippo_legs(4, dtype=torch.float32)[0].dtype == torch.float32


def test_legt_closed_form():
    A, B = hippo_legt(3)
    torch.testing.assert_close(A, torch.tensor([[-1, -1, -1], [3, -3, -3], [-5, 5, -5]], dtype=F64))
    torch.testing.assert_close(B, torch.tensor([1, -3, 5], dtype=F64))
    A2, B2 = hippo_legt(3, theta=2.0)                                     # everything scales by 1/θ
    torch.testing.assert_close(A2, A / 2)
    torch.testing.assert_close(B2, B / 2)


def test_legt_equals_s4_normalised_legt():
    # S4's 'legt': A = -R where(n<k, (-1)^(n-k), 1) R / 2, B = R / 2 with R = sqrt(2n+1).
    # It is our LMU form with θ = 2 after c_n -> (-1)^n c_n / sqrt(2n+1).
    N = 6
    q = torch.arange(N, dtype=F64)
    R = torch.sqrt(2 * q + 1)
    n, k = q[:, None], q[None, :]
    A_s4 = -0.5 * R[:, None] * torch.where(n < k, (-1.0) ** (n - k), torch.ones(N, N, dtype=F64)) * R[None, :]
    A, B = hippo_legt(N, theta=2.0)
    Dg = torch.diag((-1.0) ** q * R)
    torch.testing.assert_close(torch.linalg.solve(Dg, A @ Dg), A_s4)
    torch.testing.assert_close(torch.linalg.solve(Dg, B), R / 2)


def test_fout_closed_form_and_s4():
    A, B = hippo_fout(4)
    s2, tp = math.sqrt(2), 2 * math.pi
    want = torch.tensor([[-2, 0, -2 * s2, 0], [0, 0, 0, 0], [-2 * s2, 0, -4, -tp], [0, 0, tp, 0]], dtype=F64)
    torch.testing.assert_close(A, want)
    torch.testing.assert_close(B, torch.tensor([2, 0, 2 * s2, 0], dtype=F64))
    # the S4 code's 'fout' (A = π(-diag(d,1) + diag(d,-1)) - e eᵀ, B = e) is our θ = 2
    N = 8
    d = torch.stack([torch.zeros(N // 2), torch.arange(N // 2)], dim=-1).reshape(-1)[1:].to(F64)
    e = torch.zeros(N, dtype=F64)
    e[0::2] = s2
    e[0] = 1
    A_s4 = math.pi * (-torch.diag(d, 1) + torch.diag(d, -1)) - e[:, None] * e[None, :]
    A, B = hippo_fout(N, theta=2.0)
    torch.testing.assert_close(A, A_s4)
    torch.testing.assert_close(B, e)


@pytest.mark.parametrize("measure", ["legs", "legt", "fout"])
def test_constant_input_settles_at_e0(measure):
    # A e_0 = -B: for a constant input f the fixed point of c' = A c + B f is c = f·e_0 = (f, 0, 0, ...),
    # which reconstructs to f (the FouT A is singular, because of its unused slot 1, so no A^{-1} here)
    A, B = hippo_operator(measure, 8)
    e0 = torch.eye(8, dtype=F64)[0]
    torch.testing.assert_close(A @ e0, -B)
    for method in ("bilinear", "zoh"):
        c = hippo_project(torch.full((400,), 2.5, dtype=F64), measure, 8, 0.05, method=method)
        if measure == "legs":                         # LegS: exactly, from the first step on
            torch.testing.assert_close(c, 2.5 * e0.expand(400, 8), atol=1e-12, rtol=0)
        else:                                         # LegT, FouT: once the start-up transient is gone
            torch.testing.assert_close(c[-1], 2.5 * e0, atol=1e-6, rtol=0)


def test_operator_dispatch():
    for name, fn in (("legt", hippo_legt), ("fout", hippo_fout)):
        for got, want in zip(hippo_operator(name, 6, theta=0.5), fn(6, 0.5)):
            assert torch.equal(got, want)
    assert all(torch.equal(a, b) for a, b in zip(hippo_operator("legs", 5), hippo_legs(5)))


# ----------------------------------------------------------------------------------------------
# Basis functions
# ----------------------------------------------------------------------------------------------


def test_legendre_recurrence():
    x = torch.linspace(-1, 1, 11, dtype=F64)
    P = legendre(5, x)
    torch.testing.assert_close(P[:, 2], (3 * x**2 - 1) / 2)
    torch.testing.assert_close(P[:, 3], (5 * x**3 - 3 * x) / 2)
    torch.testing.assert_close(P[:, 4], (35 * x**4 - 30 * x**2 + 3) / 8)
    torch.testing.assert_close(P[-1], torch.ones(5, dtype=F64))        # P_n(1) = 1
    assert legendre(1, x).shape == (11, 1)


@pytest.mark.parametrize("measure, norms", [("legs", None), ("legt", "1/(2n+1)"), ("fout", None)])
def test_basis_orthogonality(measure, norms):
    # midpoint rule on [0, 1] (exact enough for these degrees)
    M, N = 20000, 8
    x = (torch.arange(M, dtype=F64) + 0.5) / M
    G = basis(measure, N, x)                                           # (M, N)
    gram = G.T @ G / M
    want = torch.eye(N, dtype=F64)
    if norms:
        want = torch.diag(1 / (2 * torch.arange(N, dtype=F64) + 1))
    if measure == "fout":
        want[1, 1] = 0                                                 # the unused sin(0·r) slot
    torch.testing.assert_close(gram, want, atol=1e-6, rtol=0)


def test_basis_conventions():
    x = torch.tensor([0.0, 0.25, 1.0], dtype=F64)
    # LegT (LMU): f(t - θr) ≈ Σ c_n P_n(2r - 1), r = 1 - x
    torch.testing.assert_close(basis("legt", 4, x), legendre(4, 2 * (1 - x) - 1))
    # FouT: cos/sin of 2πk r interleaved; g_1 = 0
    G = basis("fout", 6, x)
    torch.testing.assert_close(G[:, 4], math.sqrt(2) * torch.cos(4 * math.pi * (1 - x)))
    torch.testing.assert_close(G[:, 5], math.sqrt(2) * torch.sin(4 * math.pi * (1 - x)))
    assert torch.all(G[:, 1] == 0) and torch.all(G[:, 0] == 1)


# ----------------------------------------------------------------------------------------------
# Online projection -> reconstruction
# ----------------------------------------------------------------------------------------------

NS = (4, 8, 16, 32)


@pytest.mark.parametrize("method", ["bilinear", "zoh"])
def test_legs_reconstruction_improves_with_N(method):
    # the whole history [0, 1], 1000 samples
    errs = [last_window_error(signal, "legs", N, T=1.0, L=1000, method=method)[0] for N in NS]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-4, errs


@pytest.mark.parametrize("method, tol", [("bilinear", 5e-4), ("zoh", 2e-4)])
def test_legt_reconstruction_improves_with_N(method, tol):
    # window θ = 1 at the end of [0, 2]; the start-up (zero history before t = 0) has left it.
    # Bilinear leaves a larger floor: it maps the fast eigenvalues of A (|λ|Δ >> 1) near -1, so
    # their transients ring instead of dying out as they do under ZOH.
    errs = [last_window_error(signal, "legt", N, T=2.0, L=2000, method=method)[0] for N in NS]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < tol, errs


def test_fout_reconstruction_is_as_good_as_fourier_allows():
    # A Fourier series of a window whose two ends differ (a smooth but non-periodic signal)
    # converges slowly (Gibbs at the ends, L2 error ~ N^{-1/2}), so the error falls but stays
    # large. The fair check: online FouT is almost as good as projecting the window directly.
    T, L, theta = 2.0, 2000, 1.0
    for N in NS:
        err, _, s = last_window_error(signal, "fout", N, T=T, L=L, method="zoh")
        G = basis("fout", N, (s - (T - theta)) / theta)               # (M, N)
        best = G @ (G.T @ signal(s) / s.numel())                      # orthonormal projection
        best_err = float((best - signal(s)).norm() / signal(s).norm())
        assert err < 1.25 * best_err, (N, err, best_err)
    errs = [last_window_error(signal, "fout", N, T=T, L=L)[0] for N in NS]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.2, errs


def test_fout_reconstructs_window_periodic_signal():
    # integer frequencies 1..3 are periodic on a unit window: N = 8 (frequencies 0..3) suffices,
    # once the start-up transient has decayed (FouT forgets slowly: slowest decay rate ~1.2/θ).
    errs = {N: last_window_error(periodic_signal, "fout", N, T=6.0, L=3000)[0] for N in (4, 8)}
    assert errs[4] > 0.3 and errs[8] < 2e-3, errs


def test_legs_is_scale_invariant():
    # LegS coefficients after k samples do not depend on dt
    f = signal(torch.linspace(0, 1, 200, dtype=F64))
    for method in ("bilinear", "zoh"):
        torch.testing.assert_close(hippo_project(f, "legs", 8, 0.01, method=method),
                                   hippo_project(f, "legs", 8, 3.0, method=method))


def test_project_float32_and_shapes():
    err, c, _ = last_window_error(signal, "legs", 32, T=1.0, L=1000, dtype=torch.float32)
    assert c.dtype == torch.float32 and c.shape == (1000, 32)
    assert err < 1e-4                                 # as good as float64 (test above)
    assert hippo_project(torch.ones(1, dtype=F64), "legt", 4, 0.1).shape == (1, 4)
    assert hippo_project(torch.ones(1, dtype=F64), "legs", 4, 0.1).shape == (1, 4)
    c = hippo_project(torch.ones(5, dtype=F64), "legs", 4, 0.1)
    assert hippo_reconstruct(c, "legs", 0.5, torch.tensor([0.0, 0.5], dtype=F64)).shape == (5, 2)


# ----------------------------------------------------------------------------------------------
# Errors name the argument
# ----------------------------------------------------------------------------------------------

ONE = torch.ones(10, dtype=F64)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: hippo_legs(0), "hippo_legs: argument 'N'"),
        (lambda: hippo_legs(2.5), "hippo_legs: argument 'N'"),
        (lambda: hippo_legs(4, dtype=torch.int64), "hippo_legs: argument 'dtype'"),
        (lambda: hippo_legt(4, theta=0.0), "hippo_legt: argument 'theta'"),
        (lambda: hippo_legt(4, theta=float("nan")), "hippo_legt: argument 'theta'"),
        (lambda: hippo_legt(-1), "hippo_legt: argument 'N'"),
        (lambda: hippo_fout(5), "hippo_fout: argument 'N'"),
        (lambda: hippo_fout(4, theta=-1.0), "hippo_fout: argument 'theta'"),
        (lambda: hippo_operator("lagt", 4), "hippo_operator: argument 'name'"),
        (lambda: legendre(0, ONE), "legendre: argument 'N'"),
        (lambda: legendre(3, torch.ones(3, dtype=torch.int64)), "legendre: argument 'x'"),
        (lambda: basis("legx", 4, ONE), "basis: argument 'measure'"),
        (lambda: basis("fout", 3, ONE), "basis: argument 'N'"),
        (lambda: basis("legs", 3, [0.5]), "basis: argument 'x'"),
        (lambda: hippo_project(ONE[None], "legs", 4, 0.1), "hippo_project: argument 'f'"),
        (lambda: hippo_project(ONE[:0], "legs", 4, 0.1), "hippo_project: argument 'f'"),
        (lambda: hippo_project(torch.ones(4, dtype=torch.int64), "legs", 4, 0.1), "hippo_project: argument 'f'"),
        (lambda: hippo_project(torch.tensor([1.0, float("nan")]), "legs", 4, 0.1), "hippo_project: argument 'f'"),
        (lambda: hippo_project(ONE, "legs", 4, 0.0), "hippo_project: argument 'dt'"),
        (lambda: hippo_project(ONE, "legs", 4, float("inf")), "hippo_project: argument 'dt'"),
        (lambda: hippo_project(ONE, "legs", 0, 0.1), "hippo_project: argument 'N'"),
        (lambda: hippo_project(ONE, "legt", 4, 0.1, theta=0), "hippo_project: argument 'theta'"),
        (lambda: hippo_project(ONE, "cheb", 4, 0.1), "hippo_project: argument 'measure'"),
        (lambda: hippo_project(ONE, "legt", 4, 0.1, method="euler"), "hippo_project: argument 'method'"),
        (lambda: hippo_project(ONE, "fout", 3, 0.1), "argument 'N'"),
        (lambda: hippo_reconstruct(ONE[:4], "legt", 1.0, torch.tensor([-0.5], dtype=F64)),
         "hippo_reconstruct: argument 's'.*window"),
        (lambda: hippo_reconstruct(ONE[:4], "legs", 1.0, torch.tensor([1.5], dtype=F64)),
         "hippo_reconstruct: argument 's'.*window"),
        (lambda: hippo_reconstruct(ONE[:4], "legs", 1.0, torch.tensor([0.5])), "hippo_reconstruct: argument 's'"),
        (lambda: hippo_reconstruct(ONE[:4], "legs", 0.0, ONE[:1] / 2), "hippo_reconstruct: argument 't'"),
        (lambda: hippo_reconstruct(ONE[:4], "legt", 1.0, ONE[:1] / 2, theta=-1), "hippo_reconstruct: argument 'theta'"),
        (lambda: hippo_reconstruct(torch.tensor(1.0, dtype=F64), "legs", 1.0, ONE[:1] / 2),
         "hippo_reconstruct: argument 'c'"),
        (lambda: hippo_reconstruct(ONE[:4], "legz", 1.0, ONE[:1] / 2), "hippo_reconstruct: argument 'measure'"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_legs_is_normal_plus_low_rank_and_only_the_normal_part_diagonalises_stably():
    from mamba_edu.hippo import eigenvector_condition, hippo_legs_nplr

    for N in (4, 8, 16):
        A, _ = hippo_legs(N)
        S, P = hippo_legs_nplr(N)
        assert torch.allclose(S - torch.outer(P, P), A)  # A = S − P Pᵀ
        assert torch.allclose(S + S.T, -torch.eye(N, dtype=S.dtype), atol=1e-12)  # −I/2 + skew
        assert torch.allclose(S @ S.T, S.T @ S, atol=1e-10)  # normal
        assert torch.allclose(torch.linalg.eigvals(S).real, torch.full((N,), -0.5, dtype=S.dtype), atol=1e-9)
        assert eigenvector_condition(S) == pytest.approx(1.0, abs=1e-6)
    conds = [eigenvector_condition(hippo_legs(N)[0]) for N in (4, 8, 16)]
    assert conds[0] > 10 and conds[1] > 100 * conds[0] and conds[2] > 1e9  # grows exponentially with N
    with pytest.raises(ValueError, match="'A'"):
        eigenvector_condition(torch.zeros(2, 3))
