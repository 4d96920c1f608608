"""Models: an S4D (LTI) layer, the Mamba block, and a tiny language model, with recurrent decoding.

Glossary
    b, l        batch size, sequence length
    d_model     the model width (the residual stream), written `d` in shape comments
    d_inner     the Mamba block's inner width, expand · d_model, written `e`
    n           SSM state size per channel (d_state)
    k           the causal convolution's width (d_conv)
    V           vocabulary size
    state       what a layer must remember to process the next token: for the Mamba block a
                (b, e, k-1) window of the convolution plus the (b, e, n) SSM state; for S4D the
                (b, d, n) complex SSM state. Its size does not grow with the position, unlike
                attention's key-value cache.

Every layer maps (b, l, d) → (b, l, d) in `forward` (all tokens at once: training mode) and
(b, d) → (b, d) with a carried state in `step` (one token at a time: decoding). The tests check
that stepping through a sequence gives the same output as the forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import lti
from ._checks import COMPLEX_DTYPES, FLOAT_DTYPES, check_choice, check_int, check_tensor, fail
from .mamba3 import Mamba3
from .selective import S6

def _check_sequence(func: str, x: torch.Tensor, d_model: int) -> None:
    """x (batch, L, d_model) with L >= 1: an empty sequence has no last state and no output."""
    check_tensor(func, "x", x, ndim=3, shape=(None, None, d_model), dims="(batch, L, d_model)")
    if x.shape[1] < 1:
        fail(func, "x", "a sequence of length L >= 1 (shape (batch, L, d_model))", f"shape {tuple(x.shape)}")


def _check_state(func: str, name: str, h: object, shape: tuple, dims: str, x: torch.Tensor,
                 complex_: bool = False) -> None:
    """A decoding state must have the shape init_state makes, on x's device: a state of another
    batch or width would broadcast silently into a wrong answer, or fail deep inside. (Shapes
    only: nothing is allocated and nothing waits for a GPU, so decoding stays as fast.)"""
    check_tensor(func, name, h, shape=shape, dims=dims, dtypes=COMPLEX_DTYPES if complex_ else FLOAT_DTYPES,
                 device=x.device)


# ----------------------------------------------------------------------------------------------
# S4D: a diagonal LTI SSM per channel (time-invariant: one convolution kernel for all inputs)
# ----------------------------------------------------------------------------------------------


class S4DLayer(nn.Module):
    """x (b, l, d) → (b, l, d): per channel y = K ∗ u + D·u, then GELU and a linear map.

    K_l = Σ_n C_n · Bb_n · Ab_n^l is computed from the diagonal A by a Vandermonde product
    (`mamba_edu.lti.s4d_kernel`) and applied by FFT convolution in `forward`; `step` runs the
    same system as a recurrence, h_t = Ab ⊙ h_{t−1} + Bb·u_t, y_t = C·h_t + D·u_t.
    """

    def __init__(self, d_model: int, d_state: int = 16, init: str = "lin", dt_min: float = 1e-3,
                 dt_max: float = 1e-1):
        super().__init__()
        check_int("S4DLayer", "d_model", d_model)
        check_int("S4DLayer", "d_state", d_state)
        check_choice("S4DLayer", "init", init, ("lin", "inv", "real"))
        if init != "real" and d_state % 2:
            fail("S4DLayer", "d_state", f"an even state size for init '{init}' (complex conjugate pairs)", d_state)
        self.d_model = d_model
        A = lti.s4d_init(d_model, d_state, init)  # (d, n') complex for lin/inv, real for real
        self.is_complex = A.is_complex()
        self.log_A_real = nn.Parameter(torch.log(-A.real).float())  # (d, n')
        self.A_imag = nn.Parameter(A.imag.float()) if self.is_complex else None  # (d, n')
        shape = (*A.shape, 2) if self.is_complex else A.shape
        self.C = nn.Parameter(torch.randn(shape) * (0.5**0.5))  # (d, n'[, 2]) real view of C
        r = torch.rand(d_model)
        self.log_dt = nn.Parameter(r * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))  # (d,)
        self.D = nn.Parameter(torch.randn(d_model))  # (d,)
        self.out = nn.Linear(d_model, d_model)

    def ssm(self):
        """A (d, n'), B (d, n'), C (d, n'), Δ (d,) of the continuous-time system."""
        A = -torch.exp(self.log_A_real)  # (d, n')
        if self.is_complex:
            A = torch.complex(A, self.A_imag)  # (d, n')
        C = torch.view_as_complex(self.C) if self.is_complex else self.C  # (d, n')
        B = torch.ones_like(A)  # (d, n'): B is folded into C in S4D
        return A, B, C, torch.exp(self.log_dt)

    def kernel(self, L: int) -> torch.Tensor:
        """The convolution kernel K (d, L)."""
        A, B, C, dt = self.ssm()
        return lti.s4d_kernel(A, B, C, dt, L)  # (d, L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_sequence("S4DLayer", x, self.d_model)
        u = x.transpose(1, 2)  # (b, d, l)
        y = lti.causal_conv(u, self.kernel(u.shape[-1]).to(u.dtype)) + self.D[:, None] * u  # (b, d, l)
        return self.out(F.gelu(y).transpose(1, 2))  # (b, l, d)

    def init_state(self, batch: int, device=None) -> torch.Tensor:
        check_int(f"{type(self).__name__}.init_state", "batch", batch, minimum=0)
        A, _, _, _ = self.ssm()
        return torch.zeros(batch, *A.shape, dtype=A.dtype if self.is_complex else torch.float32, device=device)

    def step(self, x: torch.Tensor, h: torch.Tensor):
        """x (b, d), state h (b, d, n') → (b, d), new state."""
        check_tensor("S4DLayer.step", "x", x, ndim=2, shape=(None, self.d_model), dims="(batch, d_model)")
        _check_state("S4DLayer.step", "h", h, (x.shape[0], *self.log_A_real.shape), "(batch, d_model, N)", x,
                     self.is_complex)
        A, B, C, dt = self.ssm()
        Ab, Bb = lti.s4d_discretize(A, B, dt)  # (d, n') each: zero-order hold per channel
        h = Ab * h + Bb * x[..., None].to(h.dtype)  # (b, d, n')
        y = lti.s4d_readout(C, h) + self.D * x  # (b, d)
        return self.out(F.gelu(y)), h


# ----------------------------------------------------------------------------------------------
# The Mamba block
# ----------------------------------------------------------------------------------------------


class MambaBlock(nn.Module):
    """x (b, l, d) → (b, l, d):

        x, z = in_proj(x)                 two branches of width e = expand · d
        x = silu(conv1d(x))               causal depthwise convolution over time (width k)
        y = S6(x) ⊙ silu(z)               the selective SSM, gated by the other branch
        out = out_proj(y)
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None, impl: str = "auto"):
        super().__init__()
        for name, v in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv), ("expand", expand)):
            check_int("MambaBlock", name, v)
        self.d_model, self.d_conv = d_model, d_conv
        self.d_inner = expand * d_model
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.s6 = S6(self.d_inner, d_state, dt_rank=dt_rank if dt_rank else math.ceil(d_model / 16), impl=impl)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def inner(self, x: torch.Tensor):
        """The S6 layer's input after in_proj, conv and SiLU (b, e, l), and the gate branch z (b, e, l)."""
        _check_sequence("MambaBlock", x, self.d_model)
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (b, l, e) each
        xs = self.conv1d(xs.transpose(1, 2))[..., : x.shape[1]]  # (b, e, l): causal, so cut the tail
        return F.silu(xs), z.transpose(1, 2)  # (b, e, l), (b, e, l)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, z = self.inner(x)
        y = self.s6(xs, z=z)  # (b, e, l)
        return self.out_proj(y.transpose(1, 2))  # (b, l, d)

    def init_state(self, batch: int, device=None):
        """(conv window (b, e, k−1), SSM state (b, e, n)), both zeros: nothing seen yet."""
        check_int(f"{type(self).__name__}.init_state", "batch", batch, minimum=0)
        return (torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device),
                torch.zeros(batch, self.d_inner, self.s6.n, device=device))

    def step(self, x: torch.Tensor, state):
        """x (b, d) and the state → (b, d) and the new state: one token of decoding."""
        check_tensor("MambaBlock.step", "x", x, ndim=2, shape=(None, self.d_model), dims="(batch, d_model)")
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            fail("MambaBlock.step", "state", "a pair (conv window, SSM state) as init_state makes it",
                 type(state).__name__)
        conv, h = state
        b = x.shape[0]
        _check_state("MambaBlock.step", "state[0]", conv, (b, self.d_inner, self.d_conv - 1),
                     "(batch, expand·d_model, d_conv − 1)", x)
        _check_state("MambaBlock.step", "state[1]", h, (b, self.d_inner, self.s6.n), "(batch, expand·d_model, d_state)", x)
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (b, e) each
        window = torch.cat([conv, xs[..., None]], dim=-1)  # (b, e, k): the last k inputs
        xs = (window * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias  # (b, e)
        y, h = self.s6.step(F.silu(xs), h, z=z)  # (b, e), (b, e, n)
        return self.out_proj(y), (window[..., 1:], h)


# ----------------------------------------------------------------------------------------------
# A tiny language model
# ----------------------------------------------------------------------------------------------

MIXERS = {"mamba": MambaBlock, "s4d": S4DLayer}


class ResidualBlock(nn.Module):
    """x + mixer(RMSNorm(x))."""

    def __init__(self, d_model: int, mixer: nn.Module):
        super().__init__()
        self.norm = nn.RMSNorm(d_model)
        self.mixer = mixer

    def forward(self, x):
        return x + self.mixer(self.norm(x))

    def step(self, x, state):
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state


class TinyLM(nn.Module):
    """tokens (b, l) → logits (b, l, V): embedding, residual mixer blocks, RMSNorm, tied head."""

    def __init__(self, vocab_size: int, d_model: int = 64, n_layers: int = 2, mixer: str = "mamba",
                 **mixer_kwargs):
        super().__init__()
        check_int("TinyLM", "vocab_size", vocab_size, minimum=2)
        check_int("TinyLM", "d_model", d_model)
        check_int("TinyLM", "n_layers", n_layers)
        check_choice("TinyLM", "mixer", mixer, MIXERS)
        self.vocab_size, self.mixer = vocab_size, mixer
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(ResidualBlock(d_model, MIXERS[mixer](d_model, **mixer_kwargs))
                                    for _ in range(n_layers))
        self.norm_f = nn.RMSNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # tied

    def _check_tokens(self, tokens, ndim):
        check_tensor("TinyLM", "tokens", tokens, ndim=ndim, dtypes=(torch.int64, torch.int32),
                     dims="(batch, L)" if ndim == 2 else "(batch,)")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"TinyLM: argument 'tokens' must hold ids in [0, {self.vocab_size}); "
                             f"got values in [{int(tokens.min())}, {int(tokens.max())}].")
        if ndim == 2 and tokens.shape[1] < 1:
            fail("TinyLM", "tokens", "a sequence of length L >= 1 (shape (batch, L))", f"shape {tuple(tokens.shape)}")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self._check_tokens(tokens, 2)
        x = self.embedding(tokens)  # (b, l, d)
        for layer in self.layers:
            x = layer(x)  # (b, l, d)
        return self.lm_head(self.norm_f(x))  # (b, l, V)

    def init_state(self, batch: int, device=None):
        """One state per layer; its size is fixed, whatever the position."""
        check_int(f"{type(self).__name__}.init_state", "batch", batch, minimum=0)
        return [layer.mixer.init_state(batch, device=device) for layer in self.layers]

    def step(self, token: torch.Tensor, state):
        """token (b,) and the state → logits (b, V) for the next token, and the new state."""
        self._check_tokens(token, 1)
        if not isinstance(state, (list, tuple)) or len(state) != len(self.layers):
            got = f"{len(state)} states" if isinstance(state, (list, tuple)) else type(state).__name__
            fail("TinyLM.step", "state", f"a list of {len(self.layers)} layer states (init_state(batch))", got)
        x = self.embedding(token)  # (b, d)
        new = []
        for layer, s in zip(self.layers, state):
            x, s = layer.step(x, s)  # (b, d)
            new.append(s)
        return self.lm_head(self.norm_f(x)), new

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for every position computed token by token with the recurrent state (b, l, V)."""
        self._check_tokens(tokens, 2)
        state = self.init_state(tokens.shape[0], device=tokens.device)
        out = []
        for t in range(tokens.shape[1]):
            logits, state = self.step(tokens[:, t], state)
            out.append(logits)
        return torch.stack(out, dim=1)


def state_bytes(state) -> int:
    """Bytes a decoding state takes (nested lists/tuples of tensors): constant in the position."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if not isinstance(state, (list, tuple)):
        fail("state_bytes", "state", "a tensor or nested lists/tuples of tensors (init_state's)", type(state).__name__)
    return sum(state_bytes(s) for s in state)


