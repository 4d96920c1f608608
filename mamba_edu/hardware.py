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
