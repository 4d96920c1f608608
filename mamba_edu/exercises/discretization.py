"""Checks for chapter 02 (continuous-time SSMs and discretisation).

    check_zoh_diagonal(fn)               fn(A, B, dt) -> (Ab, Bb): zero-order hold of a diagonal system
    check_bilinear_2x2(fn)               fn(A, B, dt) -> (Ab, Bb): the bilinear rule for a dense 2×2 A
    check_largest_stable_euler_step(fn)  fn(A) -> the largest Δ for which Euler's I + ΔA is stable

Each compares the learner's function with `mamba_edu.discretize` on several cases and returns a
Verdict; none raises.
"""

from __future__ import annotations

import math

import torch

from ..discretize import _bilinear, _zoh, bilinear, discretize, euler, zoh
from ..lti import s4d_discretize
from ._core import Mismatch, Verdict, compare, gen, run_check


def _pair(out, what: str):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Mismatch(f"{what}: expected a pair (Ab, Bb), got {type(out).__name__}")
    return out


def _close(x, y) -> bool:
    return (isinstance(x, torch.Tensor) and x.shape == y.shape and x.is_complex() == y.is_complex()
            and bool(torch.isfinite(x).all()) and torch.allclose(x.detach().to(y.dtype), y, rtol=1e-5, atol=1e-8))


# ----------------------------------------------------------------------------------------------
# Exercise: ZOH for a diagonal A
# ----------------------------------------------------------------------------------------------


def _zoh_case(name: str, A: torch.Tensor, B: torch.Tensor, dt: float):
    def test(fn):
        Ab_ref, Bb_ref = zoh(A, B, dt, diagonal=True)
        Ab, Bb = _pair(fn(A.clone(), B.clone(), dt), "result")
        compare(Ab, Ab_ref, "Ab", rtol=1e-6, atol=1e-9)
        try:
            compare(Bb, Bb_ref, "Bb", rtol=1e-6, atol=1e-9)
        except Mismatch as e:
            hints = [(dt * B, "that is Euler's ΔB (Mamba's shortcut), not the zero-order hold"),
                     (Bb_ref / dt, "too large by 1/Δ: the formula is (exp(ΔA) − 1)/A · B, without a Δ in the denominator"),
                     (Bb_ref / B, "B is missing: multiply by B")]
            for cand, hint in hints:
                if _close(Bb, cand.to(Bb_ref.dtype)):
                    raise Mismatch(f"{e}: {hint}") from None
            raise
    return name, test


def check_zoh_diagonal(fn, quiet: bool = False) -> Verdict:
    """fn(A, B, dt) -> (Ab, Bb) with Ab = exp(ΔA), Bb = (exp(ΔA) − 1)/A · B, elementwise; A holds the
    (non-zero) diagonal, real or complex, of any shape (..., N); B has A's shape."""
    g = gen(0)
    A_real = -torch.rand(4, generator=g, dtype=torch.float64) * 3 - 0.1          # (4,)
    B_real = torch.randn(4, generator=g, dtype=torch.float64)                      # (4,)
    n = torch.arange(3, dtype=torch.float64)
    A_cplx = torch.complex(torch.full((3,), -0.5, dtype=torch.float64), math.pi * n)  # (3,) S4D-Lin
    B_cplx = torch.complex(torch.randn(3, generator=g, dtype=torch.float64),
                           torch.randn(3, generator=g, dtype=torch.float64))       # (3,)
    A_batch = -torch.rand(2, 5, generator=g, dtype=torch.float64) - 0.5           # (2, 5)
    B_batch = torch.randn(2, 5, generator=g, dtype=torch.float64)                  # (2, 5)
    cases = [
        _zoh_case("real diagonal A, N = 4, Δ = 0.1", A_real, B_real, 0.1),
        _zoh_case("complex A (S4D-Lin), N = 3, Δ = 0.3", A_cplx, B_cplx, 0.3),
        _zoh_case("a batch of diagonals (2, 5), Δ = 0.5", A_batch, B_batch, 0.5),
        _zoh_case("tiny step Δ = 1e-3", A_real, B_real, 1e-3),
        _zoh_case("large step Δ = 20 (the old state is forgotten)", A_real, B_real, 20.0),
    ]
    return run_check("zoh_diagonal", fn, cases, quiet=quiet, forbid=(zoh, _zoh, discretize, s4d_discretize),
                     success="correct on every case (real, complex, batched, tiny and large Δ).")


# ----------------------------------------------------------------------------------------------
# Exercise: the bilinear rule for a dense 2×2 A
# ----------------------------------------------------------------------------------------------


def _bilinear_case(name: str, A: torch.Tensor, B: torch.Tensor, dt: float):
    def test(fn):
        Ab_ref, Bb_ref = bilinear(A, B, dt)
        Ab, Bb = _pair(fn(A.clone(), B.clone(), dt), "result")
        try:
            compare(Ab, Ab_ref, "Ab", rtol=1e-6, atol=1e-9)
        except Mismatch as e:
            I = torch.eye(2, dtype=A.dtype)
            wrong = torch.linalg.solve(I - dt * A, I + dt * A)
            if _close(Ab, wrong):
                raise Mismatch(f"{e}: you used Δ·A where the rule has Δ/2·A") from None
            raise
        try:
            compare(Bb, Bb_ref, "Bb", rtol=1e-6, atol=1e-9)
        except Mismatch as e:
            I = torch.eye(2, dtype=A.dtype)
            hints = [(dt * B, "that is ΔB: the bilinear rule also multiplies it by (I − Δ/2·A)⁻¹"),
                     (torch.linalg.solve(I - dt / 2 * A, B), "Δ is missing: Bb = (I − Δ/2·A)⁻¹ Δ B")]
            for cand, hint in hints:
                if _close(Bb, cand):
                    raise Mismatch(f"{e}: {hint}") from None
            raise
    return name, test


