"""Figure builders of `mamba_edu.viz.cost`: what they plot is what they were given."""

import math

import plotly.graph_objects as go
import torch

from mamba_edu import cost
from mamba_edu.viz.cost import bytes_at_lengths, cost_vs_length, human_bytes


def test_human_bytes():
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 2**30) == "3.0 GiB"
    assert human_bytes(2**60) == "1024.0 PiB"


def test_cost_vs_length_measured_extrapolated_and_marks():
    L = [256, 512, 1024]
    measured = {"naive": [cost.attention_scores_bytes(x) for x in L], "state": [4096, 4096, 4096]}
    far = torch.tensor([256.0, 1e6], dtype=torch.float64)
    fig = cost_vs_length(L, measured, extrapolated={"naive": (far, 4 * far**2)}, marks={"2K": 2048, "1M": 10**6},
                         y_title="memory (bytes)", bytes_axis=True)
    assert isinstance(fig, go.Figure)
    d = fig.to_dict()
    names = [t["name"] for t in d["data"]]
    assert names == ["naive", "state", "naive (extrapolated)"]
    naive, state, extr = d["data"]
    assert list(naive["x"]) == L and list(naive["y"]) == [4 * x * x for x in L]
    assert naive["text"][0] == human_bytes(4 * 256 * 256)
    assert extr["line"]["dash"] == "dash" and extr["line"]["color"] == naive["line"]["color"]
    assert list(extr["y"]) == [4 * 256.0**2, 4e12]
    lay = d["layout"]
    assert lay["xaxis"]["type"] == "log" and lay["yaxis"]["type"] == "log"
    assert lay["xaxis"]["title"]["text"] == "sequence length L (tokens)"
    assert lay["yaxis"]["title"]["text"] == "memory (bytes)"
    assert [s["x0"] for s in lay["shapes"]] == [2048.0, 1e6]
    # annotations on a log axis are placed at log10 of the position
    assert [a["text"] for a in lay["annotations"]] == ["2K", "1M"]
    assert [a["x"] for a in lay["annotations"]] == [math.log10(2048), 6.0]
    # byte ticks in binary units, spanning the plotted values
    assert "1.0 MiB" in lay["yaxis"]["ticktext"] and "1.0 TiB" in lay["yaxis"]["ticktext"]
    assert lay["yaxis"]["tickvals"][lay["yaxis"]["ticktext"].index("1.0 MiB")] == 2**20


def test_cost_vs_length_extrapolation_of_a_formula_keeps_its_own_name():
    fig = cost_vs_length([1, 2], {"measured": [1, 4]}, extrapolated={"formula": ([1, 10], [1, 100])})
    d = fig.to_dict()
    assert [t["name"] for t in d["data"]] == ["measured", "formula"]
    assert d["data"][1]["line"]["color"] != d["data"][0]["line"]["color"]
    assert d["data"][1]["line"]["dash"] == "dash"


def test_cost_vs_length_linear_with_own_axes():
    fig = cost_vs_length(None, {"cache": ([1, 2, 3], [1000, 2000, 3000])}, log=False, x_title="position t",
                         bytes_axis=True)
    d = fig.to_dict()
    assert len(d["data"]) == 1 and list(d["data"][0]["x"]) == [1, 2, 3]
    assert d["layout"]["xaxis"].get("type") != "log" and d["layout"]["xaxis"]["title"]["text"] == "position t"
    ticks = d["layout"]["yaxis"]["tickvals"]
    assert ticks[0] == 0 and ticks[-1] >= 3000 and len(ticks) <= 10
    long = cost_vs_length(None, {"x": (list(range(100)), list(range(1, 101)))}, log=False).to_dict()
    assert long["data"][0]["mode"] == "lines"  # many points: no markers


def test_bytes_at_lengths():
    labels = ["512", "1M"]
    kv = [cost.kv_cache_bytes(32, 32, 128, L) for L in (512, 10**6)]
    fig = bytes_at_lengths(labels, {"KV cache": kv, "state": [1000, 1000]})
    d = fig.to_dict()
    assert [t["type"] for t in d["data"]] == ["bar", "bar"]
    assert list(d["data"][0]["x"]) == labels and list(d["data"][0]["y"]) == kv
    assert list(d["data"][0]["text"]) == [human_bytes(b) for b in kv]
    assert d["layout"]["barmode"] == "group" and d["layout"]["yaxis"]["type"] == "log"
    assert "1.0 GiB" in d["layout"]["yaxis"]["ticktext"]
    assert d["layout"]["xaxis"]["title"]["text"] == "context length"
