"""A byte-level language model trained on text every machine has: the Python standard library's source.

Glossary
    corpus      the .py files of the running interpreter's standard library
                (`sysconfig.get_paths()["stdlib"]`), tests and third-party packages left out, read
                as UTF-8 bytes; nothing is downloaded
    split       a file belongs to the held-out (validation) part when crc32(its relative path) mod
                VAL_MOD == 0, else to the training part: deterministic, and a whole file is on one side
    byte / token  the model reads bytes: V = 256 token ids, token = the byte (`tokenizer.text_to_tokens`
                with vocab_size 256); a character of plain ASCII is one token, an emoji four
    loss        the mean cross-entropy of the next byte, in nats per byte
    bits per byte   loss / ln 2: how many bits an ideal coder driven by the model spends per byte
                (8 for a uniform guess, about 5 for "which letters are common")
    perplexity  exp(loss): the model is as unsure as a uniform choice among this many bytes

The recipe is train.py's (AdamW, warm-up then cosine, clipped gradients, seeded batches): a batch is
`batch_size` random windows of seq_len + 1 bytes of the training part (offsets drawn from
`train.train_seed(seed, step)`), the model predicts every next byte. The held-out windows are fixed
(evenly spaced over the validation part) and the same for every model.

    python -c "import mamba_edu.textlm as t; t.reproduce()"   ≡   mamba-edu train --preset textlm
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sysconfig
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ._checks import check_choice, check_float, check_int, fail
from .models import TinyLM
from .train import count_parameters, environment, lr_factor, make_optimizer, train_seed, write_checkpoint

VOCAB = 256  # bytes
VAL_MOD = 20  # one file in twenty (by path hash) is held out
SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
MODELS = ("mamba", "attention")


# ----------------------------------------------------------------------------------------------
# The corpus
# ----------------------------------------------------------------------------------------------


def stdlib_root() -> Path:
    """The running interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path | None = None) -> list[str]:
    """The relative paths (sorted, '/'-separated) of the corpus's .py files under `root` (default: the stdlib)."""
    root = stdlib_root() if root is None else Path(root)
    if not root.is_dir():
        fail("corpus_files", "root", "an existing folder", str(root))
    out = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if not SKIP_DIRS & set(rel.parts[:-1]) and path.is_file():
            out.append(rel.as_posix())
    return sorted(out)


def is_validation(rel: str) -> bool:
    """Whether the file `rel` is held out: crc32 of its path mod VAL_MOD == 0."""
    return zlib.crc32(rel.encode()) % VAL_MOD == 0


@dataclass
class Corpus:
    """The training and held-out bytes (1-D uint8 tensors), and where they came from."""

    train: torch.Tensor  # (N_train,) uint8
    val: torch.Tensor  # (N_val,) uint8
    train_files: int
    val_files: int
    sha256: str  # of the train bytes then the val bytes: two machines with the same digest trained on the same text

    def describe(self) -> dict:
        return {"train_bytes": int(self.train.numel()), "val_bytes": int(self.val.numel()),
                "train_files": self.train_files, "val_files": self.val_files, "sha256": self.sha256}


def load_corpus(root: Path | None = None, max_train_bytes: int | None = None) -> Corpus:
    """Read the corpus: each part the concatenation of its files' bytes in path order (a file ends
    with a newline), the training part cut at `max_train_bytes` if given."""
    root = stdlib_root() if root is None else Path(root)
    parts: dict[bool, list[bytes]] = {False: [], True: []}
    for rel in corpus_files(root):
        data = (root / rel).read_bytes()
        parts[is_validation(rel)].append(data if data.endswith(b"\n") else data + b"\n")
    train, val = b"".join(parts[False]), b"".join(parts[True])
    if max_train_bytes is not None:
        train = train[:check_int("load_corpus", "max_train_bytes", max_train_bytes)]
    if len(val) < 4096 or len(train) < 4096:
        fail("load_corpus", "root", "a folder with at least 4 KiB of .py source on each side of the split",
             f"{len(train)} training and {len(val)} held-out bytes")
    digest = hashlib.sha256(train + val).hexdigest()
    as_tensor = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8)  # noqa: E731
    return Corpus(as_tensor(train), as_tensor(val), len(parts[False]), len(parts[True]), digest)


