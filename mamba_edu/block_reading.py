"""A TinyLM of Mamba blocks reading a text, stage by stage and token by token (the Inside Mamba page).

Glossary (the trace's symbols are those of `mamba_edu.probe`)
    reading     a `Reading` (`read`): a TinyLM of Mamba blocks on one text, every stage of every block
                kept per token (in_proj, conv1d, SiLU, Δ, B, C, Ā, Δ·B·u, h, y, gate, out_proj) and the
                next-token probabilities; `flow_stages`, `token_write`, `states_around`, `survival`,
                `kept_fraction`, `top_next`, `memory_by_now` look at one token of it (the Inside Mamba page)

"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import check_int, check_tensor, fail
from .cost import kv_cache_bytes, mamba_state_bytes
from .models import TinyLM
from .probe import LayerTrace, _check_trace, _selective_trace, ssm_output

# ----------------------------------------------------------------------------------------------
# Reading a text: every stage of every Mamba block, token by token (the Inside Mamba page)
#
#     x_0 = embedding(token)                                         the residual stream (l, D)
#     per block:  x̂ = RMSNorm(x)
#                 x_in, z = in_proj(x̂)                               two branches of width e
#                 c = conv1d(x_in)   (causal, width k)   u = SiLU(c)
#                 Δ = softplus(W_Δ·W_r·u + bias),  B = W_B·u,  C = W_C·u      (x_proj, dt_proj)
#                 Ā_t = exp(Δ_t·A),  write_t = Δ_t·B_t·u_t          discretise  (e, n) per token
#                 h_t = Ā_t ⊙ h_{t−1} + write_t                      the scan
#                 y_t = C_t·h_t + D·u_t,  gated: y_t ⊙ SiLU(z_t)      then out_proj, back into x
#     logits = lm_head(RMSNorm(x)),  p(next byte) = softmax(logits)
# ----------------------------------------------------------------------------------------------


@dataclass
class BlockReading:
    """What one Mamba block of a TinyLM computes on one sequence, stage by stage (batch 1 dropped)."""

    x: torch.Tensor  # (l, D) the residual stream entering the block
    normed: torch.Tensor  # (l, D) RMSNorm(x), the mixer's input
    x_in: torch.Tensor  # (e, l) in_proj's first half (the SSM branch, before the convolution)
    z: torch.Tensor  # (e, l) in_proj's second half (the gate branch)
    conv: torch.Tensor  # (e, l) after the causal depthwise convolution
    trace: LayerTrace  # u = SiLU(conv), Δ, A, Ā = a, Δ·B = w, C, h, batch 1
    B: torch.Tensor  # (n, l)
    C: torch.Tensor  # (n, l)
    y_ssm: torch.Tensor  # (e, l) C_t·h_t
    y_skip: torch.Tensor  # (e, l) C_t·h_t + D·u_t
    gate: torch.Tensor  # (e, l) SiLU(z)
    y: torch.Tensor  # (e, l) (C·h + D·u) ⊙ SiLU(z): the S6 layer's output
    out: torch.Tensor  # (l, D) out_proj(y), added to the residual stream
    conv_window: torch.Tensor  # (e, k − 1) the convolution's inputs kept for the next token


@dataclass
class Reading:
    """A TinyLM of Mamba blocks reading one sequence: the tokens, every block, the next-token probabilities."""

    tokens: torch.Tensor  # (l,) int64
    blocks: list  # of BlockReading, one per layer
    logits: torch.Tensor  # (l, V) for the token after each position
    probs: torch.Tensor  # (l, V) softmax(logits)


def _read_block(mixer, normed: torch.Tensor):
    """Every stage of `mixer` (a MambaBlock) on normed (1, l, D); returns the stages and the block's output."""
    l, k = normed.shape[1], mixer.d_conv
    x_in, z = mixer.in_proj(normed).chunk(2, dim=-1)  # (1, l, e) each
    x_in = x_in.transpose(1, 2)  # (1, e, l)
    conv = mixer.conv1d(x_in)[..., :l]  # (1, e, l): causal, the tail cut
    tr = _selective_trace(mixer.s6, F.silu(conv))
    _, B, C = mixer.s6.projections(tr.u)  # (1, n, l) each
    y_ssm = ssm_output(tr)  # (1, e, l)
    y_skip = y_ssm + mixer.s6.D.float()[:, None] * tr.u  # (1, e, l)
    gate = F.silu(z.transpose(1, 2).float())  # (1, e, l)
    y = y_skip * gate  # (1, e, l)
    out = mixer.out_proj(y.transpose(1, 2).to(normed.dtype))  # (1, l, D)
    window = F.pad(x_in, (max(0, k - 1 - l), 0))[..., -(k - 1):] if k > 1 else x_in[..., :0]  # (1, e, k−1)
    return dict(x_in=x_in[0], z=z[0].T, conv=conv[0], trace=tr, B=B[0], C=C[0], y_ssm=y_ssm[0], y_skip=y_skip[0],
                gate=gate[0], y=y[0], conv_window=window[0]), out


