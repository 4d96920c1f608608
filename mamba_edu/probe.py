"""Looking inside a trained TinyLM: per-token Δ, every state, and what each token leaves in the state.

Glossary
    trace       a `LayerTrace`: what one SSM layer of a TinyLM computes on a batch of tokens, written
                as the diagonal recurrence  h_t = a_t ⊙ h_{t−1} + w_t·u_t,  y_t = Σ_n C_t[n]·h_t[n]
    b, d, n, l  batch, channels (the SSM's width: d_inner for a Mamba block, d_model for S4D),
                state entries per channel, sequence length
    u           the SSM's input (b, d, l): for Mamba, after in_proj, the causal conv and SiLU
    Δ (delta)   the step size of each channel at each token (b, d, l). Selective (S6): computed from
                the token, Δ_t = softplus(W_Δ·u_t + bias). LTI (S4D): one learned constant per channel,
                the same at every token
    a           the decay Ab_t = exp(Δ_t·A)   (b, d, n, l)
    w           what multiplies u_t: Δ_t·B_t in S6 (Mamba's simplified B̄ = Δ·B), the zero-order
                hold B̄ = (e^{ΔA} − 1)/A · B in S4D   (b, d, n, l)
    C           the readout (b, d, n, l) (broadcast views: shared by channels in S6, by tokens in S4D)
    h           every state (b, d, n, l); complex for S4D-Lin, where y = 2·Re(Σ_n C h) (conjugate pairs)
    transfer    P[t, s] = Π_{r=s+1}^{t} a_r for s ≤ t (1 on the diagonal, 0 above it): the fraction of
                what was written at step s that is still in the state at step t
    kept        c_s = P[t, s] · w_s · u_s: the part of the state at step t that token s wrote.
                They add up to the state: Σ_{s≤t} c_s = h_t. A token the layer ignores has c_s ≈ 0
    mixing matrix   M[t, s] = Σ_n C_t[n]·P[t, s][n]·w_s[n]: per channel, y_t = Σ_{s≤t} M[t, s]·u_s.
                LTI: M[t, s] = K_{t−s} depends on the distance only (a Toeplitz matrix: a convolution
                with the kernel K). Selective: M depends on the tokens, so no kernel K exists, yet
                h_t is still the linear first-order recurrence above (a scan, chapter 07)


Every function works on a trace and never changes the model; all run under torch.no_grad.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import lti
from ._checks import COMPLEX_DTYPES, FLOAT_DTYPES, check_int, check_tensor, fail
from .models import TinyLM
from .scan import scan_sequential
from .ssd import segsum

MAX_TRANSFER_ELEMENTS = 2**25  # transfer / mixing_matrix hold (…, l, l) tensors: refuse larger ones
DELTA_FLOOR = 1e-12  # log Δ is taken of max(Δ, DELTA_FLOOR): a float32 softplus of a very negative
                     # pre-activation underflows to exactly 0 (the trained models do this on purpose)


@dataclass
class LayerTrace:
    """One SSM layer's recurrence on a batch: h_t = a_t ⊙ h_{t−1} + w_t·u_t, y_t = Σ_n C_t h_t."""

    mixer: str  # "mamba" (selective, S6) or "s4d" (LTI)
    u: torch.Tensor  # (b, d, l) the SSM's input
    delta: torch.Tensor  # (b, d, l) step sizes
    A: torch.Tensor  # (d, n) the continuous-time state matrix (diagonal), real or complex
    a: torch.Tensor  # (b, d, n, l) decays exp(Δ·A)
    w: torch.Tensor  # (b, d, n, l) input weights (Δ·B for S6, ZOH B̄ for S4D)
    C: torch.Tensor  # (b, d, n, l) readout
    h: torch.Tensor  # (b, d, n, l) every state

    @property
    def is_complex(self) -> bool:
        return self.h.is_complex()

    @property
    def selective(self) -> bool:
        return self.mixer == "mamba"


