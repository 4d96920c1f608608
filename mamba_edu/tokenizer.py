"""A tiny deterministic tokenizer: text a learner types → token ids a small checkpoint can read.

Glossary
    V          the checkpoint's vocabulary size (16 for the shipped task models)
    byte       one UTF-8 byte of the text (a letter of plain ASCII text is one byte)
    token      an id in 0 … V−1
    task       which synthetic task's special tokens to respect (see `mamba_edu.tasks`)

The shipped models were trained on synthetic tasks, not on language, so there is no learned
vocabulary to match; the mapping only has to be deterministic, documented and to use the task's
special tokens where the text asks for them:

    task None (plain)          token = byte mod V
    task "selective-copy"      space . _ -  → NOISE (0)     the filler the model should ignore
                               ?            → MARKER (1)    "now output the next remembered token"
                               other byte b → 2 + (b mod (V − 2))    a data token
    task "induction"           #            → SPECIAL (0)   the trigger token
                               other byte b → 1 + (b mod (V − 1))    an ordinary token

So "..a...b..c.d????" is a selective-copying sequence: four data tokens among noise, then four
markers at which a trained model should answer a, b, c, d (as tokens).
"""

from __future__ import annotations

import torch

from ._checks import check_choice, check_int, fail
from .tasks import IGNORE, MARKER, NOISE, SPECIAL

TASKS = (None, "selective-copy", "induction")
NOISE_CHARS = " ._-"
MARKER_CHAR = "?"
SPECIAL_CHAR = "#"
MAX_CHARS = 4096


def text_to_tokens(text: str, vocab_size: int, task: str | None = None) -> torch.Tensor:
    """The token ids (T,) int64 of `text` for a model with `vocab_size` tokens (the table above)."""
    func = "text_to_tokens"
    if not isinstance(text, str):
        fail(func, "text", "a string", type(text).__name__)
    if len(text) > MAX_CHARS:
        fail(func, "text", f"at most {MAX_CHARS} characters", f"{len(text)} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate such as "\ud800": no byte sequence to tokenise
        fail(func, "text", "valid Unicode text (encodable as UTF-8)",
             f"the unpaired surrogate {text[e.start]!r} at position {e.start}")
    check_choice(func, "task", task, TASKS)
    V = check_int(func, "vocab_size", vocab_size, minimum=3 if task == "selective-copy" else 2)
    out = []
    for ch in text:
        if task == "selective-copy" and ch in NOISE_CHARS:
            out.append(NOISE)
        elif task == "selective-copy" and ch == MARKER_CHAR:
            out.append(MARKER)
        elif task == "induction" and ch == SPECIAL_CHAR:
            out.append(SPECIAL)
        else:
            for b in ch.encode("utf-8"):
                if task == "selective-copy":
                    out.append(2 + b % (V - 2))
                elif task == "induction":
                    out.append(1 + b % (V - 1))
                else:
                    out.append(b % V)
    return torch.tensor(out, dtype=torch.int64)  # (T,)


def text_targets(tokens: torch.Tensor, task: str) -> torch.Tensor:
    """What a model trained on `task` should answer on a typed sequence (T,) → targets (T,), IGNORE elsewhere.

        selective-copy   at the i-th marker: the i-th data token (if there is one)
        induction        at the last position, when it is the trigger and the trigger appeared before
                         with a token after it: that token (the first appearance counts)
    """
    func = "text_targets"
    check_choice(func, "task", task, ("selective-copy", "induction"))
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        fail(func, "tokens", "a 1-D tensor of token ids (T,)", getattr(tokens, "shape", type(tokens).__name__))
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        fail(func, "tokens", "a tensor of integer token ids", f"dtype {tokens.dtype}")
    targets = torch.full_like(tokens, IGNORE)  # (T,)
    if task == "selective-copy":
        data = tokens[tokens >= 2]  # (k,) in order
        markers = (tokens == MARKER).nonzero().flatten()  # (m,)
        n = min(len(data), len(markers))
        targets[markers[:n]] = data[:n]
        return targets
    T = tokens.shape[0]
    triggers = (tokens == SPECIAL).nonzero().flatten()  # (m,)
    if T >= 3 and int(tokens[-1]) == SPECIAL and len(triggers) >= 2 and int(triggers[0]) + 1 < T - 1:
        targets[-1] = tokens[int(triggers[0]) + 1]
    return targets


# ----------------------------------------------------------------------------------------------
# Bytes: the byte-level language model (V = 256, token = byte; mamba_edu.textlm)
# ----------------------------------------------------------------------------------------------

SHOWN = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def utf8_tokens(text: str, max_bytes: int) -> tuple[torch.Tensor, int]:
    """The UTF-8 bytes of `text` as token ids (T,) int64, T ≤ max_bytes, and how many characters they hold.

    A text longer than `max_bytes` bytes is cut before the first character that does not fit whole
    (an emoji is 4 bytes: 512 emoji are 2048 bytes). A lone surrogate (which UTF-8 cannot encode)
    becomes U+FFFD, the replacement character.
    """
    func = "utf8_tokens"
    if not isinstance(text, str):
        fail(func, "text", "a string", type(text).__name__)
    max_bytes = check_int(func, "max_bytes", max_bytes)
    out, chars = bytearray(), 0
    for ch in text:
        b = ch.encode() if not 0xD800 <= ord(ch) <= 0xDFFF else "\ufffd".encode()  # a surrogate: U+FFFD
        if len(out) + len(b) > max_bytes:
            break
        out += b
        chars += 1
    return torch.tensor(list(out), dtype=torch.int64), chars  # (T,)


def byte_labels(tokens) -> list[str]:
    """A short label per byte token (T,) for display: the character on its first byte ('␣' for a space,
    '↵' a newline, '⇥' a tab), '·' on the other bytes of a multi-byte character, \\xNN for a control byte
    or a byte that does not start a valid character."""
    ids = [int(t) for t in tokens]
    out, i = [], 0
    while i < len(ids):
        b = ids[i]
        n = 1 if b < 0x80 else 2 if 0xC0 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF8 else 0
        try:
            ch = bytes(ids[i:i + n]).decode("utf-8") if n else None
        except UnicodeDecodeError:
            ch = None
        if ch is None or (len(ch) == 1 and ord(ch) < 0x20 and ch not in SHOWN) or ch == "\x7f":
            out.append(f"\\x{b:02x}")
            i += 1
            continue
        out += [SHOWN.get(ch, ch)] + ["·"] * (n - 1)
        i += n
    return out


__all__ = ["text_to_tokens", "text_targets", "TASKS", "NOISE_CHARS", "MARKER_CHAR", "SPECIAL_CHAR", "MAX_CHARS", "utf8_tokens", "byte_labels"]
