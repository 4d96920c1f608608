"""Checks for chapter 10 (the Mamba block and inference).

Each `check_*(fn, quiet=False) -> Verdict` runs the learner's function on several cases and
compares with `mamba_edu.models`; it never raises (see `mamba_edu.exercises._core`).

    check_block_parameters(fn)  fn(d_model, d_state, d_conv, expand, dt_rank) -> int: a MambaBlock's parameters
    check_mamba_step(fn)        fn(block, x (b, d), conv (b, e, k−1), h (b, e, n)) -> (out, conv, h): one token
    check_greedy_generate(fn)   fn(model, prompt (b, p), n_new) -> (b, p + n_new) tokens, decoded with the state
"""

from __future__ import annotations

import math

import torch

from ..models import AttentionBlock, MambaBlock, ResidualBlock, TinyLM, mamba_block_parameters, parameter_breakdown
from ..selective import S6
from ..train import count_parameters, predict_forward
from ._core import Mismatch, Verdict, compare, library_allowed, run_check, seed_all

F64 = torch.float64


# ----------------------------------------------------------------------------------------------
# 1. Counting a block's parameters
# ----------------------------------------------------------------------------------------------


def _count_case(d: int, n: int, k: int, e: int, r: int):
    def test(fn):
        with torch.device("meta"):  # shapes only: no memory for the weights
            block = MambaBlock(d, d_state=n, d_conv=k, expand=e, dt_rank=r)
        want = sum(p.numel() for p in block.parameters())
        got = fn(d, n, k, e, r)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if got is None:
            raise Mismatch("your function returned None (is there a `return`?)")
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
            raise Mismatch(f"expected a whole number, got {got!r}")
        got = int(got)
        if got == want:
            return
        P, ei = mamba_block_parameters(d, n, k, e, r), e * d
        hints = [(want - ei - ei, "the biases are missing: conv1d and dt_proj each have e of them"),
                 (want - ei, "one bias vector (e numbers) is missing: conv1d has one, and so has dt_proj"),
                 (want - ei * 1, "D (one number per inner channel) is missing"),
                 (want - d * ei, "in_proj maps d to 2e (the x branch AND the gate z): d·2e, not d·e"),
                 (want - P["s6.A_log"], "A (e × n numbers, stored as A_log) is missing"),
                 (want - ei * r, "x_proj also produces the low-rank Δ input: e·(r + 2n), not e·2n"),
                 (want - ei * n, "x_proj produces B and C (n each) and r for Δ: e·(r + 2n)")]
        hint = next((h for v, h in hints if got == v), "")
        raise Mismatch(f"expected {want:,}, got {got:,} (off by {got - want:+,})" + (f": {hint}" if hint else ""))
    return f"d_model = {d}, d_state = {n}, d_conv = {k}, expand = {e}, dt_rank = {r}", test


def check_block_parameters(fn, quiet: bool = False) -> Verdict:
    """fn(d_model, d_state, d_conv, expand, dt_rank) -> the number of parameters of
    MambaBlock(d_model, d_state, d_conv, expand, dt_rank), compared with the block's own tensors."""
    cases = [_count_case(16, 4, 4, 2, 1), _count_case(64, 16, 4, 2, 4), _count_case(24, 8, 3, 3, 5),
             _count_case(2560, 16, 4, 2, math.ceil(2560 / 16))]
    return run_check("block_parameter_count", fn, cases, quiet=quiet,
                     forbid=(MambaBlock.__init__, S6.__init__, mamba_block_parameters, parameter_breakdown,
                             count_parameters))


# ----------------------------------------------------------------------------------------------
# 2. One decoding step of the block
# ----------------------------------------------------------------------------------------------


