"""Figure builders of `mamba_edu.viz.ssm`: what they plot is what the library computed."""

import pytest
import torch

from mamba_edu.discretize import METHODS, discretize, zoh
from mamba_edu.lti import lti_kernel
from mamba_edu.scan import scan_sequential
from mamba_edu.viz.ssm import (eigenvalues_vs_unit_circle, impulse_responses, input_output, state_heatmap,
                               trajectories)

A = torch.tensor([[0.0, 1.0], [-4.0, -0.5]], dtype=torch.float64)
B = torch.tensor([0.0, 1.0], dtype=torch.float64)
C = torch.tensor([1.0, 0.0], dtype=torch.float64)


def test_trajectories_shared_and_own_axes():
    t = torch.linspace(0.1, 1, 10, dtype=torch.float64)
    Ab_t, Bb_t = zoh(A, B, t)
    exact = (Ab_t @ torch.tensor([1.0, 0.0], dtype=torch.float64)) @ C  # (10,)
    fig = trajectories(t, {"exact": exact, "samples": (t[::2], exact[::2])}, markers=["samples"], dashed=["exact"],
                       y_title="position p (m)", hline=1.0, y_range=[-2, 2], log_x=True, colors={"exact": "#000000"})
    d = fig.to_dict()
    # the dashed reference curve is drawn last, on top of the samples
    samples, ex = d["data"]
    assert [samples["name"], ex["name"]] == ["samples", "exact"]
    assert list(ex["y"]) == pytest.approx(exact.tolist())
    assert list(samples["x"]) == pytest.approx(t[::2].tolist())
    assert ex["mode"] == "lines" and samples["mode"] == "lines+markers"
    assert ex["line"]["dash"] == "dash" and ex["line"]["color"] == "#000000"
    lay = d["layout"]
    assert lay["xaxis"]["title"]["text"] == "time t (s)" and lay["yaxis"]["title"]["text"] == "position p (m)"
    assert lay["xaxis"]["type"] == "log" and list(lay["yaxis"]["range"]) == [-2, 2]
    assert lay["shapes"][0]["y0"] == 1.0


def test_eigenvalues_vs_unit_circle():
    steps = torch.tensor([0.1, 0.5], dtype=torch.float64)
    eig = {m: torch.linalg.eigvals(discretize(A, B, steps, m)[0]) for m in METHODS}  # (2, 2) each
    fig = eigenvalues_vs_unit_circle(eig, labels={"euler": ["a", "b", "c", "d"]}, limit=1.5)
    d = fig.to_dict()
    assert len(d["data"]) == 1 + len(METHODS) and d["data"][0]["name"] == "|z| = 1"
    circle = torch.tensor(d["data"][0]["x"]) ** 2 + torch.tensor(d["data"][0]["y"]) ** 2
    assert torch.allclose(circle, torch.ones_like(circle), atol=1e-9)
    euler_trace = d["data"][3]
    z = eig["euler"].flatten()
    assert list(euler_trace["x"]) == pytest.approx(z.real.tolist())
    assert list(euler_trace["y"]) == pytest.approx(z.imag.tolist())
    assert list(euler_trace["text"]) == ["a", "b", "c", "d"]
    lay = d["layout"]
    assert lay["xaxis"]["title"]["text"] == "Re z" and lay["yaxis"]["title"]["text"] == "Im z"
    assert lay["yaxis"]["scaleanchor"] == "x" and list(lay["xaxis"]["range"]) == [-1.5, 1.5]


def test_impulse_responses_plot_the_kernel():
    K = {m: lti_kernel(discretize(A, B, 0.2, m)[0][None], discretize(A, B, 0.2, m)[1][None], C[None], 12)[0]
         for m in METHODS}
    t = torch.linspace(0, 2.4, 50, dtype=torch.float64)
    h = zoh(A, B, t[1:])[0] @ B @ C
    fig = impulse_responses(K, continuous={"h(t)": (t[1:], h)}, y_title="K_l", colors={"euler": "#123456"},
                            y_range=[-1, 1])
    d = fig.to_dict()
    assert [tr["name"] for tr in d["data"]] == list(METHODS) + ["h(t)"]
    assert list(d["data"][0]["x"]) == list(range(12))
    assert list(d["data"][0]["y"]) == pytest.approx(K["zoh"].tolist())
    assert list(d["data"][-1]["y"]) == pytest.approx(h.tolist()) and d["data"][-1]["line"]["dash"] == "dash"
    assert d["data"][2]["line"]["color"] == "#123456" and list(d["layout"]["yaxis"]["range"]) == [-1, 1]
    assert d["layout"]["xaxis"]["title"]["text"] == "lag l" and d["layout"]["yaxis"]["title"]["text"] == "K_l"


