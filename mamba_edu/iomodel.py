"""The IO model: how many bytes each selective-scan implementation moves through HBM, and the roofline.

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

The roofline (chapter 08):

    ops                  exponentials, one per state element (exp_count): the scan's costliest op
    arithmetic intensity I = ops / bytes moved through HBM (an implementation's IO model)
    roofline             attainable ops/s = min(peak ops/s, I × bandwidth); ridge I* = peak / bandwidth
    time floor           t ≥ max(ops / peak, bytes / bandwidth)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_choice, check_float, check_int, fail

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
    """A LOWER BOUND for any implementation that materialises the state in HBM: Ab and Bbu written
    once (2), read once by a single-pass scan that writes h (read 2, write 1), h read once by the
    C-projection (1): six (b, d, l, n) fp32 passes beyond the floor. What `parallel` really moves is
    larger, see `parallel_bytes`: eager PyTorch writes intermediates, and its scan makes ~2·log2 L
    passes of strided views over the tensors."""
    return min_bytes(s) + 6 * s.state_elements * FP32


def scan_inplace_combines(L: int) -> int:
    """How many positions `scan.scan_inplace` combines (x_i ← x_{i−s} ⊕ x_i) for a sequence of length L:
    the up-sweep's levels touch ⌊L/2s⌋ positions, the down-sweep's the positions 3s−1, 5s−1, … < L.
    About 2·log2 L levels, but level s touches only ~L/2s positions: about 2L combines in all, not 2L·log2 L."""
    check_int("scan_inplace_combines", "L", L)
    m, step = 0, 1
    while 2 * step <= L:  # up-sweep
        m += len(range(2 * step - 1, L, 2 * step))
        step *= 2
    step = 1 << ((L - 1).bit_length() - 1) if L > 1 else 0
    while step >= 1:  # down-sweep
        m += len(range(3 * step - 1, L, 2 * step))
        step //= 2
    return m


def parallel_passes(L: int) -> float:
    """(b, d, l, n) fp32 passes `parallel` (selective_scan_parallel, method "inplace", one chunk, no autograd)
    makes in eager PyTorch, each kernel reading its operands once and writing its result once:
        Δ·A            write 1           (the small Δ and A are read; their product is state-sized)
        exp_ in place  read 1, write 1
        Δ·u·B          write 1
        scan_inplace   7 row accesses per combined position (b_i += a_i·b_{i−s}: read 3, write 1;
                       a_i *= a_{i−s}: read 2, write 1), scan_inplace_combines(L) positions
        y = C·h        read 1 (a batched matmul)
    = 5 + 7·combines(L)/L ≈ 19 passes for long L, against the lower bound's 6."""
    return 5 + 7 * scan_inplace_combines(L) / L


def parallel_bytes(s: ScanShape) -> int:
    """What the `parallel` implementation moves through memory in eager PyTorch (see `parallel_passes`):
    the floor plus (5·L + 7·combines(L))·b·d·n fp32 elements. Caches ignored (at the sizes that matter the
    tensors are far larger than L2); the small per-chunk copies (the carried state, the time-major
    copies of u, Δ, B, C) are left out. `measure.op_bytes` counts the same traffic op by op."""
    per_row = s.batch * s.dim * s.N * FP32  # one time step of one (b, d, l, n) tensor
    return min_bytes(s) + (5 * s.L + 7 * scan_inplace_combines(s.L)) * per_row


def triton_scan_bytes(s: ScanShape) -> int:
    """Unfused Triton scan: Ab and Bbu written by PyTorch and read by the scan kernel (4 passes),
    which does the C-projection in registers, so h never goes to HBM."""
    return min_bytes(s) + 4 * s.state_elements * FP32


def naive_bytes(s: ScanShape) -> int:
    """Python loop over time, counted from `selective_scan_naive`'s line per step (eager PyTorch, each kernel
    reading its operands once and writing its result once; (b, d, n) fp32 tensors, L steps):
        Δ·A: write 1; exp: read 1, write 1; ·h: read 2, write 1; Δ·B: write 1; ·u: read 1, write 1;
        +: read 2, write 1; h·C: read 1, write 1; sum over n: read 1      → 15 passes over b·d·l·n.
    On a GPU the per-step tensors are small enough to stay in L2, so this counts traffic, not
    necessarily HBM bytes; naive's cost is its L·(~10) kernel launches (chapter 09)."""
    return min_bytes(s) + 15 * s.state_elements * FP32



