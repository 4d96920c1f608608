"""What every Triton wrapper does before a launch: validate, normalise shapes, choose block sizes.

Glossary (as in `mamba_edu.selective`)
    b, d, l, n, g   batch, channels, sequence length, state size, groups of B/C
    BLOCK_D         channels one program handles (a power of two that divides d/g when g > 1,
                    so that one program's channels share one B_t and one C_t)
    BLOCK_N         n rounded up to a power of two (Triton tiles have power-of-two sizes; the
                    padded state entries get A = 0, B = 0, C = 0 and stay 0)
"""

from __future__ import annotations

import os

import torch

from mamba_edu._checks import fail
from mamba_edu.machine import interpreter_problem
from mamba_edu.selective import check_selective_scan_args

KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_N = 256


def next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def check_can_launch(func: str, u: torch.Tensor) -> None:
    """A Triton kernel runs on a CUDA tensor, or on a CPU tensor under TRITON_INTERPRET=1 (with a NumPy
    that the installed Triton's interpreter works with)."""
    if u.device.type == "cuda":
        return
    if u.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        problem = interpreter_problem()
        if problem:
            raise RuntimeError(f"{func}: {problem}.")
        return
    fail(func, "u", "a CUDA tensor (or a CPU tensor with TRITON_INTERPRET=1 set before Python starts)",
         f"a tensor on {u.device}")


def prepare(func: str, u, delta, A, B, C, D=None, z=None, delta_bias=None):
    """Validate against the contract and return (b, d, l, n, g, B4, C4) with B, C as (b, g, n, l) views."""
    b, d, l, n, g = check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias, func=func)
    check_can_launch(func, u)
    for name, t in (("u", u), ("delta", delta), ("B", B), ("C", C), ("z", z)):
        if t is not None and t.dtype not in KERNEL_DTYPES:
            fail(func, name, "float16, bfloat16 or float32 (the kernels keep the state in float32; "
                             "use impl='naive' or 'parallel' for float64)", t.dtype)
    if n > MAX_N:
        fail(func, "A", f"of shape (dim, N) with N <= {MAX_N}", f"N = {n}")
    B4 = B if B.dim() == 4 else B.unsqueeze(1)  # (b, g, n, l), a view
    C4 = C if C.dim() == 4 else C.unsqueeze(1)  # (b, g, n, l), a view
    return b, d, l, n, g, B4, C4


def block_d(d: int, g: int, wanted: int) -> int:
    """The largest power of two <= wanted that divides d/g (any power of two when g == 1)."""
    if g == 1:
        return min(wanted, next_pow2(d))
    per_group = d // g
    bd = 1
    while bd * 2 <= wanted and per_group % (bd * 2) == 0:
        bd *= 2
    return bd


def strided(like: torch.Tensor, *operands: tuple[torch.Tensor | None, int]) -> tuple[list, list[int]]:
    """Kernel arguments for the strided operands [(tensor or None, ndim), ...]: the tensors (their
    pointers) and all their strides, flattened in order, each pointer and its strides taken from the
    SAME tensor, so the two can never disagree (passing `t.contiguous()` with `t.stride()` reads a
    non-contiguous t with the wrong strides). An absent optional operand gets `like` as a stand-in
    pointer (never read: its HAS_* flag is off) and zero strides."""
    tensors, flat = [], []
    for t, ndim in operands:
        if t is not None and t.dim() != ndim:
            raise RuntimeError(f"internal: a {ndim}-D operand was expected, got shape {tuple(t.shape)}")
        tensors.append(like if t is None else t)
        flat += [0] * ndim if t is None else list(t.stride())
    return tensors, flat


def dense(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A (dim,) or state-shaped tensor the kernels index as contiguous memory (D, delta_bias, dlast): its
    contiguous copy (a no-op when it already is), or `like` as a stand-in for an absent one."""
    return t.contiguous() if t is not None else like


def refuse_grad(func: str, impl: str, **tensors: torch.Tensor | None) -> None:
    """Forward-only kernels: refuse inputs that require grad up front (autograd would otherwise return
    no gradient, or fail somewhere obscure) and name the implementations that have a backward."""
    if not torch.is_grad_enabled():
        return
    for name, t in tensors.items():
        if t is not None and t.requires_grad:
            fail(func, name, f"a tensor that does not require grad: impl='{impl}' is forward only (use "
                             "impl='fused' or 'parallel' for gradients, or call it under torch.no_grad())",
                 "a tensor with requires_grad=True")
