"""Checks for chapter 08 (the GPU memory hierarchy).

    check_sram_gap(fn)            fn(spec) -> (all shared memory on the chip in bytes, log10(HBM / it))
    check_materialised_bytes(fn)  fn(batch, dim, L, N) -> the bytes the (batch, dim, L, N) fp32
                                  intermediates add to the parallel implementation's HBM traffic
    check_attainable(fn)          fn(intensity, peak, bandwidth) -> the roofline's attainable ops/s

Each compares the learner's function with `mamba_edu.machine` and `mamba_edu.iomodel` (the datasheet table, the IO model,
the roofline) and returns a Verdict; none raises.
"""

from __future__ import annotations

import math

import torch

from .. import iomodel, machine
from ..registry import io_bytes
from ..viz.cost import human_bytes
from ._core import Mismatch, Verdict, compare, run_check


def _number(got, what: str) -> float:
    if got is None:
        raise Mismatch(f"{what}: your function returned None (is there a `return`?)")
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got):
        raise Mismatch(f"{what}: expected a finite number, got {got!r}")
    return float(got)


# ----------------------------------------------------------------------------------------------
# Exercise: shared memory is per SM
# ----------------------------------------------------------------------------------------------

# a made-up small GPU, so that the answer cannot be copied from the chapter's printout
_TINY = machine.Datasheet("a made-up small GPU", 10, 64 * 1024, 48 * 1024, 64 * 1024, 2 * 2**20, 4 * 2**30,
                           2e11, 1e9, None, "made up for this check")


def _sram_case(spec: machine.Datasheet):
    def test(fn):
        out = fn(spec)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise Mismatch(f"expected a pair (bytes, orders of magnitude), got {type(out).__name__}")
        total, orders = _number(out[0], "bytes"), _number(out[1], "orders of magnitude")
        want = machine.on_chip_sram_bytes(spec, registers=False)
        if total != want:
            hint = ""
            if total == spec.shared_per_sm:
                hint = (" — that is ONE SM's shared memory: every SM has its own, multiply by the number of SMs "
                        f"({spec.sms})")
            elif total == spec.sms * spec.l1_shared_per_sm:
                hint = " — that counts the whole L1/shared block; a kernel can use at most shared_per_sm of it"
            elif total == machine.on_chip_sram_bytes(spec):
                hint = " — that includes the registers; count shared memory only"
            raise Mismatch(f"bytes: expected {int(want)} ({human_bytes(want)}), got {total:.0f} "
                           f"({human_bytes(total)}){hint}")
        want_o = machine.orders_of_magnitude(spec.hbm_bytes, want)
        if abs(orders - want_o) > 1e-6:
            hint = ""
            if abs(orders - machine.orders_of_magnitude(spec.hbm_bytes, spec.shared_per_sm)) < 1e-6:
                hint = (" — that compares HBM with ONE SM's shared memory: the 'five orders of magnitude' of the "
                        "common misstatement")
            elif abs(orders - math.log(spec.hbm_bytes / want)) < 1e-6:
                hint = " — that is the natural log; orders of magnitude are log10"
            raise Mismatch(f"orders of magnitude: expected {want_o:.4f}, got {orders:.4f}{hint}")
    return f"{spec.name}", test


def check_sram_gap(fn, quiet: bool = False) -> Verdict:
    """fn(spec: machine.Datasheet) -> (bytes, orders): all the shared memory on the chip
    (spec.sms × spec.shared_per_sm) and log10(spec.hbm_bytes / bytes). Compared with
    `machine.on_chip_sram_bytes(spec, registers=False)` on the recorded GPUs and a made-up one."""
    cases = [_sram_case(spec) for spec in machine.DATASHEETS.values()] + [_sram_case(_TINY)]
    return run_check("sram_gap", fn, cases, quiet=quiet,
                     forbid=(machine.on_chip_sram_bytes, machine.orders_of_magnitude, machine.memory_hierarchy),
                     success="correct: tens of MB of shared memory in all, about three orders of magnitude "
                             "below HBM, and each SM sees only its own share.")


# ----------------------------------------------------------------------------------------------
# Exercise: what materialising costs
# ----------------------------------------------------------------------------------------------


