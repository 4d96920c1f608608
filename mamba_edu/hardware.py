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


# ----------------------------------------------------------------------------------------------
# Cost against the sequence length L: attention's score matrix and key-value cache against a
# recurrent state of fixed size, and two small measuring helpers (time, peak memory)
#
#     naive attention materialises the scores S = QKᵀ/√d_head      batch·heads·L² elements
#     decoding with attention keeps K and V of every past token    2·layers·batch·heads·d_head·L
#     decoding with a Mamba block keeps a conv window and a state  layers·batch·e·(k−1 + n)
# ----------------------------------------------------------------------------------------------


def kv_cache_bytes(n_layers: int, n_heads: int, head_dim: int, L: int, batch: int = 1,
                   bytes_per_element: int = 2) -> int:
    """Bytes of a Transformer's key-value cache after L tokens: 2·n_layers·batch·n_heads·head_dim·L·s.

    The 2 counts keys and values. For grouped-query attention pass the number of key-value heads.
    """
    func = "kv_cache_bytes"
    for name, v in (("n_layers", n_layers), ("n_heads", n_heads), ("head_dim", head_dim), ("batch", batch),
                    ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    check_int(func, "L", L, minimum=0)
    return 2 * n_layers * batch * n_heads * head_dim * L * bytes_per_element


def attention_scores_bytes(L: int, n_heads: int = 1, batch: int = 1, bytes_per_element: int = 4) -> int:
    """Bytes of the (batch, heads, L, L) score matrix QKᵀ that naive attention materialises."""
    func = "attention_scores_bytes"
    check_int(func, "L", L, minimum=0)
    for name, v in (("n_heads", n_heads), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    return batch * n_heads * L * L * bytes_per_element


def max_attention_length(budget_bytes: int, n_heads: int = 1, batch: int = 1, bytes_per_element: int = 4) -> int:
    """The largest L whose score matrix fits the budget: batch·heads·L²·s ≤ budget_bytes (0 if none)."""
    func = "max_attention_length"
    check_int(func, "budget_bytes", budget_bytes, minimum=0)
    for name, v in (("n_heads", n_heads), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    import math

    # L² ≤ budget/(b·h·s)  ⇔  L² ≤ ⌊budget/(b·h·s)⌋ since L² is an integer
    return math.isqrt(budget_bytes // (batch * n_heads * bytes_per_element))


def mamba_state_bytes(n_layers: int, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                      batch: int = 1, bytes_per_element: int = FP32) -> int:
    """Bytes of a Mamba model's decoding state: n_layers·batch·e·((k − 1) + n)·s, e = expand·d_model.

    Per layer a (batch, e, k−1) window of the causal convolution and the (batch, e, n) SSM state
    (`mamba_edu.models.MambaBlock.init_state`); it does not depend on the position.
    """
    func = "mamba_state_bytes"
    for name, v in (("n_layers", n_layers), ("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv),
                    ("expand", expand), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    return n_layers * batch * expand * d_model * (d_conv - 1 + d_state) * bytes_per_element


def median_seconds(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeat` runs after `warmup` untimed ones (time.perf_counter).

    On a GPU the device is synchronised around every run, so the time covers the work, not the launch.
    """
    import statistics
    import time

    check_int("median_seconds", "repeat", repeat)
    check_int("median_seconds", "warmup", warmup, minimum=0)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_vs_length(make_run, lengths, repeat: int = 5, warmup: int = 1) -> list[float]:
    """Median seconds of `make_run(L)()` for each L in `lengths`.

    `make_run(L)` builds the inputs for length L (not timed) and returns the function to time.
    """
    return [median_seconds(make_run(int(L)), repeat=repeat, warmup=warmup) for L in lengths]


class _stderr_silenced:
    """Send file descriptor 2 to /dev/null for a while: the profiler's C++ side prints a
    start/stop line there that would clutter every notebook cell."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def peak_memory_bytes(fn, device: str = "cpu") -> int:
    """Peak bytes allocated while `fn()` runs, above what was allocated before it started.

    CPU: the PyTorch profiler records every allocation and free with the allocator's running
    total; the peak is the largest total seen. CUDA: torch.cuda.max_memory_allocated. Only
    memory PyTorch allocates is counted (tensors and the kernels' work buffers).
    """
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - base)
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    allocs = sorted((e for e in walk(prof.profiler.kineto_results.experimental_event_tree())
                     if e.tag == _EventType.Allocation), key=lambda e: e.start_time_ns)
    if not allocs:
        return 0
    # total_allocated is the allocator's running total just after each event (alloc: +, free: −)
    first = allocs[0].extra_fields
    base = first.total_allocated - first.alloc_size
    return max(0, max(e.extra_fields.total_allocated for e in allocs) - base)


def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of y ≈ c·x^p on a log–log scale; returns (c, p). The slope p is the exponent."""
    xs = torch.as_tensor(x, dtype=torch.float64).flatten()  # (m,)
    ys = torch.as_tensor(y, dtype=torch.float64).flatten()  # (m,)
    if xs.numel() != ys.numel() or xs.numel() < 2:
        fail("fit_power_law", "x, y", "two sequences of the same length >= 2", f"{xs.numel()} and {ys.numel()} values")
    if not bool((xs > 0).all() and (ys > 0).all()):
        fail("fit_power_law", "x, y", "strictly positive values (a log–log fit)", "a value <= 0")
    import math

    X = torch.stack([torch.ones_like(xs), xs.log()], dim=1)  # (m, 2)
    coef = torch.linalg.lstsq(X, ys.log()[:, None]).solution[:, 0]  # (2,): log c, p
    return math.exp(float(coef[0])), float(coef[1])


# ----------------------------------------------------------------------------------------------
# The GPU memory hierarchy (chapter 08): the levels of this device (queried), datasheet figures
# of the H100 and A100 (recorded, with their source), measured benchmark results
# (results/bench/*.json) and the roofline.
#
#     level           where        H100 SXM5 (datasheet)              who decides what lives there
#     registers       per SM       256 KiB × 132 SMs                  the compiler, per thread
#     shared memory   per SM       up to 228 KiB × 132 SMs            the kernel (a thread block's scratch)
#     L2 cache        whole GPU    50 MiB                             the hardware (a cache)
#     HBM             whole GPU    80 GiB, 3.35 TB/s                  the program (every tensor lives here)
#
# On-chip SRAM (registers + shared memory) is per SM: the whole GPU has tens of MB of it, about
# three orders of magnitude less than HBM (10^3, not 10^5), and each thread block sees only its
# own SM's share. Kernel fusion means computing discretisation, scan and C-projection in ONE
# kernel, so the (batch, dim, L, N) intermediates stay in that SRAM and never travel to HBM.
#
#     ops                  exponentials, one per state element (exp_count): the scan's costliest op
#     arithmetic intensity I = ops / bytes moved through HBM (an implementation's IO model)
#     roofline             attainable ops/s = min(peak ops/s, I × bandwidth); ridge I* = peak / bandwidth
#     time floor           t ≥ max(ops / peak, bytes / bandwidth)
# ----------------------------------------------------------------------------------------------

import math  # noqa: E402  (this section's imports)
from pathlib import Path  # noqa: E402

from ._checks import check_choice, check_float  # noqa: E402

KiB, MiB, GiB = 2**10, 2**20, 2**30

# The IO model of the four implementations chapter 08 compares, by name. The registry
# (mamba_edu.bench) points each registered implementation at the same function (tested).
IO_MODELS = {"naive": naive_bytes, "parallel": materialised_bytes, "triton_scan": triton_scan_bytes,
             "fused": fused_bytes}


@dataclass(frozen=True)
class MemoryLevel:
    """One level of a memory hierarchy: its size (one SM's share × the number of SMs for per-SM
    levels) and bandwidth (bytes/s read + written, the whole device), each with where it came from."""

    name: str
    bytes_per_unit: int | None  # one SM's share (per-SM levels) or the whole level
    units: int = 1  # number of SMs for a per-SM level, else 1
    bandwidth: float | None = None
    size_source: str = ""
    bandwidth_source: str = ""

    @property
    def total_bytes(self) -> int | None:
        return None if self.bytes_per_unit is None else self.bytes_per_unit * self.units


_REGISTER_RULE = "derived: 128 FP32 lanes × 3 operands × 4 B per clock per SM"
_SHARED_RULE = "derived: 32 banks × 4 B per clock per SM"


def _register_bandwidth(sms: int, clock_hz: float) -> float:
    """Register-file reads an SM's FP32 units can consume: 128 lanes × an FMA's 3 operands × 4 B per clock."""
    return sms * 128 * 3 * 4 * clock_hz


def _shared_bandwidth(sms: int, clock_hz: float) -> float:
    """Shared memory's bandwidth: 32 banks × 4 B per clock per SM (CUDA C++ Programming Guide)."""
    return sms * 32 * 4 * clock_hz


@dataclass(frozen=True)
class Datasheet:
    """A GPU's published figures (sizes in bytes, bandwidths in bytes/s, clock in Hz)."""

    name: str
    sms: int
    registers_per_sm: int  # 64K 32-bit registers
    shared_per_sm: int  # the most shared memory a kernel can configure per SM
    l1_shared_per_sm: int  # the combined L1 data cache / shared memory per SM
    l2_bytes: int
    hbm_bytes: int
    hbm_bandwidth: float
    boost_clock_hz: float
    l2_read_bytes_per_clock: int | None  # published for the A100 only
    source: str
    exp_per_clock_per_sm: int = 16  # exp2 results per clock per SM (compute capability 8.x and 9.0)

    @property
    def peak_exp_per_s(self) -> float:
        """Derived peak exponentials per second: SMs × exp2 per clock per SM × boost clock (the CUDA C++
        Programming Guide's arithmetic-instruction throughput table gives 16 per clock per SM)."""
        return self.sms * self.exp_per_clock_per_sm * self.boost_clock_hz

    def levels(self) -> list[MemoryLevel]:
        """Registers, shared memory, L2 and HBM. Shared memory's bandwidth is derived from its 32 banks
        of 4 bytes per clock per SM, the registers' from 128 FP32 lanes per SM each reading 3 operands
        of 4 bytes (an FMA) per clock; both at the boost clock."""
        ds = f"datasheet: {self.source}"
        clock = self.boost_clock_hz
        l2_bw = None if self.l2_read_bytes_per_clock is None else self.l2_read_bytes_per_clock * clock
        return [
            MemoryLevel("registers", self.registers_per_sm, self.sms, _register_bandwidth(self.sms, clock), ds,
                        _REGISTER_RULE + " × boost clock"),
            MemoryLevel("shared memory", self.shared_per_sm, self.sms, _shared_bandwidth(self.sms, clock), ds,
                        _SHARED_RULE + " × boost clock"),
            MemoryLevel("L2 cache", self.l2_bytes, 1, l2_bw, ds,
                        f"{ds} (read, bytes per clock × boost clock)" if l2_bw else "not published"),
            MemoryLevel("HBM", self.hbm_bytes, 1, self.hbm_bandwidth, ds, ds),
        ]


# Recorded datasheet values (NOT measured here). Sources: NVIDIA A100 Tensor Core GPU Architecture
# whitepaper (2020; SMs, register file, L1/shared memory, L2 and its read bandwidth in bytes/clk,
# boost clock) and A100 datasheet (2021; HBM size and bandwidth per model); NVIDIA H100 Tensor Core
# GPU Architecture whitepaper (2022; SMs, register file, L1/shared, L2) and H100 datasheet (2023;
# SXM5: 80 GB HBM3 at 3.35 TB/s, boost clock 1.98 GHz). "40 GB" of HBM is 40 GiB of DRAM (stacks of
# binary size); the whitepapers' KB and MB are KiB and MiB.
DATASHEETS: dict[str, Datasheet] = {
    "H100 SXM5 80GB": Datasheet("H100 SXM5 80GB", 132, 256 * KiB, 228 * KiB, 256 * KiB, 50 * MiB, 80 * GiB,
                                3.35e12, 1.98e9, None, "NVIDIA H100 whitepaper (2022) and datasheet (2023)"),
    "A100 SXM4 80GB": Datasheet("A100 SXM4 80GB", 108, 256 * KiB, 164 * KiB, 192 * KiB, 40 * MiB, 80 * GiB,
                                2.039e12, 1.41e9, 5120, "NVIDIA A100 whitepaper (2020) and datasheet (2021)"),
    "A100 SXM4 40GB": Datasheet("A100 SXM4 40GB", 108, 256 * KiB, 164 * KiB, 192 * KiB, 40 * MiB, 40 * GiB,
                                1.555e12, 1.41e9, 5120, "NVIDIA A100 whitepaper (2020) and datasheet (2021)"),
}


def datasheet(name: str) -> Datasheet:
    """The recorded datasheet figures of GPU `name` (a key of DATASHEETS)."""
    if name not in DATASHEETS:
        fail("datasheet", "name", "one of " + ", ".join(map(repr, DATASHEETS)), repr(name))
    return DATASHEETS[name]


def on_chip_sram_bytes(spec: Datasheet, registers: bool = True) -> int:
    """All the SRAM a GPU has on chip: SMs × (shared memory + registers) per SM (shared memory only
    with registers=False). Each thread block sees only its own SM's share of it."""
    return spec.sms * (spec.shared_per_sm + (spec.registers_per_sm if registers else 0))


def orders_of_magnitude(big: float, small: float) -> float:
    """log10(big / small): how many factors of ten separate two sizes."""
    check_float("orders_of_magnitude", "big", big, positive=True)
    check_float("orders_of_magnitude", "small", small, positive=True)
    return math.log10(big / small)


# ----------------------------------------------------------------------------------------------
# Floors: the exponentials a scan needs, and the copy bandwidth and exp throughput of a device.
# (Minimal versions with the names and signatures the benchmark's floors use; one definition each
# in this module.)
# ----------------------------------------------------------------------------------------------


def exp_count(s: ScanShape) -> int:
    """Exponentials one selective scan must compute: one exp(Δ·A) per state element, b·d·l·n."""
    return s.state_elements


def measure_copy_bandwidth(device: str | torch.device = "cpu", nbytes: int = 2**27, repeat: int = 5) -> float:
    """Bytes read + written per second by a copy of `nbytes` within `device` (x.copy_ on fp32
    buffers, median of `repeat` runs): the practical ceiling of a memory-bound kernel."""
    check_int("measure_copy_bandwidth", "nbytes", nbytes, minimum=4)
    x = torch.ones(nbytes // 4, dtype=torch.float32, device=device)  # (n,)
    y = torch.empty_like(x)  # (n,)
    seconds = median_seconds(lambda: y.copy_(x), repeat=repeat, warmup=1)
    return 2 * x.numel() * 4 / seconds


def measure_exp_throughput(device: str | torch.device = "cpu", n: int = 2**16, repeat: int = 5) -> float:
    """Exponentials per second the device computes when nothing else limits it.

    CUDA (with Triton): the exp2 chain kernel of `mamba_edu.kernels.floors`, which keeps the values
    in registers, so the special-function units are the limit (an elementwise torch.exp would be
    limited by memory traffic instead). Elsewhere: torch.exp on `n` fp32 values that fit in cache
    (median of `repeat`), the exp rate of the CPU's vector units."""
    check_int("measure_exp_throughput", "n", n)
    device = torch.device(device)
    if device.type == "cuda" and triton_version() is not None:
        from .kernels.floors import exp2_per_second

        return exp2_per_second(device)
    x = -torch.rand(n, device=device)  # (n,)
    y = torch.empty_like(x)  # (n,)
    seconds = median_seconds(lambda: torch.exp(x, out=y), repeat=repeat, warmup=2)
    return n / seconds


def peak_exp_per_s(device: str | torch.device = "cuda") -> float | None:
    """Derived peak exponentials per second of a CUDA device: SMs × 16 exp2 per clock per SM × the SM
    clock torch reports (None where torch does not report the clock)."""
    device = torch.device(device)
    p = torch.cuda.get_device_properties(device.index or 0)
    clock = getattr(p, "clock_rate", None)  # kHz
    return p.multi_processor_count * 16 * clock * 1e3 if clock else None


# ----------------------------------------------------------------------------------------------
# This machine's hierarchy, queried
# ----------------------------------------------------------------------------------------------


def _cuda_levels(index: int, hbm_bandwidth: float | None) -> list[MemoryLevel]:
    p = torch.cuda.get_device_properties(index)
    q = "queried: torch.cuda.get_device_properties"
    sms = p.multi_processor_count
    regs = getattr(p, "regs_per_multiprocessor", None)  # older torch versions lack some fields
    smem = getattr(p, "shared_memory_per_multiprocessor", None)
    l2 = getattr(p, "L2_cache_size", None)
    peak, peak_src = None, ""
    clock_khz, bus_bits = getattr(p, "memory_clock_rate", None), getattr(p, "memory_bus_width", None)
    if clock_khz and bus_bits:  # double data rate: two transfers per clock over the whole bus
        peak, peak_src = 2 * clock_khz * 1e3 * bus_bits / 8, f"{q} (2 × memory clock × bus width: the peak)"
    bw, bw_src = (hbm_bandwidth, "measured: device-to-device copy") if hbm_bandwidth else (peak, peak_src)
    clock = getattr(p, "clock_rate", None)  # kHz, the SM clock torch reports
    reg_bw = _register_bandwidth(sms, clock * 1e3) if clock else None
    smem_bw = _shared_bandwidth(sms, clock * 1e3) if clock else None
    rule = " × the SM clock torch reports" if clock else ""
    return [
        MemoryLevel("registers", None if regs is None else 4 * regs, sms, reg_bw, q,
                    _REGISTER_RULE + rule if clock else "not known"),
        MemoryLevel("shared memory", smem, sms, smem_bw, q, _SHARED_RULE + rule if clock else "not known"),
        MemoryLevel("L2 cache", l2, 1, None, q, "not measured"),
        MemoryLevel("HBM", p.total_memory, 1, bw, q, bw_src),
    ]


def _cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> list[tuple[str, int, int]]:
    """(name, bytes, CPUs sharing it) of CPU 0's data caches, read from Linux's sysfs ([] elsewhere)."""
    out = []
    for d in sorted(Path(root).glob("index[0-9]*")):
        try:
            kind = (d / "type").read_text().strip()
            level = int((d / "level").read_text())
            size = (d / "size").read_text().strip()
            shared = (d / "shared_cpu_list").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        mult = {"K": KiB, "M": MiB, "G": GiB}.get(size[-1:].upper(), 1)
        nbytes = int(size.rstrip("KMGkmg")) * mult
        cpus = sum(int(b) - int(a) + 1 for a, _, b in (r.partition("-") if "-" in r else (r, "-", r)
                                                          for r in shared.split(",") if r))
        out.append((f"L{level} cache", nbytes, max(cpus, 1)))
    return out


def _cpu_levels(dram_bandwidth: float | None) -> list[MemoryLevel]:
    import os

    q = "queried: Linux sysfs (CPU 0's caches)"
    levels = [MemoryLevel(name, nbytes, 1, None, q + (f", shared by {n} CPUs" if n > 1 else ""), "not measured")
              for name, nbytes, n in _cpu_caches()]
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        ram = None
    levels.append(MemoryLevel("DRAM", ram, 1, dram_bandwidth, "queried: os.sysconf (physical pages × page size)",
                              "measured: torch copy on the CPU" if dram_bandwidth else "not measured"))
    return levels


def memory_hierarchy(device: str | torch.device = "cuda", bandwidth: float | None = None) -> list[MemoryLevel]:
    """The memory levels of `device`, smallest and fastest first, sizes as the machine reports them.

    cuda: registers and shared memory per SM (× the SMs), L2 and HBM, from
    torch.cuda.get_device_properties; HBM's bandwidth is `bandwidth` when given (measure it with a
    copy), else the peak the properties imply (where torch reports the memory clock and bus width).
    cpu: the data caches (Linux sysfs) and DRAM, with `bandwidth` as DRAM's.
    """
    device = torch.device(device)
    if bandwidth is not None:
        check_float("memory_hierarchy", "bandwidth", bandwidth, positive=True)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fail("memory_hierarchy", "device", "a CUDA device that exists here (or 'cpu')", f"{device}, but "
                 "torch.cuda.is_available() is False")
        return _cuda_levels(device.index or 0, bandwidth)
    if device.type != "cpu":
        fail("memory_hierarchy", "device", "'cuda' or 'cpu'", str(device))
    return _cpu_levels(bandwidth)


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
# Measured points: benchmark results recorded on a GPU, or a scan timed here
# ----------------------------------------------------------------------------------------------

BENCH_SCHEMA = "mamba-edu-bench/1"
BENCH_DIR = Path(__file__).resolve().parents[1] / "results" / "bench"
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


def load_bench_results(folder=None) -> list[dict]:
    """Every benchmark result of schema "mamba-edu-bench/1" in `folder` (results/bench/ of the
    repository by default), sorted by file name; [] when there is none. Other JSON files are skipped."""
    import json

    folder = BENCH_DIR if folder is None else Path(folder)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == BENCH_SCHEMA:
            out.append({**data, "file": path.name})
    return out


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


def measure_point(impl: str, s: ScanShape, device: str | torch.device = "cpu", repeat: int = 3) -> RooflinePoint:
    """Time the registered implementation `impl` on random inputs of shape `s` on `device`
    (median_seconds) and place the run on the roofline with the IO model's bytes."""
    from .bench import selective_scan

    check_choice("measure_point", "impl", impl, IO_MODELS)
    device = torch.device(device)
    dtype = {2: torch.bfloat16, 4: torch.float32}.get(s.bytes_per_element)
    if dtype is None:
        fail("measure_point", "s", "a shape with bytes_per_element 2 or 4", s.bytes_per_element)
    b, d, l, n, g = s.batch, s.dim, s.L, s.N, s.groups
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=gen) * scale + shift).to(device=device, dtype=dtype)

    u, delta, z = rnd(b, d, l), rnd(b, d, l, scale=0.5, shift=-1.0), rnd(b, d, l)  # (b, d, l)
    A = -torch.rand(d, n, generator=gen).to(device) - 0.5  # (d, n) fp32
    B, C = (rnd(b, n, l), rnd(b, n, l)) if g == 1 else (rnd(b, g, n, l), rnd(b, g, n, l))  # (b, [g,] n, l)
    D, bias = torch.ones(d, device=device), torch.zeros(d, device=device)  # (d,)

    def run():
        selective_scan(u, delta, A, B, C, D=D if s.has_D else None, z=z if s.has_z else None,
                       delta_bias=bias if s.has_delta_bias else None, delta_softplus=True,
                       return_last_state=s.last_state, impl=impl)

    with torch.no_grad():
        seconds = median_seconds(run, repeat=repeat, warmup=1)
    return RooflinePoint(impl, s, seconds, IO_MODELS[impl](s), exp_count(s))


# ----------------------------------------------------------------------------------------------
# The backward pass's floor (used by `mamba-edu bench` for forward + backward)
# ----------------------------------------------------------------------------------------------


def backward_min_bytes(s: ScanShape) -> int:
    """The backward's floor: read u, Δ, z, B, C and ∂out once, write ∂u, ∂Δ, ∂z, ∂B, ∂C once
    (the parameters' gradients are small). Forward + backward together: min_bytes + this."""
    bdl = s.batch * s.dim * s.L
    per_tensor = bdl * s.bytes_per_element
    bc = s.batch * s.groups * s.N * s.L * s.bytes_per_element
    reads = per_tensor * (3 + int(s.has_z)) + 2 * bc  # u, Δ, ∂out (+ z); B, C
    writes = per_tensor * (2 + int(s.has_z)) + 2 * bc  # ∂u, ∂Δ (+ ∂z); ∂B, ∂C
    return reads + writes
