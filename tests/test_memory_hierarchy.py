"""The memory hierarchy (mamba_edu.machine, mamba_edu.iomodel, mamba_edu.measure): datasheet table, queried levels, IO models,
roofline math, floors and benchmark results."""

import json
import math

import pytest
import torch

from mamba_edu import bench, iomodel, machine, measure, registry
from mamba_edu.machine import DATASHEETS
from mamba_edu.iomodel import IO_MODELS, ScanShape

SHAPE = ScanShape(batch=8, dim=1536, L=2048, N=16)


def test_datasheets_are_labelled_and_consistent():
    for name, spec in DATASHEETS.items():
        assert spec.name == name and "datasheet" in spec.source and "whitepaper" in spec.source
        assert spec.shared_per_sm <= spec.l1_shared_per_sm
        levels = spec.levels()
        assert [lv.name for lv in levels] == ["registers", "shared memory", "L2 cache", "HBM"]
        assert all(lv.size_source.startswith("datasheet:") for lv in levels)
        assert levels[0].total_bytes == spec.sms * spec.registers_per_sm and levels[0].units == spec.sms
        assert levels[3].total_bytes == spec.hbm_bytes and levels[3].bandwidth == spec.hbm_bandwidth
        # bandwidths fall level by level wherever they are known
        bws = [lv.bandwidth for lv in levels if lv.bandwidth]
        assert bws == sorted(bws, reverse=True)
        assert spec.peak_exp_per_s == spec.sms * 16 * spec.boost_clock_hz
    a100 = DATASHEETS["A100 SXM4 40GB"]
    assert a100.sms == 108 and a100.shared_per_sm == 164 * 1024
    assert DATASHEETS["H100 SXM5 80GB"].levels()[2].bandwidth is None  # L2 bandwidth: not published
    assert DATASHEETS["A100 SXM4 80GB"].levels()[2].bandwidth == 5120 * 1.41e9
    with pytest.raises(ValueError, match="'name'"):
        machine.datasheet("V100")
    assert machine.datasheet("A100 SXM4 40GB") is a100


def test_register_bandwidth_uses_the_gpu_s_fp32_lanes_per_sm():
    # the A100 has 64 FP32 lanes per SM, the H100 128: an FMA reads 3 operands of 4 B per lane per clock
    h100, a100 = DATASHEETS["H100 SXM5 80GB"], DATASHEETS["A100 SXM4 40GB"]
    assert (h100.fp32_lanes_per_sm, a100.fp32_lanes_per_sm) == (128, 64)
    assert DATASHEETS["A100 SXM4 80GB"].fp32_lanes_per_sm == 64
    assert h100.levels()[0].bandwidth == pytest.approx(132 * 128 * 3 * 4 * 1.98e9)
    assert a100.levels()[0].bandwidth == pytest.approx(108 * 64 * 3 * 4 * 1.41e9)
    assert "64 FP32 lanes" in a100.levels()[0].bandwidth_source
    assert "128 FP32 lanes" in h100.levels()[0].bandwidth_source
    assert [machine.fp32_lanes_per_sm(*cc) for cc in [(8, 0), (8, 6), (8, 9), (9, 0)]] == [64, 128, 128, 128]
    assert machine.fp32_lanes_per_sm(99, 0) is None
    with pytest.raises(ValueError, match="'major'"):
        machine.fp32_lanes_per_sm(-1, 0)
    info = machine.DeviceInfo("cuda", "NVIDIA A100-SXM4-40GB", 108, 40 * 2**30, "8.0")
    assert info.fp32_lanes_per_sm == 64
    assert machine.DeviceInfo("cuda", "H100", 132, 80 * 2**30, "9.0").fp32_lanes_per_sm == 128
    assert machine.DeviceInfo("cpu", "x86").fp32_lanes_per_sm is None


