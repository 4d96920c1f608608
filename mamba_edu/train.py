"""Training tiny models on the synthetic tasks on a CPU, checkpoints, and length extrapolation.

Glossary
    config       a `TrainConfig`: the task, the model, the sizes, the optimiser, the seed (plain data,
                 saved as JSON next to every checkpoint)
    step         one optimiser update on one freshly generated batch (the data never repeats)
    token accuracy     the fraction of answer positions where the argmax of the logits is the answer
    sequence accuracy  the fraction of sequences whose answers are ALL right
    chance       the accuracy of a uniform guess among the possible answers (`tasks.chance_accuracy`)
    L_train      the sequence length the model was trained at
    extrapolation      evaluating at L > L_train (2×, 4×, … L_train) without any further training
    path         how a long sequence is run: "forward" (all tokens at once: the parallel scan, the FFT
                 convolution or full attention) or "recurrent" (`TinyLM.step`, one token at a time,
                 memory constant in L for the SSMs; attention's key-value cache grows instead)

The recipe (nanoGPT-style, small enough for two CPU cores)

    loss = cross-entropy on the answer positions only (targets elsewhere are IGNORE)
    AdamW, weight decay on weight matrices only (not on the state matrix A, D, Δ's bias, norms)
    learning rate: linear warm-up, then a cosine down to 0
    the gradient's global norm is clipped before every update

Everything is seeded: the model's initial weights by `seed`, the training batch of step s by
`train_seed(seed, s)`, and the evaluation sets by fixed seeds shared by every model, so two models
are always compared on the same sequences.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import tasks
from ._checks import check_choice, check_float, check_int, fail
from .models import MIXERS, POSITIONS, TinyLM

EVAL_SEED = 2**40  # evaluation sets use seeds EVAL_SEED + …, far from every training seed
FORWARD_TOKENS = 2**18  # at most this many tokens per forward batch in evaluation (bounds memory)


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as JSON with the checkpoint)."""

    task: str = "selective-copy"  # a key of tasks.TASKS
    model: str = "mamba"  # a key of models.MIXERS: mamba, s4d, attention
    seq_len: int = 64  # L (copying: the noisy region; the model reads L + n_data tokens)
    n_data: int = 4  # selective copying: tokens to copy; mqar: key-value pairs
    vocab_size: int = 10
    d_model: int = 32
    n_layers: int = 2
    d_state: int = 8  # mamba and s4d
    expand: int = 2  # mamba
    dt_rank: int = 0  # mamba: rank of the Δ projection (0: the library's default ⌈d_model/16⌉)
    n_heads: int = 2  # attention
    positions: str = "sinusoidal"  # attention: sinusoidal or learned
    headdim: int = 16  # mamba3: channels per head
    rope_fraction: float = 0.5  # mamba3: fraction of the state that rotates (0: a real state)
    mimo_rank: int = 1  # mamba3: MIMO rank (1: SISO)
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: int = 30
    clip: float = 1.0
    eval_every: int = 100
    eval_size: int = 512
    seed: int = 0

    def validate(self) -> "TrainConfig":
        func = "TrainConfig"
        check_choice(func, "task", self.task, tasks.TASKS)
        check_choice(func, "model", self.model, MIXERS)
        check_choice(func, "positions", self.positions, POSITIONS)
        for name in ("seq_len", "n_data", "vocab_size", "d_model", "n_layers", "d_state", "expand", "n_heads",
                     "steps", "batch_size", "eval_every", "eval_size", "headdim", "mimo_rank"):
            check_int(func, name, getattr(self, name))
        check_int(func, "warmup", self.warmup, minimum=0)
        check_int(func, "dt_rank", self.dt_rank, minimum=0)
        check_int(func, "seed", self.seed, minimum=0)
        if self.rope_fraction not in (0, 0.5, 1):
            fail(func, "rope_fraction", "0, 0.5 or 1", self.rope_fraction)
        for name in ("lr", "clip"):
            check_float(func, name, getattr(self, name), positive=True)
        if check_float(func, "weight_decay", self.weight_decay) < 0:
            fail(func, "weight_decay", "a number >= 0", self.weight_decay)
        tasks.make_batch(self.task, 1, self.seq_len, self.vocab_size, **task_kwargs(self))  # the task's own checks
        return self

    @property
    def total_len(self) -> int:
        """T, the number of tokens of one training sequence."""
        return tasks.total_length(self.task, self.seq_len, self.n_data)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def task_kwargs(cfg: TrainConfig) -> dict:
    """The task generator's extra keywords: n_data for copying, n_pairs for MQAR, none for induction."""
    return {"selective-copy": {"n_data": cfg.n_data}, "mqar": {"n_pairs": cfg.n_data}}.get(cfg.task, {})