def random_windows(data: torch.Tensor, batch: int, length: int, seed: int) -> torch.Tensor:
    """`batch` windows of `length` consecutive bytes at seeded random offsets.  (batch, length) int64"""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, data.numel() - length + 1, (batch, 1), generator=g)  # (b, 1)
    return data[start + torch.arange(length)].long()  # (b, length)


def spaced_windows(data: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """`count` windows of `length` bytes, evenly spaced over `data` (the fixed held-out set).  (count, length) int64"""
    count = min(count, data.numel() // length)
    start = torch.linspace(0, data.numel() - length, count).long()[:, None]  # (c, 1)
    return data[start + torch.arange(length)].long()  # (c, length)


# ----------------------------------------------------------------------------------------------
# Configuration, training and evaluation
# ----------------------------------------------------------------------------------------------


@dataclass
class TextLMConfig:
    """Everything a text-model run depends on (saved as JSON with the checkpoint)."""

    model: str = "mamba"  # mamba or attention
    seq_len: int = 128  # bytes of context per training window
    d_model: int = 64
    n_layers: int = 2
    d_state: int = 16  # mamba
    expand: int = 2  # mamba
    impl: str = "naive"  # mamba: on a CPU at L = 128 the loop over time is faster than the parallel scan
    n_heads: int = 4  # attention
    steps: int = 800
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: int = 50
    clip: float = 1.0
    eval_windows: int = 256  # held-out windows of seq_len + 1 bytes
    max_train_bytes: int = 0  # 0: the whole training part
    seed: int = 0

    def validate(self) -> "TextLMConfig":
        func = "TextLMConfig"
        check_choice(func, "model", self.model, MODELS)
        check_choice(func, "impl", self.impl, ("naive", "parallel", "auto"))
        for name in ("seq_len", "d_model", "n_layers", "d_state", "expand", "n_heads", "steps", "batch_size",
                     "eval_windows"):
            check_int(func, name, getattr(self, name))
        for name in ("warmup", "max_train_bytes", "seed"):
            check_int(func, name, getattr(self, name), minimum=0)
        for name in ("lr", "clip"):
            check_float(func, name, getattr(self, name), positive=True)
        if check_float(func, "weight_decay", self.weight_decay) < 0:
            fail(func, "weight_decay", "a number >= 0", self.weight_decay)
        if self.model == "attention" and self.d_model % self.n_heads:
            fail(func, "n_heads", f"a divisor of d_model = {self.d_model}", self.n_heads)
        return self

    def model_kwargs(self) -> dict:
        kw = dict(vocab_size=VOCAB, d_model=self.d_model, n_layers=self.n_layers, mixer=self.model)
        if self.model == "mamba":
            kw.update(d_state=self.d_state, expand=self.expand, impl=self.impl)
        else:
            kw.update(n_heads=self.n_heads, positions="sinusoidal", max_len=self.seq_len)
        return kw


@torch.no_grad()
def evaluate(model: TinyLM, windows: torch.Tensor) -> dict:
    """Next-byte loss on `windows` (c, L + 1), every position counted:
    {"loss" (nats/byte), "bits_per_byte", "perplexity", "accuracy" (argmax = next byte), "bytes"}."""
    was = model.training
    model.eval()
    total, right, n = 0.0, 0, 0
    for chunk in windows.split(64):
        logits = model(chunk[:, :-1])  # (c, L, V)
        target = chunk[:, 1:]  # (c, L)
        total += float(F.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1), reduction="sum"))
        right += int((logits.argmax(-1) == target).sum())
        n += target.numel()
    model.train(was)
    loss = total / n
    return {"loss": loss, "bits_per_byte": loss / math.log(2), "perplexity": math.exp(loss),
            "accuracy": right / n, "bytes": n}