@pytest.mark.parametrize("cc, lanes", [((8, 0), 64), ((8, 6), 128), ((9, 0), 128), ((42, 1), None)])
def test_queried_register_bandwidth_follows_the_compute_capability(monkeypatch, cc, lanes):
    from types import SimpleNamespace

    props = SimpleNamespace(major=cc[0], minor=cc[1], multi_processor_count=10, regs_per_multiprocessor=65536,
                            shared_memory_per_multiprocessor=100 * 1024, L2_cache_size=2**20, total_memory=2**32,
                            memory_clock_rate=1_000_000, memory_bus_width=1024, clock_rate=1_000_000)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    reg = machine._cuda_levels(0, None)[0]
    if lanes is None:  # an unknown GPU: say so, never guess
        assert reg.bandwidth is None and "not known" in reg.bandwidth_source and "42.1" in reg.bandwidth_source
    else:
        assert reg.bandwidth == pytest.approx(10 * lanes * 12 * 1e9)
        assert f"{lanes} FP32 lanes" in reg.bandwidth_source


def test_sram_is_per_sm_tens_of_mb_three_orders_below_hbm():
    a100 = DATASHEETS["A100 SXM4 40GB"]
    shared = machine.on_chip_sram_bytes(a100, registers=False)
    assert shared == 108 * 164 * 1024
    for spec in DATASHEETS.values():
        sram = machine.on_chip_sram_bytes(spec)
        assert 10e6 <= sram <= 100e6  # tens of MB on the chip
        assert 2.5 < machine.orders_of_magnitude(spec.hbm_bytes, sram) < 4  # about three orders
        assert machine.orders_of_magnitude(spec.hbm_bytes, spec.shared_per_sm) > 5  # one SM: the misstatement
    assert machine.orders_of_magnitude(1000, 1) == pytest.approx(3)
    with pytest.raises(ValueError, match="'small'"):
        machine.orders_of_magnitude(1, 0)


def test_cpu_hierarchy_is_queried_and_takes_a_bandwidth():
    levels = machine.memory_hierarchy("cpu", bandwidth=1e10)
    assert levels[-1].name == "DRAM" and levels[-1].bandwidth == 1e10 and "measured" in levels[-1].bandwidth_source
    assert levels[-1].total_bytes and levels[-1].total_bytes > 2**28
    caches = [lv for lv in levels if lv.name.endswith("cache")]
    sizes = [lv.total_bytes for lv in caches]
    assert sizes == sorted(sizes)  # L1 < L2 < L3 where the machine reports them
    assert machine.memory_hierarchy("cpu")[-1].bandwidth is None
    with pytest.raises(ValueError, match="'bandwidth'"):
        machine.memory_hierarchy("cpu", bandwidth=-1.0)
    with pytest.raises(ValueError, match="'device'"):
        machine.memory_hierarchy("meta")


