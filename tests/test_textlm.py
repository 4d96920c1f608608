"""mamba_edu.textlm: the corpus and its split are deterministic, batches are seeded, a short run learns,
the results files are made by one function and match what is committed, and bad settings are refused."""

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mamba_edu import textlm
from mamba_edu.models import TinyLM
from mamba_edu.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "textlm"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A fake standard library: code files, a tests folder and site-packages (both left out)."""
    root = tmp_path_factory.mktemp("stdlib")
    for i in range(100):  # 2 of these paths are held out (crc32 mod 20 == 0)
        (root / "pkg").mkdir(exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text(f'"""Module {i}."""\n\ndef f{i}(x):\n    return x + {i}\n' * 60)
    for skip in ("test", "site-packages", "idlelib/idle_test"):
        (root / skip).mkdir(parents=True, exist_ok=True)
        (root / skip / "t.py").write_text("SKIPPED = 1\n" * 50)
    (root / "notes.txt").write_text("not python\n")
    return root


def test_corpus_files_are_sorted_and_leave_tests_and_packages_out(tiny_root):
    files = textlm.corpus_files(tiny_root)
    assert files == sorted(files) and len(files) == 100
    assert all(f.startswith("pkg/mod") and f.endswith(".py") for f in files)


def test_the_split_is_by_path_and_deterministic(tiny_root):
    files = textlm.corpus_files(tiny_root)
    val = [f for f in files if textlm.is_validation(f)]
    assert 0 < len(val) < len(files)
    a, b = textlm.load_corpus(tiny_root), textlm.load_corpus(tiny_root)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val) and a.sha256 == b.sha256
    assert (a.train_files, a.val_files) == (len(files) - len(val), len(val))
    assert a.val.numel() == sum((tiny_root / f).stat().st_size for f in val)
    assert b"SKIPPED" not in bytes(a.train.tolist()) + bytes(a.val.tolist())
    cut = textlm.load_corpus(tiny_root, max_train_bytes=5000)
    assert cut.train.numel() == 5000 and torch.equal(cut.train, a.train[:5000])


def test_the_real_stdlib_corpus_is_there_offline():
    files = textlm.corpus_files()
    assert len(files) > 100 and "os.py" in files and not any(f.startswith("test/") for f in files)


def test_windows_are_seeded_and_inside_the_data():
    data = torch.arange(1000, dtype=torch.int64).to(torch.uint8)
    w1, w2 = textlm.random_windows(data, 8, 33, seed=5), textlm.random_windows(data, 8, 33, seed=5)
    assert torch.equal(w1, w2) and w1.shape == (8, 33) and w1.dtype == torch.int64
    assert not torch.equal(w1, textlm.random_windows(data, 8, 33, seed=6))
    assert bool(((w1[:, 1:] - w1[:, :-1]) % 256 == 1).all())  # consecutive bytes
    s = textlm.spaced_windows(data, 4, 100)
    assert s.shape == (4, 100) and int(s[0, 0]) == 0 and int(s[-1, -1]) == 999 % 256


def test_a_short_run_learns_and_its_checkpoint_loads(tiny_root, tmp_path, monkeypatch):
    corpus = textlm.load_corpus(tiny_root)
    cfg = textlm.TextLMConfig(seq_len=32, d_model=16, n_layers=1, d_state=4, steps=40, batch_size=8, lr=1e-2,
                              eval_windows=8)
    torch.manual_seed(0)
    before = textlm.evaluate(TinyLM(**cfg.model_kwargs()), textlm.spaced_windows(corpus.val, 8, 33))
    res = textlm.train_textlm(cfg, corpus, progress=False, eval_every=20)
    after = textlm.evaluate(res["model"], textlm.spaced_windows(corpus.val, 8, 33))
    assert after["bits_per_byte"] < 0.6 * before["bits_per_byte"] and after["bits_per_byte"] < 4
    assert after["perplexity"] == pytest.approx(math.exp(after["loss"]))
    assert [h["step"] for h in res["history"]] == [20, 40]
    monkeypatch.setattr(textlm, "load_corpus", lambda max_train_bytes=None: corpus)
    runs = {"textlm-mamba": cfg, "textlm-attention": textlm.TextLMConfig(
        model="attention", seq_len=32, d_model=16, n_layers=2, n_heads=2, steps=5, batch_size=8, eval_windows=8)}
    out = textlm.reproduce(tmp_path, runs=runs, progress=False)
    model, meta = load_checkpoint(tmp_path / "textlm-mamba")
    ev = textlm.evaluate(model, textlm.spaced_windows(corpus.val, 8, 33))
    assert ev["loss"] == pytest.approx(out["runs"]["textlm-mamba"]["held_out"]["loss"], rel=1e-5)
    assert meta["held_out"] == out["runs"]["textlm-mamba"]["held_out"]
    assert (tmp_path / "README.md").read_text() == textlm.results_markdown(json.loads((tmp_path / "results.json").read_text()))


def test_committed_results_are_consistent():
    res = json.loads((RESULTS / "results.json").read_text())
    assert (RESULTS / "README.md").read_text() == textlm.results_markdown(res)  # regenerated, never edited
    assert set(res["runs"]) == set(textlm.TEXTLM_RUNS)
    m, a = res["runs"]["textlm-mamba"], res["runs"]["textlm-attention"]
    assert abs(m["parameters"] - a["parameters"]) / m["parameters"] < 0.05  # the baseline has the same size
    assert m["held_out"]["bytes"] == a["held_out"]["bytes"]  # judged on the same bytes
    for name, r in res["runs"].items():
        assert r["config"] == dataclasses.asdict(textlm.TEXTLM_RUNS[name])  # the shipped presets made these numbers
        assert r["held_out"]["bits_per_byte"] == pytest.approx(r["held_out"]["loss"] / math.log(2))
    assert (RESULTS / "textlm-mamba.pt").stat().st_size < 2 * 2**20


def test_shipped_checkpoint_reproduces_its_held_out_numbers():
    res = json.loads((RESULTS / "results.json").read_text())
    model, meta = load_checkpoint(RESULTS / textlm.SHIPPED)
    corpus = textlm.load_corpus()
    if corpus.sha256 != res["corpus"]["sha256"]:
        pytest.skip("another Python version: its standard library is other text")
    cfg = res["runs"][textlm.SHIPPED]["config"]
    windows = textlm.spaced_windows(corpus.val, 32, cfg["seq_len"] + 1)  # a quarter of them: fast, and not a copy
    ev = textlm.evaluate(model, windows)
    assert abs(ev["bits_per_byte"] - meta["held_out"]["bits_per_byte"]) < 0.4
    assert ev["bits_per_byte"] < 4  # far better than the 8 bits of a uniform guess


@pytest.mark.parametrize("kw, arg", [
    (dict(model="s4d"), "model"), (dict(steps=0), "steps"), (dict(lr=0.0), "lr"), (dict(impl="fused"), "impl"),
    (dict(model="attention", n_heads=3), "n_heads"), (dict(weight_decay=-1.0), "weight_decay"),
])
def test_bad_configs_are_refused(kw, arg):
    with pytest.raises(ValueError, match=f"argument '{arg}'"):
        textlm.TextLMConfig(**kw).validate()


def test_cli_refuses_an_unknown_preset_in_one_line():
    p = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "train", "--preset", "nope"], capture_output=True, text=True)
    assert p.returncode == 2 and "invalid choice: 'nope'" in p.stderr and "Traceback" not in p.stderr
