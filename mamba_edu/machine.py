"""The device we run on and its memory hierarchy (chapter 08).

The levels of this device (queried from torch or Linux), and datasheet figures of the H100 and A100
(recorded, with their source).

    level           where        H100 SXM5 (datasheet)              who decides what lives there
    registers       per SM       256 KiB × 132 SMs                  the compiler, per thread
    shared memory   per SM       up to 228 KiB × 132 SMs            the kernel (a thread block's scratch)
    L2 cache        whole GPU    50 MiB                             the hardware (a cache)
    HBM             whole GPU    80 GiB, 3.35 TB/s                  the program (every tensor lives here)

On-chip SRAM (registers + shared memory) is per SM: the whole GPU has tens of MB of it, about
three orders of magnitude less than HBM (10^3, not 10^5), and each thread block sees only its
own SM's share. Kernel fusion means computing discretisation, scan and C-projection in ONE
kernel, so the (batch, dim, L, N) intermediates stay in that SRAM and never travel to HBM.
"""

from __future__ import annotations

import functools
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_float, check_int, fail

KiB, MiB, GiB = 2**10, 2**20, 2**30


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


def _release(version: str) -> tuple[int, int]:
    """"3.6.0" → (3, 6)."""
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


@functools.cache
def interpreter_problem() -> str | None:
    """Why Triton's interpreter cannot run the kernels with the installed NumPy, or None.

    Triton 3.6's interpreter runs `range(0, N)` over a scalar argument by calling int() on a
    one-element array, which NumPy 2.4 refuses ("only 0-dimensional arrays can be converted to
    Python scalars"); Triton 3.7 and later run with NumPy 2.3 and 2.4 alike.
    """
    import numpy
    import triton

    if _release(triton.__version__) < (3, 7) and _release(numpy.__version__) >= (2, 4):
        return (f"Triton {triton.__version__}'s interpreter cannot run with NumPy {numpy.__version__}: "
                "install numpy<2.4 or triton>=3.7")
    return None


def describe_device(index: int = 0) -> DeviceInfo:
    """Describe CUDA device `index`, or the CPU when there is no GPU."""
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
# Memory levels and datasheets
# ----------------------------------------------------------------------------------------------


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

