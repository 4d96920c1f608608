"""One forward and one backward of the fused kernel at the issue's main shape, for a profiler:

    ncu --clock-control none -k regex:_fwd_|_bwd_ -c 2 --section SpeedOfLight --section WarpStateStats \
        --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
        --section MemoryWorkloadAnalysis python benchmarks/profile_fused.py [best.json]

best.json (written by benchmarks/tune_fused.py) holds {"fwd": {...}, "bwd": {...}}: the block sizes
to profile instead of the defaults in `mamba_edu.kernels.fused_op.config`.
"""

import json
import sys
from pathlib import Path

import torch

import mamba_edu
from mamba_edu.kernels import fused_op

sys.path.insert(0, str(Path(__file__).parent))
from tune_fused import fwd_for_bwd  # noqa: E402

if len(sys.argv) > 1:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    fused_op.OVERRIDE.update(cfg.get("fwd", {}))
    fused_op.OVERRIDE_BWD.update(cfg.get("bwd", {}))

b, d, l, n = 8, 1536, 2048, 16
g = torch.Generator(device="cuda").manual_seed(0)
r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
x = dict(u=r(b, d, l).bfloat16(), delta=(0.5 * r(b, d, l) - 1).bfloat16(), A=-torch.exp(0.5 * r(d, n)),
         B=r(b, n, l).bfloat16(), C=r(b, n, l).bfloat16(), D=r(d), z=r(b, d, l).bfloat16(), delta_bias=0.1 * r(d))
with torch.no_grad():  # the forward as it is timed
    mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
x = {k: v.requires_grad_() for k, v in x.items()}
if fused_op.OVERRIDE_BWD:  # the forward's checkpoints must match the backward's chunks
    fused_op.OVERRIDE.clear()
    fused_op.OVERRIDE.update(fwd_for_bwd(fused_op.OVERRIDE_BWD["BLOCK_L"]))
out = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
out.backward(torch.randn_like(out))
torch.cuda.synchronize()
