"""Synthetic tasks: answer positions, token ranges, determinism by seed, bad input."""

import pytest
import torch

from mamba_edu import tasks
from mamba_edu.tasks import IGNORE, MARKER, NOISE, SPECIAL, associative_recall, induction_heads, selective_copying


@pytest.mark.parametrize("L,k,V", [(16, 4, 6), (33, 1, 3), (64, 8, 16), (8, 8, 10)])
def test_selective_copying_layout(L, k, V):
    b = selective_copying(32, seq_len=L, n_data=k, vocab_size=V, seed=3)
    assert b.tokens.shape == b.targets.shape == (32, L + k) and b.tokens.dtype == torch.int64
    assert int(b.tokens.min()) >= 0 and int(b.tokens.max()) < V
    # the last k positions are markers and the only answer positions
    assert (b.tokens[:, L:] == MARKER).all()
    assert (b.answer_mask[:, L:]).all() and not b.answer_mask[:, :L].any()
    # the noisy region holds exactly k data tokens (>= 2), no markers, and the answers are them in order
    region = b.tokens[:, :L]
    assert ((region >= 2).sum(1) == k).all() and not (region == MARKER).any()
    for row in range(32):
        data = region[row][region[row] != NOISE]
        assert torch.equal(data, b.answers[row])
    assert int(b.answers.min()) >= 2


@pytest.mark.parametrize("L,V", [(3, 2), (10, 5), (257, 16)])
def test_induction_heads_layout(L, V):
    b = induction_heads(64, seq_len=L, vocab_size=V, seed=1)
    assert b.tokens.shape == (64, L) and int(b.tokens.min()) >= 0 and int(b.tokens.max()) < V
    assert (b.tokens[:, -1] == SPECIAL).all()
    assert (b.answer_mask.sum(1) == 1).all() and b.answer_mask[:, -1].all()
    # the special token appears exactly twice: once before the key, once at the end
    assert ((b.tokens == SPECIAL).sum(1) == 2).all()
    first = (b.tokens == SPECIAL).int().argmax(1)  # (b,)
    assert (first <= L - 3).all()
    key = b.tokens.gather(1, (first + 1)[:, None])[:, 0]
    assert torch.equal(key, b.targets[:, -1]) and (key != SPECIAL).all()


def test_associative_recall_layout():
    P, L, V = 4, 40, 17
    b = associative_recall(16, seq_len=L, n_pairs=P, vocab_size=V, seed=2)
    K = (V - 1) // 2
    keys, values = b.tokens[:, 0:2 * P:2], b.tokens[:, 1:2 * P:2]
    assert ((keys >= 1) & (keys <= K)).all() and ((values > K) & (values < V)).all()
    assert all(len(set(r.tolist())) == P for r in keys)  # distinct keys
    assert (b.answer_mask.sum(1) == P).all() and not b.answer_mask[:, :2 * P].any()
    for row in range(16):
        pos = b.answer_mask[row].nonzero()[:, 0]
        lookup = dict(zip(keys[row].tolist(), values[row].tolist()))
        for p in pos.tolist():
            assert b.targets[row, p] == lookup[int(b.tokens[row, p])]


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_determinism_by_seed(task):
    a = tasks.make_batch(task, 8, 32, 12, seed=5)
    b = tasks.make_batch(task, 8, 32, 12, seed=5)
    c = tasks.make_batch(task, 8, 32, 12, seed=6)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, c.tokens)
    assert len(a) == 8


def test_chance_and_lengths():
    assert tasks.chance_accuracy("selective-copy", 16) == pytest.approx(1 / 14)
    assert tasks.chance_accuracy("induction", 16) == pytest.approx(1 / 15)
    assert tasks.chance_accuracy("mqar", 17) == pytest.approx(1 / 8)
    assert tasks.total_length("selective-copy", 64, 4) == 68 and tasks.total_length("induction", 64, 4) == 64


def test_bad_input():
    with pytest.raises(ValueError, match="argument 'seq_len'"):
        selective_copying(2, seq_len=3, n_data=4)
    with pytest.raises(ValueError, match="argument 'vocab_size'"):
        selective_copying(2, vocab_size=2)
    with pytest.raises(ValueError, match="argument 'seed'"):
        induction_heads(2, seed=-1)
    with pytest.raises(ValueError, match="argument 'seq_len'"):
        induction_heads(2, seq_len=2)
    with pytest.raises(ValueError, match="argument 'batch'"):
        induction_heads(0)
    with pytest.raises(ValueError, match="argument 'n_pairs'"):
        associative_recall(2, n_pairs=9, vocab_size=17)
    with pytest.raises(ValueError, match="argument 'task'"):
        tasks.make_batch("copying", 2, 16, 8)
    with pytest.raises(ValueError, match="argument 'task'"):
        tasks.chance_accuracy("copying", 8)
    assert IGNORE == -100
