"""The Memory hierarchy page through Streamlit's AppTest: defaults, every control at its extremes,
recorded results when present, decoded figures."""

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mamba_edu import bench, iomodel
from mamba_edu.machine import DATASHEETS
from mamba_edu.iomodel import IO_MODELS, ScanShape
from app_rerun import rerun_from_cache
from plotly_data import arr

APP = Path(__file__).resolve().parents[1] / "app"
PAGE = str(APP / "pages" / "memory.py")
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))  # the pages import _common, as they do under app/Home.py


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def figures(at):
    hierarchy, io, roof = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return hierarchy, io, roof


def check_io(at, shape):
    _, io, roof = figures(at)
    bar = io["data"][0]
    assert list(bar["y"]) == list(IO_MODELS)
    assert list(arr(bar["x"])) == [model(shape) for model in IO_MODELS.values()]
    model = next(t for t in roof["data"] if t.get("name", "").startswith("IO model"))
    assert list(model["text"]) == list(IO_MODELS)
    assert list(arr(model["x"])) == pytest.approx([iomodel.arithmetic_intensity(i, shape) for i in IO_MODELS])
    table = at.dataframe[0].value
    assert list(table["implementation"]) == list(IO_MODELS)
    assert list(table["× the floor"]) == [round(m(shape) / iomodel.min_bytes(shape), 2) for m in IO_MODELS.values()]


def test_defaults(app):
    assert app.title[0].value == "Memory hierarchy"
    assert not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["HBM bandwidth, H100 SXM5 80GB (datasheet)"] == "3.35 TB/s"
    hierarchy, _, roof = figures(app)
    names = [t["name"] for t in hierarchy["data"] if t["xaxis"] == "x"]
    assert names[1:] == ["H100 SXM5 80GB", "A100 SXM4 40GB"]
    h100 = next(t for t in hierarchy["data"] if t["name"] == "H100 SXM5 80GB" and t["xaxis"] == "x")
    assert list(arr(h100["y"])) == [lv.total_bytes for lv in DATASHEETS["H100 SXM5 80GB"].levels()]
    check_io(app, ScanShape(8, 1536, 2048, 16))
    # the first roof is the H100's (on a CPU machine), its peak the datasheet-derived exp rate
    first = roof["data"][0]
    assert first["name"].startswith("roof: H100") or first["name"].startswith("roof: this GPU")
    if first["name"].startswith("roof: H100"):
        assert arr(first["y"]).max() == pytest.approx(DATASHEETS["H100 SXM5 80GB"].peak_exp_per_s)
    if not bench.load_bench_results():
        assert any("No recorded GPU benchmark results" in i.value for i in app.info)


def test_rerun_at_defaults_uses_the_cache(app, monkeypatch):
    rerun_from_cache(app, monkeypatch, ["mamba_edu.measure.measure_copy_bandwidth",
                                        "mamba_edu.measure.measure_exp_throughput",
                                        "mamba_edu.measure.measure_point", "mamba_edu.machine.memory_hierarchy"])
    assert app.title[0].value == "Memory hierarchy" and len(app.get("plotly_chart")) == 3


@pytest.mark.parametrize("end", [0, -1])
def test_calculator_at_its_extremes(app, end):
    values = {}
    for key in ("batch", "L", "dim", "N"):
        s = app.select_slider(key)
        values[key] = s.options[end]
        s.set_value(s.options[end])
    app.radio("dtype").set_value("fp32" if end else "bf16")
    app.selectbox("target").set_value(app.selectbox("target").options[end])
    app.run()
    assert not app.exception and not app.error
    shape = ScanShape(int(values["batch"]), int(values["dim"]), int(values["L"]), int(values["N"]),
                      bytes_per_element=4 if end else 2)
    check_io(app, shape)


def test_recorded_results_are_plotted(tmp_path, monkeypatch):
    case = dict(impl="parallel", batch=4, dim=256, L=1024, N=16, dtype="bfloat16", status="ok", ms=1.5,
                bytes=iomodel.materialised_bytes(ScanShape(4, 256, 1024, 16)))
    result = {"schema": "mamba-edu-bench/1", "device": {"name": "NVIDIA H100 80GB HBM3", "multiprocessors": 132},
              "floors": {"copy_bytes_per_s": 2.9e12, "exp_per_s": 3.9e12},
              "cases": [{**case, "pass": "forward"}, {**case, "pass": "forward", "status": "wrong"}]}
    (tmp_path / "h100.json").write_text(json.dumps(result))
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    assert not any("No recorded GPU benchmark results" in i.value for i in at.info)
    _, _, roof = figures(at)
    runs = next(t for t in roof["data"] if t["name"] == "NVIDIA H100 80GB HBM3: h100.json")
    shape = ScanShape(4, 256, 1024, 16)
    assert list(arr(runs["x"])) == pytest.approx([iomodel.exp_count(shape) / case["bytes"]])
    assert list(arr(runs["y"])) == pytest.approx([iomodel.exp_count(shape) / 1.5e-3])
    # its measured floors are offered as a roof to time against
    target = "NVIDIA H100 80GB HBM3 (measured floors, h100.json)"
    assert target in at.selectbox("target").options
    at.selectbox("target").set_value(target)
    at.run()
    _, _, roof = figures(at)
    assert roof["data"][0]["name"] == f"roof: {target}"
    assert arr(roof["data"][0]["y"]).max() == pytest.approx(3.9e12)
