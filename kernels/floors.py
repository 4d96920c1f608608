"""The exp-throughput floor: how many exp2 per second the GPU's special-function units deliver.

The selective scan needs one exp(Δ·A) per (b, d, l, n) element. This kernel measures the rate
those can be computed at when nothing else limits it: every thread keeps CHAINS independent
values in registers and applies x ← exp2(x·c) ITERS times (one multiply and one exp2 each), so
memory traffic is negligible (one load and one store per value) and the special-function units
are the bottleneck. exps / seconds is the ceiling that `mamba-edu bench` compares kernels with.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _exp2_chain_kernel(x_ptr, y_ptr, ITERS: tl.constexpr, BLOCK: tl.constexpr, CHAINS: tl.constexpr):
    offs = tl.program_id(0) * BLOCK * CHAINS + tl.arange(0, BLOCK * CHAINS)
    x = tl.load(x_ptr + offs)  # (BLOCK·CHAINS,) values in [-1, 0): exp2 stays in (0.5, 1]
    for _ in range(ITERS):
        x = tl.exp2(x * -0.75) - 1.0  # stays in [-1, 0): no overflow, no denormals
    tl.store(y_ptr + offs, x)


def exp2_per_second(device: str | torch.device = "cuda", programs: int | None = None, iters: int = 512) -> float:
    """Measured exp2 per second on a CUDA device (median of triton.testing.do_bench)."""
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"exp2_per_second: argument 'device' must be a CUDA device; got {device}.")
    block, chains = 256, 4
    if programs is None:
        programs = torch.cuda.get_device_properties(device).multi_processor_count * 32
    n = programs * block * chains
    x = -torch.rand(n, device=device)  # (n,)
    y = torch.empty_like(x)

    def run():
        _exp2_chain_kernel[(programs,)](x, y, ITERS=iters, BLOCK=block, CHAINS=chains, num_warps=8)

    ms = triton.testing.do_bench(run, warmup=50, rep=200, return_mode="median")
    return n * iters / (ms * 1e-3)