def train_textlm(cfg: TextLMConfig, corpus: Corpus, progress: bool = True, eval_every: int = 0) -> dict:
    """Train a TinyLM on `corpus.train`; returns {"model", "seconds" (training only), "history"}."""
    from tqdm.auto import tqdm

    cfg.validate()
    torch.manual_seed(cfg.seed)
    model = TinyLM(**cfg.model_kwargs())
    # the head is tied to the embedding: N(0, 1) rows would make the first logits ~±8 (a loss of ~50
    # bits per byte); nanoGPT's 0.02 starts near the uniform guess
    torch.nn.init.normal_(model.embedding.weight, std=0.02)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
    val = spaced_windows(corpus.val, min(cfg.eval_windows, 64), cfg.seq_len + 1)
    history, run_loss, seconds = [], None, 0.0
    bar = tqdm(range(cfg.steps), desc=f"textlm/{cfg.model}", disable=not progress, mininterval=2.0)
    for step in bar:
        t0 = time.perf_counter()
        x = random_windows(corpus.train, cfg.batch_size, cfg.seq_len + 1, train_seed(cfg.seed, step))  # (b, L+1)
        logits = model(x[:, :-1])  # (b, L, V)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        seconds += time.perf_counter() - t0
        lv = float(loss.detach())
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == cfg.steps):
            history.append({"step": step + 1, "train_loss": run_loss, "seconds": seconds,
                            "val_bits_per_byte": evaluate(model, val)["bits_per_byte"]})
        bar.set_postfix(loss=f"{run_loss:.3f}", refresh=False)
    bar.close()
    model.eval()
    return {"model": model, "seconds": seconds, "history": history}


# ----------------------------------------------------------------------------------------------
# The reproduction: every number of results/textlm/ comes from here
# ----------------------------------------------------------------------------------------------

# The shipped Mamba model, and an attention model with as many parameters (4 layers of width 64
# hold what 2 Mamba blocks of width 64 hold), trained on the same bytes for the same steps.
TEXTLM_RUNS = {
    "textlm-mamba": TextLMConfig(model="mamba"),
    "textlm-attention": TextLMConfig(model="attention", n_layers=4, n_heads=4, lr=2e-3),
}
SHIPPED = "textlm-mamba"  # the checkpoint the app reads