@torch.no_grad()
def read(model: TinyLM, tokens: torch.Tensor) -> Reading:
    """Run a TinyLM of Mamba blocks on one sequence `tokens` (l,) (or (1, l)) and keep every stage.

    The stages recompute exactly what `model(tokens)` computes (the tests check the logits, each
    block's y against the S6 layer's forward, and the last state against `model.step`).
    """
    func = "read"
    if not isinstance(model, TinyLM):
        fail(func, "model", "a TinyLM", type(model).__name__)
    if model.mixer != "mamba":
        fail(func, "model", "a TinyLM of Mamba blocks (mixer 'mamba')", f"mixer {model.mixer!r}")
    check_tensor(func, "tokens", tokens, ndim=(1, 2), dtypes=(torch.int64, torch.int32), dims="(L,) or (1, L)")
    if tokens.dim() == 2 and tokens.shape[0] != 1:
        fail(func, "tokens", "one sequence, (L,) or (1, L)", f"shape {tuple(tokens.shape)}")
    tokens = tokens.reshape(-1).long()  # (l,)
    if tokens.numel() == 0:
        fail(func, "tokens", "at least one token", "an empty sequence")
    model._check_tokens(tokens[None], 2)
    x = model.embedding(tokens[None])  # (1, l, D)
    blocks = []
    for layer in model.layers:
        normed = layer.norm(x)  # (1, l, D)
        stages, out = _read_block(layer.mixer, normed)
        blocks.append(BlockReading(x=x[0], normed=normed[0], out=out[0], **stages))
        x = x + out  # (1, l, D)
    logits = model.lm_head(model.norm_f(x))[0].float()  # (l, V)
    return Reading(tokens.clone(), blocks, logits, torch.softmax(logits, dim=-1))


def _check_position(func: str, reading, t) -> int:
    if not isinstance(reading, (Reading, LayerTrace)):
        fail(func, "reading", "a Reading (from read) or a LayerTrace", type(reading).__name__)
    L = reading.tokens.numel() if isinstance(reading, Reading) else reading.h.shape[-1]
    t = check_int(func, "t", t, minimum=0)
    if t >= L:
        fail(func, "t", f"a token index < L = {L}", t)
    return t


def token_write(trace: LayerTrace, s: int) -> torch.Tensor:
    """write_s = Δ_s·B_s·u_s: what token s adds to the state, per channel and entry.  (e, n) (batch 0)"""
    s = _check_position("token_write", _check_trace("token_write", trace), s)
    return trace.w[0, :, :, s] * trace.u[0, :, None, s]  # (e, n)