def model_kwargs(cfg: TrainConfig) -> dict:
    """TinyLM's keywords for this config (only the ones its mixer takes)."""
    kw = dict(vocab_size=cfg.vocab_size, d_model=cfg.d_model, n_layers=cfg.n_layers, mixer=cfg.model)
    if cfg.model == "mamba":
        kw.update(d_state=cfg.d_state, expand=cfg.expand)
        if cfg.dt_rank:
            kw.update(dt_rank=cfg.dt_rank)
    elif cfg.model == "s4d":
        kw.update(d_state=cfg.d_state)
    elif cfg.model == "attention":
        kw.update(n_heads=cfg.n_heads, positions=cfg.positions, max_len=cfg.total_len)
    elif cfg.model == "mamba3":
        kw.update(d_state=cfg.d_state, expand=cfg.expand, headdim=cfg.headdim, rope_fraction=cfg.rope_fraction,
                  mimo_rank=cfg.mimo_rank)
    return kw


def build_model(cfg: TrainConfig) -> TinyLM:
    """A freshly initialised TinyLM for `cfg`, its weights drawn from `cfg.seed`."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    return TinyLM(**model_kwargs(cfg))


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable scalars (the tied head counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_seed(seed: int, step: int) -> int:
    """The seed of the training batch of `step` for a run seeded with `seed`."""
    return seed * 10**9 + step


# ----------------------------------------------------------------------------------------------
# Loss and accuracy on the answer positions
# ----------------------------------------------------------------------------------------------


def answer_metrics(logits: torch.Tensor, targets: torch.Tensor):
    """Cross-entropy, token accuracy and sequence accuracy over the answer positions.

    logits (b, T, V), targets (b, T) with IGNORE off the answers. Returns (loss tensor, token
    accuracy, sequence accuracy).
    """
    mask = targets != tasks.IGNORE  # (b, T)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=tasks.IGNORE)
    right = (logits.argmax(-1) == targets) & mask  # (b, T)
    token_acc = float(right.sum()) / max(1, int(mask.sum()))
    seq_acc = float((right.sum(1) == mask.sum(1)).float().mean())
    return loss, token_acc, seq_acc


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """The learning-rate multiplier at `step`: linear warm-up over `warmup` steps, then a cosine to 0.

        f(s) = (s + 1) / warmup                                     s < warmup
        f(s) = ½ (1 + cos(π (s − warmup) / (steps − warmup)))       afterwards
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# the state matrix A of S6 and S4D (its scale is the memory); Mamba-3's B/C biases and MIMO weights
NO_DECAY = ("A_log", "log_A_real", "A_imag", "B_bias", "C_bias", "mimo_x", "mimo_z", "mimo_o")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only (dim ≥ 2), as in nanoGPT and mamba-ssm.

    Vectors (biases, norms, D, Δ's bias) and the state matrix A (A_log in S6, log_A_real/A_imag in
    S4D) are never decayed: pulling A towards 0 would change how long the model remembers.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if p.dim() >= 2 and n.rsplit(".", 1)[-1] not in NO_DECAY]
    rest = [p for n, p in named if not (p.dim() >= 2 and n.rsplit(".", 1)[-1] not in NO_DECAY)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_recurrent(model: TinyLM, tokens: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Argmax predictions (b, T) computed one token at a time with `model.step`.

    Only the columns where `want` (b, T) has an answer are filled (−1 elsewhere): the logits of the
    other positions are never kept, so the memory is the model's state plus (b, T) integers.
    """
    b, T = tokens.shape
    preds = torch.full((b, T), -1, dtype=torch.int64)  # (b, T)
    ask = want.any(0).tolist()  # (T,) whether any row needs this column
    state = model.init_state(b, device=tokens.device)
    for t in range(T):
        logits, state = model.step(tokens[:, t], state)  # (b, V)
        if ask[t]:
            preds[:, t] = logits.argmax(-1)  # (b,)
    return preds


@torch.no_grad()
def predict_forward(model: TinyLM, tokens: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Argmax predictions (b, T) from the full forward pass, in batches of ≤ FORWARD_TOKENS tokens."""
    b, T = tokens.shape
    rows = max(1, FORWARD_TOKENS // T)
    out = []
    for i in range(0, b, rows):
        out.append(model(tokens[i:i + rows]).argmax(-1))  # (rows, T)
    return torch.cat(out).cpu()  # (b, T)


def evaluate(model: TinyLM, task: str, seq_len: int, vocab_size: int, n_samples: int = 512, seed: int = EVAL_SEED,
             path: str = "forward", batch_size: int = 256, **kwargs) -> dict:
    """Accuracy of `model` on n_samples fresh sequences of `task` at length `seq_len`.

    Returns {"accuracy", "sequence_accuracy", "n", "seconds", "path"}. The sequences come from
    `seed`, so every model evaluated with the same arguments sees the same data.
    """
    func = "evaluate"
    check_choice(func, "task", task, tasks.TASKS)
    check_int(func, "n_samples", n_samples)
    check_int(func, "batch_size", batch_size)
    check_choice(func, "path", path, ("forward", "recurrent"))
    predict = predict_forward if path == "forward" else predict_recurrent
    was_training = model.training
    model.eval()
    right = asked = seqs_right = 0
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, n_samples, batch_size)):
        batch = tasks.make_batch(task, min(batch_size, n_samples - start), seq_len, vocab_size, seed=seed + i, **kwargs)
        mask = batch.answer_mask  # (b, T)
        dev = next(model.parameters()).device
        ok = (predict(model, batch.tokens.to(dev), mask).cpu() == batch.targets) & mask  # (b, T)
        right, asked = right + int(ok.sum()), asked + int(mask.sum())
        seqs_right += int((ok.sum(1) == mask.sum(1)).sum())
    model.train(was_training)
    return {"accuracy": right / asked, "sequence_accuracy": seqs_right / n_samples, "n": n_samples,
            "seconds": time.perf_counter() - t0, "path": path}


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """A trained model, its config, the curve (one row per evaluation) and the wall time."""

    model: TinyLM
    config: TrainConfig
    history: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def train(cfg: TrainConfig, progress: bool = True, device: str | torch.device = "cpu") -> TrainResult:
    """Train a TinyLM on `cfg.task` from scratch; evaluate every `cfg.eval_every` steps and at the end.

    The progress bar shows the running loss and token accuracy of the training batches and the
    latest evaluation accuracy. The batches are made on the CPU (seeded) and moved to `device`.
    """
    from tqdm.auto import tqdm

    cfg.validate()
    model = build_model(cfg).to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
    kw = task_kwargs(cfg)
    result = TrainResult(model, cfg)
    run_loss = run_acc = None
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=f"{cfg.task}/{cfg.model}", disable=not progress, mininterval=1.0)
    for step in bar:
        batch = tasks.make_batch(cfg.task, cfg.batch_size, cfg.seq_len, cfg.vocab_size,
                                 seed=train_seed(cfg.seed, step), **kw)
        logits = model(batch.tokens.to(device))  # (b, T, V)
        loss, acc, _ = answer_metrics(logits, batch.targets.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        # exponential moving averages, for a readable bar
        lv = float(loss.detach())
        run_loss = lv if run_loss is None else 0.9 * run_loss + 0.1 * lv
        run_acc = acc if run_acc is None else 0.9 * run_acc + 0.1 * acc
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            train_s = time.perf_counter() - t0
            ev = evaluate(model, cfg.task, cfg.seq_len, cfg.vocab_size, n_samples=cfg.eval_size, **kw)
            result.history.append({"step": step + 1, "loss": run_loss, "train_accuracy": run_acc,
                                   "accuracy": ev["accuracy"], "sequence_accuracy": ev["sequence_accuracy"],
                                   "seconds": train_s})
            t0 += ev["seconds"]  # the wall time counts training only
        bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}",
                        eval=f"{result.final['accuracy']:.3f}" if result.history else "-", refresh=False)
    bar.close()
    result.seconds = time.perf_counter() - t0
    model.eval()
    return result


