"""Figure builders of `mamba_edu.viz.block`: what they plot is what they were given."""


import pytest
import torch

from mamba_edu.models import AttentionBlock, MambaBlock, parameter_breakdown, trace_block
from mamba_edu.viz.block import block_anatomy, decode_cost, parameters_by_part, throughput_vs_batch
from mamba_edu.viz.cost import human_bytes
from plotly_data import arr


def test_block_anatomy_shows_every_stage_with_shape_and_parameters():
    block = MambaBlock(16, d_state=4)
    stages = trace_block(block, torch.randn(2, 5, 16))
    d = block_anatomy(stages, title="anatomy").to_dict()
    boxes = [a for a in d["layout"]["annotations"] if not a.get("showarrow")]
    arrows = [a for a in d["layout"]["annotations"] if a.get("showarrow")]
    assert len(boxes) == len(stages)
    for s, box in zip([s for s in stages if s["branch"] == "main"] + [s for s in stages if s["branch"] == "gate"], boxes):
        assert box["text"].startswith(f"<b>{s['stage']}</b>")
        assert "(" + ", ".join(map(str, s["shape"])) + ")" in box["text"]
        assert (f"{s['parameters']:,} params" if s["parameters"] else "no parameters") in box["text"]
    gate = next(b for b in boxes if "gate" in b["text"])
    assert gate["y"] == 0 and all(b["y"] == 1 for b in boxes if b is not gate)
    assert len(arrows) == (len(stages) - 1 - 1) + 2  # the main chain, then split → gate → join
    hover = d["data"][0]["text"]
    assert hover[-1] == stages[2]["op"]  # the gate's operation on hover
    assert d["layout"]["xaxis"]["visible"] is False
    with pytest.raises(ValueError, match="'stages'"):
        block_anatomy([])


def test_parameters_by_part_stacks_each_model():
    bd = {"Mamba": parameter_breakdown(MambaBlock(16, d_state=4)), "attention": parameter_breakdown(AttentionBlock(16))}
    d = parameters_by_part(bd, title="p").to_dict()
    assert d["layout"]["barmode"] == "stack"
    names = [t["name"] for t in d["data"]]
    assert names == list(bd["Mamba"]) + list(bd["attention"])
    for t in d["data"]:
        assert list(t["y"]) == ["Mamba", "attention"] and t["orientation"] == "h"
        want = [float(bd[m].get(t["name"], 0)) for m in bd]
        assert list(arr(t["x"])) == want
    totals = [sum(float(arr(t["x"])[i]) for t in d["data"]) for i in range(2)]
    assert totals == [float(sum(bd["Mamba"].values())), float(sum(bd["attention"].values()))]
    in_proj = next(t for t in d["data"] if t["name"] == "in_proj")
    assert abs(arr(in_proj["customdata"])[0] - 100 * bd["Mamba"]["in_proj"] / totals[0]) < 1e-9


def test_decode_cost_two_panels():
    pos = [1, 10, 100]
    mem = {"mamba": [4096, 4096, 4096], "attention": [512, 5120, 51200]}
    sec = {"mamba": [1e-3, 1e-3, 1e-3], "attention": [1e-3, 2e-3, 5e-3]}
    d = decode_cost(pos, mem, sec, title="t").to_dict()
    assert [(t["name"], t["xaxis"]) for t in d["data"]] == [("mamba", "x"), ("attention", "x"), ("mamba", "x2"),
                                                            ("attention", "x2")]
    assert list(arr(d["data"][1]["y"])) == [512, 5120, 51200]
    assert list(d["data"][1]["text"]) == [human_bytes(v) for v in mem["attention"]]
    assert list(arr(d["data"][3]["y"])) == pytest.approx([1.0, 2.0, 5.0])  # milliseconds
    assert d["data"][0]["line"]["color"] == d["data"][2]["line"]["color"]
    assert d["data"][2]["showlegend"] is False
    lay = d["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["yaxis"]["type"] == "log"
    assert lay["yaxis"]["title"]["text"] == "bytes per sequence" and lay["yaxis2"]["title"]["text"].startswith("ms")
    assert "4.0 KiB" in lay["yaxis"]["ticktext"]


def test_throughput_vs_batch():
    b = [1, 4, 16]
    d = throughput_vs_batch(b, {"mamba": [100, 400, 1600]}, {"mamba": [10, 40, 160]}, title="t").to_dict()
    assert list(arr(d["data"][0]["x"])) == b and list(arr(d["data"][0]["y"])) == [100, 400, 1600]
    assert d["data"][1]["xaxis"] == "x2" and list(d["data"][1]["text"]) == ["10 B", "40 B", "160 B"]
    assert d["layout"]["xaxis"]["type"] == "log" and d["layout"]["yaxis"]["title"]["text"] == "tokens per second"
    only = throughput_vs_batch(b, {"x": [1, 2, 3]}).to_dict()
    assert len(only["data"]) == 1 and "xaxis2" not in only["layout"]
