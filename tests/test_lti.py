"""LTI SSMs: the recurrence and the convolution are the same map (the Annotated S4's test_cnn_is_rnn)."""

import math

import pytest
import torch

from mamba_edu.discretize import bilinear, zoh
from mamba_edu.hippo import hippo_legs
from mamba_edu.lti import (causal_conv, causal_conv_direct, lti_kernel, lti_recurrent, s4d_discretize, s4d_init,
                           s4d_kernel, s4d_readout)

F64 = torch.float64
H, N, L, BATCH = 3, 8, 57, 2




def gen(seed):
    return torch.Generator().manual_seed(seed)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def log_uniform_dt(h, seed, lo=1e-3, hi=1e-1):
    """One step size per channel, log-uniform in [lo, hi] as S4D initialises it."""
    r = torch.rand(h, generator=gen(seed), dtype=F64)
    return torch.exp(math.log(lo) + r * (math.log(hi) - math.log(lo)))


def hippo_system(seed=0):
    """H dense channels: LegS (A, B) discretised (bilinear) with a different dt per channel, random C."""
    A, B = hippo_legs(N)
    Ab, Bb = bilinear(A, B, torch.tensor([0.01, 0.1, 0.5], dtype=F64))   # (H, N, N), (H, N)
    C = torch.randn(H, N, generator=gen(seed), dtype=F64)
    return Ab, Bb, C


def s4d_system(kind, seed=0):
    """S4D: A from the initialisation, B = 1, random C, ZOH with per-channel dt; returns (A, B, C, dt, Ab, Bb)."""
    A = s4d_init(H, N, kind)
    B = torch.ones_like(A)
    C = torch.randn(A.shape, generator=gen(seed), dtype=F64).to(A.dtype)
    if A.is_complex():
        C = C + 1j * torch.randn(A.shape, generator=gen(seed + 1), dtype=F64)
    dt = log_uniform_dt(H, seed + 2)
    Ab, Bb = s4d_discretize(A, B, dt)                                     # (H, n), (H, n)
    return A, B, C, dt, Ab, Bb


# ----------------------------------------------------------------------------------------------
# CNN == RNN
# ----------------------------------------------------------------------------------------------


def test_cnn_is_rnn_dense_hippo():
    Ab, Bb, C = hippo_system()
    u = torch.randn(BATCH, H, L, generator=gen(1), dtype=F64)
    y_rnn = lti_recurrent(Ab, Bb, C, u)
    y_cnn = causal_conv(u, lti_kernel(Ab, Bb, C, L))
    assert y_rnn.shape == (BATCH, H, L)
    assert rel(y_cnn, y_rnn) < 1e-10


@pytest.mark.parametrize("kind", ["lin", "inv", "real"])
def test_cnn_is_rnn_s4d(kind):
    A, B, C, dt, Ab, Bb = s4d_system(kind)
    u = torch.randn(BATCH, H, L, generator=gen(3), dtype=F64)
    D = torch.randn(H, generator=gen(4), dtype=F64)
    y_rnn = lti_recurrent(Ab, Bb, C, u, D=D)
    y_cnn = causal_conv(u, s4d_kernel(A, B, C, dt, L)) + D[:, None] * u
    assert y_rnn.dtype == F64
    assert rel(y_cnn, y_rnn) < 1e-10


@pytest.mark.parametrize("kind", ["lin", "inv", "real"])
def test_s4d_kernel_equals_dense_kernel(kind):
    # the Vandermonde kernel equals repeated multiplication by the equivalent dense diagonal matrix
    A, B, C, dt, Ab, Bb = s4d_system(kind, seed=5)
    K = s4d_kernel(A, B, C, dt, L)                                      # (H, L)
    K_dense = lti_kernel(torch.diag_embed(Ab), Bb, C, L)                # (H, N, N) dense
    K_diag = lti_kernel(Ab, Bb, C, L)                                   # (H, N) diagonal
    assert K.shape == (H, L) and K.dtype == F64
    assert rel(K, K_dense) < 1e-10 and rel(K, K_diag) < 1e-10
    # a scalar dt is the same as the same dt for every channel
    torch.testing.assert_close(s4d_kernel(A, B, C, 0.05, L), s4d_kernel(A, B, C, torch.full((H,), 0.05, dtype=F64), L))