def test_state_heatmap_is_time_by_state_and_centred():
    a = torch.full((3, 20), 0.9, dtype=torch.float64)
    b = torch.randn(3, 20, dtype=torch.float64)
    h = scan_sequential(a, b)  # (3, 20)
    fig = state_heatmap(h.T, state_labels=["x", "y", "z"])
    d = fig.to_dict()
    hm = d["data"][0]
    assert hm["type"] == "heatmap" and list(hm["y"]) == ["x", "y", "z"] and len(hm["x"]) == 20
    assert torch.allclose(torch.tensor(hm["z"], dtype=torch.float64), h)  # rows are state entries
    assert hm["zmid"] == 0 and hm["zmax"] == pytest.approx(float(h.abs().max())) and hm["zmin"] == -hm["zmax"]
    assert d["layout"]["xaxis"]["title"]["text"] == "time step t"
    assert d["layout"]["yaxis"]["title"]["text"] == "state entry n"
    with pytest.raises(ValueError, match="argument 'h'"):
        state_heatmap(torch.zeros(3))


def test_input_output_two_rows():
    u = torch.randn(30, dtype=torch.float64)
    ys = {"Δ = 0.1": torch.cumsum(u, 0), "Δ = 1": u}
    fig = input_output(u, ys)
    d = fig.to_dict()
    assert [tr["name"] for tr in d["data"]] == ["u", "Δ = 0.1", "Δ = 1"]
    assert d["data"][0]["yaxis"] == "y" and d["data"][1]["yaxis"] == "y2"
    assert list(d["data"][0]["y"]) == pytest.approx(u.tolist())
    assert list(d["data"][1]["y"]) == pytest.approx(ys["Δ = 0.1"].tolist())
    lay = d["layout"]
    assert lay["yaxis"]["title"]["text"] == "input u" and lay["yaxis2"]["title"]["text"] == "output y"
    assert lay["xaxis2"]["title"]["text"] == "time step t"
    single = input_output(u, u).to_dict()
    assert [tr["name"] for tr in single["data"]] == ["u", "y"]


def test_state_player_frames_scrub_the_states():
    from mamba_edu.viz.ssm import state_player

    h = torch.randn(37, 5, dtype=torch.float64)
    fig = state_player(h, max_frames=10, start=20, colorbar_title="x")
    d = fig.to_dict()
    heat, marker, bars = d["data"]
    assert heat["type"] == "heatmap" and [list(r) for r in heat["z"]] == h.T.tolist()
    assert heat["zmid"] == 0 and heat["zmax"] == pytest.approx(float(h.abs().max()))
    frames = d["frames"]
    idx = [int(f["name"]) for f in frames]
    assert idx[0] == 0 and idx[-1] == 36 and len(idx) == 10  # evenly spaced, first and last included
    for f in frames:
        k = int(f["name"])
        assert list(f["traces"]) == [1, 2]
        assert list(f["data"][0]["x"]) == [k, k]  # the time marker
        assert list(f["data"][1]["y"]) == pytest.approx(h[k].tolist())  # the state at that time
    slider = d["layout"]["sliders"][0]
    assert len(slider["steps"]) == 10 and idx[slider["active"]] == 20  # starts at the nearest frame to 20
    assert list(bars["y"]) == pytest.approx(h[20].tolist()) and list(marker["x"]) == [20, 20]
    # ▶ plays from the start; every animation queues after the running one (none is interrupted: an
    # interrupted plotly animation rejects its promise, an uncaught error in the browser)
    assert [b["label"] for b in d["layout"]["updatemenus"][0]["buttons"]] == ["▶"]
    modes = [b["args"][1]["mode"] for b in d["layout"]["updatemenus"][0]["buttons"]]
    assert set(modes + [s["args"][1]["mode"] for s in slider["steps"]]) == {"afterall"}
    # every frame redraws (else plotly drops the heatmap while it animates); the bars' colours are colours
    # (numbers with a colour scale make plotly warn on every bar of every frame)
    assert all(s["args"][1]["frame"]["redraw"] for s in slider["steps"])
    assert all(str(c).startswith("rgb") for c in bars["marker"]["color"])
    assert all(f["data"][1]["marker"]["color"][0].startswith("rgb") for f in frames)
    assert d["layout"]["xaxis"]["title"]["text"] == "time step t"
    assert d["layout"]["yaxis2"]["title"]["text"] == "x at the chosen time"
    # complex states are shown as 2·Re, like state_heatmap
    hc = torch.complex(h, h)
    assert list(state_player(hc).to_dict()["data"][2]["y"]) == pytest.approx((2 * h[-1]).tolist())
    with pytest.raises(ValueError, match="2-D"):
        state_player(h[0])
