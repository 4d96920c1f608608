"""Training: short runs beat chance, checkpoints round-trip, extrapolation never crashes, the CLI, the
attention baseline (decoding with a growing key-value cache), and the committed results."""

import json
import math
from pathlib import Path

import pytest
import torch

from mamba_edu import cli, tasks
from mamba_edu import train as T
from mamba_edu.models import AttentionBlock, TinyLM, sinusoidal_positions, state_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "tasks"


# ----------------------------------------------------------------------------------------------
# Short training runs: the selective model must beat chance by a clear margin on both tasks
# ----------------------------------------------------------------------------------------------


def test_mamba_learns_selective_copying():
    cfg = T.TrainConfig(task="selective-copy", model="mamba", seq_len=16, n_data=2, vocab_size=6, d_model=16,
                        n_layers=1, d_state=4, dt_rank=16, steps=300, batch_size=32, lr=1e-2, weight_decay=0.0,
                        warmup=10, eval_every=150, eval_size=256, seed=0)
    res = T.train(cfg, progress=False)
    chance = tasks.chance_accuracy(cfg.task, cfg.vocab_size)
    assert res.final["accuracy"] > chance + 0.4, (res.history, chance)  # chance is 25 %
    assert res.final["step"] == 300 and res.seconds > 0


def test_mamba_learns_induction_heads():
    cfg = T.TrainConfig(task="induction", model="mamba", seq_len=16, vocab_size=6, d_model=32, n_layers=1,
                        d_state=4, dt_rank=32, steps=300, batch_size=32, lr=1e-2, weight_decay=0.0, warmup=10,
                        eval_every=150, eval_size=256, seed=0)
    res = T.train(cfg, progress=False)
    chance = tasks.chance_accuracy(cfg.task, cfg.vocab_size)
    assert res.final["accuracy"] > chance + 0.5, (res.history, chance)  # chance is 20 %
    assert [h["step"] for h in res.history] == [150, 300]


# ----------------------------------------------------------------------------------------------
# Pieces of the recipe
# ----------------------------------------------------------------------------------------------


def test_answer_metrics_count_answer_positions_only():
    targets = torch.tensor([[tasks.IGNORE, 2, 1], [tasks.IGNORE, 0, 2]])  # (2, 3)
    logits = torch.full((2, 3, 3), -5.0)
    logits[0, 1, 2] = logits[0, 2, 1] = 5.0  # row 0: both right
    logits[1, 1, 0] = logits[1, 2, 1] = 5.0  # row 1: one right, one wrong
    logits[:, 0, 0] = 100.0  # the ignored position does not count
    loss, acc, seq = T.answer_metrics(logits, targets)
    assert acc == pytest.approx(0.75) and seq == pytest.approx(0.5)
    want = torch.nn.functional.cross_entropy(logits[:, 1:].reshape(-1, 3), targets[:, 1:].reshape(-1))
    assert float(loss) == pytest.approx(float(want))


