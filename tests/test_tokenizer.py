"""The tiny text tokenizer: the documented mapping, the task's special tokens, and the expected answers."""

import pytest
import torch

from mamba_edu.tasks import IGNORE, MARKER, NOISE, SPECIAL, selective_copying
from mamba_edu.tokenizer import MAX_CHARS, text_targets, text_to_tokens


def test_plain_is_bytes_modulo_V():
    text = "Mamba ☃"
    want = [b % 16 for b in text.encode("utf-8")]  # the snowman is three bytes
    assert text_to_tokens(text, 16).tolist() == want
    assert text_to_tokens("", 16).shape == (0,) and text_to_tokens("", 16).dtype == torch.int64


def test_selective_copy_mapping():
    tok = text_to_tokens("..a b_c-d??", 16, "selective-copy")
    data = [2 + ord(c) % 14 for c in "abcd"]
    assert tok.tolist() == [NOISE, NOISE, data[0], NOISE, data[1], NOISE, data[2], NOISE, data[3], MARKER, MARKER]
    assert int(tok.min()) >= 0 and int(tok.max()) < 16


def test_induction_mapping():
    tok = text_to_tokens("ab#c", 16, "induction")
    assert tok.tolist() == [1 + ord("a") % 15, 1 + ord("b") % 15, SPECIAL, 1 + ord("c") % 15]


def test_deterministic_and_in_range_for_small_vocabularies():
    for V in (3, 5, 16):
        tok = text_to_tokens("The quick brown fox? #1", V, "selective-copy")
        assert torch.equal(tok, text_to_tokens("The quick brown fox? #1", V, "selective-copy"))
        assert int(tok.max()) < V


@pytest.mark.parametrize("kwargs, says", [
    (dict(text=3, vocab_size=16), "argument 'text' must be a string"),
    (dict(text="x" * (MAX_CHARS + 1), vocab_size=16), f"at most {MAX_CHARS} characters"),
    (dict(text="ab", vocab_size=16, task="copy"), "argument 'task' must be one of"),
    (dict(text="ab", vocab_size=2, task="selective-copy"), "argument 'vocab_size' must be an integer >= 3"),
])
def test_bad_arguments(kwargs, says):
    with pytest.raises(ValueError, match=says):
        text_to_tokens(**kwargs)


def test_copy_targets_agree_with_the_task_generator():
    batch = selective_copying(3, seq_len=20, n_data=4, vocab_size=10, seed=5)
    for tokens, targets in zip(batch.tokens, batch.targets):
        assert torch.equal(text_targets(tokens, "selective-copy"), targets)


def test_copy_targets_with_fewer_data_than_markers():
    tok = text_to_tokens(".a..b???", 16, "selective-copy")
    tg = text_targets(tok, "selective-copy")
    assert tg.tolist()[:5] == [IGNORE] * 5
    assert tg.tolist()[5:] == [tok[1].item(), tok[4].item(), IGNORE]


def test_induction_targets():
    tok = text_to_tokens("xy#kzz#", 16, "induction")
    tg = text_targets(tok, "induction")
    assert tg.tolist() == [IGNORE] * 6 + [tok[3].item()]
    assert (text_targets(text_to_tokens("xy#kzz", 16, "induction"), "induction") == IGNORE).all()  # no query
    with pytest.raises(ValueError, match="argument 'tokens' must be a 1-D"):
        text_targets(tok[None], "induction")
