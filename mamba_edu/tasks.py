"""Synthetic tasks that separate selection from time-invariance: selective copying, induction heads.

Glossary
    b            batch size (number of sequences)
    L            sequence length (for selective copying: the noisy region, before the markers)
    T            the full length of a sequence the model reads (L for induction, L + k for copying)
    V            vocabulary size (special tokens included)
    k            number of data tokens to copy (`n_data`)
    tokens       the model's input (b, T), int64
    targets      what the model must predict at each position (b, T), int64; IGNORE (−100)
                 wherever nothing is asked, so the loss and the accuracy count answer positions only
    answer       a position t where targets[:, t] != IGNORE; the prediction made AFTER reading
                 tokens[:, t] (a causal model sees tokens 0..t) must equal targets[:, t]
    seed         every batch is a pure function of its arguments: same seed, same batch

Why these two tasks (Mamba paper, section 3.1 and 4.1)

Selective copying. k data tokens sit at random positions among noise tokens; after the noise come
k marker tokens, and at the i-th marker the model must output the i-th data token. An LTI model
(S4, S4D: one fixed convolution kernel K for every input) mixes past tokens with weights K_{t−j}
that depend only on the distance t − j, never on what the token is; the data tokens sit at
distances that change from sequence to sequence, so no single K can pick them out. A selective
model makes its step size Δ depend on the token: Δ ≈ 0 for noise (the state ignores it), Δ large
for data (the state stores it). The paper's Table 1: S4 without gating 18.3 %, S6 97.0 %,
Mamba 99.8 %. (The plain copying task, with data always at the same distance, is solved by an LTI
kernel; the random spacing is what makes it a test of selection.)

Induction heads (associative recall). Somewhere in a random sequence a special token is followed
by a key token; the sequence ends with the special token again and the model must predict the key.
It tests in-context recall: remember what followed the trigger, however long ago. The paper's
Table 2 trains at L = 256 and evaluates up to 1M tokens: Mamba stays at 100 %, attention with
absolute positions fails beyond about 2x its training length.

Multi-query associative recall (Zoology, Arora et al. 2023) is the harder cousin: many key-value
pairs, then many queries.

State tracking: parity and modular sums (Mamba-3 paper, section 4; Grazzi et al. 2025). Tokens are
numbers 0 … m−1 and at every position the answer is the running sum mod m (m = 2: the parity of
the bits so far). One rotation by 2π·x_t/m per token solves it exactly: the state's angle IS the
sum mod m. A real state with decays in (0, 1] can only shrink and add, never turn back: it can
count for a while, but the readout of "count mod m" gets harder with every token. Mamba-3's
complex (rotating) state tracks it at any length; real-valued Mamba-1/2 fall towards chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_choice, check_int, fail

IGNORE = -100  # the targets' "no answer here" value; torch's cross_entropy ignores it by default

# Selective copying: token 0 is noise, token 1 the marker, tokens 2 … V−1 are data.
NOISE, MARKER = 0, 1
# Induction heads: token 0 is the special (trigger) token, tokens 1 … V−1 are ordinary.
SPECIAL = 0


@dataclass
class TaskBatch:
    """A batch of a synthetic task: the input tokens and the targets at the answer positions."""

    tokens: torch.Tensor  # (b, T) int64
    targets: torch.Tensor  # (b, T) int64, IGNORE except at answer positions

    @property
    def answer_mask(self) -> torch.Tensor:
        """True at the positions where the model must answer.  (b, T) bool"""
        return self.targets != IGNORE

    @property
    def answers(self) -> torch.Tensor:
        """The expected answers, row by row in order of position.  (b, number of answers)"""
        return self.targets[self.answer_mask].reshape(self.targets.shape[0], -1)

    def __len__(self) -> int:
        return self.tokens.shape[0]


def _generator(func: str, seed: int) -> torch.Generator:
    check_int(func, "seed", seed, minimum=0)
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Selective copying
# ----------------------------------------------------------------------------------------------


def selective_copying(batch: int, seq_len: int = 64, n_data: int = 4, vocab_size: int = 10,
                      seed: int = 0) -> TaskBatch:
    """Selective copying: k = n_data data tokens at random positions of a noisy region of length
    L = seq_len, then k markers; at the i-th marker the answer is the i-th data token.

        tokens   [ noise … x_1 … noise … x_2 … x_k … noise | M M … M ]     T = L + k
        targets  [ IGNORE everywhere                         | x_1 … x_k ]

    The data positions are k distinct positions drawn uniformly from 0 … L−1 (then sorted, so
    x_1 is the earliest); data tokens are uniform in 2 … V−1 (repeats allowed). Chance accuracy
    is 1 / (V − 2).
    """
    func = "selective_copying"
    check_int(func, "batch", batch)
    check_int(func, "n_data", n_data)
    check_int(func, "seq_len", seq_len, minimum=n_data)
    check_int(func, "vocab_size", vocab_size, minimum=3)
    g = _generator(func, seed)
    L, k = seq_len, n_data
    # k distinct positions per row: the first k entries of a random permutation, in order
    pos = torch.rand(batch, L, generator=g).argsort(dim=-1)[:, :k].sort(dim=-1).values  # (b, k)
    data = torch.randint(2, vocab_size, (batch, k), generator=g)  # (b, k)
    tokens = torch.full((batch, L + k), NOISE, dtype=torch.int64)  # (b, T)
    tokens.scatter_(1, pos, data)  # (b, T): data at their positions
    tokens[:, L:] = MARKER  # (b, T): the k markers
    targets = torch.full_like(tokens, IGNORE)  # (b, T)
    targets[:, L:] = data  # (b, T): the i-th marker asks for the i-th data token
    return TaskBatch(tokens, targets)


# ----------------------------------------------------------------------------------------------
# Induction heads (single-query associative recall)
# ----------------------------------------------------------------------------------------------


def induction_heads(batch: int, seq_len: int = 256, vocab_size: int = 16, seed: int = 0) -> TaskBatch:
    """Induction heads: random tokens in 1 … V−1; the special token 0 appears once at a random
    position p (0 ≤ p ≤ L−3) followed by a key, and again at the last position L−1, where the
    answer is the key.

        tokens   [ r r r … r  S key r … r r  S ]     T = L
        targets  [ IGNORE …                 key ]

    The special token appears nowhere else, so the recall is unambiguous. Chance accuracy is
    1 / (V − 1).
    """
    func = "induction_heads"
    check_int(func, "batch", batch)
    check_int(func, "seq_len", seq_len, minimum=3)
    check_int(func, "vocab_size", vocab_size, minimum=2)
    g = _generator(func, seed)
    L = seq_len
    tokens = torch.randint(1, vocab_size, (batch, L), generator=g)  # (b, L): ordinary tokens
    p = torch.randint(0, L - 2, (batch, 1), generator=g)  # (b, 1): where the trigger first appears
    key = tokens.gather(1, p + 1)  # (b, 1): the token right after it (already random in 1 … V−1)
    tokens.scatter_(1, p, SPECIAL)  # (b, L)
    tokens[:, -1] = SPECIAL  # (b, L): the query
    targets = torch.full_like(tokens, IGNORE)  # (b, L)
    targets[:, -1] = key[:, 0]  # (b, L)
    return TaskBatch(tokens, targets)


# ----------------------------------------------------------------------------------------------
# Multi-query associative recall (MQAR)
# ----------------------------------------------------------------------------------------------


def associative_recall(batch: int, seq_len: int = 64, n_pairs: int = 4, vocab_size: int = 16,
                       seed: int = 0) -> TaskBatch:
    """Multi-query associative recall: n_pairs key-value pairs, then each key again once, in a
    random order and at random positions among noise; after reading a repeated key the model
    must output its value.

        tokens   [ k1 v1 k2 v2 … | 0 0 k2 0 k1 0 0 … ]     T = L
        targets  [ IGNORE        | …    v2   v1      ]

    Token 0 is noise; keys are distinct, drawn from 1 … K with K = (V − 1) // 2; values are
    uniform in K+1 … V−1. Chance accuracy is 1 / (V − 1 − K).
    """
    func = "associative_recall"
    check_int(func, "batch", batch)
    check_int(func, "n_pairs", n_pairs)
    check_int(func, "vocab_size", vocab_size, minimum=3)
    n_keys = (vocab_size - 1) // 2
    if n_pairs > n_keys:
        fail(func, "n_pairs", f"at most (vocab_size − 1) // 2 = {n_keys} (keys are distinct)", n_pairs)
    check_int(func, "seq_len", seq_len, minimum=3 * n_pairs)
    g = _generator(func, seed)
    P, L = n_pairs, seq_len
    keys = 1 + torch.rand(batch, n_keys, generator=g).argsort(dim=-1)[:, :P]  # (b, P) distinct
    values = torch.randint(n_keys + 1, vocab_size, (batch, P), generator=g)  # (b, P)
    tokens = torch.zeros(batch, L, dtype=torch.int64)  # (b, L): noise
    tokens[:, 0:2 * P:2], tokens[:, 1:2 * P:2] = keys, values  # (b, L): the pairs up front
    order = torch.rand(batch, P, generator=g).argsort(dim=-1)  # (b, P): which key is asked when
    q_pos = 2 * P + torch.rand(batch, L - 2 * P, generator=g).argsort(dim=-1)[:, :P].sort(dim=-1).values  # (b, P)
    tokens.scatter_(1, q_pos, keys.gather(1, order))  # (b, L): the queries
    targets = torch.full_like(tokens, IGNORE)  # (b, L)
    targets.scatter_(1, q_pos, values.gather(1, order))  # (b, L)
    return TaskBatch(tokens, targets)


# ----------------------------------------------------------------------------------------------
# State tracking: running sums mod m (parity is m = 2)
# ----------------------------------------------------------------------------------------------


def modular_sum(batch: int, seq_len: int = 64, vocab_size: int = 5, seed: int = 0) -> TaskBatch:
    """Running sums mod m = vocab_size: tokens uniform in 0 … m−1; the answer at EVERY position t is
    (x_0 + … + x_t) mod m.

        tokens   [ 3 1 4 1 0 2 … ]       (m = 5)
        targets  [ 3 4 3 4 4 1 … ]       T = L

    Chance accuracy is 1 / m.
    """
    func = "modular_sum"
    check_int(func, "batch", batch)
    check_int(func, "seq_len", seq_len)
    check_int(func, "vocab_size", vocab_size, minimum=2)
    g = _generator(func, seed)
    tokens = torch.randint(0, vocab_size, (batch, seq_len), generator=g)  # (b, L)
    targets = torch.remainder(torch.cumsum(tokens, dim=1), vocab_size)  # (b, L)
    return TaskBatch(tokens, targets)


def parity(batch: int, seq_len: int = 64, vocab_size: int = 2, seed: int = 0) -> TaskBatch:
    """Running parity of random bits: `modular_sum` with m = 2. Tokens and answers are 0 and 1;
    vocab_size (≥ 2) is only the model's vocabulary (tokens ≥ 2 never occur). Chance is 1/2."""
    check_int("parity", "vocab_size", vocab_size, minimum=2)
    return modular_sum(batch, seq_len=seq_len, vocab_size=2, seed=seed)