def test_lr_factor_warmup_then_cosine():
    assert T.lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert T.lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert T.lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert T.lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert T.lr_factor(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert T.lr_factor(0, 100, 0) == pytest.approx(1.0)


def test_weight_decay_only_on_matrices():
    cfg = T.TrainConfig(d_model=8, n_layers=1, d_state=2)
    model = T.build_model(cfg)
    decay, rest = T.make_optimizer(model, cfg).param_groups
    assert decay["weight_decay"] == cfg.weight_decay and rest["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    s6 = model.layers[0].mixer.s6
    # the matrices are decayed, but not A (a matrix too), D, Δ's bias or the norms
    assert any(p is s6.x_proj.weight for p in decay["params"])
    for p in (s6.A_log, s6.D, s6.dt_proj.bias, model.layers[0].norm.weight):
        assert any(p is q for q in rest["params"]) and not any(p is q for q in decay["params"])
    s4d = T.build_model(T.TrainConfig(model="s4d", d_model=8, n_layers=1, d_state=2))
    decay, rest = T.make_optimizer(s4d, cfg).param_groups
    assert any(p is s4d.layers[0].mixer.log_A_real for p in rest["params"])


def test_model_kwargs_per_mixer():
    assert T.model_kwargs(T.TrainConfig(model="mamba", dt_rank=5))["dt_rank"] == 5
    assert "dt_rank" not in T.model_kwargs(T.TrainConfig(model="mamba"))
    kw = T.model_kwargs(T.TrainConfig(model="attention", task="selective-copy", seq_len=20, n_data=3))
    assert kw["max_len"] == 23 and kw["positions"] == "sinusoidal"
    assert set(T.model_kwargs(T.TrainConfig(model="s4d"))) == {"vocab_size", "d_model", "n_layers", "mixer", "d_state"}


@pytest.mark.parametrize("mixer", ["mamba", "s4d", "attention"])
def test_recurrent_and_forward_predictions_agree(mixer):
    cfg = T.TrainConfig(task="selective-copy", model=mixer, seq_len=12, n_data=3, vocab_size=7, d_model=8,
                        n_layers=1, d_state=4)
    model = T.build_model(cfg).double()
    kw = T.task_kwargs(cfg)
    a = T.evaluate(model, cfg.task, 12, 7, n_samples=16, path="forward", **kw)
    b = T.evaluate(model, cfg.task, 12, 7, n_samples=16, path="recurrent", **kw)
    assert a["accuracy"] == b["accuracy"] and a["sequence_accuracy"] == b["sequence_accuracy"]
    assert (a["path"], b["path"]) == ("forward", "recurrent")


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mixer", ["mamba", "s4d", "attention"])
def test_checkpoint_round_trip(tmp_path, mixer):
    cfg = T.TrainConfig(task="induction", model=mixer, seq_len=16, vocab_size=9, d_model=8, n_layers=2, d_state=4,
                        positions="learned", seed=3)
    model = T.build_model(cfg)
    pt, js = T.save_checkpoint(tmp_path / "ck" / "run", model, cfg, accuracy=0.5)
    assert pt.name == "run.pt" and js.name == "run.json"
    torch.load(pt, weights_only=True)  # plain tensors only
    for path in (pt, js, tmp_path / "ck" / "run"):
        loaded, meta = T.load_checkpoint(path)
        assert not loaded.training and loaded.lm_head.weight is loaded.embedding.weight
        tokens = tasks.induction_heads(2, 16, 9).tokens
        with torch.no_grad():
            torch.testing.assert_close(loaded(tokens), model(tokens))
    assert meta["accuracy"] == 0.5 and meta["config"]["model"] == mixer and meta["torch"] == torch.__version__
    assert T.TrainConfig.from_dict(meta["config"]) == cfg
    assert json.loads(js.read_text())["model_kwargs"] == T.model_kwargs(cfg)


def test_checkpoint_bad_input(tmp_path):
    with pytest.raises(ValueError, match="argument 'path'"):
        T.load_checkpoint(tmp_path / "missing")
    with pytest.raises(ValueError, match="argument 'model'"):
        T.save_checkpoint(tmp_path / "x", torch.nn.Linear(2, 2), T.TrainConfig())
    with pytest.raises(ValueError, match="argument 'cfg'"):
        T.save_checkpoint(tmp_path / "x", TinyLM(5, d_model=8, n_layers=1), {"task": "induction"})


# ----------------------------------------------------------------------------------------------
# Length extrapolation: statuses instead of crashes
# ----------------------------------------------------------------------------------------------


def test_extrapolation_lengths():
    assert T.extrapolation_lengths(64, 1000) == [64, 128, 256, 512]
    assert T.extrapolation_lengths(64, 64) == [64]
    with pytest.raises(ValueError, match="argument 'max_len'"):
        T.extrapolation_lengths(64, 32)


def test_extrapolate_statuses():
    cfg = T.TrainConfig(task="induction", model="attention", seq_len=16, vocab_size=6, d_model=8, n_layers=1,
                        positions="learned")
    rows = T.extrapolate(T.build_model(cfg), cfg, [16, 32, 64], n_samples=4)
    assert rows[0]["status"] == "ok" and rows[0]["accuracy"] is not None
    assert all(r["status"].startswith("cannot run (learned positions stop at L_train = 16)") for r in rows[1:])
    assert all(r["accuracy"] is None for r in rows[1:])

    cfg = T.TrainConfig(task="induction", model="attention", seq_len=16, vocab_size=6, d_model=8, n_layers=1)
    rows = T.extrapolate(T.build_model(cfg), cfg, [16, 4096, 8192], n_samples=4, time_budget_s=1e-9)
    assert rows[0]["status"] == "ok" and all(r["status"].startswith("too slow (predicted") for r in rows[1:])

    cfg = T.TrainConfig(task="induction", model="mamba", seq_len=16, vocab_size=6, d_model=8, n_layers=1, d_state=2)
    rows = T.extrapolate(T.build_model(cfg), cfg, [16, 32], n_samples=4, path="recurrent")
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[1]["path"] == "recurrent"
    with pytest.raises(ValueError, match="argument 'path'"):
        T.extrapolate(T.build_model(cfg), cfg, [16], path="chunked")


# ----------------------------------------------------------------------------------------------
# The attention baseline (models.AttentionBlock)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_attention_decoding_equals_forward_and_the_cache_grows(positions):
    torch.manual_seed(0)
    lm = TinyLM(vocab_size=11, d_model=16, n_layers=2, mixer="attention", n_heads=4, positions=positions,
                max_len=32).double()
    tokens = torch.randint(0, 11, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(lm.decode(tokens), lm(tokens), rtol=1e-9, atol=1e-9)
    state, sizes = lm.init_state(2), []
    with torch.no_grad():
        for t in range(5):
            _, state = lm.step(tokens[:, t], state)
            sizes.append(state_bytes(state))
    # keys and values of (2, 4 heads, t, 4) per layer, float64: linear growth, unlike an SSM's state
    assert sizes == [2 * 2 * (2 * 4 * (t + 1) * 4) * 8 for t in range(5)]


def test_attention_is_causal():
    torch.manual_seed(1)
    block = AttentionBlock(8, n_heads=2).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 6] += 1.0
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, :6], y2[:, :6])
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


