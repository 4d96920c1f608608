"""Reference solutions for notebook 11 (Mamba-2 and state space duality), with plausible wrong
answers for the tests."""

import math

import torch

from mamba_edu.exercises.ssd import check_chunk_states, check_segsum, check_semiseparable_matrix

# Exercise 1: segment sums ---------------------------------------------------------------------


def segsum(x):
    T = x.shape[-1]
    rows = x[..., :, None].expand(*x.shape, T)                   # (..., T, T): rows[k, s] = x_k
    after_s = torch.ones(T, T, dtype=torch.bool).tril(-1)        # k > s
    out = torch.cumsum(rows.masked_fill(~after_s, 0), dim=-2)    # Σ_{s < k ≤ t} x_k
    return out.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)


def segsum_cumsum_difference(x):
    T = x.shape[-1]
    cs = torch.cumsum(x, dim=-1)
    out = cs[..., :, None] - cs[..., None, :]                    # right in exact arithmetic only
    return out.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)


def segsum_inclusive(x):
    T = x.shape[-1]
    rows = x[..., :, None].expand(*x.shape, T)
    out = torch.cumsum(rows.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), 0), dim=-2)  # k ≥ s
    return out.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)


def segsum_zero_future(x):
    T = x.shape[-1]
    rows = x[..., :, None].expand(*x.shape, T)
    return torch.cumsum(rows.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), 0), dim=-2)


# Exercise 2: the semiseparable matrix of one head ---------------------------------------------


def semiseparable_matrix(dt, A, B, C):
    L = torch.exp(segsum(A * dt))                                # (L, L): a_{s+1}⋯a_t, 0 above the diagonal
    return L * (C @ B.T)                                         # (L, L)


def semiseparable_matrix_no_decay(dt, A, B, C):
    return torch.tril(C @ B.T)


def semiseparable_matrix_from_s(dt, A, B, C):
    return torch.exp(segsum_inclusive(A * dt)) * (C @ B.T)


def semiseparable_matrix_unmasked(dt, A, B, C):
    cs = torch.cumsum(A * dt, dim=-1)
    return torch.exp(cs[:, None] - cs[None, :]) * (C @ B.T)


# Exercise 3: the state each chunk leaves at its end -------------------------------------------


def chunk_states(Xb, log_a, B):
    cum = torch.cumsum(log_a, dim=-1)                            # (c, q)
    to_end = torch.exp(cum[:, -1:] - cum)                        # (c, q): a_{s+1}⋯a_end
    return torch.einsum("csp,cs,csn->cpn", Xb, to_end, B)        # (c, p, N)


def chunk_states_no_decay(Xb, log_a, B):
    return torch.einsum("csp,csn->cpn", Xb, B)


def chunk_states_from_start(Xb, log_a, B):
    return torch.einsum("csp,cs,csn->cpn", Xb, torch.exp(torch.cumsum(log_a, -1)), B)


def chunk_states_transposed(Xb, log_a, B):
    return chunk_states(Xb, log_a, B).transpose(-1, -2)


EXERCISES = [
    (check_segsum, segsum, [segsum_cumsum_difference, segsum_inclusive, segsum_zero_future]),
    (check_semiseparable_matrix, semiseparable_matrix,
     [semiseparable_matrix_no_decay, semiseparable_matrix_from_s, semiseparable_matrix_unmasked]),
    (check_chunk_states, chunk_states, [chunk_states_no_decay, chunk_states_from_start, chunk_states_transposed]),
]