# ----------------------------------------------------------------------------------------------
# The registry: one name per task, for the trainer and the command line
# ----------------------------------------------------------------------------------------------

TASKS = {
    "selective-copy": selective_copying,
    "induction": induction_heads,
    "mqar": associative_recall,
    "parity": parity,
    "mod-sum": modular_sum,
}


def make_batch(task: str, batch: int, seq_len: int, vocab_size: int, seed: int = 0, **kwargs) -> TaskBatch:
    """A batch of the task named `task` (a key of TASKS); extra keywords go to its generator."""
    check_choice("make_batch", "task", task, TASKS)
    return TASKS[task](batch, seq_len=seq_len, vocab_size=vocab_size, seed=seed, **kwargs)


def chance_accuracy(task: str, vocab_size: int) -> float:
    """Accuracy of guessing uniformly among the possible answers."""
    check_choice("chance_accuracy", "task", task, TASKS)
    check_int("chance_accuracy", "vocab_size", vocab_size, minimum=2 if task in ("parity", "mod-sum") else 3)
    n_answers = {"selective-copy": vocab_size - 2, "induction": vocab_size - 1,
                 "mqar": vocab_size - 1 - (vocab_size - 1) // 2, "parity": 2, "mod-sum": vocab_size}[task]
    return 1.0 / n_answers


def total_length(task: str, seq_len: int, n_data: int = 0) -> int:
    """T, the number of tokens the model reads: L + k for selective copying, L otherwise."""
    check_choice("total_length", "task", task, TASKS)
    return seq_len + (n_data if task == "selective-copy" else 0)


__all__ = ["TaskBatch", "IGNORE", "NOISE", "MARKER", "SPECIAL", "selective_copying", "induction_heads",
           "associative_recall", "modular_sum", "parity", "TASKS", "make_batch", "chance_accuracy", "total_length"]