def test_sinusoidal_positions():
    P = sinusoidal_positions(0, 5, 6)
    assert P.shape == (5, 6)
    torch.testing.assert_close(P[3, 0], torch.tensor(math.sin(3.0)))
    torch.testing.assert_close(P[3, 1], torch.tensor(math.cos(3.0)))
    torch.testing.assert_close(sinusoidal_positions(2, 3, 6), P[2:])
    assert sinusoidal_positions(0, 4, 5).shape == (4, 5)  # odd width


def test_attention_bad_input():
    with pytest.raises(ValueError, match="argument 'x'"):
        AttentionBlock(8, positions="learned", max_len=4)(torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match="argument 'n_heads'"):
        AttentionBlock(8, n_heads=3)
    with pytest.raises(ValueError, match="argument 'positions'"):
        AttentionBlock(8, positions="rope")
    with pytest.raises(ValueError, match="argument 'x'"):
        AttentionBlock(8)(torch.randn(1, 5, 7))


# ----------------------------------------------------------------------------------------------
# Bad configurations, the command line
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("task", "copy"), ("model", "lstm"), ("steps", 0), ("lr", -1.0),
                                         ("weight_decay", -0.1), ("positions", "rope"), ("seed", -1),
                                         ("dt_rank", -1), ("n_data", 100)])
def test_bad_config(field, value):
    kw = {field: value}
    if field == "n_data":
        kw.update(task="selective-copy", seq_len=10)
    with pytest.raises(ValueError, match="argument '(seq_len|%s)'" % field):
        T.TrainConfig(**kw).validate()


