"""One forward and one backward of the fused kernel at the issue's main shape, for a profiler:

    ncu --clock-control none -k regex:_fwd_|_bwd_ -c 2 --section SpeedOfLight --section WarpStateStats \
        --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
        --section MemoryWorkloadAnalysis python benchmarks/profile_fused.py [best.json]
        [--fwd '{"KERNEL": "seq", "LANES": 2, ...}'] [--shape B,D,L,N] [--forward-only]

best.json (written by benchmarks/tune_fused.py) holds {"fwd": {...}, "bwd": {...}, "bwd_fwd": {...}}: the
fastest forward, the fastest backward and the forward it was timed after (its checkpoints must match),
to profile instead of the defaults in `mamba_edu.kernels.fused_op.config`; --fwd gives the forward's
configuration directly (as `fused_op.OVERRIDE`).
"""

import argparse
import json
from pathlib import Path

import torch

import mamba_edu
from mamba_edu.kernels import fused_op

ap = argparse.ArgumentParser()
ap.add_argument("best", nargs="?", type=Path, help="best.json from benchmarks/tune_fused.py")
ap.add_argument("--fwd", type=json.loads, default=None, help="the forward's configuration, as JSON")
ap.add_argument("--shape", default="8,1536,2048,16", help="B,D,L,N")
ap.add_argument("--forward-only", action="store_true")
args = ap.parse_args()
if args.best:
    cfg = json.loads(args.best.read_text())
    fused_op.OVERRIDE.update(cfg.get("fwd", {}))
    fused_op.OVERRIDE_BWD.update(cfg.get("bwd", {}))
    bwd_fwd = cfg.get("bwd_fwd", {})
if args.fwd:
    fused_op.OVERRIDE.update(args.fwd)

b, d, l, n = (int(v) for v in args.shape.split(","))
g = torch.Generator(device="cuda").manual_seed(0)
r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
x = dict(u=r(b, d, l).bfloat16(), delta=(0.5 * r(b, d, l) - 1).bfloat16(), A=-torch.exp(0.5 * r(d, n)),
         B=r(b, n, l).bfloat16(), C=r(b, n, l).bfloat16(), D=r(d), z=r(b, d, l).bfloat16(), delta_bias=0.1 * r(d))
with torch.no_grad():  # the forward as it is timed
    mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
if not args.forward_only:
    x = {k: v.requires_grad_() for k, v in x.items()}
    if args.best:  # the forward the backward was timed with (its checkpoints must match the backward)
        fused_op.OVERRIDE.clear()
        fused_op.OVERRIDE.update(bwd_fwd)
    out = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    out.backward(torch.randn_like(out))
torch.cuda.synchronize()
