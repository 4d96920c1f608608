"""`triton_scan`: a Triton parallel scan over materialised tensors — the unfused baseline.

It exists to show what materialising costs. PyTorch first writes the discretised tensors to HBM

    a  = exp(Δ·A)    (b, d, l, n) fp32
    bu = Δ·B·u       (b, d, l, n) fp32

and the kernel reads them back, chunk by chunk, runs the same first-order scan as the fused
kernel (`tl.associative_scan`, state carried between chunks) and projects by C on chip, so the
states themselves never reach HBM. PyTorch then adds D·u and the gate. Compared with the fused
kernel it moves 4·b·d·l·n·4 extra bytes (two tensors written, then read):
`mamba_edu.iomodel.triton_scan_bytes`. Forward only.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mamba_edu.selective import _discretized_delta, _finish

from ._prep import block_d, next_pow2, prepare, refuse_grad, strided
from .selective_scan_fused import first_order_combine

FUNC = "triton_scan"


@triton.jit
def _scan_project_kernel(
    a_ptr, bu_ptr, C_ptr, y_ptr, last_ptr,
    dim, L, N, dim_per_group, n_chunks,
    sa_b, sa_d, sa_l, sa_n, sbu_b, sbu_d, sbu_l, sbu_n, sC_b, sC_g, sC_n, sC_l,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):
    pid_d = tl.program_id(0).to(tl.int64)
    pid_b = tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,)
    offs_n = tl.arange(0, BLOCK_N)  # (BN,)
    offs_l = tl.arange(0, BLOCK_L)  # (BL,)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    grp = (pid_d * BLOCK_D) // dim_per_group
    # a, bu (b, d, l, n), in whatever memory layout PyTorch gave them: element (d, n, t) of the tile
    a_base = a_ptr + pid_b * sa_b + offs_d[:, None, None] * sa_d + offs_n[None, :, None] * sa_n  # (BD, BN, 1)
    bu_base = bu_ptr + pid_b * sbu_b + offs_d[:, None, None] * sbu_d + offs_n[None, :, None] * sbu_n
    C_base = C_ptr + pid_b * sC_b + grp * sC_g + offs_n[:, None] * sC_n  # (BN, 1)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for c in range(0, n_chunks):
        t = c * BLOCK_L + offs_l  # (BL,)
        mask_l = t < L
        m3 = mask_d[:, None, None] & mask_n[None, :, None] & mask_l[None, None, :]
        # HBM → registers: the materialised tensors, b·d·l·n elements each over the whole run
        a = tl.load(a_base + t[None, None, :] * sa_l, mask=m3, other=1.0)  # (BD, BN, BL)
        bu = tl.load(bu_base + t[None, None, :] * sbu_l, mask=m3, other=0.0)  # (BD, BN, BL)
        Cc = tl.load(C_base + t[None, :] * sC_l, mask=mask_n[:, None] & mask_l[None, :], other=0.0).to(tl.float32)
        a_cum, h_in = tl.associative_scan((a, bu), axis=2, combine_fn=first_order_combine)
        hs = a_cum * h[:, :, None] + h_in  # (BD, BN, BL)
        y = tl.sum(hs * Cc[None, :, :], axis=1)  # (BD, BL)
        h = tl.sum(tl.where(offs_l[None, None, :] == BLOCK_L - 1, hs, 0.0), axis=2)  # (BD, BN)
        tl.store(y_ptr + (pid_b * dim + offs_d[:, None]) * L + t[None, :], y,
                 mask=mask_d[:, None] & mask_l[None, :])
    tl.store(last_ptr + (pid_b * dim + offs_d[:, None]) * N + offs_n[None, :], h,
             mask=mask_d[:, None] & mask_n[None, :])


def selective_scan_triton_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                               return_last_state=False):
    """The selective scan (contract in DESIGN.md): PyTorch materialises a and bu, Triton scans them."""
    b, d, l, n, g, B4, C4 = prepare(FUNC, u, delta, A, B, C, D, z, delta_bias)
    refuse_grad(FUNC, "triton_scan", u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    dt = _discretized_delta(delta, delta_bias, delta_softplus, torch.float32)  # (b, d, l)
    Bd = B4.float().repeat_interleave(d // g, dim=1)  # (b, d, n, l)
    # materialised in HBM: the two (b, d, l, n) fp32 tensors the fused kernel never writes
    a = torch.exp(dt[..., None] * A.float()[:, None, :])  # (b, d, l, n)
    bu = (dt * u.float())[..., None] * Bd.transpose(2, 3)  # (b, d, l, n)
    y = torch.empty(b, d, l, device=u.device, dtype=torch.float32)  # (b, d, l)
    last = torch.empty(b, d, n, device=u.device, dtype=torch.float32)  # (b, d, n)
    on_gpu = u.device.type == "cuda"
    bd = block_d(d, g, 8 if on_gpu else 4)
    bl = 64 if on_gpu else 16
    # a and bu follow Δ's memory layout (a Δ laid out (b, l, d) gives (b, l, d, n) storage): the kernel
    # reads them with their own strides, pointer and strides from the same tensor
    (a_, bu_, C_), strides = strided(u, (a, 4), (bu, 4), (C4, 4))
    _scan_project_kernel[(triton.cdiv(d, bd), b)](
        a_, bu_, C_, y, last, d, l, n, d // g, triton.cdiv(l, bl), *strides,
        BLOCK_D=bd, BLOCK_N=next_pow2(n), BLOCK_L=bl, num_warps=4 if on_gpu else 1,
    )
    out = _finish(y, u, D, z, u.dtype)
    return (out, last) if return_last_state else out
