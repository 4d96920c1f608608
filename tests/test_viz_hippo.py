"""Figure builders of mamba_edu.viz.hippo: trace counts, axis titles, and that the plotted values are the library's."""


import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from mamba_edu.hippo import basis, hippo_legs, hippo_project, hippo_reconstruct
from mamba_edu.viz.hippo import coefficients_compare, error_vs_N, hippo_basis, hippo_reconstruction, matrix_heatmap
from plotly_data import arr

F64 = torch.float64


def title(axis):
    return axis["title"]["text"]


def test_hippo_basis_plots_each_function():
    x = torch.linspace(0, 1, 50, dtype=F64)
    G = basis("legt", 5, x)
    fig = hippo_basis(x, G, "legt")
    assert isinstance(fig, go.Figure)
    d = fig.to_dict()
    assert len(d["data"]) == 5 and [t["name"] for t in d["data"]] == [f"g_{n}" for n in range(5)]
    for n, trace in enumerate(d["data"]):
        np.testing.assert_allclose(arr(trace["x"]), x.numpy())
        np.testing.assert_allclose(arr(trace["y"]), G[:, n].numpy())
    assert "window position" in title(d["layout"]["xaxis"]) and title(d["layout"]["yaxis"]) == "g_n(x)"
    assert "LegT" in d["layout"]["title"]["text"]
    assert len(hippo_basis(x, G, n_show=2).data) == 2


def test_hippo_reconstruction_signal_window_and_reconstruction():
    L, dt = 200, 0.01
    t = (torch.arange(L, dtype=F64) + 0.5) * dt
    f = torch.sin(6 * t)
    c = hippo_project(f, "legt", 8, dt, theta=1.0)
    s = torch.linspace(1.0, 2.0, 30, dtype=F64)
    f_hat = hippo_reconstruct(c[-1], "legt", 2.0, s, theta=1.0)
    fig = hippo_reconstruction(t, f, f_hat, window=(1.0, 2.0), s_hat=s, title="demo")
    d = fig.to_dict()
    assert len(d["data"]) == 2
    np.testing.assert_allclose(arr(d["data"][0]["y"]), f.numpy())
    np.testing.assert_allclose(arr(d["data"][1]["x"]), s.numpy())
    np.testing.assert_allclose(arr(d["data"][1]["y"]), f_hat.numpy())
    shapes = d["layout"]["shapes"]
    rect = [sh for sh in shapes if sh["type"] == "rect"][0]
    assert (rect["x0"], rect["x1"]) == (1.0, 2.0)
    assert any(sh["type"] == "line" and sh["x0"] == 2.0 for sh in shapes)       # "now"
    assert title(d["layout"]["xaxis"]) == "time (s)" and title(d["layout"]["yaxis"]) == "value"
    # without s_hat the reconstruction shares the signal's times; without a window nothing is shaded
    d2 = hippo_reconstruction(s, torch.sin(6 * s), f_hat).to_dict()
    np.testing.assert_allclose(arr(d2["data"][1]["x"]), s.numpy())
    assert not d2["layout"].get("shapes")


def test_error_vs_N_log_axes():
    errors = {"legs": ([4, 8, 16], [0.5, 0.1, 1e-3]), "fout": ([4, 8], torch.tensor([0.6, 0.3]))}
    d = error_vs_N(errors).to_dict()
    assert [t["name"] for t in d["data"]] == ["LegS", "FouT"]
    np.testing.assert_allclose(arr(d["data"][0]["y"]), [0.5, 0.1, 1e-3])
    np.testing.assert_allclose(arr(d["data"][1]["x"]), [4, 8])
    assert d["layout"]["yaxis"]["type"] == "log" and d["layout"]["xaxis"]["type"] == "log"
    assert title(d["layout"]["xaxis"]).startswith("N") and "error" in title(d["layout"]["yaxis"])
    assert error_vs_N(errors, log_x=False).to_dict()["layout"]["xaxis"].get("type") != "log"


def test_matrix_heatmap_shows_the_matrix_centred_on_zero():
    A, _ = hippo_legs(6)
    d = matrix_heatmap(A, "LegS A").to_dict()
    assert len(d["data"]) == 1 and d["data"][0]["type"] == "heatmap"
    np.testing.assert_allclose(arr(d["data"][0]["z"]), A.numpy())
    assert d["data"][0]["zmid"] == 0
    assert d["layout"]["yaxis"]["autorange"] == "reversed"
    assert title(d["layout"]["xaxis"]) == "column k" and title(d["layout"]["yaxis"]) == "row n"
    c = torch.randn(10, 4, dtype=F64)
    times = torch.arange(10, dtype=F64) * 0.1
    d2 = matrix_heatmap(c.T, x="time t (s)", y="coefficient n", x_values=times).to_dict()
    np.testing.assert_allclose(arr(d2["data"][0]["x"]), times.numpy())
    with pytest.raises(ValueError, match="2-D"):
        matrix_heatmap(torch.ones(3))


def test_coefficients_compare_panels_and_shared_colours():
    c1, c2 = torch.randn(5, dtype=F64), torch.randn(5, dtype=F64)
    d = coefficients_compare({"LegS": {"a": c1, "b": c2}, "LegT": {"a": c2, "b": c1}}).to_dict()
    assert len(d["data"]) == 4
    np.testing.assert_allclose(arr(d["data"][1]["y"]), c2.numpy())
    np.testing.assert_allclose(arr(d["data"][2]["y"]), c2.numpy())
    assert d["data"][0]["marker"]["color"] == d["data"][2]["marker"]["color"]        # label "a" in both panels
    assert [t["showlegend"] for t in d["data"]] == [True, True, False, False]
    assert title(d["layout"]["xaxis"]) == "index n" and title(d["layout"]["xaxis2"]) == "index n"
    assert title(d["layout"]["yaxis"]) == "coefficient c_n"
