"""Reference solutions for notebook 02 (continuous-time SSMs and discretisation), with plausible
wrong answers for the tests."""

import torch

from mamba_edu.exercises.discretization import (check_bilinear_2x2, check_largest_stable_euler_step,
                                                check_zoh_diagonal)

# Exercise 1: zero-order hold for a diagonal A -----------------------------------------------


def zoh_diagonal(A, B, dt):
    Ab = torch.exp(dt * A)              # (..., N)
    Bb = (Ab - 1) / A * B               # (..., N)
    return Ab, Bb


def zoh_diagonal_euler(A, B, dt):
    return 1 + dt * A, dt * B


def zoh_diagonal_mamba_shortcut(A, B, dt):
    return torch.exp(dt * A), dt * B


def zoh_diagonal_extra_delta(A, B, dt):
    Ab = torch.exp(dt * A)
    return Ab, (Ab - 1) / (dt * A) * B


# Exercise 2: the bilinear rule for a dense 2×2 ---------------------------------------------


def bilinear_2x2(A, B, dt):
    I = torch.eye(2, dtype=A.dtype)
    M = I - dt / 2 * A
    Ab = torch.linalg.solve(M, I + dt / 2 * A)  # (2, 2)
    Bb = torch.linalg.solve(M, dt * B)           # (2,)
    return Ab, Bb


def bilinear_2x2_full_step(A, B, dt):
    I = torch.eye(2, dtype=A.dtype)
    return torch.linalg.solve(I - dt * A, I + dt * A), torch.linalg.solve(I - dt * A, dt * B)


def bilinear_2x2_plain_B(A, B, dt):
    I = torch.eye(2, dtype=A.dtype)
    return torch.linalg.solve(I - dt / 2 * A, I + dt / 2 * A), dt * B


def bilinear_2x2_transposed(A, B, dt):
    I = torch.eye(2, dtype=A.dtype)
    Ab = torch.linalg.solve(I - dt / 2 * A, I + dt / 2 * A)
    return Ab.T, torch.linalg.solve(I - dt / 2 * A, dt * B)


# Exercise 3: the largest stable Euler step ------------------------------------------------


def largest_stable_euler_step(A):
    lam = torch.linalg.eigvals(A)                         # (N,) complex
    if bool((lam.real >= 0).any()):
        return 0.0
    # |1 + Δλ|² = 1 + 2Δ Re λ + Δ²|λ|² < 1  ⇔  Δ < −2 Re λ / |λ|²
    return float((-2 * lam.real / lam.abs() ** 2).min())


def largest_stable_euler_step_real_only(A):
    lam = torch.linalg.eigvals(A)
    if bool((lam.real >= 0).any()):
        return 0.0
    return float((2 / lam.abs()).min())                   # right for real λ only


def largest_stable_euler_step_max(A):
    lam = torch.linalg.eigvals(A)
    if bool((lam.real >= 0).any()):
        return 0.0
    return float((-2 * lam.real / lam.abs() ** 2).max())  # the slowest mode instead of the fastest


def largest_stable_euler_step_no_zero_case(A):
    lam = torch.linalg.eigvals(A)
    return float((-2 * lam.real / lam.abs() ** 2).min())


EXERCISES = [
    (check_zoh_diagonal, zoh_diagonal, [zoh_diagonal_euler, zoh_diagonal_mamba_shortcut, zoh_diagonal_extra_delta]),
    (check_bilinear_2x2, bilinear_2x2, [bilinear_2x2_full_step, bilinear_2x2_plain_B, bilinear_2x2_transposed]),
    (check_largest_stable_euler_step, largest_stable_euler_step,
     [largest_stable_euler_step_real_only, largest_stable_euler_step_max, largest_stable_euler_step_no_zero_case]),
]