def _triple(out):
    if not (isinstance(out, tuple) and len(out) == 3):
        raise Mismatch(f"expected a triple (out, conv, h), got {type(out).__name__}"
                       + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out


def _step_variants(block: MambaBlock, x: torch.Tensor, conv: torch.Tensor, h: torch.Tensor) -> list:
    """Outputs of common mistakes for one step (for hints): (out, what went wrong)."""
    import torch.nn.functional as F

    xs, z = block.in_proj(x).chunk(2, dim=-1)  # (b, e) each
    window = torch.cat([conv, xs[..., None]], dim=-1)  # (b, e, k)
    xc = (window * block.conv1d.weight[:, 0]).sum(-1) + block.conv1d.bias  # (b, e)
    no_silu, _ = block.s6.step(xc, h, z=z)
    no_gate, _ = block.s6.step(F.silu(xc), h)
    no_bias, _ = block.s6.step(F.silu(xc - block.conv1d.bias), h, z=z)
    return [(block.out_proj(no_silu), "the SiLU after the convolution is missing"),
            (block.out_proj(no_gate), "the gate is missing: pass z to the S6 step (y·SiLU(z))"),
            (block.out_proj(no_bias), "the convolution's bias is missing")]


def _step_case(name: str, d: int, n: int, k: int, batch: int, tokens: int, seed: int):
    def test(fn):
        seed_all(seed)
        block = MambaBlock(d, d_state=n, d_conv=k).double().eval()
        x = torch.randn(batch, tokens, d, dtype=F64)  # (b, T, d)
        conv, h = (s.double() for s in block.init_state(batch))  # (b, e, k−1), (b, e, n)
        ref = (conv, h)
        with torch.no_grad():
            for t in range(tokens):
                variants = _step_variants(block, x[:, t], *ref)
                want_out, new_ref = block.step(x[:, t], ref)
                old_conv = conv
                got_out, conv, h = _triple(fn(block, x[:, t].clone(), conv.clone(), h.clone()))
                where = f"token {t}"
                try:
                    compare(got_out, want_out, f"{where}, out", rtol=1e-9, atol=1e-10)
                except Mismatch as e:
                    hint = next((w for v, w in variants if isinstance(got_out, torch.Tensor)
                                 and got_out.shape == v.shape and torch.allclose(got_out.to(F64), v)), None)
                    raise Mismatch(f"{e}: {hint}" if hint else str(e)) from None
                try:
                    compare(conv, new_ref[0], f"{where}, conv window (b, e, k−1)", rtol=1e-9, atol=1e-10)
                except Mismatch as e:
                    if isinstance(conv, torch.Tensor) and conv.shape == old_conv.shape and torch.equal(conv, old_conv):
                        raise Mismatch(f"{e}: you returned the old window; drop its oldest column and append "
                                       "this token's x branch (after in_proj)") from None
                    raise
                compare(h, new_ref[1], f"{where}, SSM state h (b, e, n)", rtol=1e-9, atol=1e-10)
                ref = new_ref
        with torch.no_grad():
            y = block(x)  # the outputs match the block's forward pass over the whole sequence too
        compare(got_out, y[:, -1], "last token vs the block's forward pass", rtol=1e-8, atol=1e-9)
    return name, test


def check_mamba_step(fn, quiet: bool = False) -> Verdict:
    """fn(block, x (b, d), conv (b, e, k−1), h (b, e, n)) -> (out (b, d), new conv, new h): one token
    through a MambaBlock, compared with `MambaBlock.step` token after token (float64)."""
    cases = [_step_case("one token, batch 1", 8, 4, 4, 1, 1, 0),
             _step_case("six tokens (the conv window fills up), batch 2", 8, 4, 4, 2, 6, 1),
             _step_case("conv width 2, state 8, ten tokens", 6, 8, 2, 3, 10, 2)]
    return run_check("mamba_step", fn, cases, quiet=quiet,
                     forbid=(MambaBlock.step, MambaBlock.forward, MambaBlock.inner, ResidualBlock.step, TinyLM.step))


# ----------------------------------------------------------------------------------------------
# 3. Greedy generation with the recurrent state
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def greedy_reference(model: TinyLM, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """The slow way: run the WHOLE sequence through `model` again for every new token (O(L²) work),
    and append the argmax of the last position's logits.  (b, p) → (b, p + n_new)"""
    tokens = prompt.clone()
    for _ in range(n_new):
        nxt = model(tokens)[:, -1].argmax(-1)  # (b,)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)  # (b, t+1)
    return tokens


class _CountSteps:
    """model.step as the learner's function receives it: the model's own step, counted (by the grader)."""

    def __init__(self, model: TinyLM):
        self.model, self.calls, self.fresh = model, 0, 0

    def __call__(self, token, state):
        self.calls += 1
        with library_allowed():
            return TinyLM.step(self.model, token, state)

    def init_state(self, *args, **kwargs):
        self.fresh += 1
        with library_allowed():
            return TinyLM.init_state(self.model, *args, **kwargs)


def _instrument(model: TinyLM) -> _CountSteps:
    """model.step and model.init_state as the learner's function sees them: counted, by the grader
    (`_replay_state` lets the grader carry the counts over from where the learner's code ran)."""
    steps = _CountSteps(model)
    model.step, model.init_state = steps, steps.init_state  # instance attributes: the calls are counted
    model._replay_state = lambda: {"calls": steps.calls, "fresh": steps.fresh}

    def restore(state):
        steps.calls, steps.fresh = int(state["calls"]), int(state["fresh"])

    model._replay_restore = restore
    return steps


def _generate_case(name: str, mixer: str, batch: int, p: int, n_new: int, seed: int):
    def test(fn):
        seed_all(seed)
        model = TinyLM(13, d_model=16, n_layers=2, mixer=mixer).double().eval()
        with torch.no_grad():  # louder mixers: the past must matter to the next token, not just the last one
            for layer in model.layers:
                out = layer.mixer.out_proj if mixer == "mamba" else layer.mixer.out
                out.weight.mul_(8.0)
        prompt = torch.randint(0, 13, (batch, p))
        want = greedy_reference(model, prompt, n_new)
        steps = _instrument(model)
        got = fn(model, prompt.clone(), n_new)
        if got is None:
            raise Mismatch("your function returned None (is there a `return`?)")
        if not isinstance(got, torch.Tensor):
            raise Mismatch(f"expected a torch.Tensor of token ids, got {type(got).__name__}")
        if tuple(got.shape) != tuple(want.shape):
            hint = " (return the prompt followed by the new tokens)" if tuple(got.shape) == (batch, n_new) else ""
            raise Mismatch(f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}{hint}")
        if got.dtype not in (torch.int64, torch.int32):
            raise Mismatch(f"expected integer token ids, got {got.dtype}")
        if not torch.equal(got[:, :p].long(), prompt):
            raise Mismatch("the first p tokens must be the prompt, unchanged")
        bad = (got.long() != want).nonzero()
        if len(bad):
            i, t = (int(v) for v in bad[0])
            hint = ""
            if t == p:
                hint = (": the first new token comes from the logits after the LAST prompt token (step through the "
                        "whole prompt first, then take its argmax)")
            raise Mismatch(f"sequence {i}, position {t} (new token {t - p}): expected {int(want[i, t])}, got "
                           f"{int(got[i, t])}{hint}")
        if steps.fresh > 1:
            raise Mismatch(f"model.init_state was called {steps.fresh} times: a new state forgets the past. Make one "
                           "state before the prompt and carry it from token to token")
        if steps.calls < p + n_new - 1:
            raise Mismatch(f"model.step was called {steps.calls} times for a prompt of {p} and {n_new} new tokens: "
                           "decode with the recurrent state, one model.step per token")
        if steps.calls > p + n_new:
            raise Mismatch(f"model.step was called {steps.calls} times for a prompt of {p} and {n_new} new tokens "
                           f"(at most {p + n_new}): keep the state and feed each token once, instead of running "
                           "the sequence through again")
    return name, test


def check_greedy_generate(fn, quiet: bool = False) -> Verdict:
    """fn(model, prompt (b, p) int64, n_new) -> (b, p + n_new): the prompt, then n_new tokens, each the
    argmax of the logits after the previous one, computed with `model.init_state` / `model.step`.
    Compared with `greedy_reference` (the whole sequence through the model again for every token)."""
    cases = [_generate_case("Mamba LM, one-token prompt, 5 new", "mamba", 1, 1, 5, 0),
             _generate_case("Mamba LM, batch 2, prompt of 6, 8 new", "mamba", 2, 6, 8, 1),
             _generate_case("attention LM (KV cache), batch 3, prompt of 4, 6 new", "attention", 3, 4, 6, 2),
             _generate_case("no new tokens: just the prompt back", "mamba", 2, 3, 0, 3)]
    return run_check("greedy_generate", fn, cases, quiet=quiet,
                     forbid=(TinyLM.forward, TinyLM.decode, MambaBlock.forward, MambaBlock.inner, AttentionBlock.forward,
                             ResidualBlock.forward, greedy_reference, predict_forward))


__all__ = ["check_block_parameters", "check_mamba_step", "check_greedy_generate", "greedy_reference"]
