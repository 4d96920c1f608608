"""mamba_edu.viz.inside: each figure draws exactly the numbers it is given, in the stated layout."""

import math

import pytest
import torch

from mamba_edu.viz import inside
from plotly_data import tensor as arr


def test_token_strip_wraps_like_text_and_marks_the_chosen_token():
    labels = list("abcdefghij")
    vals = torch.arange(10.0)
    vals[-1] = float("nan")
    fig = inside.token_strip(labels, vals, selected=3, per_row=4).to_dict()
    tokens, missing, chosen = fig["data"]
    assert tokens["text"] == labels and tokens["customdata"] == list(range(10))
    assert list(arr(tokens["x"])) == [i % 4 for i in range(10)] and list(arr(tokens["y"])) == [i // 4 for i in range(10)]
    colors = arr(tokens["marker"]["color"])
    assert torch.equal(colors[:-1], vals[:-1].double()) and math.isnan(float(colors[-1]))
    assert list(arr(missing["x"])) == [1] and missing["hoverinfo"] == "skip"  # the NaN token, greyed
    assert (list(arr(chosen["x"])), list(arr(chosen["y"]))) == ([3], [0])
    with pytest.raises(ValueError, match="argument 'values'"):
        inside.token_strip(labels, vals[:3])


def test_block_flow_draws_every_stage_in_order():
    stages = [{"name": f"s{i}", "op": "op", "values": torch.randn(5) if i % 2 else torch.randn(5, 3), "signed": i != 2}
              for i in range(9)]
    fig = inside.block_flow(stages, per_row=4).to_dict()
    assert len(fig["data"]) == 9
    for st, tr in zip(stages, fig["data"]):
        v = st["values"].double()
        assert torch.allclose(arr(tr["z"]), v[:, None] if v.dim() == 1 else v)
    titles = [a["text"] for a in fig["layout"]["annotations"] if a["text"] != "➜"]
    assert [t.split("</b>")[0] for t in titles] == [f"<b>{i + 1}. s{i}" for i in range(9)]
    assert sum(a["text"] == "➜" for a in fig["layout"]["annotations"]) == 6  # 3 per full row of 4, none at a row's end
    x3, x4 = fig["layout"]["xaxis3"]["domain"], fig["layout"]["xaxis4"]["domain"]
    assert x3[1] < x4[0] and fig["layout"]["yaxis5"]["domain"][1] < fig["layout"]["yaxis4"]["domain"][0]  # row 2 below
    with pytest.raises(ValueError, match="argument 'stages'"):
        inside.block_flow([])


def test_state_update_memory_and_bars():
    e, n = 6, 3
    before, decay, write = torch.randn(e, n), torch.rand(e, n), torch.randn(e, n)
    after = decay * before + write
    fig = inside.state_update(before, decay, write, after).to_dict()
    for tr, m in zip(fig["data"], (before, decay, write, after)):
        assert torch.allclose(arr(tr["z"]), m.T.double())
    mem = inside.memory_by_position([0, 10, 20], {"state": [5, 5, 5], "kv": [0, 40, 80]}, 10).to_dict()
    assert mem["data"][1]["name"] == "kv: 40 B" and mem["data"][0]["name"] == "state: 5 B"
    bars = inside.next_token_bars(["a", "b"], [0.7, 0.2], actual="b").to_dict()
    assert list(arr(bars["data"][0]["x"])) == pytest.approx([0.7, 0.2])
    assert bars["data"][0]["marker"]["color"][1] != bars["data"][0]["marker"]["color"][0]  # the actual next byte stands out
    keep = inside.kept_over_time({"block 1": (torch.arange(3, 6), torch.tensor([1.0, 0.5, 0.25]))}).to_dict()
    assert list(arr(keep["data"][0]["x"])) == [3, 4, 5]
    d = inside.delta_by_channel(torch.tensor([0.1, 0.2]), torch.tensor([0.15, 0.15])).to_dict()
    assert d["layout"]["yaxis"]["type"] == "log"


@pytest.mark.parametrize("per_row, height", [(1, 300), (2, 1500), (3, 620), (7, 620), (14, 400)])
def test_block_flow_fits_any_grid(per_row, height):
    # float round-off must never put a domain outside [0, 1] (plotly refuses it): every grid the page can ask for
    stages = [{"name": str(i), "op": "", "values": torch.randn(4)} for i in range(14)]
    lay = inside.block_flow(stages, per_row=per_row, height=height).to_dict()["layout"]
    for k, v in lay.items():
        if k.startswith(("xaxis", "yaxis")):
            assert 0 <= v["domain"][0] < v["domain"][1] <= 1, (k, v["domain"])


def test_reading_player_frames_show_the_state_at_each_byte():
    T, m = 100, 6
    h = torch.randn(T, m)
    fig = inside.reading_player(h, [chr(97 + i % 26) for i in range(T)], [f"e{i}" for i in range(m)], max_frames=10).to_dict()
    assert torch.allclose(arr(fig["data"][0]["z"]), h.T.double())
    assert len(fig["frames"]) == 10 and fig["frames"][0]["name"] == "0" and fig["frames"][-1]["name"] == str(T - 1)
    for fr in fig["frames"]:
        t = int(fr["name"])
        assert torch.allclose(arr(fr["data"][1]["y"]), h[t].double()) and list(arr(fr["data"][0]["x"])) == [t, t]
    one = inside.reading_player(torch.randn(1, 3), ["a"], ["x", "y", "z"]).to_dict()
    assert len(one["frames"]) == 1
    with pytest.raises(ValueError, match="argument 'h'"):
        inside.reading_player(torch.randn(5, 3), ["a"] * 4, ["x", "y", "z"])