# ----------------------------------------------------------------------------------------------
# Checkpoints: a state dict (.pt) and a JSON config (.json) side by side
# ----------------------------------------------------------------------------------------------


def _stem(path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".pt", ".json") else path


def save_checkpoint(path, model: TinyLM, cfg: TrainConfig, **info) -> tuple[Path, Path]:
    """Write `path`.pt (the state dict) and `path`.json (config, TinyLM keywords, `info`). Returns both paths."""
    if not isinstance(model, TinyLM):
        fail("save_checkpoint", "model", "a TinyLM", type(model).__name__)
    if not isinstance(cfg, TrainConfig):
        fail("save_checkpoint", "cfg", "a TrainConfig", type(cfg).__name__)
    meta = {"config": dataclasses.asdict(cfg), "model_kwargs": model_kwargs(cfg),
            "parameters": count_parameters(model), **info}
    return write_checkpoint(path, model, meta)


def write_checkpoint(path, model: TinyLM, meta: dict) -> tuple[Path, Path]:
    """Write `path`.pt (the state dict, the tied head stored once) and `path`.json (`meta`, which must
    hold "model_kwargs": TinyLM's keywords, and gets "torch"). Returns both paths."""
    if not isinstance(model, TinyLM):
        fail("write_checkpoint", "model", "a TinyLM", type(model).__name__)
    if not isinstance(meta, dict) or "model_kwargs" not in meta:
        fail("write_checkpoint", "meta", "a dict with the key 'model_kwargs'", type(meta).__name__)
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    pt, js = stem.with_suffix(".pt"), stem.with_suffix(".json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    torch.save(state, pt)  # the tied head is the embedding: stored once
    js.write_text(json.dumps({**meta, "torch": torch.__version__}, indent=2) + "\n")
    return pt, js


def load_checkpoint(path) -> tuple[TinyLM, dict]:
    """Rebuild the model from `path`.json and load `path`.pt with `torch.load(weights_only=True)`.

    `path` may name the .pt, the .json or their common stem. Returns (model in eval mode, the JSON).
    """
    stem = _stem(path)
    pt, js = stem.with_suffix(".pt"), stem.with_suffix(".json")
    for p in (pt, js):
        if not p.exists():
            fail("load_checkpoint", "path", "a checkpoint with both a .pt and a .json file", f"{str(stem)!r} ({p.name} missing)")
    meta = json.loads(js.read_text())
    model = TinyLM(**meta["model_kwargs"])
    state = torch.load(pt, map_location="cpu", weights_only=True)
    state["lm_head.weight"] = state["embedding.weight"]
    model.load_state_dict(state)
    model.eval()
    return model, meta


# ----------------------------------------------------------------------------------------------
# Length extrapolation
# ----------------------------------------------------------------------------------------------


def extrapolation_lengths(train_len: int, max_len: int) -> list[int]:
    """train_len, 2·train_len, 4·train_len, … while ≤ max_len."""
    check_int("extrapolation_lengths", "train_len", train_len)
    check_int("extrapolation_lengths", "max_len", max_len, minimum=train_len)
    out = [train_len]
    while out[-1] * 2 <= max_len:
        out.append(out[-1] * 2)
    return out


def extrapolate(model: TinyLM, cfg: TrainConfig, lengths, n_samples: int = 64, path: str = "forward",
                time_budget_s: float = 60.0, progress: bool = False) -> list[dict]:
    """Evaluate a model trained at cfg.seq_len at each length of `lengths`, never crashing.

    Each row is {"length", "status", "accuracy", "seconds", "path", "n"}, status one of
        "ok"
        "cannot run (learned positions stop at L_train = …)"
        "too slow (predicted … s > budget … s)"   attention only: its time grows as L², predicted from
                                                  the previous length, the run is skipped (the SSMs'
                                                  time grows linearly and they always run)
        "out of memory"
    Once a length is skipped, every longer one is too (with the same status).
    """
    func = "extrapolate"
    check_choice(func, "path", path, ("forward", "recurrent"))
    check_float(func, "time_budget_s", time_budget_s, positive=True)
    kw = task_kwargs(cfg)
    rows, prev, skip = [], None, None
    quadratic = cfg.model == "attention"
    for L in lengths:
        check_int(func, "lengths", L, minimum=3)
        row = {"length": L, "status": "ok", "accuracy": None, "sequence_accuracy": None, "seconds": None,
               "path": path, "n": n_samples}
        T = tasks.total_length(cfg.task, L, cfg.n_data)
        if skip is None and cfg.model == "attention" and cfg.positions == "learned" and T > cfg.total_len:
            skip = f"cannot run (learned positions stop at L_train = {cfg.total_len})"
        if skip is None and prev is not None and quadratic:
            # attention's time grows as L² (forward or recurrent): predict it from the previous length
            predicted = prev[1] * (T / prev[0]) ** 2
            if predicted > time_budget_s:
                skip = f"too slow (predicted {predicted:.0f} s > budget {time_budget_s:.0f} s)"
        if skip is not None:
            row["status"] = skip
            rows.append(row)
            continue
        try:
            ev = evaluate(model, cfg.task, L, cfg.vocab_size, n_samples=n_samples, path=path,
                          batch_size=n_samples, **kw)
        except (RuntimeError, MemoryError) as e:  # an allocation that failed
            if "memory" not in str(e).lower() and not isinstance(e, MemoryError):
                raise
            skip = "out of memory"
            row["status"] = skip
            rows.append(row)
            continue
        row.update(accuracy=ev["accuracy"], sequence_accuracy=ev["sequence_accuracy"], seconds=ev["seconds"])
        prev = (T, ev["seconds"])
        rows.append(row)
        if progress:
            print(f"  {cfg.model:9s} L={L:>8d}  accuracy {ev['accuracy']:.3f}  ({ev['seconds']:.1f} s, {path})",
                  flush=True)
    return rows


def environment() -> dict:
    """Where and when the numbers were made."""
    return {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ----------------------------------------------------------------------------------------------
# The reproduction: every number of results/tasks/ comes from here
# ----------------------------------------------------------------------------------------------

_COPY = dict(task="selective-copy", seq_len=64, n_data=4, vocab_size=16, d_model=32, n_layers=2, d_state=8,
             steps=1500, batch_size=32, lr=1e-2, weight_decay=0.0, eval_every=250, eval_size=512, seed=0)
_INDUCTION = dict(task="induction", seq_len=64, vocab_size=16, batch_size=64, eval_every=100, eval_size=512, seed=0)

# name -> config. The sizes were chosen to fit two CPU cores (see docs/tasks.md): selective copying
# at the paper's vocabulary (16) with a short noisy region; induction heads trained at L = 64.
REPRODUCE_RUNS = {
    "copy-s4d": TrainConfig(model="s4d", **_COPY),  # the same widths as copy-mamba
    "copy-s4d-wide": TrainConfig(model="s4d", **{**_COPY, "d_model": 64, "n_layers": 4, "d_state": 16}),  # as many parameters
    "copy-mamba": TrainConfig(model="mamba", dt_rank=32, **_COPY),
    "copy-attention": TrainConfig(model="attention", n_heads=4, **{**_COPY, "lr": 3e-3}),
    "induction-mamba": TrainConfig(model="mamba", d_model=64, n_layers=1, d_state=4, dt_rank=64, steps=800, lr=1e-2,
                                   weight_decay=0.0, **_INDUCTION),
    "induction-attention": TrainConfig(model="attention", d_model=32, n_layers=2, n_heads=4, steps=2000, lr=3e-3,
                                       weight_decay=0.1, **_INDUCTION),
}
# Beyond Mamba-2 (chapter 12): state tracking, where only a rotating state succeeds, and selective
# copying nearer the paper's setting (L = 256 noisy tokens, 16 data tokens; the paper uses L = 4096).
_TRACK = dict(seq_len=64, d_model=32, n_layers=1, d_state=16, headdim=16, batch_size=32, lr=1e-2, weight_decay=0.0,
              eval_size=512, seed=0)
_PARITY = dict(task="parity", vocab_size=2, steps=400, eval_every=100, **_TRACK)
_MODSUM = dict(task="mod-sum", vocab_size=3, steps=1500, eval_every=250, **{**_TRACK, "seq_len": 32})  # harder: L 32
_COPY256 = dict(task="selective-copy", seq_len=256, n_data=16, vocab_size=16, d_model=32, n_layers=2,
                batch_size=16, lr=1e-2, weight_decay=0.0, eval_every=250, eval_size=512, seed=0)
REPRODUCE_RUNS.update({
    "parity-mamba3": TrainConfig(model="mamba3", rope_fraction=0.5, **_PARITY),  # rotating (complex) state
    "parity-mamba3-real": TrainConfig(model="mamba3", rope_fraction=0, **_PARITY),  # the same layer, no rotation
    "parity-mamba": TrainConfig(model="mamba", dt_rank=32, **{**_PARITY, "d_state": 16}),  # Mamba-1, real
    "modsum-mamba3": TrainConfig(model="mamba3", rope_fraction=0.5, **_MODSUM),
    "modsum-mamba3-real": TrainConfig(model="mamba3", rope_fraction=0, **_MODSUM),
    "modsum-mamba": TrainConfig(model="mamba", dt_rank=32, **_MODSUM),
    "copy256-s4d": TrainConfig(model="s4d", d_state=8, steps=2000, **_COPY256),
    "copy256-mamba": TrainConfig(model="mamba", d_state=8, dt_rank=32, steps=2000, **_COPY256),
})
# which runs are evaluated at longer lengths, and how: the SSM recurrently (memory constant in L),
# attention all at once (its cost grows as L², so a time budget stops it)
REPRODUCE_EXTRAPOLATION = {"induction-mamba": "recurrent", "induction-attention": "forward"}
# the state-tracking runs: all at once (every position is an answer), up to STATE_TRACKING_MAX_LEN
REPRODUCE_EXTRAPOLATION.update({name: "forward" for name in REPRODUCE_RUNS if name.startswith(("parity-", "modsum-"))})
STATE_TRACKING_MAX_LEN = 1024
REPRODUCE_MAX_LEN = 65536
FINAL_EVAL_SIZE = 2048


def parse_only(text: str) -> list[str]:
    """'parity-*,copy256-mamba' → the patterns; each must match a run of REPRODUCE_RUNS (ValueError)."""
    pats = [p.strip() for p in str(text).split(",") if p.strip()]
    if not pats or not all(_selected_any(REPRODUCE_RUNS, p) for p in pats):
        fail("parse_only", "only", "comma-separated patterns, each matching a run of the results table "
             f"({', '.join(REPRODUCE_RUNS)})", repr(text))
    return pats


def _selected_any(names, pattern: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(n, pattern) for n in names)


def _selected(names, only) -> list[str]:
    """The names matching any of the shell patterns in `only` (all of them when only is None)."""
    import fnmatch

    if only is None:
        return list(names)
    picked = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in only)]
    if not picked:
        fail("reproduce", "only", f"patterns matching some of {', '.join(names)}", ", ".join(only))
    return picked