def backward_min_bytes(s: ScanShape) -> int:
    """The backward's floor: read u, Δ, z, B, C and ∂out once, write ∂u, ∂Δ, ∂z, ∂B, ∂C once
    (the parameters' gradients are small). Forward + backward together: min_bytes + this."""
    bdl = s.batch * s.dim * s.L
    per_tensor = bdl * s.bytes_per_element
    bc = s.batch * s.groups * s.N * s.L * s.bytes_per_element
    reads = per_tensor * (3 + int(s.has_z)) + 2 * bc  # u, Δ, ∂out (+ z); B, C
    writes = per_tensor * (2 + int(s.has_z)) + 2 * bc  # ∂u, ∂Δ (+ ∂z); ∂B, ∂C
    return reads + writes


def exp_count(s: ScanShape) -> int:
    """Exponentials one selective scan must compute: one exp(Δ·A) per state element, b·d·l·n."""
    return s.state_elements


# The IO model of the four implementations chapter 08 compares, by name. The registry
# (mamba_edu.registry) points each registered implementation at the same function (tested).
IO_MODELS = {"naive": naive_bytes, "parallel": parallel_bytes, "triton_scan": triton_scan_bytes,
             "fused": fused_bytes}


# ----------------------------------------------------------------------------------------------
# The roofline
# ----------------------------------------------------------------------------------------------


def arithmetic_intensity(impl: str, s: ScanShape) -> float:
    """Exponentials per byte moved through HBM: exp_count(s) / IO_MODELS[impl](s)."""
    check_choice("arithmetic_intensity", "impl", impl, IO_MODELS)
    return exp_count(s) / IO_MODELS[impl](s)


def attainable(intensity, peak: float, bandwidth: float):
    """The roofline: min(peak, intensity × bandwidth) ops/s, for a number or a tensor of intensities.

    Below the ridge intensity peak / bandwidth a kernel is memory-bound (it waits for bytes), above it
    compute-bound (it waits for the arithmetic units)."""
    check_float("attainable", "peak", peak, positive=True)
    check_float("attainable", "bandwidth", bandwidth, positive=True)
    if isinstance(intensity, torch.Tensor):
        return torch.clamp(intensity * bandwidth, max=peak)
    return min(peak, check_float("attainable", "intensity", intensity) * bandwidth)


def ridge_intensity(peak: float, bandwidth: float) -> float:
    """The intensity where the two roofs meet: peak / bandwidth ops per byte."""
    return check_float("ridge_intensity", "peak", peak, positive=True) / check_float(
        "ridge_intensity", "bandwidth", bandwidth, positive=True)


def time_floor(ops: float, nbytes: float, peak: float, bandwidth: float) -> float:
    """The least time a kernel can take: max(ops / peak, bytes / bandwidth) seconds."""
    return max(ops / check_float("time_floor", "peak", peak, positive=True),
               nbytes / check_float("time_floor", "bandwidth", bandwidth, positive=True))


# ----------------------------------------------------------------------------------------------
# Measured points: a run (recorded in a benchmark result, or timed here) placed on the roofline
# ----------------------------------------------------------------------------------------------

_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}


@dataclass(frozen=True)
class RooflinePoint:
    """One measured run placed on the roofline."""

    impl: str
    shape: ScanShape
    seconds: float
    nbytes: int  # the IO model's bytes for this run
    ops: int  # exponentials

    @property
    def intensity(self) -> float:
        return self.ops / self.nbytes

    @property
    def achieved(self) -> float:
        """Ops per second actually reached."""
        return self.ops / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.seconds



def bench_points(result: dict, pass_: str = "forward") -> list[RooflinePoint]:
    """The cases of one benchmark result that ran correctly ("ok") in pass `pass_`, as roofline points:
    time from the recorded ms, bytes from the recorded IO model's bytes, ops = exp_count(shape)."""
    points = []
    for case in result.get("cases", []):
        if case.get("status") != "ok" or case.get("pass") != pass_ or not case.get("ms") or not case.get("bytes"):
            continue
        s = ScanShape(int(case["batch"]), int(case["dim"]), int(case["L"]), int(case["N"]),
                      bytes_per_element=_DTYPE_BYTES.get(str(case.get("dtype", "")).replace("torch.", ""), 2))
        points.append(RooflinePoint(case["impl"], s, float(case["ms"]) / 1e3, int(case["bytes"]), exp_count(s)))
    return points

