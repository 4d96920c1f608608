"""Check the Triton kernels at real sizes on a GPU, then time block-size choices of the fused kernel.

    python benchmarks/tune_fused.py [--out DIR] [--quick]

Correctness first (every kernel against the float64 reference, fresh random inputs), then a grid
of (BLOCK_D, BLOCK_L, num_warps) for the forward and the backward at the issue's target shapes,
timed with triton.testing.do_bench (median). Prints a table and writes tune.json to --out. The
chosen defaults live in `mamba_edu.kernels.fused_op.config`; this script is how they were picked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
import triton

import mamba_edu
from mamba_edu.kernels import fused_op
from mamba_edu.selective import selective_scan_ref

TARGETS = [(8, 1536, 2048, 16), (1, 1536, 8192, 16), (8, 4096, 2048, 16)]


def inputs(b, d, l, n, dtype, g=None, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=gen)  # noqa: E731
    bc = (b, g, n, l) if g else (b, n, l)
    return dict(u=r(b, d, l).to(dtype), delta=(0.5 * r(b, d, l) - 2).to(dtype),
                A=-torch.exp(0.5 * r(d, n)), B=r(*bc).to(dtype), C=r(*bc).to(dtype),
                D=r(d), z=r(b, d, l).to(dtype), delta_bias=0.1 * r(d))


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def check(impl, b, d, l, n, dtype, g=None, grad=True):
    x = inputs(b, d, l, n, dtype, g, seed=hash((impl, b, d, l, n, str(dtype), g)) % 2**31)
    x64 = {k: v.double().requires_grad_(grad) for k, v in x.items()}
    xi = {k: v.clone().requires_grad_(grad) for k, v in x.items()}
    ref, last = selective_scan_ref(**x64, delta_softplus=True, return_last_state=True)
    out, h = mamba_edu.selective_scan(**xi, delta_softplus=True, return_last_state=True, impl=impl)
    res = dict(impl=impl, shape=[b, d, l, n, g], dtype=str(dtype).split(".")[-1], out=rel(out, ref), last=rel(h, last))
    if grad:
        go = torch.randn_like(ref)
        (ref * go).sum().backward()
        (out.float() * go.float()).sum().backward()
        res["grads"] = {k: rel(xi[k].grad, x64[k].grad) for k in x}
    return res


def bench(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def time_fused(shape, fwd_cfg, bwd_cfg=None, backward=False):
    fused_op.OVERRIDE.clear(), fused_op.OVERRIDE.update(fwd_cfg)
    fused_op.OVERRIDE_BWD.clear(), fused_op.OVERRIDE_BWD.update(bwd_cfg or {})
    x = inputs(*shape, torch.bfloat16)
    if not backward:
        with torch.no_grad():
            return bench(lambda: mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused"))
    xs = {k: v.requires_grad_() for k, v in x.items()}
    go = torch.randn(shape[0], shape[1], shape[2], device="cuda", dtype=torch.bfloat16)

    def step():
        out = mamba_edu.selective_scan(**xs, delta_softplus=True, impl="fused")
        torch.autograd.grad(out, list(xs.values()), go)

    return bench(step)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/tune")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__)
    t0 = time.time()

    checks = []
    for impl, shp, dt, g, grad in [
        ("fused", (2, 64, 2048, 16), torch.bfloat16, None, True),
        ("fused", (1, 96, 777, 5), torch.float16, 3, True),
        ("fused", (1, 16, 200, 128), torch.float32, None, True),
    ]:
        try:
            checks.append(check(impl, *shp, dt, g, grad))
        except Exception as e:  # report and go on: this is a diagnostics script
            checks.append(dict(impl=impl, shape=list(shp), error=repr(e)[:500]))
        print(json.dumps(checks[-1]), flush=True)
    report["checks"] = checks
    print(f"checks done in {time.time() - t0:.0f} s", flush=True)

    grid = [dict(SEQUENTIAL=True, BLOCK_D=32, num_warps=1), dict(SEQUENTIAL=True, BLOCK_D=64, num_warps=2),
            dict(SEQUENTIAL=True, BLOCK_D=128, num_warps=4), dict(SEQUENTIAL=True, BLOCK_D=16, num_warps=1),
            dict(SEQUENTIAL=False, BLOCK_D=8, BLOCK_L=32, num_warps=2)]
    fwd = []
    for shape in TARGETS:
        for cfg in grid:
            try:
                ms = time_fused(shape, cfg)
            except Exception as e:
                ms = None
                print("fwd", cfg, "failed", repr(e)[:300], flush=True)
            fwd.append(dict(shape=shape, cfg=cfg, ms=ms))
            print("fwd", shape, cfg, ms, flush=True)
    report["fwd"] = fwd
    bwd = []
    for cfg in (dict(BLOCK_D=4, num_warps=4), dict(BLOCK_D=8, num_warps=4)):
        ms = time_fused(TARGETS[0], {}, cfg, backward=True)
        bwd.append(dict(cfg=cfg, ms=ms))
        print("fwd+bwd", cfg, ms, flush=True)
    report["bwd"] = bwd
    x = inputs(*TARGETS[0], torch.bfloat16)
    with torch.no_grad():
        for impl in ("triton_simple", "parallel"):
            torch.cuda.reset_peak_memory_stats()
            ms = bench(lambda: mamba_edu.selective_scan(**x, delta_softplus=True, impl=impl))
            print(impl, TARGETS[0], ms, "peak GB", torch.cuda.max_memory_allocated() / 1e9, flush=True)
    fused_op.OVERRIDE.clear(), fused_op.OVERRIDE_BWD.clear()
    (out / "tune.json").write_text(json.dumps(report, indent=1))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