def test_evaluate_bad_input():
    model = T.build_model(T.TrainConfig(d_model=8, n_layers=1, d_state=2))
    with pytest.raises(ValueError, match="argument 'path'"):
        T.evaluate(model, "induction", 16, 10, path="chunked")
    with pytest.raises(ValueError, match="argument 'n_samples'"):
        T.evaluate(model, "induction", 16, 10, n_samples=0)


def test_cli_train_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("--task", "--model", "selective-copy", "induction", "attention", "--reproduce", "--out"):
        assert word in out


def test_cli_train_writes_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert cli.main(["train", "--task", "induction", "--model", "s4d", "--seq-len", "8", "--vocab-size", "5",
                     "--d-model", "8", "--n-layers", "1", "--steps", "3", "--eval-every", "3", "--eval-size", "8",
                     "--quiet", "--out", str(out), "--max-len", "16"]) == 0
    text = capsys.readouterr().out
    assert "token accuracy" in text and "L=      16" in text
    model, meta = T.load_checkpoint(out)
    assert meta["config"]["steps"] == 3 and meta["model_kwargs"]["mixer"] == "s4d"
    with pytest.raises(SystemExit):
        cli.main(["train", "--task", "induction", "--steps", "0", "--quiet"])


def test_results_markdown_from_a_small_reproduction(tmp_path):
    cfg = T.TrainConfig(task="induction", model="mamba", seq_len=8, vocab_size=5, d_model=8, n_layers=1, d_state=2,
                        steps=2, eval_every=2, eval_size=8)
    res = T.reproduce(tmp_path, max_len=64, n_extrapolate=4, runs={"induction-mamba": cfg}, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"]["induction-mamba"]["config"]["steps"] == 2
    assert [r["length"] for r in saved["extrapolation"]["induction-mamba"]] == [8, 16, 32, 64]
    text = (tmp_path / "README.md").read_text()
    assert "| 64 | 8 |" in text and "Induction heads" in text
    assert (tmp_path / "checkpoints" / "induction-mamba.pt").exists() and res["total_seconds"] > 0


# ----------------------------------------------------------------------------------------------
# The committed results: the checkpoints load and still do what the table says
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (RESULTS / "results.json").exists(), reason="results/tasks not generated")
def test_committed_results_and_checkpoints():
    results = json.loads((RESULTS / "results.json").read_text())
    runs = results["runs"]
    assert set(runs) == set(T.REPRODUCE_RUNS)
    for name, run in runs.items():
        assert T.TrainConfig.from_dict(run["config"]) == T.REPRODUCE_RUNS[name]
        assert (RESULTS / run["checkpoint"]).exists() and (RESULTS / run["checkpoint"]).stat().st_size < 2_000_000
    # the headline claims of docs/tasks.md
    assert runs["copy-mamba"]["accuracy"] >= 0.95
    assert runs["copy-s4d"]["accuracy"] < runs["copy-mamba"]["accuracy"] - 0.3
    mamba = results["extrapolation"]["induction-mamba"]
    assert mamba[-1]["length"] >= 65536 and all(r["status"] == "ok" for r in mamba)
    # the checkpoints load with weights_only=True and reproduce their accuracy on a few sequences
    model, meta = T.load_checkpoint(RESULTS / "checkpoints" / "copy-mamba")
    cfg = T.TrainConfig.from_dict(meta["config"])
    ev = T.evaluate(model, cfg.task, cfg.seq_len, cfg.vocab_size, n_samples=128, **T.task_kwargs(cfg))
    assert ev["accuracy"] >= 0.95
    model, meta = T.load_checkpoint(RESULTS / "checkpoints" / "induction-mamba")
    ev = T.evaluate(model, "induction", 1024, meta["config"]["vocab_size"], n_samples=32, path="recurrent")
    assert ev["accuracy"] >= 0.9


# ----------------------------------------------------------------------------------------------
# The selectivity ablation (chapter 06)
# ----------------------------------------------------------------------------------------------


