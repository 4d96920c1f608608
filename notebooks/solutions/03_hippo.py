"""Reference solutions for notebooks/03_hippo.ipynb, and plausible wrong answers the checks must reject."""

import torch

from mamba_edu.exercises.hippo import check_legs_matrices, check_legs_quadrature, check_legs_reconstruct
from mamba_edu.hippo import legendre

# ----------------------------------------------------------------------------------------------
# Exercise 1: the LegS operator from its formula
# ----------------------------------------------------------------------------------------------


def legs_matrices(N):
    """A[n, k] = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);  B[n] = sqrt(2n+1)."""
    q = torch.arange(N, dtype=torch.float64)
    R = torch.sqrt(2 * q + 1)                                  # (n,)
    A = -torch.tril(R[:, None] * R[None, :], diagonal=-1)      # (n, n)  below the diagonal
    A = A - torch.diag(q + 1)                                  # (n, n)  the diagonal -(n+1)
    return A, R.clone()


def legs_matrices_diagonal_off_by_one(N):
    """Wrong: -n on the diagonal instead of -(n+1)."""
    A, B = legs_matrices(N)
    return A + torch.eye(N, dtype=torch.float64), B           # diagonal -(n+1) + 1 = -n


def legs_matrices_transposed(N):
    """Wrong: the upper triangle filled instead of the lower one."""
    A, B = legs_matrices(N)
    return A.T, B


def legs_matrices_positive(N):
    """Wrong: the sign convention forgotten (A without its minus sign)."""
    A, B = legs_matrices(N)
    return -A, B


# ----------------------------------------------------------------------------------------------
# Exercise 2: reconstruction from LegS coefficients
# ----------------------------------------------------------------------------------------------


def legs_reconstruct(c, x):
    """f_hat(x) = Σ_n c_n sqrt(2n+1) P_n(2x - 1)."""
    N = c.shape[0]
    R = torch.sqrt(2 * torch.arange(N, dtype=c.dtype) + 1)     # (n,)
    G = legendre(N, 2 * x - 1) * R                             # (m, n)
    return G @ c                                               # (m,)


def legs_reconstruct_no_normalisation(c, x):
    """Wrong: forgets the sqrt(2n+1) that makes the basis orthonormal."""
    return legendre(c.shape[0], 2 * x - 1) @ c


def legs_reconstruct_wrong_interval(c, x):
    """Wrong: evaluates P_n at x instead of mapping [0, 1] onto [-1, 1]."""
    R = torch.sqrt(2 * torch.arange(c.shape[0], dtype=c.dtype) + 1)
    return (legendre(c.shape[0], x) * R) @ c


# ----------------------------------------------------------------------------------------------
# Exercise 3: projection coefficients by quadrature
# ----------------------------------------------------------------------------------------------


def legs_quadrature(f_mid, N):
    """c_n = (1/M) Σ_j f(x_j) g_n(x_j) at the midpoints x_j = (j + ½)/M."""
    M = f_mid.shape[0]
    x = (torch.arange(M, dtype=f_mid.dtype) + 0.5) / M         # (m,)
    R = torch.sqrt(2 * torch.arange(N, dtype=f_mid.dtype) + 1)  # (n,)
    G = legendre(N, 2 * x - 1) * R                             # (m, n)
    return G.T @ f_mid / M                                     # (n,)


def legs_quadrature_sum(f_mid, N):
    """Wrong: a sum instead of an average (forgets the weight 1/M of each midpoint)."""
    return legs_quadrature(f_mid, N) * f_mid.shape[0]


def legs_quadrature_left_points(f_mid, N):
    """Wrong: evaluates the basis at the left ends j/M instead of the midpoints."""
    M = f_mid.shape[0]
    x = torch.arange(M, dtype=f_mid.dtype) / M
    R = torch.sqrt(2 * torch.arange(N, dtype=f_mid.dtype) + 1)
    return (legendre(N, 2 * x - 1) * R).T @ f_mid / M


EXERCISES = [
    (check_legs_matrices, legs_matrices,
     [legs_matrices_diagonal_off_by_one, legs_matrices_transposed, legs_matrices_positive]),
    (check_legs_reconstruct, legs_reconstruct, [legs_reconstruct_no_normalisation, legs_reconstruct_wrong_interval]),
    (check_legs_quadrature, legs_quadrature, [legs_quadrature_sum, legs_quadrature_left_points]),
]
