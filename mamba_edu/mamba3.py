"""Mamba-3: the exponential-trapezoidal update, a rotating (complex) state, and MIMO.

Mamba-3 (Lahoti, Li, Chen, Wang, Bick, Kolter, Dao, Gu; ICLR 2026) keeps Mamba-2's head structure (one
scalar decay per head and token, a p × n state per head, chapter 11) and changes three things.

Glossary (shape letters as in `mamba_edu.ssd`; the official layer's names in brackets)
    b, l     batch size, sequence length
    h        number of heads [nheads]; p head dimension [headdim]; n state size [d_state]
    r        MIMO rank [mimo_rank]: r input/output directions per head and token (r = 1: SISO)
    s        number of rotation angles per head [num_rope_angles]; 2s ≤ n state entries rotate
    q        chunk length of the chunked algorithm; c = ⌈l / q⌉ chunks
    x        input of the SSM, "values" [V]                              (b, l, h, p)
    dt       step size Δ > 0 [DT]                                        (b, l, h)
    adt      log of the decay, A_t·Δ_t ≤ 0 [ADT]; A_t is data-dependent  (b, l, h)
    lam      λ ∈ [0, 1], the trapezoid's mix [sigmoid(Trap)]             (b, l, h)
    B, C     input / output projections, "keys" / "queries" [K, Q]      (b, l, r, h, n)
    omega    angular velocity ω_t (radians per unit of Δ) [π·tanh(Angles)]  (b, l, h, s)
    theta    the cumulative angle θ_t = θ_{-1} + Σ_{u ≤ t} ω_u Δ_u (mod 2π)  (b, l, h, s)
    D        skip per head (h,);  z  gate (b, l, h, p)
    mimo_x, mimo_z, mimo_o   MIMO's per-rank weights of x, z and the output (h, r, p)
    state    `Mamba3State`: the angle θ (b, h, s), the SSM state H (b, h, p, n), and the previous
             token's rotated key K (b, r, h, n) and value x (b, h, p) that the trapezoid still needs

1. Exponential-trapezoidal discretisation (chapter 02). Mamba-1/2 discretise h' = A h + B x with
   Ā = exp(ΔA) and B̄ = ΔB, the exponential-Euler rule: the input integral over the step is taken at
   its right end only. Mamba-3 weighs both ends,

       H_t = α_t H_{t-1} + β_t x_{t-1} B_{t-1}ᵀ + γ_t x_t B_tᵀ
       α_t = exp(Δ_t A_t)      β_t = (1 − λ_t) Δ_t α_t      γ_t = λ_t Δ_t

   λ = 1 is exponential-Euler (Mamba-2); λ = ½ the trapezoid rule, one order more accurate. The
   update now sees two consecutive inputs, like a convolution of width 2 on x B: Mamba-3 drops
   the conv1d that Mamba-1/2 put before the SSM. λ is data-dependent (a sigmoid of a projection).

2. A complex state as rotations (RoPE). With a complex eigenvalue A = −a + iω the state rotates:
   exp(Δ A) = e^{−aΔ}·e^{iωΔ}. Rotating a pair of real state entries by the angle ωΔ each step is
   the same thing, and the angles add up: rather than rotating the state, rotate B_t and C_t by
   the cumulative angle θ_t (B_s's rotation R(θ_s) and C_t's R(θ_t) meet as R(θ_t − θ_s)), and
   keep a real state. This is what lets one layer track parity and modular counts: a real,
   positive decay can only shrink a state, a rotation can flip its sign (θ = π).

3. MIMO. SISO adds one outer product x_t B_tᵀ (rank 1) to the p × n state per token; MIMO adds
   r of them, Σ_ρ (x_t ⊙ w_ρ) B_{t,ρ}ᵀ, and reads r outputs C_{t,ρ}. The state is as large as
   before; each token does r times the arithmetic on it. Decoding reads the whole state from
   memory once per token, so r more FLOPs per byte moves decode up the roofline (chapter 08).

Three computations of the same map, tested against each other in float64:
    mamba3_sequential   one token at a time with `mamba3_step` (the decoding recurrence)
    mamba3_chunked      the chunked (state space dual) algorithm of Mamba-2, with the trapezoid's
                        two-term weights and the rotated keys/queries
    mamba3_complex_ref  SISO only: a complex diagonal state, no rotations (idea 2 made literal)

Correspondence with the official mamba-ssm 2.3.2 code (semantics followed, no code copied):
    cumulative_angles  ↔ ops/triton/mamba3/angle_dt.py `angle_dt_fwd`
    rotate             ↔ ops/triton/mamba3/mamba3_mimo_rotary_step.py `apply_rotary_qk_inference_reference`
                         (rotate_pairwise=True: pairs (0,1), (2,3), …; halves=True: pairs (i, i + n/2),
                         which the official MIMO kernels use)
    mamba3_step        ↔ ops/triton/mamba3/mamba3_siso_step.py `mamba3_siso_step` (SISO) and
                         ops/cute/mamba3/mamba3_step_fn.py `selective_state_update_fused_ref_v2` (MIMO)
    mamba3_chunked     ↔ ops/triton/mamba3/mamba3_siso_combined.py `mamba3_siso_combined` (SISO) and
                         ops/tilelang/mamba3/mamba3_mimo.py `mamba3_mimo` (MIMO)
    mamba3_official_args ↔ the argument layout of `mamba3_siso_combined` (raw Trap, Angles, biases)
    Mamba3             ↔ modules/mamba3.py `Mamba3` (is_outproj_norm=False; rope_fraction 0 is ours:
                         no rotation, the real-state ablation)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_float, check_int, check_tensor, fail
from .ssd import segsum

TWO_PI = 2 * math.pi


class Mamba3State(NamedTuple):
    """What a Mamba-3 head carries from one token to the next (the official inference cache)."""

    angle: torch.Tensor  # (b, h, s)     θ, mod 2π
    ssm: torch.Tensor    # (b, h, p, n)  H
    k: torch.Tensor      # (b, r, h, n)  the previous token's rotated B (the trapezoid's left end)
    v: torch.Tensor      # (b, h, p)     the previous token's x


def zero_state(batch: int, heads: int, headdim: int, d_state: int, n_angles: int, rank: int = 1,
               dtype=torch.float32, device=None) -> Mamba3State:
    """The state before the first token: all zeros."""
    z = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
    return Mamba3State(z(batch, heads, n_angles), z(batch, heads, headdim, d_state),
                       z(batch, rank, heads, d_state), z(batch, heads, headdim))


# ----------------------------------------------------------------------------------------------
# The pieces: trapezoid coefficients, cumulative angles, rotations
# ----------------------------------------------------------------------------------------------


def trapezoid_coefficients(dt, adt, lam):
    """α_t = exp(Δ_t A_t), β_t = (1 − λ_t) Δ_t α_t, γ_t = λ_t Δ_t  (each shaped like dt).

    H_t = α_t H_{t-1} + β_t x_{t-1} B_{t-1}ᵀ + γ_t x_t B_tᵀ.  λ = 1: β = 0, Mamba-2's Euler update.
    """
    alpha = torch.exp(adt)
    return alpha, (1 - lam) * dt * alpha, lam * dt


def cumulative_angles(omega, dt, theta0=None):
    """θ_t = θ_{-1} + Σ_{u ≤ t} ω_u Δ_u, reduced mod 2π.   omega (b, l, h, s), dt (b, l, h) → (b, l, h, s)

    θ_{-1} = theta0 (b, h, s), zero when None. (Official: angle_dt_fwd, which takes the raw angle
    and applies ω = π·tanh(raw) itself.)
    """
    theta = torch.cumsum(omega * dt[..., None], dim=1)  # (b, l, h, s)
    if theta0 is not None:
        theta = theta + theta0[:, None]
    return torch.remainder(theta, TWO_PI)


def rotate(v, theta, halves: bool = False):
    """Rotate pairs of the last axis of v by the angles theta; the entries past the 2s-th stay.

        (v_a, v_b) → (v_a cos θ − v_b sin θ,  v_a sin θ + v_b cos θ)

    v (..., n), theta (..., s) broadcastable, 2s ≤ n. Pairs (2i, 2i+1) (official SISO), or with
    halves=True (i, i + n/2) (official MIMO). s = 0: v unchanged.
    """
    n, s = v.shape[-1], theta.shape[-1]
    if s == 0:
        return v
    if 2 * s > n:
        fail("rotate", "theta", f"at most n/2 = {n // 2} angles for n = {n} entries", f"{s} angles")
    cos, sin = torch.cos(theta), torch.sin(theta)  # (..., s)
    if halves:
        half = n // 2
        a, b = v[..., :s], v[..., half:half + s]  # (..., s) each
        out = v.clone()
        out[..., :s], out[..., half:half + s] = a * cos - b * sin, a * sin + b * cos
        return out
    pairs = v[..., :2 * s].unflatten(-1, (s, 2))  # (..., s, 2)
    a, b = pairs[..., 0], pairs[..., 1]  # (..., s)
    rot = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)  # (..., 2s)
    return torch.cat([rot, v[..., 2 * s:]], dim=-1)  # (..., n)


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------


def _check_args(func, x, dt, adt, lam, B, C, omega, D, z, mimo, state):
    check_tensor(func, "x", x, ndim=4, dims="(b, l, h, p)")
    b, l, h, p = x.shape
    for name, t in (("dt", dt), ("adt", adt), ("lam", lam)):
        check_tensor(func, name, t, shape=(b, l, h), dims="(b, l, h)", device=x.device)
    check_tensor(func, "B", B, ndim=5, dims="(b, l, r, h, n)", device=x.device)
    r, n = B.shape[2], B.shape[4]
    check_tensor(func, "B", B, shape=(b, l, r, h, n), dims="(b, l, r, h, n)")
    check_tensor(func, "C", C, shape=(b, l, r, h, n), dims="(b, l, r, h, n)", device=x.device)
    check_tensor(func, "omega", omega, ndim=4, dims="(b, l, h, s)", device=x.device)
    s = omega.shape[-1]
    check_tensor(func, "omega", omega, shape=(b, l, h, s), dims="(b, l, h, s)")
    if 2 * s > n:
        fail(func, "omega", f"at most n/2 = {n // 2} angles per head", f"{s}")
    if D is not None:
        check_tensor(func, "D", D, shape=(h,), dims="(h,)", device=x.device)
    if z is not None:
        check_tensor(func, "z", z, shape=(b, l, h, p), dims="(b, l, h, p)", device=x.device)
    for name, w in zip(("mimo_x", "mimo_z", "mimo_o"), mimo):
        if w is not None:
            check_tensor(func, name, w, shape=(h, r, p), dims="(h, r, p)", device=x.device)
    if state is not None:
        want = {"angle": (b, h, s), "ssm": (b, h, p, n), "k": (b, r, h, n), "v": (b, h, p)}
        if not isinstance(state, tuple) or len(state) != 4:
            fail(func, "state", "a Mamba3State (angle, ssm, k, v)", type(state).__name__)
        for (name, shape), t in zip(want.items(), state):
            check_tensor(func, f"state.{name}", t, shape=shape, device=x.device)
    if lam.numel() and bool(((lam < 0) | (lam > 1)).any()):
        fail(func, "lam", "values in [0, 1] (the trapezoid's mix)", "a value outside")
    return b, l, h, p, r, n, s


def _compute_dtype(*ts):
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in ts) else torch.float32


def _ones(w, h, r, p, like):
    return torch.ones(h, r, p, dtype=like.dtype, device=like.device) if w is None else w.to(like.dtype)


def _finish(y_r, v_r, D, z, mimo_z, mimo_o):
    """Skip, gate and MIMO down-projection:  out = Σ_ρ w^o_ρ ⊙ (y_ρ + D·x_ρ) ⊙ silu(z ⊙ w^z_ρ).

    y_r, v_r (..., r, h, p); z (..., h, p); mimo_z, mimo_o (h, r, p) → (..., h, p)
    """
    if D is not None:
        y_r = y_r + D.to(y_r.dtype)[:, None] * v_r  # (..., r, h, p)
    if z is not None:
        zr = z.to(y_r.dtype).unsqueeze(-3) * mimo_z.transpose(0, 1)  # (..., r, h, p)
        y_r = y_r * F.silu(zr)
    return (y_r * mimo_o.transpose(0, 1)).sum(-3)  # (..., h, p)


# ----------------------------------------------------------------------------------------------
# One token: the recurrence (decoding)
# ----------------------------------------------------------------------------------------------


def mamba3_step(x, dt, adt, lam, B, C, omega, state: Mamba3State, D=None, z=None,
                mimo_x=None, mimo_z=None, mimo_o=None, halves: bool = False):
    """One token of Mamba-3.  x (b, h, p); dt, adt, lam (b, h); B, C (b, r, h, n); omega (b, h, s);
    z (b, h, p); state a Mamba3State. Returns (y (b, h, p), the new state).

        θ_t = θ_{t-1} + ω_t Δ_t                     (mod 2π)
        K_t = R(θ_t) B_t,   Q_t = R(θ_t) C_t         rotate pairs of state entries
        x_ρ = x_t ⊙ w^x_ρ                             MIMO: r copies of x (w = 1 for SISO)
        H_t = α_t H_{t-1} + β_t Σ_ρ x_{t-1,ρ} K_{t-1,ρ}ᵀ + γ_t Σ_ρ x_ρ K_{t,ρ}ᵀ
        y_ρ = H_t Q_{t,ρ} ;  out = Σ_ρ w^o_ρ ⊙ (y_ρ + D x_ρ) ⊙ silu(z ⊙ w^z_ρ)
    """
    b, h, p = x.shape
    r = B.shape[1]
    f = _compute_dtype(x, B, C, dt, state.ssm)
    mx, mz, mo = (_ones(w, h, r, p, torch.empty(0, dtype=f, device=x.device)) for w in (mimo_x, mimo_z, mimo_o))
    dt, adt, lam = dt.to(f), adt.to(f), lam.to(f)
    theta = torch.remainder(state.angle.to(f) + omega.to(f) * dt[..., None], TWO_PI)  # (b, h, s)
    K = rotate(B.to(f), theta[:, None], halves)  # (b, r, h, n)
    Q = rotate(C.to(f), theta[:, None], halves)  # (b, r, h, n)
    v = x.to(f)[:, None] * mx.transpose(0, 1)  # (b, r, h, p)
    v_prev = state.v.to(f)[:, None] * mx.transpose(0, 1)  # (b, r, h, p)
    alpha, beta, gamma = trapezoid_coefficients(dt, adt, lam)  # (b, h) each
    H = (alpha[..., None, None] * state.ssm.to(f)  # (b, h, p, n)
         + beta[..., None, None] * torch.einsum("brhp,brhn->bhpn", v_prev, state.k.to(f))
         + gamma[..., None, None] * torch.einsum("brhp,brhn->bhpn", v, K))
    y_r = torch.einsum("bhpn,brhn->brhp", H, Q)  # (b, r, h, p)
    y = _finish(y_r, v, D, z, mz, mo)  # (b, h, p)
    return y.to(x.dtype), Mamba3State(theta, H, K, x.to(f))


def mamba3_sequential(x, dt, adt, lam, B, C, omega, D=None, z=None, mimo_x=None, mimo_z=None, mimo_o=None,
                      state: Mamba3State | None = None, return_state: bool = False, halves: bool = False):
    """The reference: `mamba3_step` for every token in turn. Shapes as in the glossary; y (b, l, h, p)."""
    b, l, h, p, r, n, s = _check_args("mamba3_sequential", x, dt, adt, lam, B, C, omega, D, z,
                                      (mimo_x, mimo_z, mimo_o), state)
    f = _compute_dtype(x, B, C, dt)
    st = state if state is not None else zero_state(b, h, p, n, s, r, dtype=f, device=x.device)
    ys = []
    for t in range(l):
        y, st = mamba3_step(x[:, t], dt[:, t], adt[:, t], lam[:, t], B[:, t], C[:, t], omega[:, t], st, D=D,
                            z=None if z is None else z[:, t], mimo_x=mimo_x, mimo_z=mimo_z, mimo_o=mimo_o,
                            halves=halves)
        ys.append(y)  # (b, h, p)
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(b, 0, h, p)  # (b, l, h, p)
    return (y, st) if return_state else y


# ----------------------------------------------------------------------------------------------
# The chunked (dual) form
# ----------------------------------------------------------------------------------------------
#
# Unroll the recurrence. A token s < t reaches H_t twice: with γ_s at step s, and with β_{s+1} at
# step s+1 (as the trapezoid's left end); after that both decay by α_{s+2}⋯α_t. Since
# β_{s+1} = α_{s+1}·Δ_{s+1}(1 − λ_{s+1}), the two add up to one weight on one decay:
#
#     H_t = Σ_{s<t} (α_{s+1}⋯α_t) · σ_s · x_s K_sᵀ + γ_t x_t K_tᵀ,      σ_s = γ_s + Δ_{s+1}(1 − λ_{s+1})
#
# which is Mamba-2's SSD with the input x_s scaled by σ_s, except on the diagonal (s = t), where
# only γ_t has arrived yet. So: run SSD with σ and subtract (σ_t − γ_t)(K_t·Q_t) x_t. The official
# kernel does the same (its "Scale" and "Gamma", the diagonal from the QK dot). An initial state
# adds H_{-1} + Δ_0(1 − λ_0) x_{-1} K_{-1}ᵀ, decayed by α_0⋯α_t.


def _to_chunks(t, q):
    """(b, l, ...) → (b, c, q, ...), zero-padding l up to a multiple of q."""
    b, l = t.shape[:2]
    c = -(-l // q)
    pad = c * q - l
    if pad:
        t = torch.cat([t, t.new_zeros(b, pad, *t.shape[2:])], dim=1)
    return t.reshape(b, c, q, *t.shape[2:])


def mamba3_chunked(x, dt, adt, lam, B, C, omega, D=None, z=None, mimo_x=None, mimo_z=None, mimo_o=None,
                   state: Mamba3State | None = None, return_state: bool = False, chunk_size: int = 64,
                   halves: bool = False):
    """Mamba-3 by chunks: quadratic (attention-like) inside chunks of q tokens, the state between them.

    Same arguments and result as `mamba3_sequential` (plus chunk_size). Shapes in the glossary.
    """
    func = "mamba3_chunked"
    b, l, h, p, r, n, s = _check_args(func, x, dt, adt, lam, B, C, omega, D, z, (mimo_x, mimo_z, mimo_o), state)
    q = check_int(func, "chunk_size", chunk_size)
    f = _compute_dtype(x, B, C, dt)
    dev = x.device
    mx, mz, mo = (_ones(w, h, r, p, torch.empty(0, dtype=f, device=dev)) for w in (mimo_x, mimo_z, mimo_o))
    st = state if state is not None else zero_state(b, h, p, n, s, r, dtype=f, device=dev)
    dt, adt, lam = dt.to(f), adt.to(f), lam.to(f)
    theta = cumulative_angles(omega.to(f), dt, st.angle.to(f))  # (b, l, h, s)
    K = rotate(B.to(f), theta[:, :, None], halves)  # (b, l, r, h, n)
    Q = rotate(C.to(f), theta[:, :, None], halves)  # (b, l, r, h, n)
    v = x.to(f)[:, :, None] * mx.transpose(0, 1)  # (b, l, r, h, p)
    gamma = lam * dt  # (b, l, h)
    left = torch.cat([(1 - lam[:, 1:]) * dt[:, 1:], dt.new_zeros(b, 1, h)], dim=1)  # (b, l, h): Δ_{s+1}(1−λ_{s+1})
    sigma = gamma + left  # (b, l, h)
    # chunk layout
    Kc, Qc, vc = _to_chunks(K, q), _to_chunks(Q, q), _to_chunks(v, q)  # (b, c, q, r, h, n|p)
    sig = _to_chunks(sigma, q)  # (b, c, q, h)
    la = _to_chunks(adt, q).permute(0, 3, 1, 2)  # (b, h, c, q): log decays (0 in the padding)
    c = la.shape[2]
    # 1. inside each chunk: y_t = Σ_{s≤t} L[t,s] σ_s (K_s·Q_t) x_s
    Lmask = torch.exp(segsum(la))  # (b, h, c, q, q)
    scores = torch.einsum("bctuhn,bcsrhn->bchtsur", Qc, Kc)  # (b, c, h, q, q, r_out, r_in)
    y = torch.einsum("bhcts,bchtsur,bcsh,bcsrhp->bctuhp", Lmask, scores, sig, vc)  # (b, c, q, r, h, p)
    # 2. the state each chunk leaves: Σ_s (decay from s to the chunk's end) σ_s x_s K_sᵀ
    cum = torch.cumsum(la, dim=-1)  # (b, h, c, q)
    to_end = torch.exp(cum[..., -1:] - cum)  # (b, h, c, q)
    states = torch.einsum("bhcs,bcsh,bcsrhp,bcsrhn->bchpn", to_end, sig, vc, Kc)  # (b, c, h, p, n)
    # 3. pass the state from chunk to chunk (c steps of the recurrence)
    if l == 0:
        out = x.new_zeros(b, 0, h, p)
        return (out, st) if return_state else out
    H = st.ssm.to(f)  # (b, h, p, n)
    v_prev = st.v.to(f)[:, None] * mx.transpose(0, 1)  # (b, r, h, p)
    H = H + ((1 - lam[:, 0]) * dt[:, 0])[..., None, None] * torch.einsum("brhp,brhn->bhpn", v_prev, st.k.to(f))
    entering = []
    for i in range(c):
        entering.append(H)
        H = torch.exp(cum[:, :, i, -1])[..., None, None] * H + states[:, i]  # (b, h, p, n)
    H_in = torch.stack(entering, dim=1)  # (b, c, h, p, n)
    # 4. what the entering state contributes inside each chunk
    y = y + torch.einsum("bhct,bchpn,bctuhn->bctuhp", torch.exp(cum), H_in, Qc)  # (b, c, q, r, h, p)
    # 5. the diagonal has received γ_t, not σ_t, so far
    extra = _to_chunks(left, q)  # (b, c, q, h): σ_t − γ_t
    y = y - torch.einsum("bctuhn,bctrhn,bcth,bctrhp->bctuhp", Qc, Kc, extra, vc)
    y = y.reshape(b, c * q, r, h, p)[:, :l]  # (b, l, r, h, p)
    out = _finish(y, v, D, z, mz, mo).to(x.dtype)  # (b, l, h, p)
    if not return_state:
        return out
    return out, Mamba3State(theta[:, -1], H, K[:, -1], x[:, -1].to(f))


# ----------------------------------------------------------------------------------------------
# Idea 2 made literal: a complex diagonal state (SISO)
# ----------------------------------------------------------------------------------------------


def mamba3_complex_ref(x, dt, adt, lam, B, C, omega, D=None):
    """SISO Mamba-3 with a complex state and no rotations: the rotating pairs as complex numbers.

    Pair i of B (entries 2i, 2i+1) becomes b̃_i = B_{2i} + i·B_{2i+1} (likewise C); the unrotated
    entries stay real (a complex number with zero angle). Each complex entry decays and turns:

        ã_t = exp(Δ_t (A_t − i ω_t))          one complex number per pair (the conjugate turn:
                                             K_s·Q_t = Re(conj(q̃_t)·k̃_s·e^{−i(θ_t−θ_s)}))
        H̃_t = ã_t H̃_{t-1} + β_t e^{−iω_tΔ_t} x_{t-1} b̃_{t-1} + γ_t x_t b̃_t
        y_t = Re(H̃_t · conj(c̃_t))

    x (b, l, h, p); B, C (b, l, 1, h, n). Returns y (b, l, h, p) (with D, without gate).
    """
    b, l, h, p, r, n, s = _check_args("mamba3_complex_ref", x, dt, adt, lam, B, C, omega, D, None,
                                      (None, None, None), None)
    if r != 1:
        fail("mamba3_complex_ref", "B", "SISO keys (rank r = 1)", f"rank {r}")
    f = _compute_dtype(x, B, C, dt)
    cf = torch.complex128 if f == torch.float64 else torch.complex64
    Bf, Cf = B[:, :, 0].to(f), C[:, :, 0].to(f)  # (b, l, h, n)
    # complex entries: s rotating pairs, then n − 2s real ones
    bt = torch.cat([torch.complex(Bf[..., 0:2 * s:2], Bf[..., 1:2 * s:2]), Bf[..., 2 * s:].to(cf)], -1)  # (b, l, h, m)
    ct = torch.cat([torch.complex(Cf[..., 0:2 * s:2], Cf[..., 1:2 * s:2]), Cf[..., 2 * s:].to(cf)], -1)
    m = bt.shape[-1]
    w = torch.cat([omega.to(f), omega.new_zeros(b, l, h, m - s).to(f)], -1)  # (b, l, h, m): 0 for real entries
    dt, adt, lam = dt.to(f), adt.to(f), lam.to(f)
    alpha, beta, gamma = trapezoid_coefficients(dt, adt, lam)  # (b, l, h)
    xf = x.to(f)
    H = torch.zeros(b, h, p, m, dtype=cf, device=x.device)  # (b, h, p, m)
    prev = torch.zeros(b, h, p, m, dtype=cf, device=x.device)  # x_{t-1} b̃_{t-1}
    ys = []
    for t in range(l):
        turn = torch.exp(torch.complex(torch.zeros_like(w[:, t]), -w[:, t] * dt[:, t, :, None]))  # (b, h, m)
        cur = xf[:, t, :, :, None].to(cf) * bt[:, t, :, None, :]  # (b, h, p, m)
        H = (alpha[:, t, :, None, None] * turn[:, :, None] * H
             + (beta[:, t, :, None, None] * turn[:, :, None]) * prev + gamma[:, t, :, None, None] * cur)
        ys.append((H * ct[:, t, :, None, :].conj()).real.sum(-1))  # (b, h, p)
        prev = cur
    y = torch.stack(ys, 1)  # (b, l, h, p)
    if D is not None:
        y = y + D.to(f)[:, None] * xf
    return y.to(x.dtype)


# ----------------------------------------------------------------------------------------------
# The official argument layout (for comparing with mamba_ssm's kernels)
# ----------------------------------------------------------------------------------------------


def mamba3_official_args(Q, K, V, ADT, DT, Trap, Q_bias, K_bias, Angles, D=None, Z=None, chunk_size: int = 64,
                         mode: str = "chunked"):
    """Mamba-3 SISO with the arguments of the official `mamba3_siso_combined` (mamba-ssm 2.3.2):

        Q, K (b, l, g, n) queries = C, keys = B (g heads of B/C shared by h // g heads each)
        V (b, l, h, p) = x;  ADT, DT, Trap (b, h, l): log-decay, Δ, the raw (pre-sigmoid) λ
        Q_bias, K_bias (h, n);  Angles (b, l, h, s): raw rates (ω = π·tanh(Angles))
        D (h,), Z (b, l, h, p)

    Returns out (b, l, h, p). mode: "chunked" or "sequential".
    """
    check_choice("mamba3_official_args", "mode", mode, ("chunked", "sequential"))
    h, g = V.shape[2], Q.shape[2]
    if h % g:
        fail("mamba3_official_args", "Q", f"a head count g dividing h = {h}", g)
    rep = lambda t: t.repeat_interleave(h // g, dim=2)  # noqa: E731  (b, l, g, n) -> (b, l, h, n)
    C = (rep(Q) + Q_bias)[:, :, None]  # (b, l, 1, h, n)
    B = (rep(K) + K_bias)[:, :, None]  # (b, l, 1, h, n)
    dt, adt, lam = DT.transpose(1, 2), ADT.transpose(1, 2), torch.sigmoid(Trap.transpose(1, 2))  # (b, l, h)
    omega = math.pi * torch.tanh(Angles)  # (b, l, h, s)
    if mode == "chunked":
        return mamba3_chunked(V, dt, adt, lam, B, C, omega, D=D, z=Z, chunk_size=chunk_size)
    return mamba3_sequential(V, dt, adt, lam, B, C, omega, D=D, z=Z)


# ----------------------------------------------------------------------------------------------
# The layer
# ----------------------------------------------------------------------------------------------


class Mamba3(nn.Module):
    """The Mamba-3 mixer (b, l, d) → (b, l, d), after the official `modules/mamba3.py` at small scale.

        in_proj(u) → z, x, B, C, dd_dt, dd_A, trap, angles        (one linear layer, no conv1d)
        Δ = softplus(dd_dt + dt_bias)        A = −max(softplus(dd_A), A_floor)   (per token and head)
        λ = sigmoid(trap)                    ω = π·tanh(angles)   (s angles, shared by the heads)
        B, C ← RMSNorm(B), RMSNorm(C) + per-head biases (initialised to 1)
        y = Mamba-3 SSM (chunked; `step` for decoding) with D skip and silu(z) gate
        out_proj(y)

    rope_fraction: the fraction of the state that rotates, 0.5 or 1 as in the official layer, or 0
    (ours) for no rotation: a real state, the ablation that cannot track parity. mimo_rank > 1
    makes it MIMO.
    """

    def __init__(self, d_model: int, d_state: int = 16, expand: int = 2, headdim: int = 16, ngroups: int = 1,
                 rope_fraction: float = 0.5, mimo_rank: int = 1, dt_min: float = 1e-3, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, A_floor: float = 1e-4, chunk_size: int = 64):
        super().__init__()
        func = "Mamba3"
        for name, v in (("d_model", d_model), ("d_state", d_state), ("expand", expand), ("headdim", headdim),
                        ("ngroups", ngroups), ("mimo_rank", mimo_rank), ("chunk_size", chunk_size)):
            check_int(func, name, v)
        if rope_fraction not in (0, 0.5, 1):
            fail(func, "rope_fraction", "0, 0.5 or 1", rope_fraction)
        self.d_model, self.d_state, self.headdim, self.chunk_size = d_model, d_state, headdim, chunk_size
        self.d_inner = expand * d_model
        if self.d_inner % headdim:
            fail(func, "headdim", f"a divisor of d_inner = expand·d_model = {self.d_inner}", headdim)
        self.nheads = self.d_inner // headdim
        if self.nheads % ngroups:
            fail(func, "ngroups", f"a divisor of the number of heads {self.nheads}", ngroups)
        self.ngroups, self.mimo_rank, self.rope_fraction = ngroups, mimo_rank, rope_fraction
        self.A_floor = check_float(func, "A_floor", A_floor, positive=True)
        rot = int(d_state * rope_fraction)
        self.n_angles = (rot - rot % 2) // 2  # s
        R, G, N, H = mimo_rank, ngroups, d_state, self.nheads
        self.split = [self.d_inner, self.d_inner, R * G * N, R * G * N, H, H, H, self.n_angles]
        self.in_proj = nn.Linear(d_model, sum(self.split), bias=False)
        dt = torch.exp(torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_init_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(Δ_init)
        self.B_bias = nn.Parameter(torch.ones(H, R, N))
        self.C_bias = nn.Parameter(torch.ones(H, R, N))
        self.B_norm, self.C_norm = nn.RMSNorm(N, eps=1e-5), nn.RMSNorm(N, eps=1e-5)
        if R > 1:
            self.mimo_x = nn.Parameter(torch.ones(H, R, headdim) / R)
            self.mimo_z = nn.Parameter(torch.ones(H, R, headdim))
            self.mimo_o = nn.Parameter(torch.ones(H, R, headdim) / R)
        else:
            self.mimo_x = self.mimo_z = self.mimo_o = None
        self.D = nn.Parameter(torch.ones(H))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def _ssm_inputs(self, u):
        """u (..., d) → the SSM's inputs, shapes as in the glossary with (...) for (b, l) or (b,)."""
        z, x, B, C, dd_dt, dd_A, trap, ang = torch.split(self.in_proj(u), self.split, dim=-1)
        lead = u.shape[:-1]
        H, P, R, G, N = self.nheads, self.headdim, self.mimo_rank, self.ngroups, self.d_state
        z, x = z.unflatten(-1, (H, P)), x.unflatten(-1, (H, P))  # (..., h, p)
        per_head = lambda t: t.repeat_interleave(H // G, dim=-2)  # noqa: E731  (..., r, g, n) -> (..., r, h, n)
        B = per_head(self.B_norm(B.unflatten(-1, (R, G, N)))) + self.B_bias.transpose(0, 1)  # (..., r, h, n)
        C = per_head(self.C_norm(C.unflatten(-1, (R, G, N)))) + self.C_bias.transpose(0, 1)  # (..., r, h, n)
        dt = F.softplus(dd_dt + self.dt_bias)  # (..., h)
        A = -F.softplus(dd_A.to(torch.promote_types(dd_A.dtype, torch.float32))).clamp(min=self.A_floor)  # (..., h)
        lam = torch.sigmoid(trap)  # (..., h)
        omega = (math.pi * torch.tanh(ang))[..., None, :].expand(*lead, H, self.n_angles)  # (..., h, s)
        return x, dt, A * dt, lam, B, C, omega, z

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (b, l, d) → (b, l, d)."""
        check_tensor("Mamba3.forward", "u", u, ndim=3, dims="(b, l, d)")
        x, dt, adt, lam, B, C, omega, z = self._ssm_inputs(u)
        y = mamba3_chunked(x, dt, adt, lam, B, C, omega, D=self.D, z=z, mimo_x=self.mimo_x, mimo_z=self.mimo_z,
                           mimo_o=self.mimo_o, chunk_size=self.chunk_size)  # (b, l, h, p)
        return self.out_proj(y.flatten(-2))  # (b, l, d)

    def forward_with_state(self, u: torch.Tensor, state: Mamba3State | None = None):
        """u (b, l, d) → (out (b, l, d), the state after the last token): prefill before decoding."""
        x, dt, adt, lam, B, C, omega, z = self._ssm_inputs(u)
        y, st = mamba3_chunked(x, dt, adt, lam, B, C, omega, D=self.D, z=z, mimo_x=self.mimo_x,
                               mimo_z=self.mimo_z, mimo_o=self.mimo_o, chunk_size=self.chunk_size,
                               state=None if state is None else Mamba3State(*state), return_state=True)
        return self.out_proj(y.flatten(-2)), st

    @torch.no_grad()
    def trace(self, u: torch.Tensor) -> dict:
        """What the layer computes per token, for pictures: u (b, l, d) →
        {"theta" (b, l, h, s) cumulative angles, "dt", "lam", "decay" = exp(adt) (b, l, h)}."""
        x, dt, adt, lam, B, C, omega, z = self._ssm_inputs(u)
        return {"theta": cumulative_angles(omega, dt), "dt": dt, "lam": lam, "decay": torch.exp(adt)}

    def init_state(self, batch: int, device=None) -> Mamba3State:
        check_int("Mamba3.init_state", "batch", batch, minimum=0)
        return zero_state(batch, self.nheads, self.headdim, self.d_state, self.n_angles, self.mimo_rank,
                          device=device)

    def step(self, u: torch.Tensor, state):
        """One token: u (b, d) → (out (b, d), new state)."""
        x, dt, adt, lam, B, C, omega, z = self._ssm_inputs(u)
        y, st = mamba3_step(x, dt, adt, lam, B, C, omega, Mamba3State(*state), D=self.D, z=z, mimo_x=self.mimo_x,
                            mimo_z=self.mimo_z, mimo_o=self.mimo_o)
        return self.out_proj(y.flatten(-2)), st


# ----------------------------------------------------------------------------------------------
# Measuring the three ideas
# ----------------------------------------------------------------------------------------------


def trapezoid_error(dts, lam: float = 0.5, T: float = 4.0, omega_u: float = 2.0, rule: str = "trapezoid"):
    """Largest error of a discretised 2-state system driven by u(t) = sin(ω_u t), against the exact
    solution, at each step size of `dts`. The global error shrinks like Δ^order: 1 for exponential-
    Euler (rule "euler": Mamba's Bb = ΔB) and ZOH with u held (rule "zoh"), 2 for the trapezoid (λ = ½).

    rule: "trapezoid" (with `lam`), "euler", "zoh". Returns a float64 tensor of errors, one per Δ.
    """
    from .discretize import exp_trapezoidal, zoh

    check_choice("trapezoid_error", "rule", rule, ("trapezoid", "euler", "zoh"))
    f64 = torch.float64
    A = torch.tensor([[0.0, 1.0], [-4.0, -0.5]], dtype=f64)  # a damped spring (chapter 02)
    Bv = torch.tensor([0.0, 1.0], dtype=f64)
    # exact: augment the state with the input's own linear system (s, c)' = (ω c, −ω s)
    M = torch.zeros(4, 4, dtype=f64)
    M[:2, :2], M[:2, 2] = A, Bv
    M[2, 3], M[3, 2] = omega_u, -omega_u
    errs = []
    for dt in dts:
        dt = float(dt)
        L = int(round(T / dt))
        t = dt * torch.arange(L + 1, dtype=f64)  # (L+1,)
        u = torch.sin(omega_u * t)  # (L+1,)
        if rule == "zoh":
            Ab, Bb = zoh(A, Bv, dt)
            prev, cur = torch.zeros_like(Bb), Bb
        else:
            Ab, prev, cur = exp_trapezoidal(A, Bv, dt, lam=lam if rule == "trapezoid" else 1.0)
        exact0 = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=f64)  # x(0) = 0, (sin, cos)(0) = (0, 1)
        exact = (torch.linalg.matrix_exp(t[1:, None, None] * M) @ exact0)[:, :2]  # (L, 2)
        xk, xs = torch.zeros(2, dtype=f64), []
        for k in range(1, L + 1):
            xk = Ab @ xk + prev * u[k - 1] + cur * u[k]  # the two-term update (prev = 0 for ZOH)
            xs.append(xk)
        errs.append(float((torch.stack(xs) - exact).abs().max()))
    return torch.tensor(errs, dtype=f64)


def mimo_decode_intensity(headdim: int, d_state: int, rank: int, bytes_per_element: int = 4) -> dict:
    """FLOPs and bytes of one decoding step of one head, and their ratio (arithmetic intensity).

    The state H (p × n) is read and written once per token: 2·p·n elements. The update does r
    outer products (2·p·n FLOPs each: multiply, add), the decay (p·n) and r readouts (2·p·n each):
        FLOPs = p·n·(1 + 4r),   bytes = 2·p·n·bytes_per_element  (+ the small per-token inputs)
    so the intensity grows linearly with r while the state (and the bytes) stay the same.
    """
    for name, v in (("headdim", headdim), ("d_state", d_state), ("rank", rank), ("bytes_per_element", bytes_per_element)):
        check_int("mimo_decode_intensity", name, v)
    p, n, r = headdim, d_state, rank
    flops = p * n * (1 + 4 * r)
    inputs = (2 * r * n + 3 * p) * bytes_per_element  # B, C per rank; x, z, out
    nbytes = 2 * p * n * bytes_per_element + inputs
    return {"flops": flops, "bytes": nbytes, "intensity": flops / nbytes}


def angle_that_tracks(theta: torch.Tensor, labels: torch.Tensor) -> tuple[int, int, float]:
    """The head and angle whose points (cos θ_t, sin θ_t) best separate the tokens with label 1 from
    those with label 0 (e.g. odd from even parity): the distance between the two groups' mean points
    on the unit circle, at most 2. theta (l, h, s), labels (l,) of 0/1 → (head, angle, distance)."""
    check_tensor("angle_that_tracks", "theta", theta, ndim=3, dims="(l, h, s)")
    lab = labels.bool()
    if lab.shape != theta.shape[:1] or not (bool(lab.any()) and bool((~lab).any())):
        fail("angle_that_tracks", "labels", f"({theta.shape[0]},) values with both 0s and 1s", tuple(labels.shape))
    z = torch.polar(torch.ones_like(theta), theta)  # (l, h, s): points on the unit circle
    gap = (z[lab].mean(0) - z[~lab].mean(0)).abs()  # (h, s)
    head, k = divmod(int(gap.argmax()), theta.shape[-1])
    return head, k, float(gap[head, k])


def mimo_decode_benchmark(ranks=(1, 2, 4, 8), heads: int = 8, headdim: int = 64, d_state: int = 128, batch: int = 1,
                          repeat: int = 20, warmup: int = 3) -> list[dict]:
    """Time one `mamba3_step` (float32, this machine) for each MIMO rank, with the same state size.

    Returns one row per rank: {"rank", "seconds" (median), "flops", "bytes", "intensity",
    "flops_per_s"}; flops and bytes from `mimo_decode_intensity`, times the heads and the batch.
    """
    from .measure import median_seconds

    check_int("mimo_decode_benchmark", "heads", heads)
    check_int("mimo_decode_benchmark", "batch", batch)
    g = torch.Generator().manual_seed(0)
    rows = []
    for r in ranks:
        check_int("mimo_decode_benchmark", "ranks", r)
        rn = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
        st = Mamba3State(rn(batch, heads, d_state // 4), rn(batch, heads, headdim, d_state), rn(batch, r, heads, d_state),
                         rn(batch, heads, headdim))
        args = (rn(batch, heads, headdim), torch.rand(batch, heads, generator=g), -torch.rand(batch, heads, generator=g),
                torch.rand(batch, heads, generator=g), rn(batch, r, heads, d_state), rn(batch, r, heads, d_state),
                rn(batch, heads, d_state // 4), st)
        w = {k: rn(heads, r, headdim) for k in ("mimo_x", "mimo_z", "mimo_o")}
        with torch.no_grad():
            sec = median_seconds(lambda: mamba3_step(*args, **w), repeat=repeat, warmup=warmup)
        m = mimo_decode_intensity(headdim, d_state, r)
        flops, nbytes = m["flops"] * heads * batch, m["bytes"] * heads * batch
        rows.append({"rank": r, "seconds": sec, "flops": flops, "bytes": nbytes, "intensity": m["intensity"],
                     "flops_per_s": flops / sec})
    return rows


__all__ = ["Mamba3State", "zero_state", "trapezoid_coefficients", "cumulative_angles", "rotate", "mamba3_step",
           "mamba3_sequential", "mamba3_chunked", "mamba3_complex_ref", "mamba3_official_args", "Mamba3",
           "trapezoid_error", "mimo_decode_intensity", "mimo_decode_benchmark", "angle_that_tracks"]