# ----------------------------------------------------------------------------------------------
# A tiny attention baseline (for comparison on the synthetic tasks)
# ----------------------------------------------------------------------------------------------

POSITIONS = ("sinusoidal", "learned")


def sinusoidal_positions(start: int, length: int, d_model: int, device=None) -> torch.Tensor:
    """The Transformer's absolute position code P (length, d) for positions start … start+length−1.

        P[t, 2i] = sin(t / 10000^(2i/d)),   P[t, 2i+1] = cos(t / 10000^(2i/d))

    Defined for every t, but a model trained on t < L_train has never seen the codes beyond it.
    """
    check_int("sinusoidal_positions", "start", start, minimum=0)
    check_int("sinusoidal_positions", "length", length, minimum=0)
    check_int("sinusoidal_positions", "d_model", d_model)
    t = torch.arange(start, start + length, dtype=torch.float64, device=device)[:, None]  # (l, 1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64, device=device)
                     / d_model)  # (⌈d/2⌉,)
    P = torch.zeros(length, d_model, dtype=torch.float64, device=device)  # (l, d)
    P[:, 0::2] = torch.sin(t * freq)  # (l, ⌈d/2⌉)
    P[:, 1::2] = torch.cos(t * freq)[:, : d_model // 2]  # (l, ⌊d/2⌋)
    return P.float()


class AttentionBlock(nn.Module):
    """Causal multi-head self-attention with absolute positions: x (b, l, d) → (b, l, d).

        h = x + P[positions]                      absolute positions, added in every block
        q, k, v = h·W_q, h·W_k, h·W_v             (b, heads, l, d/heads) each
        y_t = Σ_{j≤t} softmax_j(q_t·k_j / √(d/heads)) v_j      (causal: only the past)
        out = y·W_o

    `positions="sinusoidal"` uses the fixed code of `sinusoidal_positions` (runs at any length,
    but positions beyond the training length were never seen); `"learned"` a table of `max_len`
    trained vectors (cannot run past max_len at all).

    Decoding (`step`) keeps every past key and value: the state is a key-value cache of shape
    (b, heads, t, d/heads) twice, which GROWS with the position t, and each new token attends to
    all t of them (O(t) work per token, O(L²) for a sequence). Compare the Mamba block, whose
    state has the same size at token 10 and at token 10 million.
    """

    def __init__(self, d_model: int, n_heads: int = 2, positions: str = "sinusoidal", max_len: int = 2048):
        super().__init__()
        check_int("AttentionBlock", "d_model", d_model)
        check_int("AttentionBlock", "n_heads", n_heads)
        check_choice("AttentionBlock", "positions", positions, POSITIONS)
        check_int("AttentionBlock", "max_len", max_len)
        if d_model % n_heads:
            raise ValueError(f"AttentionBlock: argument 'n_heads' must divide d_model = {d_model}; got {n_heads}.")
        self.d_model, self.n_heads, self.positions, self.max_len = d_model, n_heads, positions, max_len
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        if positions == "learned":
            self.pos = nn.Parameter(0.02 * torch.randn(max_len, d_model))  # (max_len, d)

    def position_code(self, start: int, length: int, device=None) -> torch.Tensor:
        """P (length, d) for positions start … start+length−1."""
        if self.positions == "sinusoidal":
            return sinusoidal_positions(start, length, self.d_model, device=device)  # (l, d)
        if start + length > self.max_len:
            raise ValueError(f"AttentionBlock: argument 'x' must reach at most position max_len = {self.max_len} "
                             f"(learned positions stop there); got position {start + length}.")
        return self.pos[start:start + length]  # (l, d)

    def _heads(self, h: torch.Tensor):
        """q, k, v (b, heads, l, d/heads) each, from h (b, l, d)."""
        b, l, _ = h.shape
        q, k, v = self.qkv(h).chunk(3, dim=-1)  # (b, l, d) each
        return [t.reshape(b, l, self.n_heads, -1).transpose(1, 2) for t in (q, k, v)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_sequence("AttentionBlock", x, self.d_model)
        b, l, d = x.shape
        h = x + self.position_code(0, l, device=x.device).to(x.dtype)  # (b, l, d)
        q, k, v = self._heads(h)  # (b, H, l, d/H) each
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (b, H, l, d/H)
        return self.out(y.transpose(1, 2).reshape(b, l, d))  # (b, l, d)

    def init_state(self, batch: int, device=None):
        """An empty key-value cache: keys and values (b, heads, 0, d/heads). It grows by one per token."""
        check_int(f"{type(self).__name__}.init_state", "batch", batch, minimum=0)
        empty = torch.zeros(batch, self.n_heads, 0, self.d_model // self.n_heads, device=device)
        return (empty, empty.clone())

    def step(self, x: torch.Tensor, state):
        """x (b, d) and the cache (keys, values) (b, heads, t, d/heads) → (b, d) and the cache with t+1 entries."""
        check_tensor("AttentionBlock.step", "x", x, ndim=2, shape=(None, self.d_model), dims="(batch, d_model)")
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            fail("AttentionBlock.step", "state", "a pair (keys, values) as init_state makes it", type(state).__name__)
        keys, values = state
        cache = (x.shape[0], self.n_heads, None, self.d_model // self.n_heads)
        for name, t in (("state[0]", keys), ("state[1]", values)):
            check_tensor("AttentionBlock.step", name, t, shape=cache, dims="(batch, heads, t, d_model / heads)",
                         device=x.device)
        if keys.shape[2] != values.shape[2]:
            fail("AttentionBlock.step", "state", "keys and values of the same length t",
                 (keys.shape[2], values.shape[2]))
        t = keys.shape[2]  # the position of this token
        h = x[:, None] + self.position_code(t, 1, device=x.device).to(x.dtype)  # (b, 1, d)
        q, k, v = self._heads(h)  # (b, H, 1, d/H) each
        keys = torch.cat([keys.to(k.dtype), k], dim=2)  # (b, H, t+1, d/H): the cache grows
        values = torch.cat([values.to(v.dtype), v], dim=2)  # (b, H, t+1, d/H)
        y = F.scaled_dot_product_attention(q, keys, values)  # (b, H, 1, d/H): attends to all t+1
        return self.out(y.reshape(x.shape[0], self.d_model)), (keys, values)


MIXERS["attention"] = AttentionBlock
MIXERS["mamba3"] = Mamba3  # mamba_edu.mamba3: trapezoid, rotating state, MIMO (chapter 12)


# ----------------------------------------------------------------------------------------------
# The block's anatomy and parameters, the cost of decoding, and what a fixed state can hold
#
#     parameters of a Mamba block (e = expand·d, r = dt_rank, k = d_conv, n = d_state)
#         in_proj  d·2e     conv1d  e·k + e     x_proj  e·(r + 2n)     dt_proj  r·e + e
#         A_log    e·n      D       e           out_proj  e·d          ≈ 3·e·d when d is large
#     decoding state per sequence: attention 2·layers·d·t numbers (grows with the position t),
#     Mamba layers·e·(k − 1 + n) numbers (does not)
# ----------------------------------------------------------------------------------------------

BLOCK_PARTS = ("in_proj", "conv1d", "s6.x_proj", "s6.dt_proj", "s6.A_log", "s6.D", "out_proj")


def mamba_block_parameters(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                           dt_rank: int | None = None) -> dict[str, int]:
    """Parameters of a `MambaBlock` per part, by formula (keys: BLOCK_PARTS, as `parameter_breakdown` names them).

        in_proj d·2e · conv1d e·k + e · x_proj e·(r + 2n) · dt_proj r·e + e · A_log e·n · D e · out_proj e·d

    with e = expand·d_model and r = dt_rank (default ⌈d_model/16⌉, as MambaBlock). The projections
    (in_proj, out_proj) hold 3·e·d of them: 6·d² for expand = 2, most of the block at any real width.
    """
    func = "mamba_block_parameters"
    for name, v in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv), ("expand", expand)):
        check_int(func, name, v)
    r = math.ceil(d_model / 16) if not dt_rank else check_int(func, "dt_rank", dt_rank)
    d, e, n, k = d_model, expand * d_model, d_state, d_conv
    return {"in_proj": d * 2 * e, "conv1d": e * k + e, "s6.x_proj": e * (r + 2 * n), "s6.dt_proj": r * e + e,
            "s6.A_log": e * n, "s6.D": e, "out_proj": e * d}


def parameter_breakdown(module: nn.Module) -> dict[str, int]:
    """Parameters of `module` counted from its tensors, grouped by the layer that owns them.

    A parameter's group is its name without the final ".weight"/".bias" (e.g. "s6.x_proj",
    "layers.0.mixer.in_proj"); tied parameters (TinyLM's head is its embedding) count once.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"parameter_breakdown: argument 'module' must be a torch.nn.Module; got {type(module).__name__}.")
    out: dict[str, int] = {}
    for name, p in module.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:-1]) if len(parts) > 1 and parts[-1] in ("weight", "bias") else name
        out[key] = out.get(key, 0) + p.numel()
    return out


def trace_block(block: MambaBlock, x: torch.Tensor) -> list[dict]:
    """Run x (b, l, d) through a MambaBlock one part at a time; one record per stage:
    {"stage", "op", "shape" (the stage's output), "parameters", "branch" ("main" or "gate")}.

    The stages recompute exactly what `block(x)` computes (the last record's output equals it,
    tested), with the shape and parameter count of each step for the anatomy figure.
    """
    if not isinstance(block, MambaBlock):
        raise ValueError(f"trace_block: argument 'block' must be a MambaBlock; got {type(block).__name__}.")
    _check_sequence("trace_block", x, block.d_model)
    P = mamba_block_parameters(block.d_model, block.s6.n, block.d_conv, block.d_inner // block.d_model,
                               block.s6.dt_rank)
    l = x.shape[1]
    xs, z = block.in_proj(x).chunk(2, dim=-1)  # (b, l, e) each
    xc = block.conv1d(xs.transpose(1, 2))[..., :l]  # (b, e, l): causal depthwise convolution
    xa = F.silu(xc)  # (b, e, l)
    delta, B, C = block.s6.projections(xa)  # (b, e, l), (b, n, l), (b, n, l)
    y = block.s6(xa, z=z.transpose(1, 2))  # (b, e, l): selective scan, + D·x, gated by silu(z)
    out = block.out_proj(y.transpose(1, 2))  # (b, l, d)
    rec = lambda stage, op, t, params, branch="main": {"stage": stage, "op": op, "shape": tuple(t.shape),  # noqa: E731
                                                     "parameters": params, "branch": branch, "output": t}
    return [
        rec("input", "x", x, 0),
        rec("in_proj", "x, z = x·W_in (two branches of width e)", xs, P["in_proj"]),
        rec("gate branch z", "z (the second half of in_proj)", z, 0, "gate"),
        rec("conv1d", "causal depthwise convolution over time, width k", xc, P["conv1d"]),
        rec("SiLU", "x·σ(x)", xa, 0),
        rec("Δ, B, C", "x_proj and dt_proj: the selection (Δ shown)", delta, P["s6.x_proj"] + P["s6.dt_proj"]),
        rec("selective scan", "h = exp(ΔA)·h + Δ·B·x, y = C·h + D·x, then y·SiLU(z)", y, P["s6.A_log"] + P["s6.D"]),
        rec("out_proj", "y·W_out, back to width d", out, P["out_proj"]),
    ]


def state_at_position(model: TinyLM, batch: int, position: int, device=None):
    """A decoding state of the size `model` carries after `position` tokens, filled with random
    numbers: for timing the next step and measuring memory, not for predictions.

    Attention layers get a key-value cache of `position` entries; the other mixers their fixed-size
    state (the same at every position).
    """
    func = "state_at_position"
    if not isinstance(model, TinyLM):
        raise ValueError(f"{func}: argument 'model' must be a TinyLM; got {type(model).__name__}.")
    check_int(func, "batch", batch)
    check_int(func, "position", position, minimum=0)
    state = []
    for layer in model.layers:
        m = layer.mixer
        if isinstance(m, AttentionBlock):
            shape = (batch, m.n_heads, position, m.d_model // m.n_heads)
            state.append((torch.randn(shape, device=device), torch.randn(shape, device=device)))
        else:
            s = m.init_state(batch, device=device)
            state.append(tuple(torch.randn_like(t) for t in s) if isinstance(s, tuple) else torch.randn_like(s))
    return state


def decode_step_seconds(model: TinyLM, positions, batch: int = 1, repeat: int = 5, warmup: int = 1,
                        device=None) -> list[float]:
    """Median seconds of one decoding step (`model.step`) at each position, for `batch` sequences.

    The state comes from `state_at_position`; the step's time depends on the state's size, not its
    values. Attention's grows with the position (it attends to, and copies, every cached key and
    value); a Mamba block's does not.
    """
    from .measure import median_seconds

    func = "decode_step_seconds"
    if not isinstance(model, TinyLM):
        raise ValueError(f"{func}: argument 'model' must be a TinyLM; got {type(model).__name__}.")
    check_int(func, "batch", batch)
    token = torch.zeros(batch, dtype=torch.int64, device=device)  # (b,)
    out = []
    with torch.no_grad():
        for t in positions:
            state = state_at_position(model, batch, int(t), device=device)
            out.append(median_seconds(lambda: model.step(token, state), repeat=repeat, warmup=warmup))
    return out


def decode_throughput(model: TinyLM, batch_sizes, position: int, repeat: int = 5, warmup: int = 1,
                      device=None) -> list[float]:
    """Tokens generated per second, batch / (seconds of one step), for each batch size, every
    sequence at `position` (so attention's cache holds `position` entries per sequence)."""
    check_int("decode_throughput", "position", position, minimum=0)
    return [b / decode_step_seconds(model, [position], batch=check_int("decode_throughput", "batch_sizes", b),
                                    repeat=repeat, warmup=warmup, device=device)[0] for b in batch_sizes]


def hybrid_state_bytes(position: int, n_layers: int, n_attention: int, d_model: int, n_heads: int, d_state: int = 16,
                       d_conv: int = 4, expand: int = 2, batch: int = 1, kv_bytes: int = 2, state_bytes_: int = 4) -> int:
    """Decoding memory of a model with `n_attention` attention layers among `n_layers` (the rest Mamba)
    after `position` tokens: their KV cache (`cost.kv_cache_bytes`) plus the Mamba layers' fixed
    state (`cost.mamba_state_bytes`). n_attention = 0: pure Mamba; = n_layers: a Transformer.
    """
    from . import cost

    func = "hybrid_state_bytes"
    check_int(func, "position", position, minimum=0)
    check_int(func, "d_model", d_model)
    check_int(func, "n_layers", n_layers)
    check_int(func, "n_attention", n_attention, minimum=0, maximum=n_layers)
    check_int(func, "n_heads", n_heads)
    if d_model % n_heads:
        raise ValueError(f"{func}: argument 'n_heads' must divide d_model = {d_model}; got {n_heads}.")
    kv = cost.kv_cache_bytes(n_attention, n_heads, d_model // n_heads, position, batch, kv_bytes) if n_attention else 0
    n_mamba = n_layers - n_attention
    ssm = cost.mamba_state_bytes(n_mamba, d_model, d_state, d_conv, expand, batch, state_bytes_) if n_mamba else 0
    return kv + ssm


def state_recall(n_state: int, n_items: int, d_value: int = 16, seed: int = 0, trials: int = 8) -> dict[str, float]:
    """Store `n_items` (key, value) pairs and read every value back by its key. Returns, for three
    memories, the squared error relative to the values' energy, Σ‖v̂ − v‖² / Σ‖v‖² (0: perfect
    recall; 1: as bad as answering 0; more: worse), averaged over `trials` random draws:

        "ssm"          the selective recurrence itself (`selective_scan_ref` with A = 0: nothing decays):
                       write token i with B = k_i, u = v_i (so h = Σ_i v_i k_iᵀ), then read with C = k_i;
                       every other stored key leaks into the answer by k_i·k_j (crosstalk ≈ n_items/n)
        "best linear"  the best ANY state of n numbers per value channel can do with a linear read-out:
                       v̂_i = W k_i with W = V K⁺ (least squares); exact while n_items ≤ n, then ≈ 1 − n/n_items
        "kv cache"     attention over the stored keys (softmax of 50·k_i·k_j): it keeps every pair

    Keys are random unit vectors in R^n, values standard normal in R^d_value (seeded).
    """
    from .selective import selective_scan_ref

    func = "state_recall"
    check_int(func, "n_state", n_state)
    check_int(func, "n_items", n_items)
    check_int(func, "d_value", d_value)
    check_int(func, "trials", trials)
    m, n, p, f64 = n_items, n_state, d_value, torch.float64
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(trials, m, n, generator=g, dtype=f64)  # (r, m, n)
    K = K / K.norm(dim=-1, keepdim=True)  # (r, m, n): unit keys
    V = torch.randn(trials, m, p, generator=g, dtype=f64)  # (r, m, p)
    zeros = lambda *s: torch.zeros(*s, dtype=f64)  # noqa: E731
    # the recurrence, one trial per batch row: m write tokens (C = 0), then m read tokens (B = 0, u = 0)
    u = torch.cat([V.transpose(1, 2), zeros(trials, p, m)], dim=2)  # (r, p, 2m)
    B = torch.cat([K.transpose(1, 2), zeros(trials, n, m)], dim=2)  # (r, n, 2m)
    C = torch.cat([zeros(trials, n, m), K.transpose(1, 2)], dim=2)  # (r, n, 2m)
    delta = torch.ones(trials, p, 2 * m, dtype=f64)  # (r, p, 2m)
    V_ssm = selective_scan_ref(u, delta, zeros(p, n), B, C)[:, :, m:].transpose(1, 2)  # (r, m, p): the answers
    V_best = K @ (torch.linalg.pinv(K) @ V)  # (r, m, p): least-squares read-out through n numbers
    V_kv = torch.softmax(50.0 * K @ K.transpose(1, 2), dim=-1) @ V  # (r, m, p)
    lost = lambda Vh: float(((Vh - V) ** 2).sum() / (V**2).sum())  # noqa: E731
    return {"ssm": lost(V_ssm), "best linear": lost(V_best), "kv cache": lost(V_kv)}
