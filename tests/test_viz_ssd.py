"""Figure builders of `mamba_edu.viz.ssd`: what they plot is what they were given."""


import numpy as np
import pytest
import torch

from mamba_edu import ssd
from mamba_edu.viz.ssd import chunk_structure, flops_by_kind, sequence_matrices
from plotly_data import arr as _arr


def _head(l=10, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    dt = torch.rand(1, l, 1, generator=g, dtype=torch.float64) * 0.4 + 0.05
    A = -torch.ones(1, dtype=torch.float64)
    B, C = torch.randn(2, 1, l, n, generator=g, dtype=torch.float64).unbind(0)
    return dt, A, B, C


def test_sequence_matrices_shows_the_causal_part_of_each_panel():
    dt, A, B, C = _head()
    M = ssd.semiseparable_matrix(dt, A, B, C)[0, 0]
    P = ssd.attention_matrix(C[0], B[0])
    d = sequence_matrices({"M": M, "softmax": P}, title="t").to_dict()
    assert [t["type"] for t in d["data"]] == ["heatmap", "heatmap"]
    z = [torch.from_numpy(_arr(t["z"]).astype(np.float64)) for t in d["data"]]
    for zi, want in zip(z, (M, P)):
        below = torch.ones(10, 10, dtype=torch.bool).tril()
        torch.testing.assert_close(zi[below], want[below])
        assert bool(zi[~below].isnan().all())  # the future is left blank
    # M has signs: diverging scale centred on 0; softmax is non-negative: sequential scale
    assert d["data"][0]["zmid"] == 0 and d["data"][1].get("zmid") is None
    assert d["data"][0]["colorscale"] != d["data"][1]["colorscale"]
    lay = d["layout"]
    assert lay["xaxis"]["title"]["text"] == "input token s" and lay["xaxis2"]["title"]["text"] == "input token s"
    assert lay["yaxis"]["title"]["text"] == "output token t"
    assert lay["yaxis"]["range"] == [9.5, -0.5]  # row 0 at the top
    assert [a["text"] for a in lay["annotations"]] == ["M", "softmax"]
    with pytest.raises(ValueError, match="'bad'"):
        sequence_matrices({"bad": torch.zeros(3, 4)})


def test_chunk_structure_outlines_blocks_and_writes_their_ranks():
    dt, A, B, C = _head(l=10, n=2)
    M = ssd.semiseparable_matrix(dt, A, B, C)[0, 0]
    R = ssd.block_ranks(M, 4)  # 3 × 3 blocks, the last one ragged
    d = chunk_structure(M, 4, R).to_dict()
    shapes = d["layout"]["shapes"]
    assert len(shapes) == 6  # the lower triangle of blocks: 3 + 2 + 1
    solid = [s for s in shapes if s["line"]["dash"] == "solid"]
    assert [(s["x0"], s["x1"], s["y0"], s["y1"]) for s in solid] == [(-0.5, 3.5, -0.5, 3.5), (3.5, 7.5, 3.5, 7.5),
                                                                     (7.5, 9.5, 7.5, 9.5)]
    texts = [a["text"] for a in d["layout"]["annotations"]]
    assert texts == [f"rank {int(R[i, j])}" for i in range(3) for j in range(i + 1)]
    assert [int(R[i, j]) for i in range(3) for j in range(i)] == [2, 2, 2]  # below the diagonal: rank n = 2
    assert [int(R[i, i]) for i in range(3)] == [4, 4, 2]  # diagonal blocks: full (the last is 2 × 2)
    names = [t.get("name") for t in d["data"]]
    assert names[0] == "M" and len(names) == 3
    with pytest.raises(ValueError, match="'ranks'"):
        chunk_structure(M, 4, R[:2])


def test_flops_by_kind_stacks_the_counts():
    counts = ssd.ssd_flops(1024, 4, 16, 16, 64)
    d = flops_by_kind(counts).to_dict()
    assert d["layout"]["barmode"] == "stack"
    mm, ew = d["data"]
    assert list(mm["x"]) == ["scan", "chunked"]
    assert list(mm["y"]) == [0.0, float(counts["chunked"]["matmul"])]
    assert list(ew["y"]) == [float(counts["scan"]["elementwise"]), float(counts["chunked"]["elementwise"])]
    assert "FLOP" in d["layout"]["yaxis"]["title"]["text"]