def check_bilinear_2x2(fn, quiet: bool = False) -> Verdict:
    """fn(A (2, 2), B (2,), dt) -> (Ab (2, 2), Bb (2,)) with Ab = (I − Δ/2·A)⁻¹(I + Δ/2·A) and
    Bb = (I − Δ/2·A)⁻¹ Δ B; compared with `mamba_edu.discretize.bilinear`."""
    f64 = torch.float64
    spring = torch.tensor([[0.0, 1.0], [-4.0, -0.5]], dtype=f64)   # mass–spring: k/m = 4, c/m = 0.5
    rotation = torch.tensor([[0.0, 2.0], [-2.0, 0.0]], dtype=f64)  # undamped: eigenvalues ±2i
    g = gen(1)
    rand = torch.randn(2, 2, generator=g, dtype=f64) - 2 * torch.eye(2, dtype=f64)
    cases = [
        _bilinear_case("mass–spring, Δ = 0.1", spring, torch.tensor([0.0, 1.0], dtype=f64), 0.1),
        _bilinear_case("undamped rotation, Δ = 0.5", rotation, torch.tensor([1.0, -1.0], dtype=f64), 0.5),
        _bilinear_case("a random A, Δ = 0.3", rand, torch.randn(2, generator=g, dtype=f64), 0.3),
        _bilinear_case("mass–spring, a large step Δ = 3", spring, torch.tensor([0.0, 1.0], dtype=f64), 3.0),
    ]
    return run_check("bilinear_2x2", fn, cases, quiet=quiet, forbid=(bilinear, _bilinear, discretize))


# ----------------------------------------------------------------------------------------------
# Exercise: the largest stable Euler step
# ----------------------------------------------------------------------------------------------


def _euler_radius(A: torch.Tensor, dt: float) -> float:
    """Spectral radius of Euler's Ab = I + ΔA, from the library's `euler`."""
    Ab, _ = euler(A, torch.zeros(A.shape[0], dtype=A.dtype), dt)
    return float(torch.linalg.eigvals(Ab).abs().max())


def _largest_stable_step(A: torch.Tensor) -> float:
    """The supremum of the Δ with ρ(I + ΔA) < 1, by bisection on the library's Euler rule
    (0 when no Δ > 0 is stable, i.e. when an eigenvalue of A has Re λ ≥ 0)."""
    if bool((torch.linalg.eigvals(A).real >= 0).any()):
        return 0.0
    lo, hi = 0.0, 1.0
    while _euler_radius(A, hi) < 1:
        lo, hi = hi, 2 * hi
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _euler_radius(A, mid) < 1 else (lo, mid)
    return (lo + hi) / 2


def _eigenvalue_text(A: torch.Tensor) -> str:
    """'−0.25 ± 1.98i, −2' : the eigenvalues of A as a case name shows them (conjugate pairs once)."""
    parts = []
    for z in sorted(torch.linalg.eigvals(A).tolist(), key=lambda z: (z.real, -z.imag)):
        if z.imag < -1e-12:
            continue
        re = f"{z.real:.3g}".replace("-", "−")
        parts.append(f"{re} ± {abs(z.imag):.3g}i" if z.imag > 1e-12 else re)
    return ", ".join(parts)


def _euler_case(name: str, A: torch.Tensor):
    name = f"{name} (eigenvalues {_eigenvalue_text(A)})"

    def test(fn):
        want = _largest_stable_step(A)
        got = fn(A.clone())
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if got is None:
            raise Mismatch("your function returned None (is there a `return`?)")
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Mismatch(f"expected a number, got {type(got).__name__}")
        got = float(got)
        if want == 0.0:
            if got != 0.0:
                raise Mismatch(f"no step is stable here (an eigenvalue has Re λ ≥ 0, so |1 + Δλ| ≥ 1 for "
                               f"every Δ > 0): expected 0, got {got:.6g}")
            return
        if not math.isfinite(got) or abs(got - want) > 1e-6 * want:
            where = ""
            if math.isfinite(got) and got > 0:
                rho = _euler_radius(A, got)
                where = (f"; at your Δ the spectral radius of I + ΔA is {rho:.6f} "
                         f"({'stable, but a larger step is too' if rho < 1 else 'already unstable'})")
            raise Mismatch(f"expected Δ = {want:.6g}, got {got:.6g}{where}")
    return name, test


def check_largest_stable_euler_step(fn, quiet: bool = False) -> Verdict:
    """fn(A (N, N)) -> the largest Δ such that every eigenvalue of Euler's Ab = I + ΔA has |z| < 1
    (the supremum; 0.0 when no Δ > 0 is stable). Compared with a bisection on the library's `euler`."""
    f64 = torch.float64
    g = gen(2)
    Q = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=f64)).Q
    cases = [
        _euler_case("a diagonal A", torch.diag(torch.tensor([-1.0, -10.0], dtype=f64))),
        _euler_case("mass–spring", torch.tensor([[0.0, 1.0], [-4.0, -0.5]], dtype=f64)),
        _euler_case("3×3 in a rotated basis",
                    Q @ torch.tensor([[-2.0, 0, 0], [0, -1.0, 3.0], [0, -3.0, -1.0]], dtype=f64) @ Q.T),
        _euler_case("undamped oscillator: no stable step", torch.tensor([[0.0, 1.0], [-4.0, 0.0]], dtype=f64)),
        _euler_case("an unstable system", torch.diag(torch.tensor([0.5, -1.0], dtype=f64))),
    ]
    return run_check("largest_stable_euler_step", fn, cases, quiet=quiet)
