"""Figure builders of mamba_edu.viz.memory: what they plot is what the library computed."""


import pytest

from mamba_edu import iomodel
from mamba_edu.machine import DATASHEETS, MemoryLevel
from mamba_edu.iomodel import IO_MODELS, ScanShape
from mamba_edu.viz.cost import human_bytes
from mamba_edu.viz.memory import hierarchy_bars, human_rate, io_bars, roofline_plot
from plotly_data import arr


def test_human_rate():
    assert human_rate(3.35e12) == "3.35 TB/s"
    assert human_rate(2.5e9, "exp/s") == "2.5 Gexp/s"
    assert human_rate(12) == "12 B/s"


def test_hierarchy_bars_sizes_and_bandwidths_per_device():
    h100 = DATASHEETS["H100 SXM5 80GB"]
    cpu = [MemoryLevel("L1 cache", 32 * 1024, 1, None, "queried"), MemoryLevel("DRAM", 2**34, 1, 2e10, "queried",
                                                                                "measured")]
    fig = hierarchy_bars({"this CPU": cpu, h100.name: h100.levels()})
    d = fig.to_dict()
    sizes = [t for t in d["data"] if t["xaxis"] == "x"]
    bws = [t for t in d["data"] if t["xaxis"] == "x2"]
    assert [t["name"] for t in sizes] == ["this CPU", h100.name]
    assert list(sizes[1]["x"]) == ["registers", "shared memory", "L2 cache", "HBM"]
    assert list(arr(sizes[1]["y"])) == [lv.total_bytes for lv in h100.levels()]
    assert list(arr(sizes[0]["y"])) == [32 * 1024, 2**34]
    # the L2 of the H100 has no published bandwidth: no bar
    assert list(bws[1]["x"]) == ["registers", "shared memory", "HBM"]
    assert arr(bws[1]["y"])[-1] == h100.hbm_bandwidth
    assert list(bws[0]["x"]) == ["DRAM"] and "measured" in bws[0]["hovertext"][0]
    assert "132 SMs" in sizes[1]["hovertext"][0] and "datasheet" in sizes[1]["hovertext"][0]
    lay = d["layout"]
    assert lay["yaxis"]["type"] == "log" and lay["yaxis2"]["type"] == "log"
    assert lay["xaxis"]["categoryarray"][:3] == ["registers", "L1 cache", "shared memory"]
    assert lay["yaxis2"]["title"]["text"].startswith("bandwidth (bytes/s")
    assert human_bytes(2**30) in lay["yaxis"]["ticktext"]


def test_io_bars_show_bytes_ratio_and_time():
    s = ScanShape(8, 1536, 2048, 16)
    io = {k: f(s) for k, f in IO_MODELS.items()}
    floor = iomodel.min_bytes(s)
    fig = io_bars(io, floor=floor, times={k: v / 1e12 for k, v in io.items()}, time_label="at 1 TB/s")
    d = fig.to_dict()
    bar = d["data"][0]
    assert list(bar["y"]) == list(IO_MODELS) and list(arr(bar["x"])) == list(io.values())
    assert bar["text"][-1].startswith(human_bytes(floor) + " (1× the floor)")
    assert f"{io['parallel'] / floor:.3g}× the floor" in bar["text"][1] and "at 1 TB/s" in bar["text"][1]
    assert d["layout"]["xaxis"]["type"] == "log" and d["layout"]["shapes"][0]["x0"] == floor
    assert d["layout"]["xaxis"]["title"]["text"].startswith("bytes moved through HBM")


def test_roofline_plot_roofs_model_and_measured():
    peak, bw = 4e12, 2e12  # ridge at 2 ops/byte
    fig = roofline_plot({"GPU": (peak, bw), "CPU": (1e9, 2e10)}, model={"parallel": 0.04, "fused": 2.0},
                        measured={"runs": ([0.04], [1e9], ["parallel: 1 ms"])})
    d = fig.to_dict()
    gpu, cpu, model, runs = d["data"]
    x, y = arr(gpu["x"]), arr(gpu["y"])
    assert 2.0 in x  # the ridge is a vertex of the roof
    for xi, yi in zip(x, y):
        assert yi == pytest.approx(min(peak, xi * bw))
    assert list(model["text"]) == ["parallel", "fused"]
    assert list(arr(model["y"])) == [pytest.approx(0.04 * bw), pytest.approx(peak)]
    assert list(arr(runs["x"])) == [0.04] and list(arr(runs["y"])) == [1e9] and runs["name"] == "runs"
    lay = d["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["yaxis"]["type"] == "log"
    assert lay["xaxis"]["title"]["text"].startswith("arithmetic intensity (exp per byte")
    assert arr(cpu["y"]).max() == pytest.approx(1e9)
