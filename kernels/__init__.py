"""Triton kernels for the selective scan, installed as the subpackage `mamba_edu.kernels`.

Nothing here imports Triton at package import time: `import mamba_edu` works where Triton
cannot run. The kernels (`triton_scan`, `fused`) are registered in `mamba_edu.bench` and run on
a CUDA GPU, or on a CPU under TRITON_INTERPRET=1 (slow: for tests and teaching only).
"""
