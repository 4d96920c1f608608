"""The chapter-12 additions to tasks and training: parity and running sums mod m, the mamba3 mixer in
TinyLM (decoding = forward, checkpoints), `reproduce --only` keeping the other runs, and the
committed state-tracking and L = 256 copying results."""

import json
from pathlib import Path

import pytest
import torch

from mamba_edu import cli, tasks
from mamba_edu import train as T
from mamba_edu.models import TinyLM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "tasks"


def test_modular_sum_and_parity_targets():
    b = tasks.modular_sum(16, seq_len=40, vocab_size=5, seed=1)
    assert b.tokens.shape == b.targets.shape == (16, 40)
    assert int(b.tokens.min()) >= 0 and int(b.tokens.max()) <= 4
    for row in range(16):
        running = 0
        for t in range(40):  # the answer at every position is the sum so far mod 5
            running = (running + int(b.tokens[row, t])) % 5
            assert int(b.targets[row, t]) == running
    p = tasks.parity(8, seq_len=30, seed=2)
    assert set(p.tokens.unique().tolist()) <= {0, 1}
    assert torch.equal(p.targets, p.tokens.cumsum(1) % 2)
    assert p.answer_mask.all()  # every position is asked
    assert tasks.chance_accuracy("parity", 2) == 0.5 and tasks.chance_accuracy("mod-sum", 3) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="vocab_size"):
        tasks.modular_sum(2, vocab_size=1)
    with pytest.raises(ValueError, match="vocab_size"):
        tasks.parity(2, vocab_size=1)


@pytest.mark.parametrize("rope,rank", [(0.5, 1), (0, 1), (1, 2)])
def test_mamba3_tinylm_decodes_like_its_forward(rope, rank):
    torch.manual_seed(0)
    m = TinyLM(vocab_size=5, d_model=16, n_layers=2, mixer="mamba3", d_state=8, headdim=8, rope_fraction=rope,
               mimo_rank=rank).double()
    tok = torch.randint(0, 5, (2, 9))
    close = (m(tok) - m.decode(tok)).abs().max().item()
    assert close < 1e-9


def test_mamba3_config_checkpoint_roundtrip(tmp_path):
    cfg = T.TrainConfig(task="parity", model="mamba3", seq_len=8, vocab_size=2, d_model=8, n_layers=1, d_state=4,
                        headdim=4, steps=2, eval_every=2, eval_size=8)
    res = T.train(cfg, progress=False)
    pt, _ = T.save_checkpoint(tmp_path / "p", res.model, cfg)
    model, meta = T.load_checkpoint(pt)
    assert meta["model_kwargs"]["mixer"] == "mamba3" and meta["model_kwargs"]["rope_fraction"] == 0.5
    tok = torch.randint(0, 2, (3, 8))
    assert torch.equal(model(tok), res.model(tok))
    with pytest.raises(ValueError, match="rope_fraction"):
        T.TrainConfig(model="mamba3", rope_fraction=0.25).validate()
    # the optimiser never decays Mamba-3's B/C biases (3-D parameters) or the old models' A
    opt = T.make_optimizer(res.model, cfg)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert id(res.model.layers[0].mixer.B_bias) not in decayed
    assert id(res.model.layers[0].mixer.in_proj.weight) in decayed


def test_reproduce_only_keeps_the_other_runs(tmp_path):
    small = dict(seq_len=8, vocab_size=2, d_model=8, n_layers=1, d_state=4, headdim=4, steps=2, eval_every=2, eval_size=8)
    runs = {"parity-mamba3": T.TrainConfig(task="parity", model="mamba3", **small),
            "parity-mamba3-real": T.TrainConfig(task="parity", model="mamba3", rope_fraction=0, **small)}
    T.reproduce(tmp_path, max_len=64, n_extrapolate=4, runs=runs, progress=False)
    first = json.loads((tmp_path / "results.json").read_text())
    T.reproduce(tmp_path, max_len=64, n_extrapolate=4, runs=runs, progress=False, only=["parity-mamba3-real"])
    second = json.loads((tmp_path / "results.json").read_text())
    assert second["runs"]["parity-mamba3"] == first["runs"]["parity-mamba3"]  # untouched
    assert second["runs"]["parity-mamba3-real"]["environment"]["date"]  # retrained, with its own environment
    assert list(second["runs"]) == ["parity-mamba3", "parity-mamba3-real"] and "total_seconds" in second
    assert "parity-mamba3-real" in second["partial_seconds"]
    text = (tmp_path / "README.md").read_text()
    assert "State tracking: parity" in text and "mamba3 (real state, no rotation)" in text
    assert "Longer sequences (parity" in text
    with pytest.raises(ValueError, match="only"):
        T.reproduce(tmp_path, runs=runs, progress=False, only=["nothing-*"])


def _exit_code(argv) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("argv", [["--reproduce", "{tmp}", "--only", "no-such-run"], ["--reproduce", "{tmp}", "--only", ","],
                                  ["--only", "parity-*"]])
def test_cli_only_names_a_bad_pattern(tmp_path, capsys, argv):
    assert _exit_code(["train", *[a.replace("{tmp}", str(tmp_path)) for a in argv], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--only" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_mamba3_options_apply_to_mamba3_only(capsys):
    assert _exit_code(["train", "--model", "mamba", "--rope-fraction", "0", "--steps", "1", "--quiet"]) == 2
    assert "--rope-fraction" in capsys.readouterr().err
    assert _exit_code(["train", "--model", "mamba3", "--rope-fraction", "0.3", "--steps", "1", "--quiet"]) == 2
    assert "rope-fraction" in capsys.readouterr().err


@pytest.mark.skipif(not (RESULTS / "results.json").exists(), reason="results/tasks not generated")
def test_committed_state_tracking_and_long_copying_results():
    results = json.loads((RESULTS / "results.json").read_text())
    runs = results["runs"]
    for name in ("parity-mamba3", "parity-mamba3-real", "parity-mamba", "copy256-mamba", "copy256-s4d"):
        assert name in runs, name
        assert (RESULTS / runs[name]["checkpoint"]).stat().st_size < 500_000
        assert T.TrainConfig.from_dict(runs[name]["config"]) == T.REPRODUCE_RUNS[name]
    # the claims of chapter 12: only the rotating state tracks parity
    assert runs["parity-mamba3"]["accuracy"] >= 0.99
    for real in ("parity-mamba3-real", "parity-mamba"):
        assert runs[real]["accuracy"] < 0.7
    model, meta = T.load_checkpoint(RESULTS / "checkpoints" / "parity-mamba3")
    assert T.evaluate(model, "parity", 64, 2, n_samples=64)["accuracy"] >= 0.99
