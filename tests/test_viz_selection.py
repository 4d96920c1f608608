"""Figure builders of mamba_edu.viz.selection: the plotted values are the library's, decoded from the figure."""

import json

import numpy as np
import pytest
import torch

from mamba_edu import probe
from mamba_edu.discretize import zoh
from mamba_edu.models import TinyLM
from mamba_edu.viz.selection import (DELTA_FLOOR, delta_heatmap, gate_curves, kept_bars, mixing_matrices,
                                     token_series)
from mamba_edu.viz.tasks import ROLES
from plotly_data import arr


def spec(fig):
    return json.loads(fig.to_json())


@pytest.fixture(scope="module")
def trace():
    torch.manual_seed(0)
    model = TinyLM(10, d_model=8, n_layers=1, mixer="mamba", d_state=4).eval()
    tok = torch.randint(0, 10, (1, 9), generator=torch.Generator().manual_seed(1))
    return tok, probe.trace_layer(model, tok, 0)


def test_gate_curves_plot_keep_and_take():
    delta = torch.logspace(-3, 2, 30, dtype=torch.float64)
    keep, take = zoh(torch.tensor([-1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), delta,
                     diagonal=True)
    d = spec(gate_curves(delta, keep[:, 0], take[:, 0]))
    np.testing.assert_allclose(arr(d["data"][0]["y"]), torch.exp(-delta).numpy())
    np.testing.assert_allclose(arr(d["data"][0]["y"]) + arr(d["data"][1]["y"]), 1.0)
    assert d["layout"]["xaxis"]["type"] == "log" and "Δ" in d["layout"]["xaxis"]["title"]["text"]


def test_delta_heatmap_is_log10_with_a_floor(trace):
    tok, tr = trace
    delta = tr.delta[0, :5].clone()
    delta[0, 0] = 0.0  # an underflowed Δ
    labels = [str(int(t)) for t in tok[0]]
    d = spec(delta_heatmap(delta, token_labels=labels, channel_labels=[f"c{i}" for i in range(5)]))
    z = arr(d["data"][0]["z"])
    assert z.shape == (5, 9)
    assert z[0, 0] == pytest.approx(np.log10(DELTA_FLOOR))
    np.testing.assert_allclose(z[1:], np.log10(delta[1:].double().numpy()), rtol=1e-6)
    assert d["layout"]["xaxis"]["ticktext"] == labels
    with pytest.raises(ValueError, match="2-D"):
        delta_heatmap(tr.delta)
    with pytest.raises(ValueError, match="one entry per position"):
        delta_heatmap(delta, token_labels=labels[:3])


def test_token_series_normalises_and_highlights(trace):
    tok, tr = trace
    norm = probe.state_norm(tr)[0]
    d = spec(token_series({"S6": norm, "twice": 2 * norm}, y_title="‖h_t‖", highlight=[2, 5], normalize=True))
    np.testing.assert_allclose(arr(d["data"][0]["y"]), (norm / norm.max()).numpy(), rtol=1e-6)
    np.testing.assert_allclose(arr(d["data"][1]["y"]), arr(d["data"][0]["y"]))
    shade = d["data"][2]  # the highlighted positions: one filled trace of rectangles on the hidden y2
    assert shade["yaxis"] == "y2" and shade["fill"] == "toself" and not d["layout"].get("shapes")
    assert [x for x in shade["x"] if x is not None] == [1.5, 1.5, 2.5, 2.5, 4.5, 4.5, 5.5, 5.5]
    assert d["layout"]["yaxis"]["title"]["text"] == "‖h_t‖ / max"
    d2 = spec(token_series({"S6": tr.delta[0].mean(0)}, y_title="Δ", log_y=True, highlight=[1]))
    assert d2["layout"]["yaxis"]["type"] == "log" and d2["layout"]["yaxis2"].get("type") != "log"


def test_token_series_is_linear_in_the_tokens():
    """Thousands of highlighted tokens build in well under a second (one trace, not one shape each), and
    the axis never writes more than MAX_TICK_LABELS labels (more overlap on a half-width chart)."""
    import time

    from mamba_edu.viz.selection import MAX_TICK_LABELS

    n = 4096
    t0 = time.perf_counter()
    fig = token_series({"Δ": torch.rand(n) + 0.1}, [str(i % 16) for i in range(n)], y_title="Δ",
                       highlight=range(0, n, 2), log_y=True)
    assert time.perf_counter() - t0 < 5.0  # measured ~0.05 s; quadratic shapes took minutes
    assert len(fig.data) == 2 and not fig.layout.shapes
    assert len(fig.layout.xaxis.tickvals) <= MAX_TICK_LABELS


def test_kept_bars_colour_by_role(trace):
    tok, tr = trace
    kn = probe.kept_norm(tr, 6)[0]  # (7,)
    roles = ["noise", "data", "noise", "marker", "noise", "data", "noise", "noise", "noise"]
    d = spec(kept_bars({"S6": kn, "copy": kn}, roles, t=6, normalize=False))
    assert len(d["data"]) == 2
    np.testing.assert_allclose(arr(d["data"][0]["y"]), kn.numpy(), rtol=1e-6)
    assert d["data"][0]["marker"]["color"] == [ROLES[r][1] for r in roles[:7]]
    assert "t = 6" in d["layout"]["xaxis2"]["title"]["text"]
    with pytest.raises(ValueError, match="'roles'"):
        kept_bars({"S6": kn}, roles[:3])


def test_mixing_matrices_side_by_side(trace):
    _, tr = trace
    M = probe.mixing_matrix(tr, 0)[0]
    d = spec(mixing_matrices({"S6": M, "negated": -M}))
    assert len(d["data"]) == 2
    np.testing.assert_allclose(arr(d["data"][0]["z"]), M.numpy(), rtol=1e-6)
    assert d["data"][0]["zmax"] == pytest.approx(float(M.abs().max()), rel=1e-6)
    assert d["layout"]["xaxis"]["title"]["text"] == "input s"
