"""Selective state space models (S6): the selective scan and its parameterisation.

Glossary (the Mamba paper's symbols; shapes as in the selective scan contract of DESIGN.md)
    b      batch size
    d      number of channels ("dim", d_inner in the Mamba block); each channel is its own SSM
    l      sequence length L
    n      state size N per channel
    g      number of groups G sharing one B/C (channel c uses group c // (d // G))
    u      input                       (b, d, l)
    Δ      step size, per channel and per token (`delta`)   (b, d, l)
    A      continuous-time state matrix, diagonal and real: one row of N per channel (d, n)
    B, C   input and output projections, per token: (b, n, l) or (b, g, n, l)
    D      skip connection (d,);  z: gate input (b, d, l)
    Ab     exp(Δ·A): the discretised (zero-order hold) state decay   (b, d, l, n)
    Bbu    Δ·B·u: the discretised input (the simplified Euler rule for B that Mamba uses) (b, d, l, n)
    h      hidden state (b, d, n)

The recurrence, one channel and one state entry at a time:

    h_t = exp(Δ_t·A) ⊙ h_{t-1} + Δ_t·B_t·u_t
    y_t = C_t · h_t                         (a sum over n)
    out = (y + D·u) ⊙ silu(z)

Selection means Δ, B and C depend on the input (they carry an `l` axis), so the model can
choose, token by token, what to write into its fixed-size state and what to ignore. The price:
there is no fixed convolution kernel any more. But the recurrence is still first-order and
linear in h, so it is still a parallel scan (see `mamba_edu.scan`).

Three implementations live here, all with the same signature and result:
    selective_scan_ref      mirrors the official mamba-ssm reference line by line (materialises
                            Ab and Bbu for the whole sequence, then a Python loop over time)
    selective_scan_naive    a Python loop over time, discretising one step at a time
    selective_scan_parallel materialises Ab, Bbu chunk by chunk, time-major, and runs a parallel
                            scan over them in place (Blelloch on strided views)

State math is float32 (float64 when any input is float64); `out` has u's dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from . import scan as _scan
from ._checks import FLOAT_DTYPES, check_finite, check_float, check_int, check_tensor, fail
from .registry import selective_scan  # the dispatcher: S6 runs whichever implementation `impl` names

FUNC = "selective_scan"

# Largest (b, d, chunk, n) tensor `selective_scan_parallel` materialises at once (elements).
# 2^28 float32 = 1 GiB: the in-place scan holds two such tensors (Ab, and Bbu which becomes h) at a
# time, ~2 GiB, so (8, 1536, 2048, 16) runs in 2 chunks of ≤ 1365 steps. Each chunk costs ~2·log2(chunk)
# levels of two kernels whatever its length, so long chunks keep the GPU busy with few launches
# (2^24 gave chunks of ~85 steps there: launches and copies dominated).
PARALLEL_MAX_ELEMENTS = 2**28


# ----------------------------------------------------------------------------------------------
# The contract: validation shared by every implementation (the Triton kernels call it too)
# ----------------------------------------------------------------------------------------------


def _valid_sizes(u, delta, A, B, C, D, z, delta_bias):
    """(b, d, l, n, g) when every argument is a float tensor of the contract's shape on u's device, else
    None: then `check_selective_scan_args` checks one by one and names what is wrong. A fast path (a few
    microseconds, where the checks one by one take tens: as long as a small problem's kernels on a GPU)
    that accepts nothing the checks one by one would refuse."""
    tensors = (u, delta, A, B, C) + tuple(t for t in (D, z, delta_bias) if t is not None)
    if not all(isinstance(t, torch.Tensor) and t.dtype in FLOAT_DTYPES for t in tensors):
        return None
    if u.dim() != 3 or A.dim() != 2 or B.dim() not in (3, 4) or C.shape != B.shape:
        return None
    (b, d, l), n = u.shape, A.shape[1]
    g = B.shape[1] if B.dim() == 4 else 1
    bc = (b, g, n, l) if B.dim() == 4 else (b, n, l)
    if l < 1 or n < 1 or g < 1 or d % g or A.shape[0] != d or B.shape != bc or delta.shape != u.shape:
        return None
    if (D is not None and D.shape != (d,)) or (z is not None and z.shape != u.shape) or \
            (delta_bias is not None and delta_bias.shape != (d,)):
        return None
    dev = u.device
    return (b, d, l, n, g) if all(t.device == dev for t in tensors) else None


def check_selective_scan_args(u, delta, A, B, C, D=None, z=None, delta_bias=None, func: str = FUNC):
    """Validate the selective scan's arguments against the contract; return (b, d, l, n, g).

    Raises ValueError naming the argument, what was expected and what came.
    """
    sizes = _valid_sizes(u, delta, A, B, C, D, z, delta_bias)
    if sizes is None:
        return _check_one_by_one(u, delta, A, B, C, D, z, delta_bias, func)
    check_finite(func, "A", A)  # the common case: shapes in one pass, the parameters' values as below
    if delta_bias is not None:
        check_finite(func, "delta_bias", delta_bias)
    return sizes


def _check_one_by_one(u, delta, A, B, C, D, z, delta_bias, func):
    """Every argument in turn; the first that breaks the contract raises, naming it."""
    check_tensor(func, "u", u, ndim=3, dims="(batch, dim, L)")
    b, d, l = u.shape
    dev = u.device
    if l < 1:
        fail(func, "u", "a sequence of length L >= 1", f"shape {tuple(u.shape)}")
    check_tensor(func, "delta", delta, shape=(b, d, l), dims="(batch, dim, L)", device=dev)
    check_tensor(func, "A", A, ndim=2, dims="(dim, N)", dtypes=None, device=dev)
    if A.is_complex():
        fail(func, "A", "a real tensor (complex A is not part of this contract)", A.dtype)
    check_tensor(func, "A", A, shape=(d, None), dims="(dim, N)", device=dev)
    n = A.shape[1]
    if n < 1:
        fail(func, "A", "of shape (dim, N) with N >= 1", tuple(A.shape))
    check_finite(func, "A", A)
    g = 1
    for name, M in (("B", B), ("C", C)):
        check_tensor(func, name, M, ndim=(3, 4), dims="(batch, N, L) or (batch, G, N, L)", device=dev)
        if M.dim() == 3:
            check_tensor(func, name, M, shape=(b, n, l), dims="(batch, N, L)", device=dev)
        else:
            G = M.shape[1]
            if G < 1 or d % G != 0:
                fail(func, name, f"grouped as (batch, G, N, L) with dim % G == 0 (dim = {d})", f"G = {G}")
            check_tensor(func, name, M, shape=(b, G, n, l), dims="(batch, G, N, L)", device=dev)
    gB = B.shape[1] if B.dim() == 4 else 1
    gC = C.shape[1] if C.dim() == 4 else 1
    if gB != gC:
        fail(func, "C", f"grouped like B (G = {gB})", f"G = {gC}")
    g = gB
    if D is not None:
        check_tensor(func, "D", D, shape=(d,), dims="(dim,)", device=dev)
    if z is not None:
        check_tensor(func, "z", z, shape=(b, d, l), dims="(batch, dim, L)", device=dev)
    if delta_bias is not None:
        check_tensor(func, "delta_bias", delta_bias, shape=(d,), dims="(dim,)", device=dev)
        check_finite(func, "delta_bias", delta_bias)
    return b, d, l, n, g


def state_dtype(*tensors) -> torch.dtype:
    """float64 if any input is float64, else float32: the dtype all state math runs in."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def per_channel(M: torch.Tensor, d: int) -> torch.Tensor:
    """B or C as one (b, d, n, l) tensor: group g serves channels g·(d/G) … (g+1)·(d/G) − 1."""
    if M.dim() == 3:
        return M.unsqueeze(1).expand(-1, d, -1, -1)  # (b, d, n, l), a view
    G = M.shape[1]
    return M.repeat_interleave(d // G, dim=1)  # (b, d, n, l)


def _atleast_fp32(t: torch.Tensor) -> torch.Tensor:
    """Parameters enter the state math in float32, or float64 when they are float64."""
    return t if t.dtype == torch.float64 else t.float()


def _discretized_delta(delta, delta_bias, delta_softplus, f):
    """Δ = softplus(Δ + delta_bias) when asked, in the state dtype f."""
    delta = delta.to(f)  # (b, d, l)
    if delta_bias is not None:
        delta = delta + delta_bias.to(f)[:, None]  # (b, d, l)
    if delta_softplus:
        # log1p(e^x) for x <= 20 and x above (F.softplus's threshold 20): the official kernel's rule, which
        # the Triton kernels follow too; never log(1 + e^x), which is exactly 0 below x ≈ -17 in float32
        delta = F.softplus(delta)  # (b, d, l)
    return delta


def _finish(y, u, D, z, dtype_in):
    """out = (y + D·u) ⊙ silu(z), cast back to u's dtype."""
    out = y  # (b, d, l)
    if D is not None:
        out = out + D.to(y.dtype)[:, None] * u.to(y.dtype)  # (b, d, l)
    if z is not None:
        out = out * F.silu(z.to(y.dtype))  # (b, d, l)
    return out.to(dtype_in)


# ----------------------------------------------------------------------------------------------
# The reference (mirrors mamba_ssm.ops.selective_scan_interface.selective_scan_ref, real A)
# ----------------------------------------------------------------------------------------------


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """The official reference semantics: materialise Ab and Bbu for all L, then loop over time.

    Returns out (b, d, l) in u's dtype, and with return_last_state also h_L (b, d, n) in the
    state dtype (float32, or float64 for float64 inputs).
    """
    b, d, l, n, g = check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias)
    f = state_dtype(u, delta, A, B, C, D, z, delta_bias)
    delta = _discretized_delta(delta, delta_bias, delta_softplus, f)  # (b, d, l)
    uf, Af = u.to(f), A.to(f)  # (b, d, l), (d, n)
    Bd, Cd = per_channel(B.to(f), d), per_channel(C.to(f), d)  # (b, d, n, l) each
    # Ab = exp(Δ·A), Bbu = Δ·B·u for every token at once
    Ab = torch.exp(torch.einsum("bdl,dn->bdln", delta, Af))  # (b, d, l, n)
    Bbu = torch.einsum("bdl,bdnl,bdl->bdln", delta, Bd, uf)  # (b, d, l, n)
    h = uf.new_zeros(b, d, n)  # (b, d, n)
    ys = []
    for t in range(l):
        h = Ab[:, :, t] * h + Bbu[:, :, t]  # (b, d, n)
        ys.append(torch.einsum("bdn,bdn->bd", h, Cd[..., t]))  # (b, d)
    y = torch.stack(ys, dim=2)  # (b, d, l)
    out = _finish(y, u, D, z, u.dtype)
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------------
# naive: one timestep per iteration, nothing of size L·N ever exists
# ----------------------------------------------------------------------------------------------


def selective_scan_naive(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         return_last_state=False):
    """A Python loop over time: discretise, update and read out one token at a time.

    Memory is O(b·d·n) for the state, whatever L is; time is L small kernel launches.
    """
    b, d, l, n, g = check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias)
    f = state_dtype(u, delta, A, B, C, D, z, delta_bias)
    delta = _discretized_delta(delta, delta_bias, delta_softplus, f)  # (b, d, l)
    uf, Af = u.to(f), A.to(f)  # (b, d, l), (d, n)
    Bg = B.to(f).reshape(b, g, n, l)  # (b, g, n, l)
    Cg = C.to(f).reshape(b, g, n, l)  # (b, g, n, l)
    h = uf.new_zeros(b, g, d // g, n)  # (b, g, d/g, n): channels grouped by the B/C they share
    Ag = Af.reshape(g, d // g, n)  # (g, d/g, n)
    ys = []
    for t in range(l):
        dt = delta[:, :, t].reshape(b, g, d // g, 1)  # (b, g, d/g, 1)
        ut = uf[:, :, t].reshape(b, g, d // g, 1)  # (b, g, d/g, 1)
        Bt = Bg[..., t].unsqueeze(2)  # (b, g, 1, n)
        Ct = Cg[..., t].unsqueeze(2)  # (b, g, 1, n)
        # h_t = exp(Δ_t·A) ⊙ h_{t-1} + Δ_t·B_t·u_t
        h = torch.exp(dt * Ag) * h + dt * Bt * ut  # (b, g, d/g, n)
        # y_t = C_t · h_t
        ys.append((h * Ct).sum(-1).reshape(b, d))  # (b, d)
    y = torch.stack(ys, dim=2)  # (b, d, l)
    out = _finish(y, u, D, z, u.dtype)
    return (out, h.reshape(b, d, n)) if return_last_state else out


# ----------------------------------------------------------------------------------------------
# parallel: materialise (b, d, n, chunk) tensors and scan them in parallel, chunk after chunk
# (time-major and in place by default)
# ----------------------------------------------------------------------------------------------


def parallel_chunk_length(b: int, d: int, l: int, n: int, max_elements: int = PARALLEL_MAX_ELEMENTS) -> int:
    """Longest chunk of the sequence whose (b, d, n, chunk) tensors stay under max_elements."""
    return max(1, min(l, max_elements // max(1, b * d * n)))


class _ScanInplace(torch.autograd.Function):
    """h = scan_inplace(a, b) along time (dim 1), with the reverse scan as its backward.

    Forward: b is overwritten with h (marked dirty); a is scanned on a copy, so the original a
    (which exp(Δ·A) also saved for its own backward) stays intact. Saved: a and h.
    Backward, for a loss ℓ and dh_t = ∂ℓ/∂h_t (h_t = a_t·h_{t−1} + b_t, h_{−1} = 0):
        g_t = dh_t + a_{t+1}·g_{t+1},  g_{L−1} = dh_{L−1}   the same recurrence, backwards in time
        ∂ℓ/∂b_t = g_t,   ∂ℓ/∂a_t = g_t·h_{t−1}
    A carried state is folded into b_0 before the scan, in ordinary autograd ops.
    """

    @staticmethod
    def forward(ctx, a, b):
        _scan.scan_inplace(a.clone(), b, dim=1)  # b ← h; the copy of a ← prefix products (dropped)
        ctx.mark_dirty(b)
        ctx.save_for_backward(a, b)
        return b

    @staticmethod
    @once_differentiable
    def backward(ctx, dh):
        a, h = ctx.saved_tensors  # (b, c, ...) each
        # reversed time k = L−1−t: g'_k = a_{t+1}·g'_{k−1} + dh'_k, a forward scan of flipped copies
        a_next = torch.cat((a[:, 1:], torch.ones_like(a[:, :1])), dim=1)  # (b, c, ...): a_{t+1}
        g = _scan.scan_inplace(a_next.flip(1), dh.flip(1), dim=1).flip(1)  # (b, c, ...)
        h_prev = torch.cat((torch.zeros_like(h[:, :1]), h[:, :-1]), dim=1)  # (b, c, ...): h_{t−1}
        return g * h_prev, g


def _scan_over_time(Ab, Bbu):
    """Every state of a chunk, in place in Bbu.  (b, c, g, d/g, n) → (b, c, g, d/g, n)"""
    if torch.is_grad_enabled() and (Ab.requires_grad or Bbu.requires_grad):
        return _ScanInplace.apply(Ab, Bbu)
    return _scan.scan_inplace(Ab, Bbu, dim=1)


def _parallel_inplace(u, delta, A, B, C, f, g: int, step: int):
    """y (b, d, l) and the last state (b, g, d/g, n) by time-major tensors scanned in place.

    The materialised tensors are (b, c, g, d/g, n): time before channels and state, so each time
    step is one contiguous row of d·n numbers and every strided view of the scan reads whole rows.
    """
    b, d, l = u.shape
    n = A.shape[1]
    # the inputs time-major: small (b, l, …) copies
    dt = delta.transpose(1, 2).contiguous().reshape(b, l, g, d // g, 1)  # (b, l, g, d/g, 1): Δ
    du = (delta * u.to(f)).transpose(1, 2).contiguous().reshape(b, l, g, d // g, 1)  # (b, l, g, d/g, 1): Δ·u
    Ag = A.to(f).reshape(1, 1, g, d // g, n)  # (1, 1, g, d/g, n)
    Bt = B.to(f).reshape(b, g, n, l).permute(0, 3, 1, 2).contiguous().unsqueeze(3)  # (b, l, g, 1, n)
    Ct = C.to(f).reshape(b, g, n, l).permute(0, 3, 1, 2).contiguous().unsqueeze(-1)  # (b, l, g, n, 1)
    h = None  # carried state (b, g, d/g, n)
    ys = []
    for t0 in range(0, l, step):
        sl = slice(t0, min(l, t0 + step))
        Ab = torch.exp_(dt[:, sl] * Ag)  # (b, c, g, d/g, n): exp(Δ·A), the exp in place
        Bbu = du[:, sl] * Bt[:, sl]  # (b, c, g, d/g, n): Δ·u·B
        if h is not None:
            Bbu[:, 0].addcmul_(Ab[:, 0], h)  # b_0 ← a_0·h_carry + b_0 (the scan starts from 0)
        hs = _scan_over_time(Ab, Bbu)  # (b, c, g, d/g, n): every state of the chunk, in Bbu's memory
        ys.append(torch.matmul(hs, Ct[:, sl]).squeeze(-1))  # (b, c, g, d/g): y_t = C_t · h_t
        h = hs[:, -1].clone()  # (b, g, d/g, n): a copy, so the chunk's tensors can go
        del Ab, Bbu, hs
    y = torch.cat(ys, dim=1).reshape(b, l, d).transpose(1, 2).contiguous()  # (b, d, l)
    return y, h


def _parallel_last_axis(u, delta, A, B, C, f, g: int, step: int, method: str):
    """y (b, d, l) and the last state (b, g, d/g, n) by (…, n, chunk) tensors and a scan of `SCANS`."""
    b, d, l = u.shape
    n = A.shape[1]
    du = (delta * u.to(f)).reshape(b, g, d // g, 1, l)  # (b, g, d/g, 1, l): Δ·u
    Ag = A.to(f).reshape(1, g, d // g, n, 1)  # (1, g, d/g, n, 1)
    Bg = B.to(f).reshape(b, g, 1, n, l)  # (b, g, 1, n, l)
    Cg = C.to(f).reshape(b, g, 1, n, l)  # (b, g, 1, n, l)
    dg = delta.reshape(b, g, d // g, 1, l)  # (b, g, d/g, 1, l)
    h = None  # carried state (b, g, d/g, n)
    ys = []
    for t0 in range(0, l, step):
        sl = slice(t0, min(l, t0 + step))
        Ab = torch.exp(dg[..., sl] * Ag)  # (b, g, d/g, n, c)
        Bbu = du[..., sl] * Bg[..., sl]  # (b, g, d/g, n, c)
        hs = _scan.scan(Ab, Bbu, h, method=method)  # (b, g, d/g, n, c): every state of the chunk
        ys.append((hs * Cg[..., sl]).sum(3))  # (b, g, d/g, c): y_t = C_t · h_t
        h = hs[..., -1]  # (b, g, d/g, n)
    y = torch.cat(ys, dim=-1).reshape(b, d, l)  # (b, d, l)
    return y, h


PARALLEL_METHODS = ("inplace", *_scan.SCANS)


def selective_scan_parallel(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                            return_last_state=False, method: str = "inplace",
                            max_elements: int = PARALLEL_MAX_ELEMENTS):
    """Materialise Ab = exp(Δ·A) and Bbu = Δ·B·u, scan them in parallel over time, project by C.

    The sequence is cut into chunks so that no (b, d, n, chunk) tensor exceeds `max_elements`;
    the state is carried from one chunk to the next (folded into the next chunk's first step).
    Within a chunk every time step is computed at once by a parallel scan:
        method="inplace"   (default) tensors laid out time-major, (b, chunk, g, d/g, n), scanned in
                           place by `mamba_edu.scan.scan_inplace`; y = C·h by a batched matmul.
                           With autograd, the scan's backward is the reverse scan.
        a key of SCANS     tensors (b, g, d/g, n, chunk) with L last, scanned by that method (copies
                           at every level: for teaching and for checking the scans, not for speed)
    """
    b, d, l, n, g = check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if method not in PARALLEL_METHODS:
        fail(FUNC, "method", "one of " + ", ".join(map(repr, PARALLEL_METHODS)), repr(method))
    check_int(FUNC, "max_elements", max_elements, minimum=1)
    f = state_dtype(u, delta, A, B, C, D, z, delta_bias)
    delta = _discretized_delta(delta, delta_bias, delta_softplus, f)  # (b, d, l)
    step = parallel_chunk_length(b, d, l, n, max_elements)
    if method == "inplace":
        y, h = _parallel_inplace(u, delta, A, B, C, f, g, step)  # (b, d, l), (b, g, d/g, n)
    else:
        y, h = _parallel_last_axis(u, delta, A, B, C, f, g, step, method)  # (b, d, l), (b, g, d/g, n)
    out = _finish(y, u, D, z, u.dtype)
    return (out, h.reshape(b, d, n)) if return_last_state else out


# ----------------------------------------------------------------------------------------------
# S6: where Δ, B and C come from (the Mamba parameterisation)
# ----------------------------------------------------------------------------------------------


def s4d_real_A_log(d: int, n: int) -> torch.Tensor:
    """S4D-Real initialisation stored as A_log: A[c, k] = -(k + 1), so A_log = log(k + 1).  (d, n)"""
    check_int("s4d_real_A_log", "d", d)
    check_int("s4d_real_A_log", "n", n)
    return torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d, 1)  # (d, n)


def dt_bias_init(d: int, dt_min: float = 1e-3, dt_max: float = 1e-1, floor: float = 1e-4,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Bias of the Δ projection so that softplus(bias) is log-uniform in [dt_min, dt_max].  (d,)

    softplus(x) = log(1 + e^x), so its inverse is x = Δ + log(1 − e^{−Δ}) = Δ + log(−expm1(−Δ)).
    """
    func = "dt_bias_init"
    check_int(func, "d", d)
    lo, hi = check_float(func, "dt_min", dt_min, positive=True), check_float(func, "dt_max", dt_max, positive=True)
    if lo > hi:
        fail(func, "dt_min", f"<= dt_max = {hi}", lo)
    r = torch.rand(d, generator=generator)  # (d,)
    dt = torch.exp(r * (math.log(hi) - math.log(lo)) + math.log(lo)).clamp(min=floor)  # (d,)
    return dt + torch.log(-torch.expm1(-dt))  # (d,)


class S6(nn.Module):
    """The selective SSM layer: x (b, d, l) → y (b, d, l), with Δ, B, C computed from x.

        Δ = softplus(W_Δ · (W_r · x) + bias)     a low-rank projection (rank r) per token
        B = W_B · x,  C = W_C · x                 (b, n, l) each, shared by all channels
        A = −exp(A_log)                           (d, n), S4D-Real init: A[c, k] = −(k+1)
    """

    def __init__(self, d: int, n: int = 16, dt_rank: int | None = None, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, impl: str = "auto"):
        super().__init__()
        check_int("S6", "d", d)
        check_int("S6", "n", n)
        self.d, self.n = d, n
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d / 16)
        check_int("S6", "dt_rank", self.dt_rank)
        self.impl = impl
        self.x_proj = nn.Linear(d, self.dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d, bias=True)
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt_bias_init(d, dt_min, dt_max))
        self.A_log = nn.Parameter(s4d_real_A_log(d, n))  # (d, n)
        self.D = nn.Parameter(torch.ones(d))  # (d,)

    @property
    def A(self) -> torch.Tensor:
        return -torch.exp(_atleast_fp32(self.A_log))  # (d, n)

    def projections(self, x: torch.Tensor):
        """Δ before bias and softplus (b, d, l), B (b, n, l), C (b, n, l), all from x (b, d, l)."""
        check_tensor("S6.projections", "x", x, ndim=3, shape=(None, self.d, None), dims="(batch, d, L)")
        x_dbl = self.x_proj(x.transpose(1, 2))  # (b, l, r + 2n)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.n, self.n], dim=-1)  # (b, l, r), (b, l, n) ×2
        delta = (dt @ self.dt_proj.weight.T).transpose(1, 2)  # (b, d, l)
        return delta, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous()

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The step size Δ = softplus(W_Δ·W_r·x + bias) each channel uses at each token.  (b, d, l)"""
        raw, _, _ = self.projections(x)
        return F.softplus(_atleast_fp32(raw) + _atleast_fp32(self.dt_proj.bias)[:, None])

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None, return_last_state: bool = False):
        delta, B, C = self.projections(x)
        return selective_scan(x, delta, self.A, B, C, _atleast_fp32(self.D), z=z,
                              delta_bias=_atleast_fp32(self.dt_proj.bias), delta_softplus=True,
                              return_last_state=return_last_state, impl=self.impl)

    def step(self, x: torch.Tensor, h: torch.Tensor, z: torch.Tensor | None = None):
        """One token of the recurrence: x (b, d), state h (b, d, n) → y (b, d), new h.

        The same arithmetic as the scan with L = 1 and h as the initial state: a decoder calls
        this once per generated token, with memory that does not grow with the position.
        """
        check_tensor("S6.step", "x", x, ndim=2, shape=(None, self.d), dims="(batch, d)")
        check_tensor("S6.step", "h", h, shape=(x.shape[0], self.d, self.n), dims="(batch, d, n)")
        f = state_dtype(x, h, self.A_log)
        delta, B, C = self.projections(x.unsqueeze(-1))  # (b, d, 1), (b, n, 1), (b, n, 1)
        delta = F.softplus(delta[..., 0].to(f) + self.dt_proj.bias.to(f))  # (b, d)
        B, C, xf = B[..., 0].to(f)[:, None, :], C[..., 0].to(f)[:, None, :], x.to(f)  # (b, 1, n) ×2, (b, d)
        # h_t = exp(Δ_t·A) ⊙ h_{t-1} + Δ_t·B_t·x_t ;  y_t = C_t·h_t + D·x_t
        h = torch.exp(delta[..., None] * self.A.to(f)) * h.to(f) + (delta * xf)[..., None] * B  # (b, d, n)
        y = (h * C).sum(-1) + self.D.to(f) * xf  # (b, d)
        if z is not None:
            y = y * F.silu(z.to(f))  # (b, d)
        return y.to(x.dtype), h


__all__ = [
    "check_selective_scan_args",
    "selective_scan_ref",
    "selective_scan_naive",
    "selective_scan_parallel",
    "parallel_chunk_length",
    "S6",
    "s4d_real_A_log",
    "dt_bias_init",
    "FLOAT_DTYPES",
]
