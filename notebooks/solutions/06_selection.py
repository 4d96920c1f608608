"""Reference solutions for notebooks/06_selection.ipynb, and plausible wrong answers the checks must reject."""

import torch
import torch.nn.functional as F

from mamba_edu.exercises.selection import check_gated_rnn, check_s6_params, check_states_without_a_loop

# ----------------------------------------------------------------------------------------------
# Exercise 1: Δ, B and C from the input
# ----------------------------------------------------------------------------------------------


def s6_params(s6, x):
    """One projection of every token, split into a low-rank Δ part, B and C; then Δ's own projection."""
    x_dbl = x.transpose(1, 2) @ s6.x_proj.weight.T                            # (b, l, r + 2n)
    dt, B, C = x_dbl.split([s6.dt_rank, s6.n, s6.n], dim=-1)                  # (b, l, r), (b, l, n) ×2
    delta = F.softplus(dt @ s6.dt_proj.weight.T + s6.dt_proj.bias)            # (b, l, d)
    return delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)       # (b, d, l), (b, n, l) ×2


def s6_params_no_softplus(s6, x):
    """Wrong: forgets the softplus, so Δ can be negative."""
    x_dbl = x.transpose(1, 2) @ s6.x_proj.weight.T
    dt, B, C = x_dbl.split([s6.dt_rank, s6.n, s6.n], dim=-1)
    delta = dt @ s6.dt_proj.weight.T + s6.dt_proj.bias
    return delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)


def s6_params_swapped(s6, x):
    """Wrong: takes C before B in the split."""
    x_dbl = x.transpose(1, 2) @ s6.x_proj.weight.T
    dt, C, B = x_dbl.split([s6.dt_rank, s6.n, s6.n], dim=-1)
    delta = F.softplus(dt @ s6.dt_proj.weight.T + s6.dt_proj.bias)
    return delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)


def s6_params_time_last_missing(s6, x):
    """Wrong: leaves B and C as (b, l, n)."""
    x_dbl = x.transpose(1, 2) @ s6.x_proj.weight.T
    dt, B, C = x_dbl.split([s6.dt_rank, s6.n, s6.n], dim=-1)
    delta = F.softplus(dt @ s6.dt_proj.weight.T + s6.dt_proj.bias)
    return delta.transpose(1, 2), B, C


# ----------------------------------------------------------------------------------------------
# Exercise 2: a selective SSM with one state is a gated RNN
# ----------------------------------------------------------------------------------------------


def gated_rnn(u, s):
    """h_t = (1 − g_t)·h_{t−1} + g_t·u_t with the gate g_t = σ(s_t)."""
    g = torch.sigmoid(s)                                      # (d, L)
    h = torch.zeros_like(u[:, 0])                             # (d,)
    hs = []
    for t in range(u.shape[-1]):
        h = (1 - g[:, t]) * h + g[:, t] * u[:, t]             # (d,)
        hs.append(h)
    return torch.stack(hs, dim=-1)                            # (d, L)


def gated_rnn_mamba_B(u, s):
    """Wrong: Mamba's simplified B̄ = Δ·B instead of the zero-order hold: h = e^{−Δ}h + Δu."""
    delta = F.softplus(s)
    h, hs = torch.zeros_like(u[:, 0]), []
    for t in range(u.shape[-1]):
        h = torch.exp(-delta[:, t]) * h + delta[:, t] * u[:, t]
        hs.append(h)
    return torch.stack(hs, dim=-1)


def gated_rnn_swapped(u, s):
    """Wrong: the gate keeps the state where it should take the input."""
    g = torch.sigmoid(s)
    h, hs = torch.zeros_like(u[:, 0]), []
    for t in range(u.shape[-1]):
        h = g[:, t] * h + (1 - g[:, t]) * u[:, t]
        hs.append(h)
    return torch.stack(hs, dim=-1)


def gated_rnn_relu(u, s):
    """Wrong: a ReLU-ish Δ (clamp) instead of softplus inside the gate."""
    delta = s.clamp(min=0)
    h, hs = torch.zeros_like(u[:, 0]), []
    for t in range(u.shape[-1]):
        h = torch.exp(-delta[:, t]) * h + (1 - torch.exp(-delta[:, t])) * u[:, t]
        hs.append(h)
    return torch.stack(hs, dim=-1)


# ----------------------------------------------------------------------------------------------
# Exercise 3: every state at once, without a loop over time
# ----------------------------------------------------------------------------------------------


def states_without_a_loop(delta, A, Bu):
    """h_t = Σ_{s≤t} exp(A·(S_t − S_s))·Bu_s, S the cumulative sum of Δ; future terms masked before exp."""
    S = delta.cumsum(-1)                                      # (d, L)
    gap = S[:, :, None] - S[:, None, :]                       # (d, L_t, L_s): S_t − S_s
    L = delta.shape[-1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()        # (L_t, L_s): s ≤ t
    gap = gap.masked_fill(~causal, 0.0)                       # no overflow from the future
    decay = torch.exp(A[:, :, None, None] * gap[:, None])     # (d, n, L_t, L_s)
    decay = decay * causal                                    # future terms are exactly 0
    return torch.einsum("dnts,dns->dnt", decay, Bu)           # (d, n, L)


def states_without_a_loop_unmasked(delta, A, Bu):
    """Wrong: exponentiates before masking, so the future terms overflow to inf (and inf · 0 = nan)."""
    S = delta.cumsum(-1)
    L = delta.shape[-1]
    decay = torch.exp(A[:, :, None, None] * (S[:, :, None] - S[:, None, :])[:, None])
    decay = decay * torch.ones(L, L, dtype=torch.bool).tril()
    return torch.einsum("dnts,dns->dnt", decay, Bu)


def states_without_a_loop_off_by_one(delta, A, Bu):
    """Wrong: decays each write by its own step too (S_t − S_{s−1} instead of S_t − S_s)."""
    S = delta.cumsum(-1)
    S_prev = S - delta
    L = delta.shape[-1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    gap = (S[:, :, None] - S_prev[:, None, :]).masked_fill(~causal, 0.0)
    decay = torch.exp(A[:, :, None, None] * gap[:, None]) * causal
    return torch.einsum("dnts,dns->dnt", decay, Bu)


def states_without_a_loop_no_mask(delta, A, Bu):
    """Wrong: sums over the future too (with a clamp that keeps it finite)."""
    S = delta.cumsum(-1)
    gap = (S[:, :, None] - S[:, None, :]).clamp(min=0)
    decay = torch.exp(A[:, :, None, None] * gap[:, None])
    return torch.einsum("dnts,dns->dnt", decay, Bu)


EXERCISES = [
    (check_s6_params, s6_params, [s6_params_no_softplus, s6_params_swapped, s6_params_time_last_missing]),
    (check_gated_rnn, gated_rnn, [gated_rnn_mamba_B, gated_rnn_swapped, gated_rnn_relu]),
    (check_states_without_a_loop, states_without_a_loop,
     [states_without_a_loop_unmasked, states_without_a_loop_off_by_one, states_without_a_loop_no_mask]),
]