def reproduce(out_dir="results/tasks", max_len: int = REPRODUCE_MAX_LEN, n_extrapolate: int = 64,
              time_budget_s: float = 30.0, runs: dict | None = None, progress: bool = True,
              only: list[str] | None = None) -> dict:
    """Train every run of REPRODUCE_RUNS, evaluate, extrapolate, and write the results under out_dir:

        out_dir/results.json          every number, with seeds, sizes, steps, wall times, versions
        out_dir/README.md             the same as markdown tables
        out_dir/checkpoints/NAME.pt   the trained weights (+ NAME.json, the config and final accuracy)

    only: shell patterns ("parity-*"): train just the matching runs and keep every other run of an
    existing out_dir/results.json as it is (each run records the environment it was trained in).
    Returns the dict written to results.json.
    """
    check_int("reproduce", "max_len", max_len, minimum=64)
    check_int("reproduce", "n_extrapolate", n_extrapolate)
    check_float("reproduce", "time_budget_s", time_budget_s, positive=True)
    runs = REPRODUCE_RUNS if runs is None else runs
    out = Path(out_dir)
    t_start = time.perf_counter()
    results = {"environment": environment(), "runs": {}, "extrapolation": {}}
    for name in _selected(runs, only):
        cfg = runs[name]
        if progress:
            print(f"[{name}] training ({cfg.steps} steps)", flush=True)
        res = train(cfg, progress=progress)
        kw = task_kwargs(cfg)
        final = evaluate(res.model, cfg.task, cfg.seq_len, cfg.vocab_size, n_samples=FINAL_EVAL_SIZE, **kw)
        entry = {"config": dataclasses.asdict(cfg), "model_kwargs": model_kwargs(cfg),
                 "parameters": count_parameters(res.model), "train_seconds": res.seconds,
                 "accuracy": final["accuracy"], "sequence_accuracy": final["sequence_accuracy"],
                 "eval_sequences": final["n"], "eval_seed": EVAL_SEED,
                 "chance": tasks.chance_accuracy(cfg.task, cfg.vocab_size), "history": res.history,
                 "environment": environment()}
        save_checkpoint(out / "checkpoints" / name, res.model, cfg, accuracy=final["accuracy"],
                        sequence_accuracy=final["sequence_accuracy"], train_seconds=res.seconds)
        entry["checkpoint"] = f"checkpoints/{name}.pt"
        results["runs"][name] = entry
        if progress:
            print(f"[{name}] accuracy {final['accuracy']:.4f} (chance {entry['chance']:.3f}), "
                  f"{res.seconds:.0f} s of training", flush=True)
        if name in REPRODUCE_EXTRAPOLATION:
            top = STATE_TRACKING_MAX_LEN if cfg.task in ("parity", "mod-sum") else max_len
            lengths = extrapolation_lengths(cfg.seq_len, max(cfg.seq_len, min(max_len, top)))
            results["extrapolation"][name] = extrapolate(res.model, cfg, lengths, n_samples=n_extrapolate,
                                                         path=REPRODUCE_EXTRAPOLATION[name],
                                                         time_budget_s=time_budget_s, progress=progress)
    if only is not None and (out / "results.json").exists():
        # read the file only now (another --only run may have written it meanwhile) and update our runs in it
        old = json.loads((out / "results.json").read_text())
        results = {**old, "runs": {**old.get("runs", {}), **results["runs"]},
                   "extrapolation": {**old.get("extrapolation", {}), **results["extrapolation"]}}
    # keep the file's order: the runs in REPRODUCE_RUNS order, then any others
    order = list(runs) + [n for n in results["runs"] if n not in runs]
    results["runs"] = {n: results["runs"][n] for n in order if n in results["runs"]}
    results["extrapolation"] = {n: results["extrapolation"][n] for n in order if n in results["extrapolation"]}
    seconds = time.perf_counter() - t_start
    if only is None:
        results["total_seconds"] = seconds
    else:
        results["partial_seconds"] = {**results.get("partial_seconds", {}), ",".join(only): seconds}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "README.md").write_text(results_markdown(results))
    return results


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _mixer_cell(c: dict) -> str:
    if c["model"] != "mamba3":
        return c["model"]
    rot = {0: "real state, no rotation", 0.5: "rotating half the state", 1: "rotating all the state"}
    mimo = f", MIMO rank {c['mimo_rank']}" if c.get("mimo_rank", 1) > 1 else ""
    return f"mamba3 ({rot.get(c.get('rope_fraction', 0.5), '?')}{mimo})"


