"""The selective scan in Triton, the teaching version: one timestep per loop iteration.

Read this one first (notebook 09 walks through it); `selective_scan_fused.py` is the fast one.

One program owns BLOCK_D channels of one sequence and keeps their state h (BLOCK_D, BLOCK_N) in
registers for the whole sequence. Each iteration of the loop over t:

    HBM → registers   u_t, Δ_t, z_t for the block's channels (BLOCK_D values each),
                      B_t and C_t (BLOCK_N values each, shared by every channel of the group)
    on chip           Δ_t = softplus(Δ_t + bias)
                      h   = exp(Δ_t·A) ⊙ h + Δ_t·u_t·B_t          (BLOCK_D, BLOCK_N)
                      y_t = Σ_n C_t[n]·h[:, n]                     (BLOCK_D,)
                      out_t = (y_t + D·u_t) · silu(z_t)
    registers → HBM   out_t (BLOCK_D values)

The state never leaves the chip: HBM sees the inputs once and `out` once, the floor of the IO
model (`mamba_edu.iomodel.fused_bytes`). What it does badly: each step loads a few scattered
values (u is laid out (b, d, L), so u_t for consecutive channels sits L elements apart) and waits
for them before it can compute; the fused kernel loads a whole chunk of time steps at once.
Forward only.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._prep import block_d, dense, next_pow2, prepare, refuse_grad, strided
from .selective_scan_fused import _softplus

FUNC = "selective_scan_simple"


@triton.jit
def _simple_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr,
    dim, L, N, dim_per_group,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_g, sB_n, sB_l, sC_b, sC_g, sC_n, sC_l,
    sz_b, sz_d, sz_l, so_b, so_d, so_l,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_LAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,) this program's channels
    offs_n = tl.arange(0, BLOCK_N)  # (BN,)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    grp = (pid_d * BLOCK_D) // dim_per_group  # the B/C group of every channel in the block

    # Parameters: loaded once, kept in registers
    A = tl.load(A_ptr + offs_d[:, None] * sA_d + offs_n[None, :] * sA_n,
                mask=mask_d[:, None] & mask_n[None, :], other=0.0).to(tl.float32)  # (BD, BN)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)

    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # the state, in registers throughout
    u_row = u_ptr + pid_b * su_b + offs_d * su_d  # (BD,) pointers at t = 0
    dt_row = dt_ptr + pid_b * sdt_b + offs_d * sdt_d
    B_col = B_ptr + pid_b * sB_b + grp * sB_g + offs_n * sB_n  # (BN,)
    C_col = C_ptr + pid_b * sC_b + grp * sC_g + offs_n * sC_n
    for t in range(0, L):
        # HBM → registers: this time step's inputs
        u = tl.load(u_row + t * su_l, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
        dt = tl.load(dt_row + t * sdt_l, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
        Bt = tl.load(B_col + t * sB_l, mask=mask_n, other=0.0).to(tl.float32)  # (BN,)
        Ct = tl.load(C_col + t * sC_l, mask=mask_n, other=0.0).to(tl.float32)  # (BN,)
        if HAS_BIAS:
            dt = dt + bias
        if SOFTPLUS:
            dt = _softplus(dt, False)  # log1p(e^Δ), linear above 20: the official kernel's rule
        # h_t = exp(Δ_t·A) ⊙ h_{t-1} + Δ_t·B_t·u_t ;  y_t = C_t · h_t
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]  # (BD, BN)
        y = tl.sum(h * Ct[None, :], axis=1)  # (BD,)
        if HAS_D:
            y += Dv * u
        if HAS_Z:
            z = tl.load(z_ptr + pid_b * sz_b + offs_d * sz_d + t * sz_l, mask=mask_d, other=0.0).to(tl.float32)
            y *= z * tl.sigmoid(z)  # silu(z)
        # registers → HBM: one value per channel
        tl.store(out_ptr + pid_b * so_b + offs_d * so_d + t * so_l, y, mask=mask_d)
    if STORE_LAST:
        last = last_ptr + pid_b * dim * N + offs_d[:, None] * N + offs_n[None, :]
        tl.store(last, h, mask=mask_d[:, None] & mask_n[None, :])


def selective_scan_simple(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False, block_d_max: int = 16):
    """The selective scan (contract in DESIGN.md) with the one-step-per-iteration Triton kernel."""
    b, d, l, n, g, B4, C4 = prepare(FUNC, u, delta, A, B, C, D, z, delta_bias)
    refuse_grad(FUNC, "triton_simple", u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    bd, bn = block_d(d, g, block_d_max), next_pow2(n)
    out = torch.empty_like(u, memory_format=torch.contiguous_format)  # (b, d, l)
    last = torch.empty(b, d, n, device=u.device, dtype=torch.float32) if return_last_state else out
    grid = (b, triton.cdiv(d, bd))
    (u_, dt_, A_, B_, C_, z_, out_), strides = strided(u, (u, 3), (delta, 3), (A, 2), (B4, 4), (C4, 4), (z, 3),
                                                       (out, 3))
    _simple_fwd_kernel[grid](
        u_, dt_, A_, B_, C_, dense(D, u), z_, dense(delta_bias, u), out_, last, d, l, n, d // g, *strides,
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        STORE_LAST=bool(return_last_state), BLOCK_D=bd, BLOCK_N=bn,
    )
    return (out, last) if return_last_state else out
