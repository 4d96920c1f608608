"""Discretisation: ZOH is exact, bilinear keeps stability, Euler does not; dense == diagonal; batched dt."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu.discretize import bilinear, discretize, euler, zoh
from mamba_edu.hippo import hippo_legs

F64 = torch.float64
RULES = {"zoh": zoh, "bilinear": bilinear, "euler": euler}




def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_stable(n, seed, dtype=F64):
    """A random dense matrix shifted so that every eigenvalue has real part <= -0.1."""
    M = torch.randn(n, n, generator=gen(seed), dtype=dtype)
    shift = torch.linalg.eigvals(M).real.max() + 0.1
    return M - shift * torch.eye(n, dtype=dtype)


def spectral_radius(Ab):
    return torch.linalg.eigvals(Ab).abs().max().item()


def rk4(A, B, x0, u, T, steps=2000):
    """x' = A x + B u with constant u, integrated by classical Runge-Kutta (independent of expm)."""
    h, x = T / steps, x0.clone()
    rhs = lambda x: A @ x + B * u  # noqa: E731
    for _ in range(steps):
        k1 = rhs(x)
        k2 = rhs(x + h / 2 * k1)
        k3 = rhs(x + h / 2 * k2)
        k4 = rhs(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


# ----------------------------------------------------------------------------------------------
# Zero-order hold
# ----------------------------------------------------------------------------------------------


def test_zoh_matches_matrix_exp_and_closed_form():
    A, B = random_stable(5, 0), torch.randn(5, generator=gen(1), dtype=F64)
    dt = 0.3
    Ab, Bb = zoh(A, B, dt)
    torch.testing.assert_close(Ab, torch.linalg.matrix_exp(dt * A), rtol=1e-12, atol=1e-12)
    # Bb = (ΔA)^{-1}(exp(ΔA) - I)ΔB  (A is invertible here)
    want = torch.linalg.solve(dt * A, (Ab - torch.eye(5, dtype=F64)) @ (dt * B))
    torch.testing.assert_close(Bb, want, rtol=1e-10, atol=1e-12)


def test_zoh_is_the_exact_solution_for_constant_input():
    A, B = random_stable(4, 2), torch.randn(4, generator=gen(3), dtype=F64)
    x0, u, dt = torch.randn(4, generator=gen(4), dtype=F64), 0.7, 0.5
    Ab, Bb = zoh(A, B, dt)
    torch.testing.assert_close(Ab @ x0 + Bb * u, rk4(A, B, x0, u, dt), rtol=1e-10, atol=1e-10)


def test_zoh_singular_A():
    # A = 0: x' = B u, so Bb = ΔB exactly; the augmented exponential needs no inverse
    B = torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    Ab, Bb = zoh(torch.zeros(3, 3, dtype=F64), B, 0.25)
    torch.testing.assert_close(Ab, torch.eye(3, dtype=F64))
    torch.testing.assert_close(Bb, 0.25 * B)
    # a diagonal A with a zero entry: the limit (e^{ΔA}-1)/A -> Δ there
    Ab, Bb = zoh(torch.tensor([0.0, -1.0, 1e-20], dtype=F64), B, 0.25)
    torch.testing.assert_close(Bb, torch.tensor([0.25, -2 * (1 - math.exp(-0.25)), 0.75], dtype=F64))


def test_zoh_several_input_channels():
    A, B = random_stable(4, 5), torch.randn(4, 3, generator=gen(6), dtype=F64)
    Ab, Bb = zoh(A, B, 0.2)
    assert Bb.shape == (4, 3)
    for p in range(3):
        torch.testing.assert_close(Bb[:, p], zoh(A, B[:, p], 0.2)[1], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Dense and diagonal agree; batched dt equals a loop; dtypes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(RULES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_dense_equals_diagonal(method, dtype):
    a = -torch.rand(6, generator=gen(7), dtype=F64) * 3
    if dtype.is_complex:
        a = torch.complex(a, torch.randn(6, generator=gen(8), dtype=F64) * 5)
    b = torch.randn(6, generator=gen(9), dtype=F64).to(dtype)
    Ab_d, Bb_d = discretize(a, b, 0.37, method)                         # diagonal (6,)
    Ab, Bb = discretize(torch.diag(a), b, 0.37, method)                 # dense (6, 6)
    torch.testing.assert_close(Ab, torch.diag(Ab_d), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Bb, Bb_d, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", list(RULES))
@pytest.mark.parametrize("shape", ["dense", "dense_p", "diag", "diag_batch"])
def test_batched_dt_equals_loop(method, shape):
    n = 5
    if shape.startswith("dense"):
        A = random_stable(n, 10)
        B = torch.randn(n, 2, generator=gen(11), dtype=F64) if shape == "dense_p" else torch.ones(n, dtype=F64)
    else:
        A = -torch.rand((3, n) if shape == "diag_batch" else (n,), generator=gen(12), dtype=F64)
        B = torch.randn(n, generator=gen(13), dtype=F64)
    dts = torch.tensor([1e-3, 0.1, 0.5, 2.0], dtype=F64)
    diagonal = None if shape != "diag_batch" else True
    Ab, Bb = discretize(A, B, dts, method, diagonal=diagonal)
    assert Ab.shape[0] == Bb.shape[0] == 4
    for i, dt in enumerate(dts):
        a, b = discretize(A, B, float(dt), method, diagonal=diagonal)
        torch.testing.assert_close(Ab[i], a, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(Bb[i], b, rtol=1e-12, atol=1e-12)
    # a 0-d tensor is the same as a Python number
    a, b = discretize(A, B, torch.tensor(0.1, dtype=F64), method, diagonal=diagonal)
    torch.testing.assert_close(a, Ab[1])


@pytest.mark.parametrize("method", list(RULES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_dtypes_are_kept(method, dtype):
    a = -torch.rand(4, generator=gen(14), dtype=F64).to(dtype)
    for A in (a, torch.diag(a)):
        Ab, Bb = RULES[method](A, torch.ones(4, dtype=dtype), 0.1)
        assert Ab.dtype == dtype and Bb.dtype == dtype
    # float32 and float64 agree to float32 accuracy
    A64 = random_stable(4, 15)
    Ab32, _ = RULES[method](A64.float(), torch.ones(4), 0.1)
    torch.testing.assert_close(Ab32.double(), RULES[method](A64, torch.ones(4, dtype=F64), 0.1)[0],
                               rtol=1e-5, atol=1e-6)


def test_diagonal_batch_of_channels():
    # S4D: A (H, N) with diagonal=True; B broadcasts
    A = torch.complex(-0.5 * torch.ones(3, 4, dtype=F64), torch.arange(4, dtype=F64).repeat(3, 1))
    Ab, Bb = zoh(A, torch.ones(4, dtype=torch.complex128), 0.1, diagonal=True)
    assert Ab.shape == Bb.shape == (3, 4)
    torch.testing.assert_close(Ab, torch.exp(0.1 * A))


# ----------------------------------------------------------------------------------------------
# Stability: the teaching point
# ----------------------------------------------------------------------------------------------

STABLE = {"legs8": hippo_legs(8)[0], "random6": random_stable(6, 16), "random10": random_stable(10, 17)}


@pytest.mark.parametrize("name", list(STABLE))
@settings(max_examples=25, deadline=None)
@given(log_dt=st.floats(min_value=math.log(1e-4), max_value=math.log(1e3)))
def test_zoh_and_bilinear_keep_stable_systems_stable(name, log_dt):
    A = STABLE[name]
    B = torch.ones(A.shape[0], dtype=F64)
    for rule in (zoh, bilinear):
        assert spectral_radius(rule(A, B, math.exp(log_dt))[0]) < 1


def test_euler_blows_up_for_large_steps():
    # LegS (N=8) has the real eigenvalues -1..-8; I + ΔA has eigenvalues 1 - Δ(n+1), inside the
    # unit circle only while Δ < 2/8
    A, B = hippo_legs(8)
    assert spectral_radius(euler(A, B, 0.24)[0]) < 1
    assert spectral_radius(euler(A, B, 0.26)[0]) > 1
    assert spectral_radius(euler(A, B, 1.0)[0]) > 6           # 1 - 8 = -7
    assert spectral_radius(zoh(A, B, 1.0)[0]) < 1 and spectral_radius(bilinear(A, B, 1.0)[0]) < 1
    # the state really grows: 50 free steps of x_k = Ab x_{k-1}
    x = torch.ones(8, dtype=F64)
    Ab = euler(A, B, 1.0)[0]
    for _ in range(50):
        x = Ab @ x
    assert x.abs().max() > 1e30


def test_bilinear_matches_zoh_to_third_order():
    # series: zoh Ab = I + ΔA + Δ²A²/2 + Δ³A³/6 + ..., bilinear Ab = I + ΔA + Δ²A²/2 + Δ³A³/4 + ...
    A, B = random_stable(5, 18), torch.randn(5, generator=gen(19), dtype=F64)

    def err(dt, rule):
        (a1, b1), (a2, b2) = zoh(A, B, dt), rule(A, B, dt)
        return max((a1 - a2).abs().max().item(), (b1 - b2).abs().max().item())

    for rule, order in ((bilinear, 3), (euler, 2)):
        ratio = err(4e-3, rule) / err(2e-3, rule)           # 2^order when the error is O(Δ^order)
        assert 2**order * 0.9 < ratio < 2**order * 1.1, (rule.__name__, ratio)
    # the leading term: Ab_bilinear - Ab_zoh = Δ³A³/12 + O(Δ⁴)
    dt = 1e-3
    lead = dt**3 * torch.linalg.matrix_power(A, 3) / 12
    torch.testing.assert_close(bilinear(A, B, dt)[0] - zoh(A, B, dt)[0], lead, rtol=1e-2, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Errors name the argument
# ----------------------------------------------------------------------------------------------

A4, B4 = hippo_legs(4)


@pytest.mark.parametrize("rule", [zoh, bilinear, euler])
@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(A=torch.zeros(2, 4, 4, dtype=F64)), "A"),                 # rank 3 without diagonal=True
        (dict(A=torch.zeros(4, 3, dtype=F64)), "A"),                    # not square
        (dict(A=torch.zeros(4, 4, dtype=torch.int64)), "A"),            # dtype
        (dict(A=torch.full((4, 4), float("nan"), dtype=F64)), "A"),     # non-finite
        (dict(A=torch.zeros(0, 0, dtype=F64)), "A"),                    # N = 0
        (dict(A=[[0.0]]), "A"),                                         # not a tensor
        (dict(B=torch.ones(5, dtype=F64)), "B"),                        # N mismatch
        (dict(B=torch.ones(4, 2, 2, dtype=F64)), "B"),                  # rank
        (dict(B=torch.ones(4, dtype=torch.float32)), "B"),              # precision mismatch
        (dict(B=torch.ones(4, dtype=torch.int32)), "B"),                # dtype
        (dict(B=torch.ones(4, dtype=F64, device="meta")), "B"),         # device
        (dict(B=torch.tensor([1.0, float("inf"), 0, 0], dtype=F64)), "B"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(dt=float("nan")), "dt"),
        (dict(dt=float("inf")), "dt"),
        (dict(dt="0.1"), "dt"),
        (dict(dt=torch.tensor([0.1, 0.0], dtype=F64)), "dt"),
        (dict(dt=torch.tensor([0.1, float("nan")], dtype=F64)), "dt"),
        (dict(dt=torch.ones(2, 2, dtype=F64)), "dt"),
        (dict(dt=torch.ones(0, dtype=F64)), "dt"),
        (dict(dt=torch.tensor([1, 2])), "dt"),                          # integer tensor
    ],
)
def test_bad_inputs(rule, kwargs, arg):
    args = dict(A=A4, B=B4, dt=0.1) | kwargs
    with pytest.raises(ValueError, match=rf"{rule.__name__}: argument '{arg}'"):
        rule(**args)


def test_bad_diagonal_broadcast_and_method():
    with pytest.raises(ValueError, match="zoh: argument 'B'.*broadcastable"):
        zoh(-torch.ones(3, 4, dtype=F64), torch.ones(3, dtype=F64), 0.1, diagonal=True)
    with pytest.raises(ValueError, match="discretize: argument 'method'"):
        discretize(A4, B4, 0.1, "rk4")
    with pytest.raises(ValueError, match="discretize: argument 'dt'"):
        discretize(A4, B4, -1.0, "zoh")
