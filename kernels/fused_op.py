"""`selective_scan_fused`: the fused Triton kernels as a PyTorch operator with autograd.

    forward    one launch of `_fwd_seq_kernel` or `_fwd_lscan_kernel` (`config` picks per shape):
               writes out (b, d, l), the last state (b, d, n) when asked for and, when a gradient
               will be needed, one state per BLOCK_L steps (b, d, l/BLOCK_L, n) and y + D·u
               (seq: BLOCK_L = K, the backward's block, 8 steps for bf16: 1/8 of all states)
    backward   one launch of `_bwd_seq_kernel` after the seq forward, `_bwd_lscan_kernel` after
               lscan (each recomputes the states block by block), then PyTorch sums the
               per-program partials of dA, dD, d(delta_bias) and, after lscan, of dB and dC
               (the seq backward adds those up itself, with atomics)

Both are registered with `torch.library.custom_op` ("mamba_edu::selective_scan_fwd" and
"mamba_edu::selective_scan_bwd") with fake implementations, so `torch.compile` can trace a model
that calls them without looking inside the kernels.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
from torch import Tensor

from ._prep import block_d, dense, next_pow2, prepare, strided
from .selective_scan_fused import _bwd_lscan_kernel, _bwd_seq_kernel, _fwd_lscan_kernel, _fwd_seq_kernel

FUNC = "selective_scan_fused"


# Set by the tuning script (benchmarks/tune_fused.py) to try other block sizes; empty otherwise.
OVERRIDE: dict = {}
OVERRIDE_BWD: dict = {}


def seq_block(n: int, itemsize: int, lanes: int = 1) -> tuple[int, int]:
    """(K, E) for the seq forward: E state entries per lane (n/lanes, rounded up to a power of two) and
    K time steps per load (16 bytes of u per lane), fewer when K·E values of B and C per lane and block
    would crowd the registers (at most 64 of each)."""
    e = next_pow2(triton.cdiv(n, lanes))
    return min(16 // itemsize, max(1, 64 // e)), e


# The seq backward runs for N up to this; above, after the seq forward too, the lscan backward.
# Its one-warp programs cover 128/N channels: at N = 64 (two channels per program, when it still
# wrote (b, d·N/128, N, L) partials: 6.4 GB at 8 × 1536 × 2048) it took 26.7 ms for forward + backward,
# the lscan one 11.0.
SEQ_BWD_MAX_N = 32


def bwd_seq_block(n: int) -> tuple[int, int]:
    """(E, LANES) for the seq backward: 4 state entries per lane (its tiles H, G, B and C hold K·E
    values each), so LANES = N/4 lanes per channel (N <= SEQ_BWD_MAX_N)."""
    e = min(next_pow2(n), 4)
    return e, next_pow2(n) // e


def seq_fits(n: int, itemsize: int, lanes: int = 1) -> bool:
    """The seq forward holds at most 32 state entries per lane."""
    return seq_block(n, itemsize, lanes)[1] <= 32


def seq_shares_the_gate(lanes: int, e: int, k: int) -> bool:
    """Whether the LANES lanes of a channel share out y's sum, the D skip and the gate (SHARE: each
    finishes K/LANES >= 1 of the K steps, where each would repeat all K): with at most 4 state entries per
    lane, where that repeated work is the largest part of a lane's (H100, 8 × 1536 × 2048 × 16, 4 lanes:
    0.299 ms against 0.308). With 8 entries it needs more registers (168 → 251) and is slower
    (8 × 4096, 2 lanes: 0.728 against 0.618 ms)."""
    return 1 < lanes <= k and e <= 4


def seq_lanes(b: int, d: int, sms: int) -> int:
    """Lanes per channel for the seq forward: 2, or 4 when 2 would give fewer than 8 one-warp
    programs per SM (measured on an H100: results/bench/NOTES.md)."""
    return 2 if b * d * 2 >= 8 * 32 * sms else 4


def forward_kind(b: int, d: int, n: int, itemsize: int, sms: int, training: bool = False) -> str:
    """The forward `config` picks on a GPU with `sms` multiprocessors: "seq" when its b·d·LANES/32
    one-warp programs give at least 8 per SM (or when training), "lscan" otherwise."""
    lanes = seq_lanes(b, d, sms)
    many = b * d * lanes >= 8 * 32 * sms
    return "seq" if seq_fits(n, itemsize, lanes) and (many or training) else "lscan"


def config(b: int, d: int, l: int, n: int, g: int, device: torch.device, itemsize: int = 2,
           training: bool = False, backward: bool = False) -> dict:
    """Which forward kernel, block sizes and warps for a launch (measured on an H100: results/bench/NOTES.md).

    KERNEL is "seq" (LANES lanes per channel, time in order: the fewest instructions, but only
    b·d·LANES/32 warps) or "lscan" (time along the lanes, a scan per state entry: more instructions,
    b·d programs). seq wins when there are enough channels to fill the GPU (8 × 1536: 0.30 ms with
    4 lanes per channel against lscan's 0.38; 8 × 4096: 0.62 with 2 lanes against 0.96) and lscan
    when there are not (1 × 1536 × 8192: 0.23 against 0.73). When training the forward is seq
    whenever its tiles fit; for N <= SEQ_BWD_MAX_N it writes the state before every K-step block
    (BLOCK_L = K) for the seq backward, which recomputes one block at a time in the same layout with
    4 state entries per lane (`bwd_seq_block`): forward + backward 1.46 ms at 8 × 1536 against 3.53
    for the lscan pair; for larger N the lscan backward runs over chunks of BLOCK_L = 64. The seq
    backward sums dB and dC over its channels by a reduce-scatter (SCATTER, when the channels of a
    program are lanes of one warp and no more than a lane's K·E values): 1.47–1.48 ms against
    1.81 with a butterfly.
    For seq, BLOCK_D = 32·num_warps/LANES channels unless set. On a CPU under the interpreter,
    small blocks keep the emulation fast.
    """
    bn = next_pow2(n)
    on_gpu = device.type == "cuda"
    sms = torch.cuda.get_device_properties(device).multi_processor_count if on_gpu else 0
    kind = OVERRIDE.get("KERNEL", forward_kind(b, d, n, itemsize, sms, training) if on_gpu else "lscan")
    if kind == "seq":  # BLOCK_D below, from LANES
        fwd = dict(KERNEL="seq", BLOCK_L=64, num_warps=1, LANES=seq_lanes(b, d, sms) if on_gpu else 1)
    elif on_gpu:
        fwd = dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=64 if training else 512, num_warps=1)
    else:  # small blocks keep the interpreter's emulation fast
        fwd = dict(KERNEL="lscan", BLOCK_D=2, BLOCK_L=16, num_warps=1)
    bwd = dict(BLOCK_D=4 if on_gpu else 2, num_warps=1)  # lscan's; seq's below
    fwd.update(OVERRIDE)
    if fwd["KERNEL"] == "seq":
        fwd.setdefault("LANES", 1)
        fwd.setdefault("BLOCK_D", max(1, 32 * fwd["num_warps"] // fwd["LANES"]))
    else:
        fwd.pop("LANES", None)  # (an override's: lscan has no lanes per channel)
        fwd.pop("SHARE", None)
    if fwd["KERNEL"] == "seq" and not seq_fits(n, itemsize, fwd["LANES"]):
        fwd = dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=fwd["BLOCK_L"], num_warps=max(1, fwd["BLOCK_L"] // 512))
    if fwd["KERNEL"] == "seq":
        fwd["K"], fwd["E"] = seq_block(n, itemsize, fwd["LANES"])
        fwd.setdefault("SHARE", seq_shares_the_gate(fwd["LANES"], fwd["E"], fwd["K"]))
    if fwd["KERNEL"] == "seq" and bn <= SEQ_BWD_MAX_N:
        if training:  # a checkpoint before every K-step block: the seq backward recomputes one block at a time
            fwd["BLOCK_L"] = fwd["K"]
        # the backward in the same layout (it needs the checkpoints every K steps)
        bwd = {"num_warps": 1, **OVERRIDE_BWD, "KERNEL": "seq"}
        bwd["E"], bwd["LANES"] = bwd_seq_block(n)
        bwd["K"] = fwd["K"]
        bwd.setdefault("BLOCK_D", max(1, 32 * bwd["num_warps"] // bwd["LANES"]))
        bwd.setdefault("SCATTER", True)
    else:
        bwd = {**bwd, **OVERRIDE_BWD, "KERNEL": "lscan"}
    bwd["BLOCK_L"] = fwd["BLOCK_L"]
    cfg = bwd if backward else fwd
    cfg["BLOCK_D"] = block_d(d, g, cfg["BLOCK_D"])
    if cfg.get("SCATTER"):  # the reduce-scatter's shuffles stay in one warp and keep K·E/BLOCK_D sums per lane
        cfg["SCATTER"] = cfg["num_warps"] == 1 and cfg["BLOCK_D"] <= cfg["K"] * cfg["E"]
    cfg["BLOCK_N"] = bn
    return cfg


def _itemsize(u: Tensor, B: Tensor) -> int:
    """The seq kernels' tiles hold K steps in one 16-byte load (one layout for all): of the wider of u and B."""
    return max(u.element_size(), B.element_size())


def _whole_blocks(d: int, l: int, n: int, cfg: dict) -> bool:
    """The seq kernels' loads need no masks: L a multiple of K, whole channel blocks, n = LANES·E."""
    return l % cfg["K"] == 0 and d % cfg["BLOCK_D"] == 0 and n == cfg["E"] * cfg["LANES"]


def _bf16_pairs(B: Tensor, C: Tensor, full: bool) -> bool:
    """The seq forward may read bf16 B and C as 32-bit words of two time steps (a cheaper conversion):
    whole blocks, rows contiguous in time, every row and tensor starting at an even element."""
    return full and all(t.dtype == torch.bfloat16 and t.stride(3) == 1 and t.data_ptr() % 4 == 0
                        and all(s % 2 == 0 for s in t.stride()[:3]) for t in (B, C))


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------


def _forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
             z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
             save_checkpoints: bool, return_last_state: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(out (b, d, l), last state (b, d, n) fp32 or empty, checkpoints (b, d, chunks, n) fp32 or
    empty, the value before the gate (b, d, l) fp32 for the backward, or empty)."""
    b, d, l, n, g = u.shape[0], u.shape[1], u.shape[2], A.shape[1], B.shape[1]
    cfg = config(b, d, l, n, g, u.device, _itemsize(u, B), training=save_checkpoints)
    kind = cfg.pop("KERNEL")
    n_chunks = triton.cdiv(l, cfg["BLOCK_L"])
    out = torch.empty_like(u, memory_format=torch.contiguous_format)  # (b, d, l)
    shape = (b, d, n_chunks, n) if save_checkpoints else (0,)
    ckpt = torch.empty(shape, device=u.device, dtype=torch.float32)
    grid = (triton.cdiv(d, cfg["BLOCK_D"]), b)
    # every strided operand's pointer and strides come from the same tensor (z is often a transposed view)
    (u_, dt_, A_, B_, C_, z_, out_), common = strided(u, (u, 3), (delta, 3), (A, 2), (B, 4), (C, 4), (z, 3), (out, 3))
    flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
                 SOFTPLUS=delta_softplus, STORE_CKPT=save_checkpoints)
    pre = u.new_empty(0, dtype=torch.float32)
    if save_checkpoints and z is not None:
        pre = torch.empty(b, d, l, device=u.device, dtype=torch.float32)
    pre_arg = pre if pre.numel() else out
    args = (u_, dt_, A_, B_, C_, dense(D, u), z_, dense(delta_bias, u), out_)
    cfg.pop("BLOCK_N")
    if kind == "seq":
        last = torch.empty(b, d, n, device=u.device, dtype=torch.float32)  # (b, d, n)
        full = _whole_blocks(d, l, n, cfg)
        pairs = cfg.pop("PAIRS", True) and _bf16_pairs(B, C, full)
        _fwd_seq_kernel[grid](*args, last, ckpt, pre_arg, d, l, n, d // g, n_chunks, *common, **flags,
                              FAST_EXP2=u.is_cuda, FULL=full, PAIRS=pairs, **cfg)
        return out, (last if return_last_state else u.new_empty(0, dtype=torch.float32)), ckpt, pre
    carry = torch.empty(2, b, d, n, device=u.device, dtype=torch.float32)  # read one half, write the other
    # one chunk, no checkpoints and no last state wanted: nothing needs the state after the scan
    need_carry = n_chunks > 1 or save_checkpoints or return_last_state
    _fwd_lscan_kernel[grid](*args, carry, ckpt, pre_arg, d, l, n, d // g, n_chunks, b * d * n, *common, **flags,
                            NEED_CARRY=need_carry, FAST_EXP2=u.is_cuda, **cfg)
    last = carry[n_chunks % 2].clone() if return_last_state else u.new_empty(0, dtype=torch.float32)
    return out, last, ckpt, pre


# The operator torch.compile and autograd see; `selective_scan_fused` calls `_forward` itself when
# neither needs it: the operator's dispatch costs about as much CPU time as the rest of a call.
selective_scan_fwd = torch.library.custom_op("mamba_edu::selective_scan_fwd", mutates_args=())(_forward)


@selective_scan_fwd.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, save_checkpoints, return_last_state):
    b, d, l, n = u.shape[0], u.shape[1], u.shape[2], A.shape[1]
    cfg = config(b, d, l, n, B.shape[1], u.device, _itemsize(u, B), training=save_checkpoints)
    shape = (b, d, triton.cdiv(l, cfg["BLOCK_L"]), n) if save_checkpoints else (0,)
    pre = (b, d, l) if (save_checkpoints and z is not None) else (0,)
    last = (b, d, n) if return_last_state else (0,)
    return (torch.empty_like(u, memory_format=torch.contiguous_format),
            u.new_empty(last, dtype=torch.float32), u.new_empty(shape, dtype=torch.float32),
            u.new_empty(pre, dtype=torch.float32))


# ----------------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------------


def _backward_kernels(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                       z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool, ckpt: Tensor,
                       pre: Tensor, dout: Tensor, dlast: Optional[Tensor]
                       ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(du, ddelta, dA, dB, dC, dD, dz, ddelta_bias); an absent input's gradient is an empty tensor."""
    b, d, l, n, g = u.shape[0], u.shape[1], u.shape[2], A.shape[1], B.shape[1]
    cfg = config(b, d, l, n, g, u.device, _itemsize(u, B), training=True, backward=True)
    bd, bl = cfg["BLOCK_D"], cfg["BLOCK_L"]
    n_chunks = triton.cdiv(l, bl)
    n_dblocks = triton.cdiv(d, bd)
    f32 = dict(device=u.device, dtype=torch.float32)
    du = torch.empty(b, d, l, device=u.device, dtype=u.dtype)  # (b, d, l)
    ddelta = torch.empty(b, d, l, device=u.device, dtype=delta.dtype)  # (b, d, l)
    dz = torch.empty(b, d, l, device=u.device, dtype=z.dtype) if z is not None else u.new_empty(0)
    dA_part = torch.empty(b, d, n, **f32)  # (b, d, n): summed over the batch below
    atomic = cfg["KERNEL"] == "seq"
    if atomic:  # the seq backward adds every program's share into (b, g, n, l)
        dB_part = torch.zeros(b, g, n, l, **f32)
        dC_part = torch.zeros(b, g, n, l, **f32)
    else:
        dB_part = torch.empty(b, n_dblocks, n, l, **f32)  # (b, blocks, n, l): summed per group below
        dC_part = torch.empty(b, n_dblocks, n, l, **f32)
    dD_part = torch.empty(b, d, **f32)
    dbias_part = torch.empty(b, d, **f32)
    grid = (n_dblocks, b)
    (u_, dt_, A_, B_, C_, z_, dout), common = strided(u, (u, 3), (delta, 3), (A, 2), (B, 4), (C, 4), (z, 3),
                                                      (dout, 3))
    args = (u_, dt_, A_, B_, C_, dense(D, u), z_, dense(delta_bias, u), dout, dense(dlast, u), ckpt)
    grads = (du, ddelta, dz if z is not None else du, dA_part, dB_part, dC_part, dD_part, dbias_part)
    flags = dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
                 HAS_DLAST=dlast is not None)
    if ckpt.shape[2] != n_chunks:
        raise RuntimeError(f"selective_scan_fused: checkpoints every {triton.cdiv(l, ckpt.shape[2])} steps, "
                           f"but the backward runs chunks of {bl} (fused_op.config must agree)")
    pre_arg = pre if pre.numel() else u
    kind = cfg.pop("KERNEL")
    cfg.pop("BLOCK_L")
    if kind == "seq":
        cfg.pop("BLOCK_N")
        _bwd_seq_kernel[grid](*args, pre_arg, *grads, d, l, n, d // g, n_chunks, *common, **flags,
                              FAST_EXP2=u.is_cuda, FULL=_whole_blocks(d, l, n, cfg), **cfg)
    else:
        carry = torch.empty(2, b, d, n, **f32)  # ∂loss/∂h at chunk starts: read one half, write the other
        _bwd_lscan_kernel[grid](*args, pre_arg, carry, *grads,
                                d, l, n, d // g, n_chunks, n_dblocks, b * d * n, *common, **flags,
                                FAST_EXP2=u.is_cuda, BLOCK_L=bl, **cfg)
    # the channel blocks of one group share that group's B_t and C_t: add their partials
    if atomic:
        dB, dC = dB_part.to(B.dtype), dC_part.to(C.dtype)
    else:
        dB = dB_part.reshape(b, g, n_dblocks // g, n, l).sum(2).to(B.dtype)  # (b, g, n, l)
        dC = dC_part.reshape(b, g, n_dblocks // g, n, l).sum(2).to(C.dtype)
    dA = dA_part.sum(0).to(A.dtype)  # (d, n)
    dD = dD_part.sum(0).to(D.dtype) if D is not None else u.new_empty(0)
    dbias = dbias_part.sum(0).to(delta_bias.dtype) if delta_bias is not None else u.new_empty(0)
    return du, ddelta, dA, dB, dC, dD, dz, dbias


selective_scan_bwd = torch.library.custom_op("mamba_edu::selective_scan_bwd", mutates_args=())(_backward_kernels)


@selective_scan_bwd.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, ckpt, pre, dout, dlast):
    e = u.new_empty(0)
    return (torch.empty_like(u), torch.empty_like(delta), torch.empty_like(A), torch.empty_like(B),
            torch.empty_like(C), torch.empty_like(D) if D is not None else e,
            torch.empty_like(z) if z is not None else e,
            torch.empty_like(delta_bias) if delta_bias is not None else e)


def _setup_context(ctx, inputs, output):
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, _, _ = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, output[2], output[3])
    ctx.delta_softplus = delta_softplus
    # outputs nothing used (the checkpoints, the value before the gate, often the last state) get None
    # as gradient, not a tensor of zeros: those would be 300 MB of memset at 8 × 1536 × 2048 × 16
    ctx.set_materialize_grads(False)


def _grads(ctx, dout, dlast, backward_op):
    """The eight input gradients (None for absent optional inputs) from the saved tensors."""
    u, delta, A, B, C, D, z, delta_bias, ckpt, pre = ctx.saved_tensors
    if ckpt.numel() == 0:
        raise RuntimeError("selective_scan_fused: no checkpoints were saved (the forward ran without grad).")
    if dout is None:
        dout = torch.zeros_like(u)
    if dlast is not None and dlast.numel() == 0:  # the last state was not returned
        dlast = None
    grads = backward_op(u, delta, A, B, C, D, z, delta_bias, ctx.delta_softplus, ckpt, pre, dout, dlast)
    du, ddelta, dA, dB, dC, dD, dz, dbias = grads
    return (du, ddelta, dA, dB, dC, dD if D is not None else None, dz if z is not None else None,
            dbias if delta_bias is not None else None)


def _backward(ctx, dout, dlast, _dckpt, _dpre):
    return (*_grads(ctx, dout, dlast, selective_scan_bwd), None, None, None)


selective_scan_fwd.register_autograd(_backward, setup_context=_setup_context)


class _FusedScan(torch.autograd.Function):
    """The same forward and backward for eager autograd, without torch.library's dispatch: each custom
    operator call costs tens of microseconds of CPU time, as long as a small problem's kernels take
    (torch.compile still sees the custom operators above)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
        out, last, ckpt, pre = _forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, True,
                                        return_last_state)
        _setup_context(ctx, (u, delta, A, B, C, D, z, delta_bias, delta_softplus, True, return_last_state),
                       (out, last, ckpt, pre))
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        return (*_grads(ctx, dout, dlast, _backward_kernels), None, None)


# ----------------------------------------------------------------------------------------------
# The registered implementation
# ----------------------------------------------------------------------------------------------


def selective_scan_fused(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         return_last_state=False):
    """The selective scan (contract in DESIGN.md) by the fused Triton kernel, differentiable."""
    b, d, l, n, g, B4, C4 = prepare(FUNC, u, delta, A, B, C, D, z, delta_bias)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, D, z, delta_bias))
    if torch.compiler.is_compiling():  # the custom operators: torch.compile traces them without looking inside
        out, last, _, _ = selective_scan_fwd(u, delta, A, B4, C4, D, z, delta_bias, bool(delta_softplus),
                                             needs_grad, bool(return_last_state))
    elif needs_grad:
        out, last = _FusedScan.apply(u, delta, A, B4, C4, D, z, delta_bias, bool(delta_softplus),
                                     bool(return_last_state))
    else:
        out, last, _, _ = _forward(u, delta, A, B4, C4, D, z, delta_bias, bool(delta_softplus), False,
                                   bool(return_last_state))
    return (out, last) if return_last_state else out