def _section_title(task: str, c: dict, chance) -> str:
    if task == "selective-copy":
        shape = f"L = {c['seq_len']} noisy tokens, k = {c['n_data']} data tokens, V = {c['vocab_size']}"
        return f"Selective copying ({shape}; chance {_pct(chance)})"
    if task == "induction":
        return f"Induction heads (trained at L = {c['seq_len']}, V = {c['vocab_size']}; chance {_pct(chance)})"
    if task == "parity":
        return f"State tracking: parity (running parity of L = {c['seq_len']} random bits; chance {_pct(chance)})"
    if task == "mod-sum":
        return (f"State tracking: running sum mod {c['vocab_size']} (L = {c['seq_len']} random digits; "
                f"chance {_pct(chance)})")
    return f"{task} (L = {c['seq_len']}; chance {_pct(chance)})"


def results_markdown(results: dict) -> str:
    """The tables of results/tasks/README.md, made from the dict `reproduce` returns (or results.json)."""
    env, runs = results["environment"], results["runs"]
    total = (f"whole reproduction {results['total_seconds'] / 60:.1f} min" if "total_seconds" in results
             else "partial reproductions only")
    lines = ["# Synthetic tasks: selective copying, induction heads, state tracking (CPU scale)", "",
             "Generated by `mamba-edu train --reproduce results/tasks` (see docs/tasks.md); every number below",
             "comes from `results.json` beside this file. Do not edit by hand.", "",
             f"torch {env['torch']}, Python {env['python']}, {env['machine']}, {env['threads']} threads, "
             f"{env['date']}; {total}.", ""]
    partial = results.get("partial_seconds", {})
    if partial:
        lines += ["Runs retrained since with `--only`: " + "; ".join(
            f"`{pat}` {sec / 60:.1f} min" for pat, sec in partial.items()) + " (each run's own environment below).", ""]
    groups: dict = {}
    for n, r in runs.items():
        c = r["config"]
        groups.setdefault((c["task"], c["seq_len"], c.get("n_data"), c["vocab_size"]), []).append(n)
    for (task, *_), names in groups.items():
        c0 = runs[names[0]]["config"]
        lines += [f"## {_section_title(task, c0, runs[names[0]]['chance'])}", "",
                  "| run | mixer | layers | d_model | d_state | parameters | steps × batch | lr | seed "
                  "| train time | token accuracy | sequences all right |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for n in names:
            r, c = runs[n], runs[n]["config"]
            d_state = c["d_state"] if c["model"] != "attention" else f"– ({c['n_heads']} heads, {c['positions']})"
            lines.append(f"| {n} | {_mixer_cell(c)} | {c['n_layers']} | {c['d_model']} | {d_state} | {r['parameters']:,} "
                         f"| {c['steps']} × {c['batch_size']} | {c['lr']:g} | {c['seed']} | {r['train_seconds']:.0f} s "
                         f"| {_pct(r['accuracy'])} | {_pct(r['sequence_accuracy'])} |")
        lines += ["", f"Accuracy on {runs[names[0]]['eval_sequences']} fresh sequences (seed {EVAL_SEED}), "
                  "the same for every model."]
        envs = {n: runs[n]["environment"] for n in names if "environment" in runs[n]}
        if envs:
            lines += ["Trained: " + "; ".join(f"{n} {e['date']}, {e['threads']} thread{'s' * (e['threads'] != 1)}"
                                               for n, e in envs.items())
                      + " (train times are wall-clock on a machine other programs shared)."]
        lines += [""]
    ext = results.get("extrapolation", {})
    by_task: dict = {}
    for n in ext:
        by_task.setdefault(runs[n]["config"]["task"] if n in runs else "induction", []).append(n)
    for task, names in by_task.items():
        lengths = [row["length"] for row in ext[names[0]]]
        title = ("Length extrapolation (induction heads, no training beyond the first length)" if task == "induction"
                 else f"Longer sequences ({task}, trained at L = {lengths[0]}, no further training)")
        lines += [f"## {title}", "", "| length | × L_train | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for i, L in enumerate(lengths):
            cells = []
            for n in names:
                row = ext[n][i] if i < len(ext[n]) else None
                cells.append("–" if row is None else f"{_pct(row['accuracy'])} ({row['seconds']:.1f} s)"
                             if row["status"] == "ok" else row["status"])
            lines.append(f"| {L:,} | {L // lengths[0]} | " + " | ".join(cells) + " |")
        paths = ", ".join(f"{n}: {ext[n][0]['path']}" for n in names)
        where = ("the key sits anywhere in the sequence" if task == "induction"
                 else "token accuracy over every position")
        lines += ["", f"{ext[names[0]][0]['n']} sequences per length; {where}; "
                  "times are wall-clock seconds on a machine that other programs may share. "
                  f"Path: {paths} (recurrent = `TinyLM.step`, one token at a time, memory constant in L; "
                  "forward = all tokens at once).", ""]
    return "\n".join(lines)


__all__ = ["TrainConfig", "TrainResult", "task_kwargs", "model_kwargs", "build_model", "count_parameters",
           "train_seed", "answer_metrics", "lr_factor", "make_optimizer", "predict_recurrent", "predict_forward",
           "evaluate", "train", "save_checkpoint", "write_checkpoint", "load_checkpoint", "extrapolation_lengths", "extrapolate",
           "environment", "REPRODUCE_RUNS", "reproduce", "parse_only", "results_markdown"]
