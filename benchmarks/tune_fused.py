"""Check the fused kernels at real sizes on a GPU, then time block-size choices at the issue's shapes.

    python benchmarks/tune_fused.py [--out DIR] [--budget SECONDS] [--only fwd|bwd|parallel]

Correctness first (forward and every gradient against the float64 reference, fresh random
inputs), then the PyTorch `parallel` scan's chunk length, then a grid of (KERNEL, BLOCK_D, BLOCK_L,
num_warps, LANES) for the forward at the three target shapes and of (forward, backward) pairs for
forward + backward at the first, timed with triton.testing.do_bench (median).
Prints one JSON line per measurement, registers and spills of every compiled kernel, and writes
tune.json and the TTGIR of every compiled variant of the three kernels (to check their layouts) to
--out. The chosen defaults live in `mamba_edu.kernels.fused_op.config`; this script is how they were
picked.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import triton

import mamba_edu
from mamba_edu.kernels import fused_op, selective_scan_fused as sf
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


def check(b, d, l, n, dtype, g=None):
    x = inputs(b, d, l, n, dtype, g, seed=l + n)
    x64 = {k: v.double().requires_grad_() for k, v in x.items()}
    xi = {k: v.clone().requires_grad_() for k, v in x.items()}
    ref, last = selective_scan_ref(**x64, delta_softplus=True, return_last_state=True)
    out, h = mamba_edu.selective_scan(**xi, delta_softplus=True, return_last_state=True, impl="fused")
    go = torch.randn_like(ref)
    (ref * go).sum().backward()
    (out.float() * go.float()).sum().backward()
    return dict(shape=[b, d, l, n, g], dtype=str(dtype).split(".")[-1], out=rel(out, ref), last=rel(h, last),
                grads={k: rel(xi[k].grad, x64[k].grad) for k in x})


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


def time_parallel(emit):
    """`parallel` at the first target shape for chunk limits of 2^24 to 2^29 elements of each
    (b, d, n, chunk) tensor (its default: 2^28): time (median) and peak memory."""
    from mamba_edu.selective import selective_scan_parallel
    x = inputs(*TARGETS[0], torch.bfloat16)
    for log2 in (24, 26, 27, 28, 29):
        torch.cuda.empty_cache(), torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.no_grad():
            ms = bench(lambda: selective_scan_parallel(**x, delta_softplus=True, max_elements=2**log2))
        emit("parallel", dict(shape=TARGETS[0], max_elements=2**log2, ms=ms,
                              peak_gb=(torch.cuda.max_memory_allocated() - base) / 1e9))


def breakdown(shape, fwd_cfg, bwd_cfg):
    """GPU time of each kernel in one forward + backward (torch.profiler), in ms: where the time goes."""
    fused_op.OVERRIDE.clear(), fused_op.OVERRIDE.update(fwd_cfg)
    fused_op.OVERRIDE_BWD.clear(), fused_op.OVERRIDE_BWD.update(bwd_cfg)
    xs = {k: v.requires_grad_() for k, v in inputs(*shape, torch.bfloat16).items()}
    go = torch.randn(shape[0], shape[1], shape[2], device="cuda", dtype=torch.bfloat16)

    def step():
        out = mamba_edu.selective_scan(**xs, delta_softplus=True, impl="fused")
        torch.autograd.grad(out, list(xs.values()), go)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    return {e.key[:60]: round(e.device_time_total / 10 / 1000, 4) for e in prof.key_averages()
            if e.device_time_total > 0}


def compiled_stats(kernel):
    """(registers, spills) of every variant of a kernel compiled so far, keyed by its constexprs."""
    stats = {}
    for cache in kernel.device_caches.values():
        for key, k in cache[0].items():
            stats[str(key)[-160:]] = (getattr(k, "n_regs", None), getattr(k, "n_spills", None))
    return stats


def ttgir(kernel):
    return "\n\n".join(k.asm.get("ttgir", "") for cache in kernel.device_caches.values() for k in cache[0].values())


def fwd_grid():
    # seq with LANES lanes per channel: one warp (with two, Triton reduces y through shared memory);
    # bf16 B and C read as pairs of steps (the default where possible) or converted one by one
    grid = [dict(KERNEL="seq", BLOCK_D=32 // lanes, BLOCK_L=64, num_warps=1, LANES=lanes) for lanes in (1, 2, 4)]
    grid += [dict(KERNEL="seq", BLOCK_D=32 // lanes, BLOCK_L=64, num_warps=1, LANES=lanes, PAIRS=False)
             for lanes in (2, 4)]
    # the gate shared out among a channel's lanes, or done by every lane (the default depends on E)
    grid += [dict(KERNEL="seq", BLOCK_D=32 // lanes, BLOCK_L=64, num_warps=1, LANES=lanes, SHARE=share)
             for lanes in (2, 4) for share in (False, True)]
    grid += [dict(KERNEL="lscan", BLOCK_D=bd, BLOCK_L=bl, num_warps=nw)
             for bd, bl, nw in [(1, 256, 1), (1, 512, 1), (1, 1024, 1), (1, 1024, 2), (2, 512, 2)]]
    return grid


def bwd_grid():
    """(forward, backward) pairs for forward + backward at the first shape: the seq backward (checkpoints
    every K steps from the seq forward) with dB and dC summed over its channels by a reduce-scatter
    (SCATTER) or a butterfly, with a register cap (more warps per SM), and the lscan pair."""
    seq = dict(KERNEL="seq", num_warps=1)
    grid = [(seq, dict(num_warps=1, SCATTER=True)), (seq, dict(num_warps=1, SCATTER=False)),
            (seq, dict(num_warps=1, SCATTER=True, maxnreg=168))]
    return grid + [(dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=64, num_warps=1), dict(BLOCK_D=4, num_warps=1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="build/tune")
    ap.add_argument("--budget", type=float, default=500.0, help="seconds; the grids stop when it is spent")
    ap.add_argument("--only", choices=["fwd", "bwd", "parallel"], default=None)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__)

    def emit(section, rec):
        report.setdefault(section, []).append(rec)
        print(section, json.dumps(rec), flush=True)
        (out / "tune.json").write_text(json.dumps(report, indent=1))

    kinds = {"lscan": dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=512, num_warps=1),
             "seq": dict(KERNEL="seq", BLOCK_D=32, BLOCK_L=64, num_warps=1, LANES=1),
             "seq2": dict(KERNEL="seq", BLOCK_D=16, BLOCK_L=64, num_warps=1, LANES=2),
             "seq4": dict(KERNEL="seq", BLOCK_D=8, BLOCK_L=64, num_warps=1, LANES=4)}
    for kind, cfg in kinds.items() if args.only != "parallel" else ():
        fused_op.OVERRIDE.clear(), fused_op.OVERRIDE.update(cfg)
        fused_op.OVERRIDE_BWD.clear()  # each forward's own backward, as config pairs them
        for shp, dt, g in [((2, 64, 2048, 16), torch.bfloat16, None), ((1, 96, 4097, 64), torch.float16, 3),
                           ((1, 32, 1000, 256), torch.float32, None)]:
            try:
                emit("checks", dict(kind=kind, **check(*shp, dt, g)))
            except Exception as e:  # report and go on: this is a diagnostics script
                emit("checks", dict(kind=kind, shape=list(shp), error=repr(e)[:500]))
    # the fixed cost of one call (validation, the Python wrapper, the launch): a tiny problem
    emit("overhead", dict(shape=[1, 32, 64, 16], ms=time_fused((1, 32, 64, 16), kinds["seq"])))

    if args.only in (None, "parallel"):  # the PyTorch parallel scan: how long a chunk of L its GPU default should be
        time_parallel(emit)

    best = {}
    if args.only in (None, "fwd"):
        for cfg in fwd_grid():
            for shape in TARGETS:
                if time.time() - t0 > args.budget * (0.6 if args.only is None else 1.0):
                    break
                try:
                    ms = time_fused(shape, cfg)
                except Exception as e:
                    ms, cfg = None, {**cfg, "error": repr(e)[:300]}
                emit("fwd", dict(shape=shape, cfg=cfg, ms=ms))
                if ms is not None and ms < best.get(tuple(shape), (1e9,))[0]:
                    best[tuple(shape)] = (ms, cfg)
        report["best_fwd"] = {str(k): v for k, v in best.items()}
    if args.only in (None, "bwd"):
        for fcfg, cfg in bwd_grid():
            if time.time() - t0 > args.budget:
                break
            try:
                ms = time_fused(TARGETS[0], fcfg, cfg, backward=True)
            except Exception as e:
                ms, cfg = None, {**cfg, "error": repr(e)[:300]}
            emit("fwd+bwd", dict(shape=TARGETS[0], fwd_cfg=fcfg, cfg=cfg, ms=ms))
    bwd_ok = [r for r in report.get("fwd+bwd", []) if r["ms"] is not None]
    if bwd_ok:
        r = min(bwd_ok, key=lambda r: r["ms"])
        best["fwd+bwd"] = (r["ms"], r["cfg"], r["fwd_cfg"])
        report["best_fwd+bwd"] = best["fwd+bwd"]
        emit("breakdown", dict(shape=TARGETS[0], fwd_cfg=r["fwd_cfg"], cfg=r["cfg"],
                               ms=breakdown(TARGETS[0], r["fwd_cfg"], r["cfg"])))
    # the fastest configurations, for benchmarks/profile_fused.py
    main_fwd = best.get(tuple(TARGETS[0]))
    main_bwd = best.get("fwd+bwd")
    (out / "best.json").write_text(json.dumps(dict(
        fwd=main_fwd[1] if main_fwd else {},
        bwd=main_bwd[1] if main_bwd else {}, bwd_fwd=main_bwd[2] if main_bwd else {})))
    report["regs_spills"] = {"fwd": compiled_stats(sf._fwd_lscan_kernel), "seq": compiled_stats(sf._fwd_seq_kernel),
                             "bwd": compiled_stats(sf._bwd_lscan_kernel), "bwd_seq": compiled_stats(sf._bwd_seq_kernel)}
    (out / "ttgir_fwd.txt").write_text(ttgir(sf._fwd_lscan_kernel)[:4_000_000])
    (out / "ttgir_seq.txt").write_text(ttgir(sf._fwd_seq_kernel)[:4_000_000])
    (out / "ttgir_bwd.txt").write_text(ttgir(sf._bwd_lscan_kernel)[:4_000_000])
    (out / "ttgir_bwd_seq.txt").write_text(ttgir(sf._bwd_seq_kernel)[:4_000_000])
    fused_op.OVERRIDE.clear(), fused_op.OVERRIDE_BWD.clear()
    (out / "tune.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["regs_spills"]), flush=True)
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