def test_s6_parts_that_are_not_selective_ignore_the_token():
    from mamba_edu.selective import S6

    torch.manual_seed(0)
    x, x2 = torch.randn(2, 8, 5), torch.randn(2, 8, 5)
    full = S6(8, 4)
    d1, B1, C1 = full.projections(x)
    d2, B2, C2 = full.projections(x2)
    assert not torch.allclose(d1, d2) and not torch.allclose(B1, B2) and not torch.allclose(C1, C2)
    for sel, fixed in [("delta", ("B", "C")), ("B,C", ("delta",)), ("", ("delta", "B", "C")), ("C", ("delta", "B"))]:
        layer = S6(8, 4, selective=sel)
        a, b = dict(zip(("delta", "B", "C"), layer.projections(x))), dict(zip(("delta", "B", "C"), layer.projections(x2)))
        for part in ("delta", "B", "C"):
            same = torch.equal(a[part], b[part])
            assert same == (part in fixed), (sel, part)
            if part in fixed:  # the same at every token too
                assert torch.equal(a[part], a[part][..., :1].expand_as(a[part]))
        y = layer(x)
        y.sum().backward()  # the fixed B / C are parameters that learn
        for part in ("B", "C"):
            if part in fixed:
                assert getattr(layer, f"{part}_fixed").grad is not None
    assert not hasattr(full, "B_fixed")  # the default model is unchanged (old checkpoints still load)
    for bad in ("delta,D", "B,B", 3):
        with pytest.raises(ValueError, match="argument 'selective'"):
            S6(8, 4, selective=bad)


def test_ablation_config_reaches_the_model_and_decoding_agrees():
    cfg = T.TrainConfig(task="induction", model="mamba", seq_len=8, vocab_size=5, d_model=8, n_layers=1, d_state=2,
                        selective="delta")
    assert T.model_kwargs(cfg)["selective"] == "delta"
    assert "selective" not in T.model_kwargs(T.TrainConfig())  # default: nothing changes
    model = T.build_model(cfg)
    assert model.layers[0].mixer.s6.selective == frozenset({"delta"})
    tokens = torch.randint(0, 5, (2, 9))
    with torch.no_grad():
        logits = model(tokens)
        state = model.init_state(2)
        for t in range(9):
            step_logits, state = model.step(tokens[:, t], state)
    assert torch.allclose(step_logits, logits[:, -1], atol=1e-5)
    with pytest.raises(ValueError, match="argument 'selective'"):
        T.TrainConfig(selective="gamma").validate()


def test_selectivity_ablation_writes_every_variant(tmp_path, monkeypatch):
    small = T.TrainConfig(task="induction", model="mamba", seq_len=8, vocab_size=5, d_model=8, n_layers=1, d_state=2,
                          steps=2, eval_every=2, eval_size=8)
    monkeypatch.setitem(T.REPRODUCE_RUNS, "copy-mamba", small)
    monkeypatch.setattr(T, "FINAL_EVAL_SIZE", 16)
    res = T.selectivity_ablation(tmp_path / "abl.json", seeds=(0,))
    saved = json.loads((tmp_path / "abl.json").read_text())
    assert [r["variant"] for r in saved["runs"]] == list(T.ABLATION_VARIANTS)
    assert {r["selective"] for r in saved["runs"]} == set(T.ABLATION_VARIANTS.values())
    assert all(0 <= r["accuracy"] <= 1 for r in res["runs"]) and saved["command"].startswith("mamba-edu train --ablation")
    with pytest.raises(ValueError, match="argument 'workers'"):
        T.selectivity_ablation(tmp_path / "x.json", workers=0)


def test_committed_selectivity_ablation():
    path = Path(__file__).resolve().parents[1] / "results" / "ablation" / "selectivity.json"
    if not path.exists():
        pytest.skip("no committed ablation yet")
    res = json.loads(path.read_text())
    assert set(res["variants"]) == set(T.ABLATION_VARIANTS) and len(res["runs"]) == len(res["variants"]) * len(res["seeds"])
    for r in res["runs"]:
        assert 0 <= r["accuracy"] <= 1 and r["selective"] == T.ABLATION_VARIANTS[r["variant"]]