def states_around(trace: LayerTrace, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The state before token s (h_{s−1}, zeros for s = 0) and after it (h_s).  (e, n) each (batch 0)

        h_s = Ā_s ⊙ h_{s−1} + write_s
    """
    s = _check_position("states_around", _check_trace("states_around", trace), s)
    after = trace.h[0, :, :, s]  # (e, n)
    return (trace.h[0, :, :, s - 1] if s else torch.zeros_like(after)), after


def survival(trace: LayerTrace, s: int) -> torch.Tensor:
    """P[t, s] = Π_{r=s+1}^{t} Ā_r for t = s … L−1: the fraction of what token s wrote that is still in
    the state at token t (1 at t = s; the decays multiply, Δ large forgets fast).  (e, n, L − s) (batch 0)

    The part of h_t written by token s is P[t, s] ⊙ write_s (`kept`).
    """
    s = _check_position("survival", _check_trace("survival", trace), s)
    a = trace.a[0, :, :, s + 1:]  # (e, n, L−s−1)
    return torch.cat([torch.ones_like(trace.a[0, :, :, :1]), a.cumprod(-1)], dim=-1)  # (e, n, L−s)


def kept_fraction(trace: LayerTrace, s: int) -> torch.Tensor:
    """‖P[t, s] ⊙ write_s‖ / ‖write_s‖ for t = s … L−1: how much of token s's write is left, all
    channels together (1 at t = s; 0 when the token wrote nothing).  (L − s,)"""
    write = token_write(trace, s)  # (e, n)
    norm = float(write.norm())
    left = (survival(trace, s) * write[..., None]).pow(2).sum((0, 1)).sqrt()  # (L−s,)
    return left / norm if norm > 0 else torch.zeros_like(left)


def top_next(reading: Reading, t: int, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely next tokens after position t and their probabilities, most likely first.  (k,), (k,)"""
    t = _check_position("top_next", reading, t)
    k = check_int("top_next", "k", k, maximum=reading.probs.shape[-1])
    p, ids = reading.probs[t].topk(k)
    return ids, p


def surprise_bits(reading: Reading) -> torch.Tensor:
    """−log₂ p(the token that came next) at each position; NaN at the last one (nothing came).  (l,)"""
    if not isinstance(reading, Reading):
        fail("surprise_bits", "reading", "a Reading (from read)", type(reading).__name__)
    logp = torch.log_softmax(reading.logits.double(), dim=-1)  # (l, V)
    nxt = reading.tokens[1:]  # (l−1,)
    bits = -logp[:-1].gather(1, nxt[:, None])[:, 0] / math.log(2)  # (l−1,)
    return torch.cat([bits, torch.full((1,), float("nan"), dtype=bits.dtype)]).float()


def flow_stages(reading: Reading, layer: int, t: int) -> list[dict]:
    """The data flow of block `layer` at token t, stage by stage: a list of {"name", "op", "values",
    "signed"}, values a vector over the channels (or model width) or a (channels e, state entries n)
    matrix, in the order the block computes them."""
    t = _check_position("flow_stages", reading, t)
    check_int("flow_stages", "layer", layer, minimum=0, maximum=len(reading.blocks) - 1)
    b = reading.blocks[layer]
    tr = b.trace
    _, after = states_around(tr, t)
    stage = lambda name, op, v, signed=True: {"name": name, "op": op, "values": v, "signed": signed}  # noqa: E731
    return [
        stage("RMSNorm(x)", "the block's input (width D)", b.normed[t]),
        stage("in_proj: x", "W_in·x̂, SSM branch (width e)", b.x_in[:, t]),
        stage("in_proj: z", "W_in·x̂, gate branch", b.z[:, t]),
        stage("conv1d", "causal, last k bytes", b.conv[:, t]),
        stage("SiLU → u", "u = c·σ(c)", tr.u[0, :, t]),
        stage("Δ", "softplus(dt_proj(x_proj·u))", tr.delta[0, :, t], False),
        stage("B, C", "x_proj·u (n each)", torch.stack([b.B[:, t], b.C[:, t]], dim=1)),
        stage("Ā = exp(ΔA)", "discretise: decay (e × n)", tr.a[0, :, :, t], False),
        stage("Δ·B·u", "discretise: write (e × n)", token_write(tr, t)),
        stage("scan: h", "h = Ā⊙h₋₁ + Δ·B·u", after),
        stage("y = C·h + D·u", "read the state", b.y_skip[:, t]),
        stage("⊙ SiLU(z)", "the gate", b.y[:, t]),
        stage("out_proj", "back to width D, + x", b.out[t]),
        stage("next-byte logits", "after the last block (256)", reading.logits[t]),
    ]


def memory_by_now(model: TinyLM, position: int, attention: dict) -> dict[str, int]:
    """Bytes a decoder holds after `position` tokens (fp32): this Mamba model's fixed state
    (`mamba_state_bytes`, the conv windows and SSM states of every layer) and the key-value cache of
    an attention model `attention` = {"n_layers", "d_model", "n_heads"} (`kv_cache_bytes`), which grows by
    2·layers·d_model numbers per token."""
    func = "memory_by_now"
    if not isinstance(model, TinyLM) or model.mixer != "mamba":
        fail(func, "model", "a TinyLM of Mamba blocks", type(model).__name__)
    check_int(func, "position", position, minimum=0)
    if not isinstance(attention, dict) or not {"n_layers", "d_model", "n_heads"} <= set(attention):
        fail(func, "attention", "a dict with n_layers, d_model, n_heads", attention)
    n_heads = check_int(func, "attention['n_heads']", attention["n_heads"])
    mixer = model.layers[0].mixer
    state = mamba_state_bytes(len(model.layers), mixer.d_model, mixer.s6.n, mixer.d_conv,
                              mixer.d_inner // mixer.d_model, bytes_per_element=4)
    kv = kv_cache_bytes(check_int(func, "attention['n_layers']", attention["n_layers"]), n_heads,
                        check_int(func, "attention['d_model']", attention["d_model"]) // n_heads, position,
                        bytes_per_element=4)
    return {"mamba state": state, "attention KV cache": kv}


__all__ = ["BlockReading", "Reading", "read", "token_write", "states_around", "survival", "kept_fraction",
           "top_next", "surprise_bits", "flow_stages", "memory_by_now"]
