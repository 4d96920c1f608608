"""Figure builders of mamba_edu.viz.lti: trace counts, axis titles, and that the plotted values are the library's."""


import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from mamba_edu.discretize import bilinear
from mamba_edu.hippo import hippo_legs
from mamba_edu.lti import causal_conv, lti_kernel, lti_recurrent, s4d_init, s4d_kernel
from mamba_edu.viz.lti import conv_kernel, modes_agree, timings_vs_L
from plotly_data import arr

F64 = torch.float64


def title(axis):
    return axis["title"]["text"]


def legs_system(N=4, dt=0.1):
    A, B = hippo_legs(N)
    Ab, Bb = bilinear(A, B, dt)
    C = torch.randn(1, N, generator=torch.Generator().manual_seed(0), dtype=F64)
    return Ab[None], Bb[None], C


def test_conv_kernel_plots_each_kernel():
    L = 40
    K1 = lti_kernel(*legs_system(), L)[0]
    A = s4d_init(1, 8, "lin")
    K2 = s4d_kernel(A, torch.ones_like(A), torch.ones_like(A), 0.1, L)[0]
    fig = conv_kernel({"LegS": K1, "S4D-Lin": K2})
    assert isinstance(fig, go.Figure)
    d = fig.to_dict()
    assert [t["name"] for t in d["data"]] == ["LegS", "S4D-Lin"]
    np.testing.assert_allclose(arr(d["data"][0]["y"]), K1.numpy())
    np.testing.assert_allclose(arr(d["data"][1]["y"]), K2.numpy())
    np.testing.assert_allclose(arr(d["data"][0]["x"]), np.arange(L))
    assert title(d["layout"]["xaxis"]) == "lag l (steps)" and title(d["layout"]["yaxis"]) == "K_l"
    # with dt the x axis is time; normalize scales every kernel to a peak of 1
    d2 = conv_kernel({"LegS": K1}, dt=0.1, normalize=True).to_dict()
    np.testing.assert_allclose(arr(d2["data"][0]["x"]), np.arange(L) * 0.1)
    np.testing.assert_allclose(np.abs(arr(d2["data"][0]["y"])).max(), 1.0)
    assert title(d2["layout"]["xaxis"]) == "time lag l·Δ" and "max" in title(d2["layout"]["yaxis"])
    with pytest.raises(ValueError, match="1-D"):
        conv_kernel({"bad": torch.ones(2, 3)})


def test_modes_agree_overlay_and_difference():
    Ab, Bb, C = legs_system()
    u = torch.randn(1, 50, generator=torch.Generator().manual_seed(1), dtype=F64)
    y_rec = lti_recurrent(Ab, Bb, C, u)[0]
    y_conv = causal_conv(u, lti_kernel(Ab, Bb, C, 50))[0]
    d = modes_agree(y_rec, y_conv).to_dict()
    assert len(d["data"]) == 3
    assert [t["name"] for t in d["data"][:2]] == ["recurrence", "convolution"]
    np.testing.assert_allclose(arr(d["data"][0]["y"]), y_rec.numpy())
    np.testing.assert_allclose(arr(d["data"][1]["y"]), y_conv.numpy())
    np.testing.assert_allclose(arr(d["data"][2]["y"]), (y_conv - y_rec).numpy())
    assert d["data"][2]["yaxis"] == "y2"                                      # the difference has its own panel
    assert title(d["layout"]["yaxis"]) == "output y_k" and title(d["layout"]["yaxis2"]) == "difference"
    assert title(d["layout"]["xaxis2"]) == "step k"
    with pytest.raises(ValueError, match="one shape"):
        modes_agree(y_rec, y_conv[:-1])


def test_timings_vs_L_log_log_and_scale():
    t = {"recurrence": ([64, 128, 256], [1e-3, 2e-3, 4e-3]), "fft": ([64, 256], torch.tensor([5e-4, 6e-4]))}
    d = timings_vs_L(t).to_dict()
    assert [tr["name"] for tr in d["data"]] == ["recurrence", "fft"]
    np.testing.assert_allclose(arr(d["data"][0]["y"]), [1.0, 2.0, 4.0])     # milliseconds by default
    np.testing.assert_allclose(arr(d["data"][1]["x"]), [64, 256])
    assert d["layout"]["xaxis"]["type"] == "log" and d["layout"]["yaxis"]["type"] == "log"
    np.testing.assert_allclose(d["layout"]["xaxis"]["tickvals"], [64, 128, 256])
    assert title(d["layout"]["xaxis"]) == "sequence length L" and title(d["layout"]["yaxis"]) == "time (ms)"
    d2 = timings_vs_L(t, scale=1e6, y="time (µs)").to_dict()
    np.testing.assert_allclose(arr(d2["data"][0]["y"]), [1e3, 2e3, 4e3])
    assert title(d2["layout"]["yaxis"]) == "time (µs)"
