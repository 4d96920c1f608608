"""Linear time-invariant (LTI) state space models: one system, two ways to run it (S4, S4D).

Glossary
    b        batch size (optional: u may be (H, L) without a batch axis)
    H        number of channels; each channel is its own single-input single-output SSM
    N        state size per channel
    L        sequence length
    u        input (b, H, L);  y: output (b, H, L)
    A        continuous state matrix, diagonal, one row per channel (H, N), real or complex (S4D)
    Δ, dt    step size: a number, or one per channel (H,)
    Ab, Bb   discrete matrices: Ab dense (H, N, N) or diagonal (H, N); Bb (H, N)
    C        output projection (H, N);  D: skip connection (H,)
    x        state (b, H, N)
    y        output: y_k = C x_k (+ D u_k)
    K        convolution kernel (H, L):  K_l = C Ab^l Bb

The recurrence and the convolution are the same map (unroll x_k = Ab x_{k-1} + Bb u_k from x_{-1} = 0):

    x_k = Σ_{j≤k} Ab^{k-j} Bb u_j      so     y_k = C x_k = Σ_{j≤k} K_{k-j} u_j,   K_l = C Ab^l Bb

The recurrence costs O(L) sequential steps (good for generation, one token at a time); the
convolution is parallel over L and costs O(L log L) with the FFT (good for training).

Complex convention (S4D): a complex state stands for a conjugate pair of the real system, so only
one member of each pair is stored and every output is doubled and made real:

    y = C x + conj(C x) = 2·Re(C x),    K_l = 2·Re(C Ab^l Bb)

A complex A of shape (H, N/2) therefore describes a real system of state size N. Real systems
use the plain sums.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_choice, check_finite, check_float, check_int, check_positive, check_tensor, fail
from .discretize import zoh

DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
REAL = (torch.float32, torch.float64)
KINDS = ("lin", "inv", "real")
# Bounds on L, so a typo (L = 10**12) is an error at once, not an hour-long loop or an allocation
# that fails deep inside torch: lti_kernel's Python loop takes one small step per l (2^20 steps are
# about a minute), s4d_kernel materialises the (H, N, L) Vandermonde matrix.
MAX_LOOP_L = 2**20
MAX_VANDERMONDE = 2**28


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype


def _check_abc(func: str, Ab, Bb, C, a_name: str = "Ab", b_name: str = "Bb", dense_ok: bool = True):
    """Validate the per-channel system; return (H, N, dense)."""
    ndim = (2, 3) if dense_ok else 2
    dims = "(H, N) diagonal or (H, N, N) dense" if dense_ok else "(H, N) diagonal"
    check_tensor(func, a_name, Ab, ndim=ndim, dims=dims, dtypes=DTYPES)
    H, N = Ab.shape[0], Ab.shape[1]
    dense = Ab.dim() == 3
    if dense and Ab.shape[2] != N:
        fail(func, a_name, "of shape (H, N, N) (square per channel)", f"shape {tuple(Ab.shape)}")
    if H < 1 or N < 1:
        fail(func, a_name, "with H >= 1 channels and state size N >= 1", f"shape {tuple(Ab.shape)}")
    check_finite(func, a_name, Ab)
    prec = _real_dtype(Ab.dtype)
    for name, M in ((b_name, Bb), ("C", C)) if C is not None else ((b_name, Bb),):
        check_tensor(func, name, M, shape=(H, N), dims="(H, N)", dtypes=DTYPES, device=Ab.device)
        if _real_dtype(M.dtype) != prec:
            fail(func, name, f"of {a_name}'s precision ({prec}, real or complex)", M.dtype)
        check_finite(func, name, M)
    return H, N, dense


def _check_input(func: str, u, H: int, like: torch.Tensor):
    """u as (b, H, L), plus whether it came without a batch axis."""
    check_tensor(func, "u", u, ndim=(2, 3), dims="(batch, H, L) or (H, L)",
                 dtypes=(_real_dtype(like.dtype),), device=like.device)
    if u.shape[-2] != H:
        fail(func, "u", f"of shape (batch, H, L) or (H, L) with H = {H} channels", f"shape {tuple(u.shape)}")
    if u.shape[-1] < 1:
        fail(func, "u", "a sequence of length L >= 1", f"shape {tuple(u.shape)}")
    check_finite(func, "u", u)
    return (u[None], True) if u.dim() == 2 else (u, False)


def _out(y: torch.Tensor) -> torch.Tensor:
    """The complex convention: a stored complex state is one half of a conjugate pair -> 2·Re."""
    return 2 * y.real if y.is_complex() else y


# ----------------------------------------------------------------------------------------------
# Recurrent mode
# ----------------------------------------------------------------------------------------------


def lti_recurrent(Ab, Bb, C, u, D=None, x0=None, return_state: bool = False):
    """Run x_k = Ab x_{k-1} + Bb u_k, y_k = C x_k + D u_k step by step (a loop over L).

    Ab (H, N, N) or (H, N); Bb, C (H, N); u (b, H, L) or (H, L); D (H,); x0 (b, H, N) or (H, N)
    (the state before the first input, zero by default). Returns y like u, and the last state
    x_{L-1} (b, H, N) or (H, N) too if `return_state`. Complex states follow the 2·Re convention.
    """
    func = "lti_recurrent"
    H, N, dense = _check_abc(func, Ab, Bb, C)
    u3, unbatched = _check_input(func, u, H, Ab)
    b, _, L = u3.shape
    dtype = torch.promote_types(Ab.dtype, Bb.dtype)
    if D is not None:
        check_tensor(func, "D", D, shape=(H,), dims="(H,)", dtypes=(u.dtype,), device=u.device)
        check_finite(func, "D", D)
    if x0 is None:
        x = torch.zeros(b, H, N, dtype=dtype, device=u.device)                # (b, h, n)
    else:
        want = (H, N) if unbatched else (b, H, N)
        check_tensor(func, "x0", x0, shape=want, dims="(H, N)" if unbatched else "(batch, H, N)",
                     dtypes=DTYPES, device=u.device)
        check_finite(func, "x0", x0)
        x = (x0[None] if unbatched else x0).to(torch.promote_types(dtype, x0.dtype))  # (b, h, n)
    ys = []
    for k in range(L):
        uk = u3[:, :, k, None]                                                 # (b, h, 1)
        # x_k = Ab x_{k-1} + Bb u_k
        if dense:
            x = torch.einsum("hnm,bhm->bhn", Ab.to(x.dtype), x) + Bb * uk     # (b, h, n)
        else:
            x = Ab * x + Bb * uk                                               # (b, h, n)
        # y_k = C x_k
        ys.append((C * x).sum(-1))                                             # (b, h)
    y = _out(torch.stack(ys, dim=-1))                                          # (b, h, l)
    if D is not None:
        y = y + D[:, None] * u3                                                # (b, h, l)
    y = y.to(u.dtype)
    if unbatched:
        y, x = y[0], x[0]                                                      # (h, l), (h, n)
    return (y, x) if return_state else y


# ----------------------------------------------------------------------------------------------
# Convolution mode: the kernel
# ----------------------------------------------------------------------------------------------


def lti_kernel(Ab, Bb, C, L: int) -> torch.Tensor:
    """K_l = C Ab^l Bb for l = 0..L-1 by repeated multiplication -> (H, L) (2·Re if complex).

    Ab may be dense (H, N, N) or diagonal (H, N). Cost O(L N²) per channel: fine for teaching,
    too slow for a real S4 (which is why S4 and S4D find structure to exploit).
    """
    func = "lti_kernel"
    H, N, dense = _check_abc(func, Ab, Bb, C)
    L = check_int(func, "L", L, maximum=MAX_LOOP_L)
    v = Bb.to(torch.promote_types(Ab.dtype, Bb.dtype))                        # (h, n)  Ab^0 Bb
    Ks = []
    for _ in range(L):
        # K_l = C · (Ab^l Bb)
        Ks.append((C * v).sum(-1))                                             # (h,)
        # Ab^{l+1} Bb = Ab (Ab^l Bb)
        v = torch.einsum("hnm,hm->hn", Ab.to(v.dtype), v) if dense else Ab * v  # (h, n)
    return _out(torch.stack(Ks, dim=-1))                                       # (h, l)


def _check_dt(func: str, dt, H: int, A: torch.Tensor) -> torch.Tensor:
    """dt as a number or one step per channel (H,) -> a tensor that broadcasts against (H, N)."""
    real = _real_dtype(A.dtype)
    if isinstance(dt, torch.Tensor) and dt.dim() == 1:
        check_tensor(func, "dt", dt, shape=(H,), dims="(H,)", dtypes=REAL, device=A.device)
        check_positive(func, "dt", dt)
        return dt.to(real)[:, None]                                            # (h, 1)
    return torch.tensor(check_float(func, "dt", dt, positive=True), dtype=real, device=A.device)


def s4d_discretize(A, B, dt):
    """Zero-order hold of a diagonal system, one step size per channel -> (Ab, Bb), each (H, N).

        Ab = exp(ΔA),  Bb = (exp(ΔA) - 1)/A · B         (elementwise; the limit ΔB where A = 0)

    A, B (H, N), real or complex; dt a number or (H,). The S4D layer's recurrent step uses it.
    """
    func = "s4d_discretize"
    H, N, _ = _check_abc(func, A, B, None, a_name="A", b_name="B", dense_ok=False)
    dt = _check_dt(func, dt, H, A)                                             # (h, 1) or ()
    # zoh(ΔA, ΔB, 1) == zoh(A, B, Δ): every rule depends on ΔA and ΔB only
    return zoh(dt * A, dt * B, 1.0, diagonal=True)                             # (h, n), (h, n)


def s4d_readout(C, x):
    """y = C·x summed over the state, with the complex convention: 2·Re(C·x) for complex states.

    C (H, N), x (..., H, N) -> y (..., H).
    """
    func = "s4d_readout"
    check_tensor(func, "C", C, ndim=2, dims="(H, N)", dtypes=DTYPES)
    check_tensor(func, "x", x, dtypes=DTYPES, device=C.device)
    if x.dim() < 2 or tuple(x.shape[-2:]) != tuple(C.shape):
        fail(func, "x", f"of shape (..., H, N) with (H, N) = {tuple(C.shape)} like C", f"shape {tuple(x.shape)}")
    return _out((C * x).sum(-1))                                               # (..., h)


def s4d_kernel(A, B, C, dt, L: int) -> torch.Tensor:
    """The S4D kernel of a diagonal continuous system: ZOH, then a Vandermonde product -> (H, L).

        Ab = exp(ΔA),  Bb = (exp(ΔA) - 1)/A · B                  (zero-order hold, elementwise)
        K_l = Σ_n C_n Bb_n Ab_n^l,   Ab_n^l = exp(l·Δ·A_n)       (no repeated powers)

    A, B, C (H, N), real or complex; dt a number or (H,) (one step per channel). Complex A returns
    2·Re(K) (conjugate pairs, see the module docstring); real A the plain sum.
    """
    func = "s4d_kernel"
    H, N, _ = _check_abc(func, A, B, C, a_name="A", b_name="B", dense_ok=False)
    L = check_int(func, "L", L, maximum=max(1, MAX_VANDERMONDE // (H * N)))  # V (H, N, L) fits
    dt = _check_dt(func, dt, H, A)                                             # (h, 1) or ()
    dA = dt * A                                                                # (h, n)  ΔA
    _, Bb = zoh(dA, dt * B, 1.0, diagonal=True)                                # (h, n)
    l = torch.arange(L, dtype=_real_dtype(A.dtype), device=A.device)          # (l,)
    # Vandermonde matrix V[h, n, l] = Ab_n^l = exp(l·ΔA_n)
    V = torch.exp(dA[..., None] * l)                                           # (h, n, l)
    K = torch.einsum("hn,hnl->hl", C * Bb, V)                                  # (h, l)
    return _out(K)


def s4d_init(H: int, N: int, kind: str = "lin", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The S4D initialisations of A for a real state size N per channel -> A.

        'lin'   A_n = -1/2 + iπn                          n = 0..N/2-1   complex (H, N/2)
        'inv'   A_n = -1/2 + i·N/π·(N/(2n+1) - 1)         n = 0..N/2-1   complex (H, N/2)
        'real'  A_n = -(n+1)                              n = 0..N-1     real    (H, N)

    The complex kinds store one member of each conjugate pair (N even), as S4D does, and the
    kernels double them (2·Re). B's default is torch.ones_like(A) (S4D folds B into C).
    `dtype` is the real precision; the complex kinds return its complex type.
    """
    func = "s4d_init"
    H = check_int(func, "H", H)
    N = check_int(func, "N", N)
    check_choice(func, "kind", kind, KINDS)
    if dtype not in REAL:
        fail(func, "dtype", "torch.float32 or torch.float64", dtype)
    if kind == "real":
        A = -(torch.arange(N, dtype=dtype) + 1)                                # (n,)
        return A.repeat(H, 1)                                                  # (h, n)
    if N % 2:
        fail(func, "N", f"an even state size for kind '{kind}' (conjugate pairs)", N)
    n = torch.arange(N // 2, dtype=dtype)                                      # (n/2,)
    imag = math.pi * n if kind == "lin" else N / math.pi * (N / (2 * n + 1) - 1)  # (n/2,)
    A = torch.complex(torch.full_like(imag, -0.5), imag)                       # (n/2,)
    return A.repeat(H, 1)                                                      # (h, n/2)


# ----------------------------------------------------------------------------------------------
# Convolution mode: applying the kernel
# ----------------------------------------------------------------------------------------------


def _check_conv(func: str, u, K):
    check_tensor(func, "K", K, ndim=2, dims="(H, L)", dtypes=REAL)
    H, L = K.shape
    check_tensor(func, "u", u, ndim=(2, 3), dims="(batch, H, L) or (H, L)", dtypes=(K.dtype,), device=K.device)
    if tuple(u.shape[-2:]) != (H, L):
        fail(func, "u", f"of shape (batch, H, L) or (H, L) with (H, L) = {(H, L)} like K", f"shape {tuple(u.shape)}")
    if L < 1:
        fail(func, "K", "a kernel of length L >= 1", f"shape {tuple(K.shape)}")
    return L


def causal_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """y_l = Σ_{j≤l} K_j u_{l-j} by FFT; u (b, H, L) or (H, L), K (H, L) -> y like u.

    Zero-padding both to 2L turns the FFT's circular convolution into a linear one: the
    wrapped-around terms land in positions L..2L-1, which are dropped.
    """
    L = _check_conv("causal_conv", u, K)
    n = 2 * L
    Uf = torch.fft.rfft(u, n=n)                                                # (b, h, l+1)
    Kf = torch.fft.rfft(K, n=n)                                                # (h, l+1)
    y = torch.fft.irfft(Uf * Kf, n=n)                                          # (b, h, 2l)
    return y[..., :L]                                                          # (b, h, l)


def causal_conv_direct(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The same causal convolution, term by term: for each lag j add K_j · (u shifted by j)."""
    L = _check_conv("causal_conv_direct", u, K)
    y = torch.zeros_like(u)                                                    # (b, h, l)
    for j in range(L):
        # y_l += K_j u_{l-j}   for l ≥ j
        y[..., j:] += K[:, j, None] * u[..., : L - j]                          # (b, h, l-j)
    return y
