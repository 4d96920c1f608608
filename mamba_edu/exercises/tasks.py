"""Checks for chapter 05 (where LTI fails): solving the tasks by content, and scoring a model.

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.tasks` / `mamba_edu.train`; it never raises (see `mamba_edu.exercises._core`).

    check_copy_by_content(fn)      fn(tokens (b, T), n_data) -> (b, n_data): the data tokens in order
    check_induction_lookup(fn)     fn(tokens (b, L)) -> (b,): the token after the first special token
    check_answer_accuracy(fn)      fn(logits (b, T, V), targets (b, T)) -> (token accuracy, sequence accuracy)
"""

from __future__ import annotations

import torch

from .. import tasks
from ..train import answer_metrics, evaluate, predict_forward, predict_recurrent
from ._core import Mismatch, Verdict, gen, run_check


def _int_answers(got, want: torch.Tensor, what: str) -> None:
    """Raise Mismatch unless `got` is an integer tensor equal to `want`, naming the first wrong entry."""
    if got is None:
        raise Mismatch(f"{what}: your function returned None (is there a `return`?)")
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise Mismatch(f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if got.is_floating_point() or got.is_complex():
        raise Mismatch(f"{what}: expected integer token ids (int64), got {got.dtype}")
    bad = got.cpu().long() != want
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise Mismatch(f"{what}: at index {idx} expected token {int(want[idx])}, got {int(got[idx])} "
                       f"({int(bad.sum())} of {bad.numel()} answers differ)")


# ----------------------------------------------------------------------------------------------
# 1. Selective copying by content
# ----------------------------------------------------------------------------------------------


def _copy_case(batch: int, L: int, k: int, V: int, seed: int, edit=None):
    b = tasks.selective_copying(batch, seq_len=L, n_data=k, vocab_size=V, seed=seed)
    tokens, answers = b.tokens, b.answers  # (b, T), (b, k)
    if edit is not None:
        tokens, answers = edit(tokens.clone(), answers.clone())

    def test(fn):
        _int_answers(fn(tokens.clone(), k), answers, f"L = {L}, k = {k}, answers")
    return test


def _data_at_the_edges(tokens, answers):
    """Row 0: the first data token at position 0 and the last one right before the markers."""
    L = tokens.shape[1] - answers.shape[1]
    k = answers.shape[1]
    tokens[0, :L] = tasks.NOISE
    pos = [0] + list(range(L - k + 1, L))  # first at 0, the rest packed at the end of the noise
    tokens[0, pos] = answers[0]
    return tokens, answers


def check_copy_by_content(fn, quiet: bool = False) -> Verdict:
    """fn(tokens, n_data) -> (b, n_data) int64: the data tokens (ids ≥ 2) of each row, in order of position."""
    cases = [
        ("one data token (k = 1)", _copy_case(4, 16, 1, 10, 0)),
        ("the notebook's size (L = 64, k = 4, V = 16)", _copy_case(8, 64, 4, 16, 1)),
        ("a data token at position 0 and data right before the markers", _copy_case(3, 20, 3, 16, 2, _data_at_the_edges)),
        ("only one data value (V = 3: every data token is 2)", _copy_case(3, 12, 4, 3, 3)),
        ("data packed densely (L = k)", _copy_case(2, 5, 5, 12, 4)),
    ]
    return run_check("Selective copying by content", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 2. Induction heads by lookup
# ----------------------------------------------------------------------------------------------


def _induction_case(batch: int, L: int, V: int, seed: int, trigger_at: int | None = None):
    b = tasks.induction_heads(batch, seq_len=L, vocab_size=V, seed=seed)
    tokens, key = b.tokens.clone(), b.answers[:, 0].clone()  # (b, L), (b,)
    if trigger_at is not None:  # move row 0's first trigger (and its key) to `trigger_at`
        p = int((tokens[0, :-1] == tasks.SPECIAL).nonzero()[0])
        k0 = int(tokens[0, p + 1])
        tokens[0, p] = 1 + (p % (V - 1))  # an ordinary token where the trigger was
        tokens[0, trigger_at], tokens[0, trigger_at + 1] = tasks.SPECIAL, k0
        key[0] = k0

    def test(fn):
        _int_answers(fn(tokens.clone()), key, f"L = {L}, V = {V}, answers")
    return test


def check_induction_lookup(fn, quiet: bool = False) -> Verdict:
    """fn(tokens) -> (b,) int64: for each row, the token right after the FIRST special token (id 0)."""
    cases = [
        ("short sequences (L = 8)", _induction_case(6, 8, 16, 0)),
        ("the training size (L = 64, V = 16)", _induction_case(8, 64, 16, 1)),
        ("the trigger at position 0", _induction_case(3, 32, 16, 2, trigger_at=0)),
        ("the key right before the query (trigger at L − 3)", _induction_case(3, 32, 16, 3, trigger_at=29)),
        ("a long sequence (L = 4096)", _induction_case(2, 4096, 16, 4)),
    ]
    return run_check("Induction heads by lookup", fn, cases, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# 3. Token and sequence accuracy on the answer positions
# ----------------------------------------------------------------------------------------------


def _float(x, what: str) -> float:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise Mismatch(f"{what}: expected a number, got {type(x).__name__}")
    return float(x)


def _logits_for(targets: torch.Tensor, V: int, p_right: float, seed: int) -> torch.Tensor:
    """Random logits whose argmax equals the target at about a fraction p_right of the answers."""
    g = gen(seed)
    b, T = targets.shape
    logits = torch.randn(b, T, V, generator=g)  # (b, T, V)
    ask = targets != tasks.IGNORE  # (b, T)
    right = ask & (torch.rand(b, T, generator=g) < p_right)  # (b, T)
    idx = right.nonzero(as_tuple=True)
    logits[idx[0], idx[1], targets[idx]] = 10.0  # a clear argmax at the target
    wrong = ask & ~right
    idx = wrong.nonzero(as_tuple=True)
    logits[idx[0], idx[1], (targets[idx] + 1) % V] = 10.0  # a clear argmax next to it
    return logits


def _accuracy_case(targets: torch.Tensor, V: int, p_right: float, seed: int):
    logits = _logits_for(targets, V, p_right, seed)

    def test(fn):
        got = fn(logits.clone(), targets.clone())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"expected a pair (token accuracy, sequence accuracy), got {type(got).__name__}"
                           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
        _, tok, seq = answer_metrics(logits, targets)
        for name, g, w in (("token accuracy", got[0], tok), ("sequence accuracy", got[1], seq)):
            g = _float(g, name)
            if abs(g - w) > 1e-9:
                hint = " (a percentage? return a fraction in [0, 1])" if abs(g - 100 * w) < 1e-6 and w else ""
                raise Mismatch(f"{name}: expected {w:.6g}, got {g:.6g}{hint}")
    return test


def check_answer_accuracy(fn, quiet: bool = False) -> Verdict:
    """fn(logits (b, T, V), targets (b, T)) -> (token accuracy, sequence accuracy), fractions in [0, 1],
    counted on the answer positions only (targets != IGNORE), as train.answer_metrics does."""
    copy = tasks.selective_copying(16, seq_len=24, n_data=4, vocab_size=10, seed=5).targets
    induction = tasks.induction_heads(32, seq_len=16, vocab_size=12, seed=6).targets
    cases = [
        ("selective copying, about half right", _accuracy_case(copy, 10, 0.5, 0)),
        ("selective copying, mostly right", _accuracy_case(copy, 10, 0.9, 1)),
        ("every answer right", _accuracy_case(copy, 10, 1.0, 2)),
        ("induction heads (one answer per row)", _accuracy_case(induction, 12, 0.6, 3)),
    ]
    return run_check("Accuracy on the answers", fn, cases, quiet=quiet,
                     forbid=(answer_metrics, evaluate, predict_forward, predict_recurrent))


__all__ = ["check_copy_by_content", "check_induction_lookup", "check_answer_accuracy"]
