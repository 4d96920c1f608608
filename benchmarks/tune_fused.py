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
        ("fused", (2, 64, 2048, 16), torch.float32, None, True),
        ("fused", (2, 96, 1000, 16), torch.bfloat16, 3, True),
        ("fused", (1, 33, 777, 5), torch.float16, None, True),
        ("fused", (2, 64, 300, 64), torch.float32, 2, True),
        ("fused", (1, 16, 200, 256), torch.float32, None, True),
        ("triton_simple", (2, 64, 1000, 16), torch.bfloat16, 2, False),
        ("triton_scan", (2, 64, 1000, 16), torch.float32, None, False),
        ("parallel", (2, 64, 1000, 16), torch.float32, None, True),
    ]:
        try:
            checks.append(check(impl, *shp, dt, g, grad))
        except Exception as e:  # report and go on: this is a diagnostics script
            checks.append(dict(impl=impl, shape=list(shp), error=repr(e)[:500]))
        print(json.dumps(checks[-1]), flush=True)
    try:  # torch.compile traces through the custom ops (fake implementations), forward and backward
        x = {k: v.requires_grad_() for k, v in inputs(2, 64, 512, 16, torch.float32).items()}
        f = torch.compile(lambda **kw: mamba_edu.selective_scan(**kw, delta_softplus=True, impl="fused").square().sum(),
                          fullgraph=True)
        eager = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused").square().sum()
        comp = f(**x)
        comp.backward()
        checks.append(dict(impl="fused+torch.compile", rel=rel(comp.detach(), eager.detach()),
                           grad_finite=bool(torch.isfinite(x["u"].grad).all())))
    except Exception as e:
        checks.append(dict(impl="fused+torch.compile", error=repr(e)[:800]))
    print(json.dumps(checks[-1]), flush=True)
    report["checks"] = checks
    print(f"checks done in {time.time() - t0:.0f} s", flush=True)

    main_shape = TARGETS[0]
    fwd_grid = [dict(BLOCK_D=bd, BLOCK_L=bl, num_warps=w)
                for bd, bl, w in itertools.product((4, 8, 16, 32), (32, 64, 128), (2, 4, 8))]
    if args.quick:
        fwd_grid = fwd_grid[::4]
    fwd = []
    for cfg in fwd_grid:
        if time.time() - t0 > 220:
            print("fwd grid: time budget spent, stopping", flush=True)
            break
        try:
            ms = time_fused(main_shape, cfg)
        except Exception as e:
            ms = None
            print("fwd", cfg, "failed", repr(e)[:200], flush=True)
        fwd.append(dict(cfg=cfg, ms=ms))
        print("fwd", cfg, ms, flush=True)
    fwd_ok = sorted([r for r in fwd if r["ms"]], key=lambda r: r["ms"])
    report["fwd"] = fwd
    print(f"fwd grid done in {time.time() - t0:.0f} s", flush=True)

    best_bl = {r["cfg"]["BLOCK_L"] for r in fwd_ok[:3]}
    bwd = []
    for bl in sorted(best_bl):
        fcfg = next(r["cfg"] for r in fwd_ok if r["cfg"]["BLOCK_L"] == bl)
        for bd, w in itertools.product((4, 8, 16), (4, 8)):
            if time.time() - t0 > 420:
                break
            cfg = dict(BLOCK_D=bd, num_warps=w)
            try:
                ms = time_fused(main_shape, fcfg, cfg, backward=True)
            except Exception as e:
                ms = None
                print("bwd", cfg, "failed", repr(e)[:200], flush=True)
            bwd.append(dict(fwd_cfg=fcfg, cfg=cfg, ms=ms))
            print("fwd+bwd", fcfg, cfg, ms, flush=True)
    report["bwd"] = bwd
    print(f"bwd grid done in {time.time() - t0:.0f} s", flush=True)

    others = []
    for shape in TARGETS[1:]:
        if time.time() - t0 > 520:
            break
        for r in fwd_ok[:4]:
            ms = time_fused(shape, r["cfg"])
            others.append(dict(shape=shape, cfg=r["cfg"], ms=ms))
            print("fwd", shape, r["cfg"], ms, flush=True)
        for bd, bl, w in itertools.product((2, 4), (64, 128), (2, 4)):
            cfg = dict(BLOCK_D=bd, BLOCK_L=bl, num_warps=w)
            ms = time_fused(shape, cfg)
            others.append(dict(shape=shape, cfg=cfg, ms=ms))
            print("fwd", shape, cfg, ms, flush=True)
    report["others"] = others
    fused_op.OVERRIDE.clear(), fused_op.OVERRIDE_BWD.clear()
    (out / "tune.json").write_text(json.dumps(report, indent=1))
    print("best fwd:", fwd_ok[:5])
    print("best fwd+bwd:", sorted([r for r in bwd if r["ms"]], key=lambda r: r["ms"])[:5])
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