def _materialised_case(name: str, b: int, d: int, L: int, N: int):
    def test(fn):
        s = iomodel.ScanShape(b, d, L, N)
        want = iomodel.materialised_bytes(s) - iomodel.min_bytes(s)
        got = _number(fn(b, d, L, N), "bytes")
        if got != want:
            e = b * d * L * N
            hints = {e * 6: "that counts elements: each fp32 element is 4 bytes",
                     e * 12: "half of it: the intermediates are fp32 (4 bytes) whatever the inputs' dtype, "
                             "and each of Ab, Bbu and h is written once AND read once",
                     e * 4 * 2: "that counts only the writes of Ab and Bbu: the scan reads them again, writes h, "
                                "and the C-projection reads h",
                     e * 4 * 4: "h is written by the scan and read back by the C-projection too"}
            hint = hints.get(int(got), "")
            raise Mismatch(f"expected {int(want)} bytes ({human_bytes(want)}), got {got:.0f} ({human_bytes(got)})"
                           + (f": {hint}" if hint else ""))
    return name, test


def check_materialised_bytes(fn, quiet: bool = False) -> Verdict:
    """fn(batch, dim, L, N) -> bytes: the extra HBM traffic of the parallel implementation's
    materialised (batch, dim, L, N) fp32 tensors (Ab and Bbu written, read by the scan, h written,
    read by the C-projection). Compared with `iomodel.materialised_bytes − iomodel.min_bytes`."""
    cases = [_materialised_case("a Mamba-130M layer: batch 8, dim 1536, L 2048, N 16", 8, 1536, 2048, 16),
             _materialised_case("tiny: batch 1, dim 2, L 3, N 4", 1, 2, 3, 4),
             _materialised_case("long context: batch 1, dim 5120, L 65536, N 16", 1, 5120, 65536, 16)]
    return run_check("materialised_bytes", fn, cases, quiet=quiet,
                     forbid=(iomodel.materialised_bytes, iomodel.min_bytes, io_bytes, iomodel.fused_bytes,
                             iomodel.triton_scan_bytes, iomodel.naive_bytes, iomodel.arithmetic_intensity))


# ----------------------------------------------------------------------------------------------
# Exercise: the roofline
# ----------------------------------------------------------------------------------------------


def _roof_case(name: str, peak: float, bandwidth: float):
    def test(fn):
        ridge = iomodel.ridge_intensity(peak, bandwidth)
        intensity = torch.tensor([ridge / 100, ridge / 2, ridge, 2 * ridge, 100 * ridge], dtype=torch.float64)
        want = iomodel.attainable(intensity, peak, bandwidth)
        got = fn(intensity.clone(), peak, bandwidth)
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            if torch.allclose(got.to(torch.float64), torch.maximum(intensity * bandwidth, torch.full_like(want, peak))):
                raise Mismatch("that is the maximum of the two roofs: a kernel is held back by the LOWER one (min)")
            if torch.allclose(got.to(torch.float64), intensity * peak):
                raise Mismatch("intensity × peak mixes units: the sloped roof is intensity (ops/byte) × "
                               "bandwidth (bytes/s)")
        compare(got, want, f"attainable ops/s (ridge at {ridge:.3g} ops/byte)", rtol=1e-9, atol=0)
    return name, test


def check_attainable(fn, quiet: bool = False) -> Verdict:
    """fn(intensity (a 1-D tensor, ops/byte), peak (ops/s), bandwidth (bytes/s)) -> a tensor of the
    attainable ops/s min(peak, intensity × bandwidth). Compared with `iomodel.attainable` at
    intensities on both sides of the ridge."""
    h100 = machine.DATASHEETS["H100 SXM5 80GB"]
    cases = [_roof_case("H100 (datasheet): exp peak and HBM bandwidth", h100.peak_exp_per_s, h100.hbm_bandwidth),
             _roof_case("a CPU-like machine: 1e9 ops/s, 2e10 bytes/s", 1e9, 2e10),
             _roof_case("a bandwidth-rich machine: 1e12 ops/s, 1e13 bytes/s", 1e12, 1e13)]
    return run_check("attainable", fn, cases, quiet=quiet,
                     forbid=(iomodel.attainable, iomodel.ridge_intensity, iomodel.time_floor))