def reproduce(out_dir="results/textlm", runs: dict | None = None, progress: bool = True) -> dict:
    """Train every run of TEXTLM_RUNS, evaluate each on the same held-out windows, and write

        out_dir/results.json        every number, with seeds, sizes, steps, wall times, versions, the corpus digest
        out_dir/README.md           the same as a table
        out_dir/NAME.pt, NAME.json  the trained weights and their config (train.load_checkpoint reads them)
    """
    runs = TEXTLM_RUNS if runs is None else runs
    for name, cfg in runs.items():
        if not isinstance(cfg, TextLMConfig):
            fail("reproduce", "runs", "a dict of TextLMConfig", f"{name}: {type(cfg).__name__}")
        cfg.validate()
    out = Path(out_dir)
    t_start = time.perf_counter()
    caps = {cfg.max_train_bytes for cfg in runs.values()}
    if len(caps) != 1:
        fail("reproduce", "runs", "configs with the same max_train_bytes (one corpus)", sorted(caps))
    corpus = load_corpus(max_train_bytes=caps.pop() or None)
    results = {"environment": environment(), "corpus": corpus.describe(), "runs": {}}
    for name, cfg in runs.items():
        if progress:
            print(f"[{name}] training ({cfg.steps} steps of {cfg.batch_size} × {cfg.seq_len} bytes)", flush=True)
        res = train_textlm(cfg, corpus, progress=progress, eval_every=max(1, cfg.steps // 6))
        windows = spaced_windows(corpus.val, cfg.eval_windows, cfg.seq_len + 1)
        t0 = time.perf_counter()
        ev = evaluate(res["model"], windows)
        entry = {"config": dataclasses.asdict(cfg), "model_kwargs": cfg.model_kwargs(),
                 "parameters": count_parameters(res["model"]), "train_seconds": res["seconds"],
                 "eval_seconds": time.perf_counter() - t0, "held_out": ev, "history": res["history"],
                 "checkpoint": f"{name}.pt"}
        write_checkpoint(out / name, res["model"], {"config": entry["config"], "model_kwargs": entry["model_kwargs"],
                                                   "parameters": entry["parameters"], "held_out": ev,
                                                   "corpus": results["corpus"]})
        results["runs"][name] = entry
        if progress:
            print(f"[{name}] held out: {ev['bits_per_byte']:.3f} bits/byte, perplexity {ev['perplexity']:.2f}, "
                  f"{res['seconds']:.0f} s of training", flush=True)
    results["total_seconds"] = time.perf_counter() - t_start
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "README.md").write_text(results_markdown(results))
    return results


def results_markdown(results: dict) -> str:
    """results/textlm/README.md, made from the dict `reproduce` returns (or results.json)."""
    env, corpus, runs = results["environment"], results["corpus"], results["runs"]
    lines = ["# A byte-level language model on the Python standard library (CPU scale)", "",
             "Generated by `mamba-edu train --preset textlm` (or `make results-textlm`); every number below comes",
             "from `results.json` beside this file. Do not edit by hand. The app's *Inside Mamba* page reads",
             f"`{SHIPPED}.pt`.", "",
             f"torch {env['torch']}, Python {env['python']}, {env['machine']}, {env['threads']} torch threads, "
             f"{env['date']}; whole run {results['total_seconds'] / 60:.1f} min of wall time on a machine shared "
             "with other work (times are as measured there, not on an idle machine).", "",
             f"Corpus: the .py files of this Python's standard library (tests and site-packages left out), "
             f"{corpus['train_files']} files ({corpus['train_bytes'] / 1e6:.2f} MB) for training, "
             f"{corpus['val_files']} other files ({corpus['val_bytes'] / 1e6:.2f} MB) held out "
             f"(crc32 of the path mod {VAL_MOD} = 0); sha256 `{corpus['sha256'][:16]}…`. "
             "Another Python version has other files, so other numbers.", "",
             "| run | mixer | layers | d_model | parameters | steps × batch × bytes | lr | seed | train time "
             "| held-out loss (nats/byte) | bits per byte | perplexity | next-byte accuracy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        c, ev = r["config"], r["held_out"]
        mixer = (f"mamba (d_state {c['d_state']}, expand {c['expand']})" if c["model"] == "mamba"
                 else f"attention ({c['n_heads']} heads, sinusoidal)")
        lines.append(f"| {name} | {mixer} | {c['n_layers']} | {c['d_model']} | {r['parameters']:,} "
                     f"| {c['steps']} × {c['batch_size']} × {c['seq_len']} | {c['lr']:g} | {c['seed']} "
                     f"| {r['train_seconds'] / 60:.1f} min | {ev['loss']:.3f} | {ev['bits_per_byte']:.3f} "
                     f"| {ev['perplexity']:.2f} | {100 * ev['accuracy']:.1f} % |")
    first = next(iter(runs.values()))
    lines += ["", f"Held out: {first['held_out']['bytes']:,} next-byte predictions in {first['config']['eval_windows']} "
              f"windows of {first['config']['seq_len']} bytes spread evenly over the held-out files, the same for "
              "every model. A uniform guess scores 8 bits per byte (perplexity 256).", ""]
    return "\n".join(lines)


__all__ = ["VOCAB", "VAL_MOD", "stdlib_root", "corpus_files", "is_validation", "Corpus", "load_corpus",
           "random_windows", "spaced_windows", "TextLMConfig", "evaluate", "train_textlm", "TEXTLM_RUNS", "SHIPPED",
           "reproduce", "results_markdown"]