def _layer_input(model: TinyLM, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    """The normalised residual stream entering layer `layer`'s mixer.  (b, l, d_model)"""
    x = model.embedding(tokens)  # (b, l, D)
    for blk in model.layers[:layer]:
        x = blk(x)  # (b, l, D)
    return model.layers[layer].norm(x)  # (b, l, D)


@torch.no_grad()
def trace_layer(model: TinyLM, tokens: torch.Tensor, layer: int = 0) -> LayerTrace:
    """Run `model` on `tokens` (b, l) up to layer `layer` and return that SSM layer's recurrence.

    Mamba (S6):  u = silu(conv(in_proj(x))),  Δ = softplus(W_Δ u + bias),  B, C = W_B u, W_C u,
                 a = exp(Δ·A),  w = Δ·B  (the arithmetic of `selective_scan_ref`)
    S4D (LTI):   u = x,  Δ = exp(log_dt) for every token,  a, w = zero-order hold of (A, B) with Δ,
                 C the learned readout (the arithmetic of `S4DLayer.step`)
    The states come from `mamba_edu.scan.scan_sequential`.
    """
    func = "trace_layer"
    if not isinstance(model, TinyLM):
        fail(func, "model", "a TinyLM", type(model).__name__)
    if model.mixer not in ("mamba", "s4d"):
        fail(func, "model", "a TinyLM with SSM layers (mixer 'mamba' or 's4d')", f"mixer {model.mixer!r}")
    check_tensor(func, "tokens", tokens, ndim=2, dtypes=(torch.int64, torch.int32), dims="(batch, L)")
    check_int(func, "layer", layer, minimum=0)
    if layer >= len(model.layers):
        fail(func, "layer", f"< n_layers = {len(model.layers)}", layer)
    x = _layer_input(model, tokens, layer)  # (b, l, D)
    mixer = model.layers[layer].mixer
    if model.mixer == "mamba":
        u, _ = mixer.inner(x)  # (b, e, l)
        return _selective_trace(mixer.s6, u)
    u = x.transpose(1, 2).float()  # (b, d, l)
    A, B, C, dt = mixer.ssm()  # (d, n') ×3, (d,)
    Ab, Bb = lti.s4d_discretize(A, B, dt)  # (d, n') each
    delta = dt[None, :, None].expand_as(u)  # (b, d, l): the same Δ at every token
    shape = (u.shape[0], *A.shape, u.shape[-1])  # (b, d, n', l)
    a = Ab[None, :, :, None].expand(shape)  # (b, d, n', l)
    w = Bb[None, :, :, None].expand(shape)  # (b, d, n', l)
    C = C[None, :, :, None].expand(shape)  # (b, d, n', l)
    h = scan_sequential(a, w * u[:, :, None, :].to(w.dtype))  # (b, d, n, l)
    parts = (u, delta.float(), A, a, w, C, h)
    return LayerTrace(model.mixer, *(p.detach() for p in parts))


def _selective_trace(s6, u: torch.Tensor) -> LayerTrace:
    """The recurrence of an S6 layer on its input u (b, e, l) (the arithmetic of `selective_scan_ref`)."""
    u = u.float()
    delta = s6.delta(u)  # (b, e, l)
    _, B, C = s6.projections(u)  # (b, n, l) each
    A = s6.A  # (e, n)
    a = torch.exp(delta[:, :, None, :] * A[None, :, :, None])  # (b, e, n, l)
    w = delta[:, :, None, :] * B[:, None].float()  # (b, e, n, l)
    C = C[:, None].float().expand_as(a)  # (b, e, n, l), a view
    h = scan_sequential(a, w * u[:, :, None, :])  # (b, e, n, l)
    return LayerTrace("mamba", *(p.detach() for p in (u, delta, A, a, w, C, h)))


def _check_trace(func: str, trace) -> LayerTrace:
    if not isinstance(trace, LayerTrace):
        fail(func, "trace", "a LayerTrace (from trace_layer)", type(trace).__name__)
    return trace


def _real(y: torch.Tensor, is_complex: bool) -> torch.Tensor:
    """2·Re(y) for complex states (each stored entry stands for a conjugate pair), else y."""
    return 2 * y.real if is_complex else y


def ssm_output(trace: LayerTrace) -> torch.Tensor:
    """y_t = Σ_n C_t[n]·h_t[n] for every channel and token (2·Re for complex states).  (b, d, l)

    Before the skip D·u and, for Mamba, before the gate silu(z).
    """
    tr = _check_trace("ssm_output", trace)
    return _real((tr.C * tr.h).sum(2), tr.is_complex)  # (b, d, l)


def state_norm(trace: LayerTrace) -> torch.Tensor:
    """‖h_t‖, the Euclidean norm of the whole state (all channels and entries) after each token.  (b, l)"""
    tr = _check_trace("state_norm", trace)
    return tr.h.abs().pow(2).sum((1, 2)).sqrt()  # (b, l)


def channel_selectivity(trace: LayerTrace) -> torch.Tensor:
    """How much each channel's Δ changes from token to token: the standard deviation of
    log max(Δ, DELTA_FLOOR) over the tokens, averaged over the batch.  (d,)
    Zero for an LTI layer (Δ is one constant)."""
    tr = _check_trace("channel_selectivity", trace)
    log_delta = torch.log(tr.delta.double().clamp_min(DELTA_FLOOR))  # (b, d, l)
    return log_delta.std(dim=-1, unbiased=False).mean(0).float()  # (d,)


def most_selective(trace: LayerTrace, k: int) -> torch.Tensor:
    """The indices of the k channels whose Δ varies most over the tokens (`channel_selectivity`),
    most selective first.  (k,) int64"""
    sel = channel_selectivity(trace)  # (d,)
    check_int("most_selective", "k", k)
    if k > sel.numel():
        fail("most_selective", "k", f"at most the number of channels d = {sel.numel()}", k)
    return sel.argsort(descending=True, stable=True)[:k]  # (k,)


def typical_delta(trace: LayerTrace, channels=None) -> torch.Tensor:
    """The geometric mean of max(Δ, DELTA_FLOOR) over the channels (all, or the indices `channels`),
    per token: one typical step size per token.  (b, l)"""
    tr = _check_trace("typical_delta", trace)
    delta = tr.delta  # (b, d, l)
    if channels is not None:
        delta = delta[:, torch.as_tensor(channels, dtype=torch.int64).reshape(-1)]  # (b, k, l)
    return torch.exp(torch.log(delta.double().clamp_min(DELTA_FLOOR)).mean(1)).float()  # (b, l)


def kept(trace: LayerTrace, t: int | None = None) -> torch.Tensor:
    """c_s = P[t, s]·w_s·u_s for s ≤ t: the part of the state h_t written by token s.  (b, d, n, t+1)

        P[t, s] = Π_{r=s+1}^{t} a_r        (a reverse cumulative product; P[t, t] = 1)
        Σ_{s≤t} c_s = h_t                  (the tests check it)

    `t` defaults to the last token.
    """
    func = "kept"
    tr = _check_trace(func, trace)
    L = tr.h.shape[-1]
    t = L - 1 if t is None else check_int(func, "t", t, minimum=0)
    if t >= L:
        fail(func, "t", f"a token index < L = {L}", t)
    a = tr.a[..., 1:t + 1]  # (b, d, n, t): the decays applied after each write
    survive = a.flip(-1).cumprod(-1).flip(-1)  # (b, d, n, t): Π_{r=s+1}^{t} a_r for s < t
    survive = torch.cat([survive, torch.ones_like(tr.a[..., :1])], dim=-1)  # (b, d, n, t+1)
    return survive * tr.w[..., :t + 1] * tr.u[:, :, None, :t + 1].to(tr.w.dtype)  # (b, d, n, t+1)


def kept_norm(trace: LayerTrace, t: int | None = None, channels=None) -> torch.Tensor:
    """‖c_s‖ over the channels (all, or the indices `channels`) and their entries: how much of what
    token s wrote is still in h_t.  (b, t+1)"""
    c = kept(trace, t)  # (b, d, n, t+1)
    if channels is not None:
        idx = torch.as_tensor(channels, dtype=torch.int64).reshape(-1)  # (k,)
        d = c.shape[1]
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= d:
            fail("kept_norm", "channels", f"channel indices in [0, {d})", idx.tolist())
        c = c[:, idx]  # (b, k, n, t+1)
    return c.abs().pow(2).sum((1, 2)).sqrt()  # (b, t+1)


def transfer(a: torch.Tensor) -> torch.Tensor:
    """P[..., t, s] = Π_{r=s+1}^{t} a[..., r] for s ≤ t, 1 on the diagonal, 0 above.  a (..., l) → (..., l, l)

    The decay mask of Mamba-2 (`ssd.segsum`, one implementation for both chapters): exp of the
    segment sums of log |a|, times exp(i·segment sums of arg a) for complex a. A decay that
    underflowed to 0 gives log 0 = −∞ and a product of exactly 0, never nan.
    """
    func = "transfer"
    check_tensor(func, "a", a, ndim=range(1, 8), dims="(..., L)", dtypes=FLOAT_DTYPES + COMPLEX_DTYPES)
    L = a.shape[-1]
    if a.numel() * L > MAX_TRANSFER_ELEMENTS:
        fail(func, "a", f"small enough for a (..., L, L) tensor of at most {MAX_TRANSFER_ELEMENTS} elements",
             f"shape {tuple(a.shape)}")
    P = torch.exp(segsum(torch.log(a.abs())))  # (..., l, l): |a_{s+1}|⋯|a_t|, 0 above the diagonal
    if a.is_complex():
        causal = torch.ones(L, L, dtype=torch.bool, device=a.device).tril()  # (l, l)
        phase = segsum(torch.angle(a)).masked_fill(~causal, 0.0)  # (..., l, l): arg a_{s+1} + … + arg a_t
        P = P * torch.exp(1j * phase)  # (..., l, l) complex
    return P


def mixing_matrix(trace: LayerTrace, channel: int = 0) -> torch.Tensor:
    """M[t, s] = Σ_n C_t[n]·P[t, s][n]·w_s[n] (2·Re for complex states) of one channel.  (b, l, l)

    The layer's output before the skip is y_t = Σ_{s≤t} M[t, s]·u_s: the whole sequence map as one
    lower-triangular matrix. For an LTI layer M[t, s] = K_{t−s} (Toeplitz).
    """
    func = "mixing_matrix"
    tr = _check_trace(func, trace)
    d = tr.h.shape[1]
    check_int(func, "channel", channel, minimum=0)
    if channel >= d:
        fail(func, "channel", f"a channel index < d = {d}", channel)
    a, w, C = tr.a[:, channel], tr.w[:, channel], tr.C[:, channel]  # (b, n, l) each
    P = transfer(a)  # (b, n, l, l)
    M = torch.einsum("bnt,bnts,bns->bts", C, P, w)  # (b, l, l)
    return _real(M, tr.is_complex)


def toeplitz_gap(M: torch.Tensor) -> float:
    """Largest |M[t+1, s+1] − M[t, s]| on and below the diagonal, relative to max |M|: 0 exactly when
    M[t, s] depends on t − s only (a convolution)."""
    check_tensor("toeplitz_gap", "M", M, dims="(..., L, L)")
    if M.dim() < 2 or M.shape[-1] != M.shape[-2]:
        fail("toeplitz_gap", "M", "a square (..., L, L) tensor", f"shape {tuple(M.shape)}")
    L = M.shape[-1]
    lower = torch.ones(L - 1, L - 1, dtype=torch.bool, device=M.device).tril()  # (l−1, l−1)
    gap = (M[..., 1:, 1:] - M[..., :-1, :-1]).abs()[..., lower]  # (..., pairs)
    scale = float(M.abs().max()) or 1.0
    return float(gap.max()) / scale if gap.numel() else 0.0


__all__ = ["LayerTrace", "trace_layer", "ssm_output", "state_norm", "channel_selectivity", "most_selective",
           "typical_delta", "kept", "kept_norm", "transfer", "mixing_matrix", "toeplitz_gap",
           "MAX_TRANSFER_ELEMENTS", "DELTA_FLOOR"]
