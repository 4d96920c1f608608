"""The hardware side: what device we run on, and how many bytes each implementation must move.

Glossary
    HBM        the GPU's main memory (tens of GB, a few TB/s); "DRAM" on a CPU
    SRAM       on-chip memory: registers and shared memory, per streaming multiprocessor (SM)
    IO model   the bytes an implementation reads from and writes to HBM for one selective scan
    b, d, l, n batch, channels, sequence length, state size (as in `mamba_edu.selective`)
    s          bytes per element of the inputs (2 for bf16/fp16, 4 for fp32)

The selective scan's unavoidable traffic is to read u, Δ, z (b·d·l each), B and C
(b·g·n·l each) and the small A, D, delta_bias once, and to write out (b·d·l) once. An
implementation that materialises the discretised tensors Ab and Bbu, or the states h, in HBM
pays b·d·l·n·4 bytes for every such tensor written or read: with n = 16 that is 32× the
input traffic of u alone, which is why the fused kernel (state kept on chip) wins.

The byte counts below are models, stated as formulas so that the notebooks, the app and the
benchmark all use the same numbers: each counts the tensors the implementation's strategy
moves through HBM, assuming each is touched once per pass (caches ignored).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch

from ._checks import check_int, fail

FP32 = 4


@dataclass(frozen=True)
class ScanShape:
    """The sizes that set a selective scan's cost."""

    batch: int
    dim: int
    L: int
    N: int
    groups: int = 1
    bytes_per_element: int = 2  # inputs u, Δ, z, B, C, out (bf16: 2, fp32: 4)
    has_z: bool = True
    has_D: bool = True
    has_delta_bias: bool = True
    last_state: bool = False

    def __post_init__(self):
        for name in ("batch", "dim", "L", "N", "groups", "bytes_per_element"):
            check_int("ScanShape", name, getattr(self, name))
        if self.dim % self.groups:
            fail("ScanShape", "groups", f"a divisor of dim = {self.dim}", self.groups)

    @property
    def state_elements(self) -> int:
        """b·d·l·n: the size of one materialised (batch, dim, L, N) tensor."""
        return self.batch * self.dim * self.L * self.N


def min_bytes(s: ScanShape) -> int:
    """The floor: read every input once and write `out` once (and the last state if asked)."""
    bdl = s.batch * s.dim * s.L
    inputs = bdl * s.bytes_per_element * (2 + int(s.has_z))  # u, Δ, z
    inputs += 2 * s.batch * s.groups * s.N * s.L * s.bytes_per_element  # B, C
    params = s.dim * s.N * FP32 + s.dim * FP32 * (int(s.has_D) + int(s.has_delta_bias))  # A, D, bias
    out = bdl * s.bytes_per_element
    last = s.batch * s.dim * s.N * FP32 if s.last_state else 0
    return inputs + params + out + last


def fused_bytes(s: ScanShape) -> int:
    """Fused kernel: discretise, scan and project on chip; only the floor's traffic."""
    return min_bytes(s)


def materialised_bytes(s: ScanShape) -> int:
    """Materialise Ab and Bbu (write 2), the scan reads them and writes h (read 2, write 1),
    the C-projection reads h (read 1): six (b, d, l, n) fp32 tensors beyond the floor."""
    return min_bytes(s) + 6 * s.state_elements * FP32


def triton_scan_bytes(s: ScanShape) -> int:
    """Unfused Triton scan: Ab and Bbu written by PyTorch and read by the scan kernel (4 passes),
    which does the C-projection in registers, so h never goes to HBM."""
    return min_bytes(s) + 4 * s.state_elements * FP32


def naive_bytes(s: ScanShape) -> int:
    """Python loop over time: per step about ten small (b, d, n) fp32 tensors are written or read
    (exp(Δ·A), Δ·B·u, the product, the sum, h, C·h, …), so ≈ 10 passes over b·d·l·n."""
    return min_bytes(s) + 10 * s.state_elements * FP32


def io_bytes(impl: str, s: ScanShape) -> int:
    """Bytes implementation `impl` moves through HBM for shape `s` (the registry's formula)."""
    from .bench import implementations

    impls = implementations()
    if impl not in impls:
        fail("io_bytes", "impl", "one of " + ", ".join(map(repr, impls)), repr(impl))
    return impls[impl].bytes_moved(s)


# ----------------------------------------------------------------------------------------------
# The device we run on
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """What the program found: a CUDA GPU, or only the CPU."""

    kind: str  # "cuda" or "cpu"
    name: str
    multiprocessors: int | None = None
    memory_bytes: int | None = None
    capability: str | None = None
    triton: str | None = None  # Triton's version, or None when it cannot be imported
    triton_mode: str = "unavailable"  # "gpu", "interpreter (CPU, slow)" or "unavailable"

    def summary(self) -> str:
        if self.kind == "cuda":
            gib = (self.memory_bytes or 0) / 2**30
            return f"{self.name}: {self.multiprocessors} SMs, {gib:.0f} GiB, compute capability {self.capability}"
        return f"CPU only ({self.name}): no CUDA GPU found"


def triton_version() -> str | None:
    """Triton's version if it can be imported here, else None (imported lazily, never required)."""
    try:
        import triton  # noqa: PLC0415
    except Exception:  # pragma: no cover - depends on the machine
        return None
    return getattr(triton, "__version__", "unknown")


def describe_device(index: int = 0) -> DeviceInfo:
    """Describe CUDA device `index`, or the CPU when there is no GPU."""
    import os

    tv = triton_version()
    if torch.cuda.is_available():
        check_int("describe_device", "index", index, minimum=0, maximum=torch.cuda.device_count() - 1)
        p = torch.cuda.get_device_properties(index)
        return DeviceInfo("cuda", p.name, p.multi_processor_count, p.total_memory, f"{p.major}.{p.minor}",
                          tv, "gpu" if tv else "unavailable")
    mode = "interpreter (CPU, slow)" if tv and os.environ.get("TRITON_INTERPRET") == "1" else "unavailable"
    name = platform.processor() or platform.machine() or "unknown CPU"
    return DeviceInfo("cpu", f"{name}, {os.cpu_count()} cores", triton=tv, triton_mode=mode)