def test_cpu_caches_parse_sysfs(tmp_path):
    for i, (kind, level, size, shared) in enumerate([("Data", 1, "48K", "0,8"), ("Instruction", 1, "32K", "0"),
                                                     ("Unified", 2, "2048K", "0-1"), ("Unified", 3, "30M", "0-15")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        for f, v in (("type", kind), ("level", level), ("size", size), ("shared_cpu_list", shared)):
            (d / f).write_text(f"{v}\n")
    assert machine._cpu_caches(str(tmp_path)) == [("L1 cache", 48 * 1024, 2), ("L2 cache", 2 * 2**20, 2),
                                                   ("L3 cache", 30 * 2**20, 16)]
    assert machine._cpu_caches(str(tmp_path / "missing")) == []


def test_cuda_hierarchy_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="'device'"):
        machine.memory_hierarchy("cuda")


@pytest.mark.gpu
def test_cuda_hierarchy_is_queried():
    levels = machine.memory_hierarchy("cuda", bandwidth=1e12)
    p = torch.cuda.get_device_properties(0)
    assert [lv.name for lv in levels] == ["registers", "shared memory", "L2 cache", "HBM"]
    assert levels[0].units == p.multi_processor_count and levels[3].total_bytes == p.total_memory
    assert levels[3].bandwidth == 1e12


def test_io_models_are_the_registry_s_and_ordered():
    for name, entry in registry.implementations().items():
        if name in IO_MODELS:
            assert entry.bytes_moved is IO_MODELS[name]
    io = {k: f(SHAPE) for k, f in IO_MODELS.items()}
    assert io["fused"] == iomodel.min_bytes(SHAPE) < io["triton_scan"] < io["naive"] < io["parallel"]
    assert iomodel.materialised_bytes(SHAPE) - io["fused"] == 6 * SHAPE.state_elements * 4  # the lower bound
    assert iomodel.materialised_bytes(SHAPE) < io["parallel"]


@pytest.mark.parametrize("L", [1, 2, 3, 7, 8, 13, 64, 100, 257])
def test_scan_inplace_combines_are_counted_by_the_operators_it_runs(L):
    # each combine of scan_inplace is addcmul_ (read 3, write 1) and mul_ (read 2, write 1): 7 element accesses
    from mamba_edu.scan import scan_inplace

    a, b = torch.rand(L), torch.randn(L)
    read, written = measure.op_bytes(lambda: scan_inplace(a, b))
    assert read + written == 7 * iomodel.scan_inplace_combines(L) * 4
    assert iomodel.scan_inplace_combines(L) <= 2 * L  # ~2·log2 L levels, but only ~2L combines in all
    with pytest.raises(ValueError, match="'L'"):
        iomodel.scan_inplace_combines(0)


@pytest.mark.parametrize("b, d, L, n", [(1, 64, 256, 16), (2, 32, 100, 16)])
def test_parallel_bytes_match_the_traffic_its_operators_make(b, d, L, n):
    # the model counts the (b, d, l, n) passes; the measurement sees every eager operator, including the
    # (b, d, l)-sized ones the model leaves out (about 1/n of a pass each): within 15 % above the model
    g = torch.Generator().manual_seed(L)
    u, dl, z = (torch.randn(b, d, L, generator=g) for _ in range(3))
    A, B, C = -torch.rand(d, n, generator=g), torch.randn(b, n, L, generator=g), torch.randn(b, n, L, generator=g)
    s = ScanShape(b, d, L, n, bytes_per_element=4)
    read, written = measure.op_bytes(
        lambda: registry.selective_scan(u, dl, A, B, C, torch.ones(d), z, torch.zeros(d), True, impl="parallel"))
    assert iomodel.parallel_bytes(s) <= read + written <= 1.15 * iomodel.parallel_bytes(s)
    assert read + written > 2.5 * iomodel.materialised_bytes(s)  # the 6-pass figure is a loose lower bound
    read_n, written_n = measure.op_bytes(
        lambda: registry.selective_scan(u, dl, A, B, C, torch.ones(d), z, torch.zeros(d), True, impl="naive"))
    assert iomodel.naive_bytes(s) <= read_n + written_n <= 1.2 * iomodel.naive_bytes(s)


def test_op_bytes_skips_views_and_counts_in_place_ops():
    x = torch.randn(8, 16)
    assert measure.op_bytes(lambda: x.t()[2:5].unsqueeze(0)) == (0, 0)  # views move nothing
    assert measure.op_bytes(lambda: x.t()[2:5].reshape(-1)) == (3 * 8 * 4, 3 * 8 * 4)  # not contiguous: a copy
    assert measure.op_bytes(lambda: x + 1) == (8 * 16 * 4, 8 * 16 * 4)
    assert measure.op_bytes(lambda: x.mul_(2)) == (8 * 16 * 4, 8 * 16 * 4)
    y = torch.empty(8, 16)
    assert measure.op_bytes(lambda: y.copy_(x)) == (8 * 16 * 4, 8 * 16 * 4)  # copy_ does not read y
    assert measure.op_bytes(lambda: x[:, :1].expand(8, 16) * 1.0)[0] == 8 * 4  # stride 0: read once
    assert measure.op_traffic(lambda: (x + 1).exp_().t().sum())[0] == 3  # add, exp_, sum: three launches


def test_roofline_math():
    assert iomodel.exp_count(SHAPE) == 8 * 1536 * 2048 * 16
    intensity = iomodel.arithmetic_intensity("fused", SHAPE)
    assert intensity == pytest.approx(iomodel.exp_count(SHAPE) / iomodel.fused_bytes(SHAPE))
    assert iomodel.arithmetic_intensity("parallel", SHAPE) < intensity
    assert iomodel.ridge_intensity(10.0, 2.0) == 5.0
    assert iomodel.attainable(1.0, 10.0, 2.0) == 2.0 and iomodel.attainable(50.0, 10.0, 2.0) == 10.0
    t = torch.tensor([1.0, 5.0, 50.0], dtype=torch.float64)
    assert iomodel.attainable(t, 10.0, 2.0).tolist() == [2.0, 10.0, 10.0]
    assert iomodel.time_floor(100, 10, 10.0, 2.0) == 10.0 and iomodel.time_floor(100, 1000, 10.0, 2.0) == 500.0
    with pytest.raises(ValueError, match="'impl'"):
        iomodel.arithmetic_intensity("official_cuda", SHAPE)
    with pytest.raises(ValueError, match="'peak'"):
        iomodel.attainable(1.0, 0.0, 1.0)


def test_floors_measured_on_the_cpu_are_plausible():
    bw = measure.measure_copy_bandwidth("cpu", nbytes=2**22, repeat=3)
    assert 1e8 < bw < 1e13  # between 100 MB/s and 10 TB/s
    ex = measure.measure_exp_throughput("cpu", n=2**14, repeat=3)
    assert 1e6 < ex < 1e12
    with pytest.raises(ValueError, match="'nbytes'"):
        measure.measure_copy_bandwidth("cpu", nbytes=0)


def test_measure_point_times_a_registered_implementation():
    s = ScanShape(1, 4, 16, 4, bytes_per_element=4)
    p = measure.measure_point("parallel", s, "cpu", repeat=1)
    assert p.impl == "parallel" and p.nbytes == iomodel.parallel_bytes(s) and p.ops == 4 * 16 * 4
    assert p.seconds > 0 and p.achieved == pytest.approx(p.ops / p.seconds)
    assert p.intensity == pytest.approx(p.ops / p.nbytes) and p.bytes_per_s == pytest.approx(p.nbytes / p.seconds)
    with pytest.raises(ValueError, match="'s'"):
        measure.measure_point("parallel", ScanShape(1, 4, 16, 4, bytes_per_element=8))


def test_bench_results_load_and_become_points(tmp_path):
    assert bench.load_bench_results(tmp_path / "none") == []
    case = dict(impl="fused", batch=2, dim=64, L=128, N=16, dtype="bfloat16", status="ok", ms=0.5, bytes=10_000)
    result = {"schema": "mamba-edu-bench/1", "device": {"name": "NVIDIA H100 80GB HBM3"},
              "floors": {"copy_bytes_per_s": 3e12, "exp_per_s": 4e12},
              "cases": [{**case, "pass": "forward"}, {**case, "pass": "forward_backward"},
                        {**case, "pass": "forward", "status": "oom"}, {**case, "pass": "forward", "impl": "parallel",
                                                                       "dtype": "float32", "ms": 2.0}]}
    (tmp_path / "b.json").write_text(json.dumps(result))
    (tmp_path / "a.json").write_text(json.dumps({"schema": "other"}))
    (tmp_path / "c.json").write_text("not json")
    loaded = bench.load_bench_results(tmp_path)
    assert [r["file"] for r in loaded] == ["b.json"]
    pts = iomodel.bench_points(loaded[0])
    assert [p.impl for p in pts] == ["fused", "parallel"]
    assert pts[0].shape == ScanShape(2, 64, 128, 16) and pts[1].shape.bytes_per_element == 4
    assert pts[0].seconds == 0.5e-3 and pts[0].nbytes == 10_000 and pts[0].ops == 2 * 64 * 128 * 16
    assert math.isclose(pts[0].achieved, pts[0].ops / 0.5e-3)
    assert len(iomodel.bench_points(loaded[0], "forward_backward")) == 1


def test_recorded_results_in_the_repository_follow_the_schema():
    for r in bench.load_bench_results():
        assert r["device"]["name"] and r["cases"]
        for p in iomodel.bench_points(r):
            assert p.seconds > 0 and p.nbytes > 0 and p.impl
