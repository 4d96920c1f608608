"""Measuring: wall time, peak memory, a power-law fit, and the floors of a device (copy bandwidth,
exp throughput), and one implementation timed and placed on the roofline.

    median_seconds      median wall time of a function (the device synchronised around each run)
    peak_memory_bytes   the most bytes PyTorch allocated while a function ran (CPU or CUDA)
    op_traffic          the operators (GPU launches) eager PyTorch runs for a function, and the bytes they
                        read and write; op_bytes: the bytes only
    fit_power_law       y ≈ c·x^p on a log–log scale: the exponent of a cost against L
    floors              copy bandwidth (bytes read + written per second) and exp2 throughput: the two
                        ceilings a selective scan can reach (bytes / bandwidth, exps / exp rate)
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import torch

from ._checks import check_choice, check_int, fail
from .machine import triton_version
from .iomodel import IO_MODELS, RooflinePoint, ScanShape, exp_count
from .registry import selective_scan


def median_seconds(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeat` runs after `warmup` untimed ones (time.perf_counter).

    On a GPU the device is synchronised around every run, so the time covers the work, not the launch.
    """
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


class stderr_silenced:
    """Send file descriptor 2 to /dev/null for a while: the profiler's C++ side prints a
    start/stop line there that would clutter every notebook cell."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
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

    with stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
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


_NO_READ_OF_SELF = {"copy_", "fill_", "zero_"}  # in-place ops that overwrite self without reading it


def _touched_bytes(t: torch.Tensor) -> int:
    """Bytes of distinct memory a tensor view covers: expanded (stride-0) dimensions count once."""
    n = 1
    for size, stride in zip(t.shape, t.stride()):
        n *= size if stride != 0 else 1
    return n * t.element_size() if t.numel() else 0


def op_traffic(fn) -> tuple[int, int, int]:
    """(operators, bytes read, bytes written) of the PyTorch operators `fn()` runs, counted op by op.

    Every aten operator that reaches the dispatcher is seen (a TorchDispatchMode): it is taken to read each
    tensor argument once and write each result once, which is what an eager kernel does, and each counted
    operator is one kernel launch on a GPU. Views (slicing, reshape, transpose: no data moves) and
    allocations (empty) count nothing; copy_/fill_/zero_ do not read the tensor they overwrite. This
    measures the traffic of eager code, caches ignored; it sees only PyTorch operators (not the inside of a
    Triton or custom kernel)."""
    from torch.utils._python_dispatch import TorchDispatchMode  # noqa: PLC0415
    from torch.utils._pytree import tree_flatten  # noqa: PLC0415

    counts = [0, 0, 0]

    class _Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            schema = func._schema
            is_view = any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)
            name = schema.name.split("::")[-1]
            if is_view or name.startswith("empty") or name in ("alias", "lift_fresh", "detach", "_unsafe_view"):
                return out
            ins = [a for a in tree_flatten((args, kwargs or {}))[0] if isinstance(a, torch.Tensor)]
            if name in _NO_READ_OF_SELF and ins:
                ins = ins[1:]
            counts[0] += 1
            counts[1] += sum(_touched_bytes(t) for t in ins)
            counts[2] += sum(_touched_bytes(t) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
            return out

    with _Count():
        fn()
    return counts[0], counts[1], counts[2]


def op_bytes(fn) -> tuple[int, int]:
    """(bytes read, bytes written) by the PyTorch operators `fn()` runs (see `op_traffic`)."""
    return op_traffic(fn)[1:]


def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of y ≈ c·x^p on a log–log scale; returns (c, p). The slope p is the exponent."""
    xs = torch.as_tensor(x, dtype=torch.float64).flatten()  # (m,)
    ys = torch.as_tensor(y, dtype=torch.float64).flatten()  # (m,)
    if xs.numel() != ys.numel() or xs.numel() < 2:
        fail("fit_power_law", "x, y", "two sequences of the same length >= 2", f"{xs.numel()} and {ys.numel()} values")
    if not bool((xs > 0).all() and (ys > 0).all()):
        fail("fit_power_law", "x, y", "strictly positive values (a log–log fit)", "a value <= 0")
    X = torch.stack([torch.ones_like(xs), xs.log()], dim=1)  # (m, 2)
    coef = torch.linalg.lstsq(X, ys.log()[:, None]).solution[:, 0]  # (2,): log c, p
    return math.exp(float(coef[0])), float(coef[1])



# ----------------------------------------------------------------------------------------------
# Floors: the copy bandwidth and exp throughput of a device
# ----------------------------------------------------------------------------------------------


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



def measure_point(impl: str, s: ScanShape, device: str | torch.device = "cpu", repeat: int = 3) -> RooflinePoint:
    """Time the registered implementation `impl` on random inputs of shape `s` on `device`
    (median_seconds) and place the run on the roofline with the IO model's bytes."""
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
