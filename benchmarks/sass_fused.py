"""The fused kernels' instructions per element on an H100, counted on any Linux machine (no GPU).

    python benchmarks/sass_fused.py [--shape B,D,L,N] [--out DIR] [--json FILE]

Prints, for the seq and lscan forwards and the backward after each at the shape (the seq backward
only where N <= 32), registers, instructions and
exp2 per (time step, state entry) element of the hot loops (`mamba_edu.kernels.sass` says how they
are counted). --json writes the rows; --out keeps the TTGIR and SASS of every kernel.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import triton

from mamba_edu.kernels.sass import analyse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="8,1536,2048,16", help="B,D,L,N (default: the issue's main shape)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the TTGIR and SASS of every kernel")
    ap.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    args = ap.parse_args()
    shape = tuple(int(x) for x in args.shape.split(","))
    rows = analyse(shape, training=False, kind="seq", out=args.out) + \
        analyse(shape, training=False, kind="lscan", out=args.out) + \
        list({r["kernel"]: r for r in analyse(shape, training=True, out=args.out) +
              analyse(shape, training=True, kind="lscan", out=args.out) if r["kernel"].startswith("_bwd")}.values())
    print(f"{'kernel':20} {'regs':>5} {'inner loop':>10} {'instr/elem':>10} {'exp2/elem':>9}  inner loop's top opcodes")
    for r in rows:
        top = ", ".join(f"{k} {v}" for k, v in list(r["top_opcodes"].items())[:6])
        print(f"{r['kernel']:20} {r['registers']:5} {r['loop_instructions']:10} {r['instructions_per_element']:10} "
              f"{r['exp2_per_element']:9}  {top}")
    if args.json:
        args.json.write_text(json.dumps(dict(target="sm_90", triton=triton.__version__, rows=rows), indent=1))


if __name__ == "__main__":
    main()