def test_complex_convention_is_a_conjugate_pair():
    # one complex state (λ, b, c) stands for the real system of size 2 with the pair (λ, conj λ):
    # its kernel, summed over both members by hand (no convention involved), is real and equals 2·Re
    lam = torch.tensor([[-0.3 + 2.0j]], dtype=torch.complex128)                    # (1, 1)
    b = torch.tensor([[0.7 - 0.2j]], dtype=torch.complex128)
    c = torch.tensor([[1.1 + 0.5j]], dtype=torch.complex128)
    A2, B2, C2 = (torch.cat([x, x.conj()], dim=1)[0] for x in (lam, b, c))       # (2,) each
    Ab2 = torch.exp(0.1 * A2)
    Bb2 = (Ab2 - 1) / A2 * B2
    l = torch.arange(20, dtype=F64)
    K_pair = (C2[:, None] * Bb2[:, None] * Ab2[:, None] ** l).sum(0)              # (20,)
    assert K_pair.imag.abs().max() < 1e-14
    torch.testing.assert_close(s4d_kernel(lam, b, c, 0.1, 20)[0], K_pair.real)
    y = lti_recurrent(*zoh(0.1 * lam, 0.1 * b, 1.0, diagonal=True), c, torch.ones(1, 20, dtype=F64))
    torch.testing.assert_close(y, causal_conv(torch.ones(1, 20, dtype=F64), K_pair.real[None]))


def test_recurrent_state_and_unbatched():
    Ab, Bb, C = hippo_system(seed=6)
    u = torch.randn(BATCH, H, L, generator=gen(7), dtype=F64)
    y, x = lti_recurrent(Ab, Bb, C, u, return_state=True)
    assert x.shape == (BATCH, H, N)
    # continue from the last state == run the whole sequence at once
    v = torch.randn(BATCH, H, 9, generator=gen(8), dtype=F64)
    y2 = lti_recurrent(Ab, Bb, C, v, x0=x)
    torch.testing.assert_close(y2, lti_recurrent(Ab, Bb, C, torch.cat([u, v], -1))[..., L:])
    # (H, L) without a batch axis
    y0, x0 = lti_recurrent(Ab, Bb, C, u[0], return_state=True)
    torch.testing.assert_close(y0, y[0])
    torch.testing.assert_close(x0, x[0])
    torch.testing.assert_close(lti_recurrent(Ab, Bb, C, v[0], x0=x0), y2[0])


def test_float32_matches_float64():
    A, B, C, dt, Ab, Bb = s4d_system("lin", seed=9)
    u = torch.randn(H, L, generator=gen(10), dtype=F64)
    y64 = lti_recurrent(Ab, Bb, C, u)
    y32 = lti_recurrent(Ab.to(torch.complex64), Bb.to(torch.complex64), C.to(torch.complex64), u.float())
    k32 = s4d_kernel(A.to(torch.complex64), B.to(torch.complex64), C.to(torch.complex64), dt.float(), L)
    assert y32.dtype == k32.dtype == torch.float32
    assert rel(y32.double(), y64) < 1e-5
    assert rel(causal_conv(u.float(), k32).double(), y64) < 1e-5


