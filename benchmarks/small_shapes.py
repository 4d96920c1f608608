"""Where the fused kernel loses to the official one (issue: small batches, short sequences, N = 64 training):
time forward + backward per (forward, backward) configuration at those shapes, the official kernel in
the same run, and a call's fixed cost (a tiny problem: the GPU waits for the CPU).

    python benchmarks/small_shapes.py [--out FILE] [--budget SECONDS]

Every configuration is checked against the float64 reference (forward and all gradients) before it is
timed; one JSON line per measurement; a table last.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import mamba_edu
from mamba_edu.kernels import fused_op
from tune_fused import bench, check, inputs

SHAPES = [(1, 1536, 256, 16), (1, 1536, 1024, 16), (1, 1536, 4096, 16), (1, 1536, 16384, 16),
          (2, 1536, 2048, 16), (8, 1536, 2048, 16), (8, 1536, 2048, 64)]
TINY = (1, 64, 64, 16)


def official():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:
        return None
    return selective_scan_fn


def step_fn(impl_fn, shape, backward):
    x = inputs(*shape, torch.bfloat16)
    if not backward:
        def fwd():
            with torch.no_grad():
                impl_fn(**x, delta_softplus=True)
        return fwd
    xs = {k: v.requires_grad_() for k, v in x.items()}
    go = torch.randn(shape[0], shape[1], shape[2], device="cuda", dtype=torch.bfloat16)

    def step():
        out = impl_fn(**xs, delta_softplus=True)
        torch.autograd.grad(out, list(xs.values()), go)
    return step


def peak(fn):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 1e6


def fused(**kw):
    return mamba_edu.selective_scan(**kw, impl="fused")


VARIANTS = {
    "default": ({}, {}),
    "lscan64/bd4": (dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=64, num_warps=1), dict(BLOCK_D=4, num_warps=1)),
    "lscan64/bd1": (dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=64, num_warps=1), dict(BLOCK_D=1, num_warps=1)),
    "lscan128/bd1": (dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=128, num_warps=1), dict(BLOCK_D=1, num_warps=1)),
    "lscan256/bd1w2": (dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=256, num_warps=2), dict(BLOCK_D=1, num_warps=2)),
    "seq-lanes4": (dict(KERNEL="seq", num_warps=1, LANES=4), {}),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/small_shapes.jsonl")
    ap.add_argument("--budget", type=float, default=300.0)
    args = ap.parse_args()
    t_end = time.time() + args.budget
    off = official()
    rows = []
    with open(args.out, "w") as f:
        def emit(rec):
            rows.append(rec)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(json.dumps(rec), flush=True)

        for backward in (False, True):  # a call's fixed cost: a tiny problem
            emit(dict(what="fixed", backward=backward, fused=bench(step_fn(fused, TINY, backward)),
                      official=bench(step_fn(off, TINY, backward)) if off else None))
        for shape in SHAPES:
            if time.time() > t_end:
                break
            o_ms = bench(step_fn(off, shape, True)) if off else None
            o_mem = peak(step_fn(off, shape, True)) if off else None
            for name, (fc, bc) in VARIANTS.items():
                if shape[3] > 32 and name == "seq-lanes4":
                    continue
                fused_op.OVERRIDE.clear(), fused_op.OVERRIDE.update(fc)
                fused_op.OVERRIDE_BWD.clear(), fused_op.OVERRIDE_BWD.update(bc)
                try:
                    c = check(*shape[:3], min(shape[3], 64), torch.bfloat16) if shape[0] * shape[2] <= 4096 else None
                    bad = c and (c["out"] > 2e-2 or max(c["grads"].values()) > 5e-2)
                    ms = None if bad else bench(step_fn(fused, shape, True))
                    mem = None if bad else peak(step_fn(fused, shape, True))
                    emit(dict(what="fwd+bwd", shape=shape, variant=name, ms=ms, peak_mb=mem, official_ms=o_ms,
                              official_mb=o_mem, ratio=o_ms / ms if (o_ms and ms) else None, check=c))
                except Exception as e:
                    emit(dict(what="fwd+bwd", shape=shape, variant=name, error=f"{type(e).__name__}: {str(e)[:200]}"))
            fused_op.OVERRIDE.clear(), fused_op.OVERRIDE_BWD.clear()
    print("\nshape                 variant          ms      official  ratio  peak MB (official)")
    for r in rows:
        if r["what"] == "fixed":
            print(f"fixed cost, {'fwd+bwd' if r['backward'] else 'forward'}: fused {r['fused']:.4f} ms, "
                  f"official {r['official'] if r['official'] is None else round(r['official'], 4)} ms")
        elif r.get("ms"):
            print(f"{str(r['shape']):21} {r['variant']:15} {r['ms']:8.3f} {r['official_ms'] or 0:8.3f} "
                  f"{r['ratio'] or 0:6.2f} {r['peak_mb']:8.1f} ({r['official_mb'] or 0:.1f})")
        else:
            print(f"{str(r['shape']):21} {r['variant']:15} {r.get('error', 'wrong: ' + json.dumps(r.get('check')))[:120]}")


if __name__ == "__main__":
    main()
