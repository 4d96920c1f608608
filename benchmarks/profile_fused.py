"""One forward and one backward of the fused kernel at the issue's main shape, for a profiler:

    ncu --clock-control none -k regex:_fused -c 2 --section SpeedOfLight --section WarpStateStats \
        --section Occupancy --section LaunchStats python benchmarks/profile_fused.py
"""

import torch

import mamba_edu

b, d, l, n = 8, 1536, 2048, 16
g = torch.Generator(device="cuda").manual_seed(0)
r = lambda *s: torch.randn(*s, device="cuda", generator=g)  # noqa: E731
x = dict(u=r(b, d, l).bfloat16(), delta=(0.5 * r(b, d, l) - 1).bfloat16(), A=-torch.exp(0.5 * r(d, n)),
         B=r(b, n, l).bfloat16(), C=r(b, n, l).bfloat16(), D=r(d), z=r(b, d, l).bfloat16(), delta_bias=0.1 * r(d))
x = {k: v.requires_grad_() for k, v in x.items()}
out = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
out.backward(torch.randn_like(out))
torch.cuda.synchronize()