# ----------------------------------------------------------------------------------------------
# FFT convolution == direct convolution
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 7, 64, 101])
@pytest.mark.parametrize("batched", [True, False])
def test_fft_conv_equals_direct(length, batched):
    shape = (BATCH, H, length) if batched else (H, length)
    u = torch.randn(*shape, generator=gen(length), dtype=F64)
    K = torch.randn(H, length, generator=gen(length + 1), dtype=F64)
    y = causal_conv(u, K)
    assert y.shape == u.shape
    torch.testing.assert_close(y, causal_conv_direct(u, K), rtol=1e-10, atol=1e-12)
    # causality: the output at l never sees u_{l+1}, ...
    u2 = u.clone()
    u2[..., length // 2 + 1:] += 1.0
    torch.testing.assert_close(causal_conv(u2, K)[..., : length // 2 + 1], y[..., : length // 2 + 1])


def test_conv_by_hand():
    # y_l = Σ_{j≤l} K_j u_{l-j}
    u = torch.tensor([[1.0, 2.0, 3.0]], dtype=F64)
    K = torch.tensor([[1.0, 10.0, 100.0]], dtype=F64)
    want = torch.tensor([[1.0, 2 + 10, 3 + 20 + 100]], dtype=F64)
    torch.testing.assert_close(causal_conv_direct(u, K), want)
    torch.testing.assert_close(causal_conv(u, K), want)


# ----------------------------------------------------------------------------------------------
# S4D initialisation
# ----------------------------------------------------------------------------------------------


def test_s4d_init():
    A = s4d_init(2, 8, "lin")
    assert A.shape == (2, 4) and A.dtype == torch.complex128
    want = torch.complex(torch.full((4,), -0.5, dtype=F64), math.pi * torch.arange(4, dtype=F64))
    torch.testing.assert_close(A[1], want)
    A = s4d_init(1, 8, "inv")
    torch.testing.assert_close(A[0].imag, 8 / math.pi * (8 / (2 * torch.arange(4, dtype=F64) + 1) - 1))
    assert torch.all(A.real == -0.5)
    A = s4d_init(3, 5, "real", dtype=torch.float32)
    assert A.dtype == torch.float32 and A.shape == (3, 5)
    torch.testing.assert_close(A[2], -torch.arange(1, 6, dtype=torch.float32))


@pytest.mark.parametrize("kind", ["lin", "real"])
def test_s4d_discretize_and_readout(kind):
    A, B, C, dt, Ab, Bb = s4d_system(kind, seed=11)
    # per channel, the same as discretize.zoh with that channel's step
    for h in range(H):
        a, b = zoh(A[h], B[h], float(dt[h]))
        torch.testing.assert_close(Ab[h], a, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(Bb[h], b, rtol=1e-12, atol=1e-14)
    # a scalar dt is one step for every channel
    torch.testing.assert_close(s4d_discretize(A, B, 0.05)[0], torch.exp(0.05 * A))
    # one recurrent step by hand (the S4D layer's decode step) == lti_recurrent
    u = torch.randn(BATCH, H, 4, generator=gen(12), dtype=F64)
    x = torch.zeros(BATCH, *A.shape, dtype=Ab.dtype)
    for k in range(4):
        x = Ab * x + Bb * u[..., k, None]                                # (b, H, n)
        y_k = s4d_readout(C, x)                                           # (b, H)
        assert y_k.dtype == F64
        torch.testing.assert_close(y_k, lti_recurrent(Ab, Bb, C, u[..., : k + 1])[..., k])


# ----------------------------------------------------------------------------------------------
# Errors name the argument
# ----------------------------------------------------------------------------------------------

Ab0, Bb0, C0 = hippo_system()
U0 = torch.zeros(BATCH, H, 5, dtype=F64)
A_d = s4d_init(H, N, "lin")
B_d = C_d = torch.ones_like(A_d)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: lti_recurrent(Ab0[0, 0], Bb0, C0, U0), "lti_recurrent: argument 'Ab'"),         # rank 1
        (lambda: lti_recurrent(Ab0[:, :, :3], Bb0, C0, U0), "lti_recurrent: argument 'Ab'"),     # not square
        (lambda: lti_recurrent(Ab0.long(), Bb0, C0, U0), "lti_recurrent: argument 'Ab'"),        # dtype
        (lambda: lti_recurrent(Ab0 * math.inf, Bb0, C0, U0), "lti_recurrent: argument 'Ab'"),    # non-finite
        (lambda: lti_recurrent(Ab0, Bb0[:2], C0, U0), "lti_recurrent: argument 'Bb'"),           # H mismatch
        (lambda: lti_recurrent(Ab0, Bb0.float(), C0, U0), "lti_recurrent: argument 'Bb'"),       # precision
        (lambda: lti_recurrent(Ab0, Bb0, C0[:, :3], U0), "lti_recurrent: argument 'C'"),         # N mismatch
        (lambda: lti_recurrent(Ab0, Bb0, C0.to("meta"), U0), "lti_recurrent: argument 'C'"),     # device
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0[0, 0]), "lti_recurrent: argument 'u'"),          # rank
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0[:, :2]), "lti_recurrent: argument 'u'"),         # H mismatch
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0.float()), "lti_recurrent: argument 'u'"),        # dtype
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0[..., :0]), "lti_recurrent: argument 'u'"),       # L = 0
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0 * math.nan), "lti_recurrent: argument 'u'"),     # NaN
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0, D=torch.ones(H + 1, dtype=F64)), "lti_recurrent: argument 'D'"),
        (lambda: lti_recurrent(Ab0, Bb0, C0, U0, x0=torch.zeros(H, N, dtype=F64)), "lti_recurrent: argument 'x0'"),
        (lambda: lti_kernel(Ab0, Bb0, C0, 0), "lti_kernel: argument 'L'"),
        (lambda: lti_kernel(Ab0, Bb0, C0, 2.0), "lti_kernel: argument 'L'"),
        (lambda: lti_kernel(Ab0, Bb0[:, :3], C0, 4), "lti_kernel: argument 'Bb'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, 0.0, 4), "s4d_kernel: argument 'dt'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, math.nan, 4), "s4d_kernel: argument 'dt'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, torch.ones(H + 1, dtype=F64), 4), "s4d_kernel: argument 'dt'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, -torch.ones(H, dtype=F64), 4), "s4d_kernel: argument 'dt'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, torch.ones(2, 2, dtype=F64), 4), "s4d_kernel: argument 'dt'"),
        (lambda: s4d_kernel(torch.diag_embed(A_d), B_d, C_d, 0.1, 4), "s4d_kernel: argument 'A'"),  # dense
        (lambda: s4d_kernel(A_d, B_d[:, :2], C_d, 0.1, 4), "s4d_kernel: argument 'B'"),
        (lambda: s4d_kernel(A_d, B_d, C_d.to(torch.complex64), 0.1, 4), "s4d_kernel: argument 'C'"),
        (lambda: s4d_kernel(A_d, B_d, C_d, 0.1, -1), "s4d_kernel: argument 'L'"),
        (lambda: s4d_discretize(A_d, B_d[:, :2], 0.1), "s4d_discretize: argument 'B'"),
        (lambda: s4d_discretize(A_d[0], B_d[0], 0.1), "s4d_discretize: argument 'A'"),
        (lambda: s4d_discretize(A_d, B_d, torch.zeros(H, dtype=F64)), "s4d_discretize: argument 'dt'"),
        (lambda: s4d_discretize(A_d, B_d, math.inf), "s4d_discretize: argument 'dt'"),
        (lambda: s4d_readout(C_d, torch.ones(2, H, N, dtype=torch.complex128)), "s4d_readout: argument 'x'"),
        (lambda: s4d_readout(C_d[0], torch.ones(H, N // 2, dtype=torch.complex128)), "s4d_readout: argument 'C'"),
        (lambda: s4d_readout(C_d, torch.ones(H, N // 2, dtype=torch.int64)), "s4d_readout: argument 'x'"),
        (lambda: s4d_init(0, 4, "lin"), "s4d_init: argument 'H'"),
        (lambda: s4d_init(2, 0, "real"), "s4d_init: argument 'N'"),
        (lambda: s4d_init(2, 5, "lin"), "s4d_init: argument 'N'"),
        (lambda: s4d_init(2, 4, "legs"), "s4d_init: argument 'kind'"),
        (lambda: s4d_init(2, 4, "real", dtype=torch.complex64), "s4d_init: argument 'dtype'"),
        (lambda: causal_conv(U0, torch.ones(H, 6, dtype=F64)), "causal_conv: argument 'u'"),     # L mismatch
        (lambda: causal_conv(U0, torch.ones(H, 5, dtype=torch.float32)), "causal_conv: argument 'u'"),  # dtype
        (lambda: causal_conv(U0, torch.ones(5, dtype=F64)), "causal_conv: argument 'K'"),        # rank
        (lambda: causal_conv(U0, torch.ones(H, 5, dtype=torch.complex128)), "causal_conv: argument 'K'"),
        (lambda: causal_conv(U0[..., :0], torch.ones(H, 0, dtype=F64)), "causal_conv: argument 'K'"),
        (lambda: causal_conv_direct(U0[0, 0], torch.ones(H, 5, dtype=F64)), "causal_conv_direct: argument 'u'"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
