"""Reference solutions for notebook 12 (Mamba-3), with plausible wrong answers for the tests
(among them a shortcut that calls the library instead of writing the code)."""

import math

import torch

from mamba_edu import mamba3
from mamba_edu.exercises.mamba3 import check_mimo_update, check_rotate_pairs, check_trapezoid_update

# Exercise 1: the exponential-trapezoidal update -----------------------------------------------


def trapezoid_update(H, x_prev, B_prev, x, B, dt, adt, lam):
    alpha = math.exp(adt)                                        # e^{ΔA}
    beta = (1 - lam) * dt * alpha                                # the left end, decayed one step
    gamma = lam * dt                                             # the right end
    return alpha * H + beta * torch.outer(x_prev, B_prev) + gamma * torch.outer(x, B)   # (p, n)


def trapezoid_update_euler(H, x_prev, B_prev, x, B, dt, adt, lam):
    return math.exp(adt) * H + dt * torch.outer(x, B)


def trapezoid_update_no_decay_on_left(H, x_prev, B_prev, x, B, dt, adt, lam):
    return math.exp(adt) * H + (1 - lam) * dt * torch.outer(x_prev, B_prev) + lam * dt * torch.outer(x, B)


def trapezoid_update_by_library(H, x_prev, B_prev, x, B, dt, adt, lam):
    a, b, g = mamba3.trapezoid_coefficients(torch.tensor(dt), torch.tensor(adt), torch.tensor(lam))
    return a * H + b * torch.outer(x_prev, B_prev) + g * torch.outer(x, B)


# Exercise 2: rotate pairs -----------------------------------------------------------------------


def rotate_pairs(v, theta):
    s = theta.shape[-1]
    a, b = v[..., 0:2 * s:2], v[..., 1:2 * s:2]                 # (..., s): the pairs' two entries
    cos, sin = torch.cos(theta), torch.sin(theta)
    out = v.clone()
    out[..., 0:2 * s:2] = a * cos - b * sin
    out[..., 1:2 * s:2] = a * sin + b * cos
    return out


def rotate_pairs_backwards(v, theta):
    return rotate_pairs(v, -theta)


def rotate_pairs_halves(v, theta):
    s, half = theta.shape[-1], v.shape[-1] // 2
    a, b = v[..., :s], v[..., half:half + s]
    out = v.clone()
    out[..., :s], out[..., half:half + s] = a * torch.cos(theta) - b * torch.sin(theta), a * torch.sin(theta) + b * torch.cos(theta)
    return out


def rotate_pairs_by_library(v, theta):
    return mamba3.rotate(v, theta)


# Exercise 3: one MIMO update --------------------------------------------------------------------


def mimo_update(H, alpha, gamma, X, B, C):
    H_new = alpha * H + gamma * X.T @ B                          # (p, n): Σ_ρ x_ρ B_ρᵀ
    return H_new, C @ H_new.T                                    # (r, p): Y_ρ = H_new C_ρ


def mimo_update_first_rank(H, alpha, gamma, X, B, C):
    H_new = alpha * H + gamma * torch.outer(X[0], B[0])
    return H_new, C @ H_new.T


def mimo_update_old_state(H, alpha, gamma, X, B, C):
    return alpha * H + gamma * X.T @ B, C @ H.T


def mimo_update_by_library(H, alpha, gamma, X, B, C):
    p, n, r = H.shape[0], H.shape[1], X.shape[0]
    st = mamba3.zero_state(1, 1, p, n, 0, r, dtype=H.dtype)._replace(ssm=H[None, None] * 1.0)
    y, new = mamba3.mamba3_step(X[None, None, 0] * 0, torch.ones(1, 1, dtype=H.dtype), torch.zeros(1, 1, dtype=H.dtype),
                                torch.ones(1, 1, dtype=H.dtype), B[None, :, None], C[None, :, None],
                                torch.zeros(1, 1, 0, dtype=H.dtype), st)
    return new.ssm[0, 0], y


EXERCISES = [
    (check_trapezoid_update, trapezoid_update,
     [trapezoid_update_euler, trapezoid_update_no_decay_on_left, trapezoid_update_by_library]),
    (check_rotate_pairs, rotate_pairs, [rotate_pairs_backwards, rotate_pairs_halves, rotate_pairs_by_library]),
    (check_mimo_update, mimo_update, [mimo_update_first_rank, mimo_update_old_state, mimo_update_by_library]),
]
