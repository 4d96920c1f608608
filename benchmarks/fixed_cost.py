"""Where a small call's fixed cost goes: the CPU profile (cProfile) of the fused forward and forward +
backward on a tiny problem, and the same call's PyTorch operators (torch.profiler, CPU time), beside the
official kernel's. On a GPU machine:   python benchmarks/fixed_cost.py [--calls 300]"""

import argparse
import cProfile
import io
import pstats
import time

import torch

import mamba_edu

SHAPE = (1, 64, 64, 16)


def inputs(grad):
    g = torch.Generator(device="cuda").manual_seed(0)
    b, d, l, n = SHAPE
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
    x = dict(u=r(b, d, l).bfloat16(), delta=r(b, d, l).bfloat16(), A=-torch.exp(r(d, n)), B=r(b, n, l).bfloat16(),
             C=r(b, n, l).bfloat16(), D=r(d), z=r(b, d, l).bfloat16(), delta_bias=r(d))
    return {k: v.requires_grad_(grad) for k, v in x.items()}


def call(fn, grad):
    x = inputs(grad)
    go = torch.randn(SHAPE[:3], device="cuda", dtype=torch.bfloat16)

    def run():
        out = fn(**x, delta_softplus=True)
        if grad:
            torch.autograd.grad(out, list(x.values()), go)
    return run


def wall_us(run, calls):
    for _ in range(20):
        run()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        run()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / calls * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    impls = {"fused": lambda **kw: mamba_edu.selective_scan(**kw, impl="fused")}
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        impls["official"] = selective_scan_fn
    except Exception as e:
        print("official not importable:", e)
    for grad in (False, True):
        for name, fn in impls.items():
            run = call(fn, grad)
            print(f"{name} {'fwd+bwd' if grad else 'forward'}: {wall_us(run, args.calls):.1f} us per call (wall, "
                  f"{args.calls} calls, one sync at the end)")
        run = call(impls["fused"], grad)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(args.calls):
            run()
        torch.cuda.synchronize()
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(22)
        print(s.getvalue()[-6000:])
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(20):
                run()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)[-5000:])


if __name__ == "__main__":
    main()
