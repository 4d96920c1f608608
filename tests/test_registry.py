"""The registry's IO model per implementation, and the device description."""

import pytest
import torch

import mamba_edu
from mamba_edu import iomodel, machine
from mamba_edu.iomodel import ScanShape, min_bytes
from mamba_edu.iomodel import materialised_bytes, scan_inplace_combines
from mamba_edu.registry import Implementation, io_bytes


def test_floor_matches_the_hand_count_for_the_target_shape():
    """(8, 1536, 2048, 16) in bf16 with z: u, Δ, z and out are 8·1536·2048·2 bytes each, B and C
    8·16·2048·2 each; at 2.9 TB/s that is the ≈0.069 ms floor the benchmark compares against."""
    s = ScanShape(batch=8, dim=1536, L=2048, N=16)
    bdl = 8 * 1536 * 2048
    by_hand = 4 * bdl * 2 + 2 * 8 * 16 * 2048 * 2 + 1536 * 16 * 4 + 2 * 1536 * 4
    assert min_bytes(s) == by_hand
    assert abs(min_bytes(s) / 2.9e12 * 1e3 - 0.0698) < 0.001


def test_every_registered_implementation_has_a_byte_count_at_least_the_floor():
    s = ScanShape(batch=2, dim=64, L=100, N=16, groups=2, bytes_per_element=4, last_state=True)
    for name in mamba_edu.implementations():
        assert io_bytes(name, s) >= min_bytes(s)
    # materialising costs the (b, d, l, n) tensors: at least 6 fp32 passes (materialised_bytes, the lower
    # bound), and `parallel` really makes 5 + 7·combines(L)/L of them (parallel_bytes)
    assert io_bytes("parallel", s) - min_bytes(s) == (5 * 100 + 7 * scan_inplace_combines(100)) * 2 * 64 * 16 * 4
    assert io_bytes("parallel", s) > materialised_bytes(s) - min_bytes(s) + min_bytes(s)
    with pytest.raises(ValueError, match="argument 'impl'"):
        io_bytes("warp-drive", s)


def test_shape_validation():
    with pytest.raises(ValueError, match="argument 'L'"):
        ScanShape(batch=1, dim=4, L=0, N=4)
    with pytest.raises(ValueError, match="argument 'groups'"):
        ScanShape(batch=1, dim=4, L=8, N=4, groups=3)
    with pytest.raises(ValueError, match="argument 'N'"):
        ScanShape(batch=1, dim=4, L=8, N=2.5)


def test_describe_device_here():
    dev = machine.describe_device()
    if torch.cuda.is_available():
        assert dev.kind == "cuda" and dev.multiprocessors > 0
    else:
        assert dev.kind == "cpu" and "CPU only" in dev.summary()
    assert dev.triton_mode in ("gpu", "interpreter (CPU, slow)", "unavailable")


def test_availability_explains_itself(monkeypatch):
    gpu_only = Implementation("x", "needs a GPU", "mamba_edu.selective:selective_scan_ref",
                              iomodel.fused_bytes, needs_gpu=True)
    ok, why = gpu_only.available("cpu")
    assert not ok and "GPU" in why
    tri = Implementation("t", "triton", "mamba_edu.selective:selective_scan_ref", iomodel.fused_bytes,
                         needs_triton=True)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    ok, why = tri.available("cpu")
    assert not ok and ("TRITON_INTERPRET" in why or "Triton" in why)
    pkg = Implementation("o", "official", "x:y", iomodel.fused_bytes, needs_package="surely_not_installed_pkg")
    assert pkg.available("cpu") == (False, "the package 'surely_not_installed_pkg' is not installed")
