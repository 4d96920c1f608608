"""Figure builders of mamba_edu.viz.tasks: the plotted values are the ones given, decoded from the figure."""

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from mamba_edu import tasks
from mamba_edu.viz.tasks import (ROLES, accuracy_bars, extrapolation_curve, results_table, task_sequence,
                                 token_roles, training_curves)
from plotly_data import arr

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "tasks" / "results.json"


def spec(fig):
    return json.loads(fig.to_json())


def test_token_roles_of_both_tasks():
    b = tasks.selective_copying(1, seq_len=10, n_data=2, vocab_size=8, seed=0)
    roles = token_roles("selective-copy", b.tokens[0])
    assert roles.count("data") == 2 and roles[-2:] == ["marker", "marker"] and roles.count("noise") == 8
    ind = tasks.induction_heads(1, seq_len=12, vocab_size=8, seed=0).tokens[0]
    r = token_roles("induction", ind)
    p = int((ind == tasks.SPECIAL).nonzero()[0])
    assert r[p] == "trigger" and r[p + 1] == "key" and r[-1] == "trigger" and r.count("key") == 1
    with pytest.raises(ValueError, match="'task'"):
        token_roles("mqar", ind)


def test_task_sequence_rows_and_prediction_colours():
    b = tasks.selective_copying(1, seq_len=12, n_data=3, vocab_size=10, seed=1)
    tok, tgt = b.tokens[0], b.targets[0]
    pred = tgt.clone()
    pred[tgt == tasks.IGNORE] = 0
    pred[-1] = (tgt[-1] + 1) % 10  # the last answer wrong
    fig = task_sequence("selective-copy", tok, tgt, {"model": pred}, title="x")
    d = spec(fig)["data"][0]
    assert d["y"] == ["model", "target", "input"]  # drawn bottom-up
    text = d["text"]
    assert text[2] == [str(int(t)) for t in tok]  # the input row, every id written
    z_model = d["z"][0]
    ask = (tgt != tasks.IGNORE).tolist()
    assert [v is None for v in z_model] == [not a for a in ask]
    answers = [v for v in z_model if v is not None]
    assert answers[:-1] == [ROLES["right"][0]] * 2 and answers[-1] == ROLES["wrong"][0]
    assert spec(fig)["layout"]["xaxis"]["title"]["text"] == "position t (token)"
    with pytest.raises(ValueError, match="same length"):
        task_sequence("selective-copy", tok, tgt[:-1])


def test_accuracy_bars_in_percent_with_chance():
    fig = accuracy_bars({"s4d": 0.48, "mamba": 1.0}, chance=1 / 14, sequence_accuracy={"s4d": 0.01, "mamba": 1.0})
    d = spec(fig)
    assert [t["name"] for t in d["data"]] == ["token accuracy", "sequences all right"]
    np.testing.assert_allclose(arr(d["data"][0]["y"]), [48.0, 100.0])
    np.testing.assert_allclose(arr(d["data"][1]["y"]), [1.0, 100.0])
    assert d["layout"]["shapes"][0]["y0"] == pytest.approx(100 / 14)
    assert d["layout"]["yaxis"]["title"]["text"] == "accuracy (%)"


@pytest.mark.skipif(not RESULTS.exists(), reason="results/tasks not generated")
def test_results_table_and_training_curves_from_results_json():
    runs = json.loads(RESULTS.read_text())["runs"]
    fig = results_table(runs)
    cells = spec(fig)["data"][0]["cells"]["values"]
    assert cells[0] == list(runs)
    assert cells[-2] == [f"{100 * r['accuracy']:.1f} %" for r in runs.values()]
    hist = {n: runs[n]["history"] for n in ("copy-s4d", "copy-mamba")}
    d = spec(training_curves(hist, chance=runs["copy-s4d"]["chance"]))
    np.testing.assert_allclose(arr(d["data"][1]["y"]), [100 * h["accuracy"] for h in hist["copy-mamba"]])
    np.testing.assert_allclose(arr(d["data"][0]["x"]), [h["step"] for h in hist["copy-s4d"]])
    assert d["layout"]["xaxis"]["title"]["text"] == "training step"


def test_extrapolation_curve_separates_lengths_not_run():
    rows = {
        "ssm": [{"length": L, "status": "ok", "accuracy": 1.0, "seconds": 0.1} for L in (64, 128, 256)],
        "attention": [{"length": 64, "status": "ok", "accuracy": 0.9, "seconds": 0.1},
                      {"length": 128, "status": "ok", "accuracy": 0.4, "seconds": 0.2},
                      {"length": 256, "status": "too slow (predicted 83 s > budget 30 s)", "accuracy": None,
                       "seconds": None}],
    }
    fig = extrapolation_curve(rows, train_len=64, chance=1 / 15)
    d = spec(fig)
    names = [t["name"] for t in d["data"]]
    assert names == ["ssm", "attention", "attention: not run", "training length"]
    np.testing.assert_allclose(arr(d["data"][3]["x"]), [64, 64])
    assert d["layout"]["xaxis"]["tickvals"] == [64, 128, 256]
    np.testing.assert_allclose(arr(d["data"][1]["y"]), [90.0, 40.0])
    np.testing.assert_allclose(arr(d["data"][1]["x"]), [64, 128])
    assert d["data"][2]["text"] == ["too slow (predicted 83 s > budget 30 s)"]
    assert d["layout"]["xaxis"]["type"] == "log"
    assert "sequence length" in d["layout"]["xaxis"]["title"]["text"]
    assert isinstance(fig, go.Figure)
