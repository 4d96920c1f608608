"""Reference solutions for notebooks/04_lti_two_modes.ipynb, and plausible wrong answers the checks must reject."""

import torch

from mamba_edu.exercises.lti import check_causal_fft_conv, check_kernel_by_powers, check_s4d_vandermonde

# ----------------------------------------------------------------------------------------------
# Exercise 1: K_l = C Ab^l Bb by repeated multiplication
# ----------------------------------------------------------------------------------------------


def kernel_by_powers(Ab, Bb, C, L):
    """Keep v = Ab^l Bb and multiply by Ab once per lag."""
    v = Bb                                                     # (n,)  Ab^0 Bb
    K = []
    for _ in range(L):
        K.append(C @ v)                                        # K_l = C · Ab^l Bb
        v = Ab @ v                                             # Ab^{l+1} Bb
    return torch.stack(K)                                      # (l,)


def kernel_by_powers_starts_at_one(Ab, Bb, C, L):
    """Wrong: multiplies before reading out, so K_0 = C Ab Bb (an off-by-one in the lag)."""
    v, K = Bb, []
    for _ in range(L):
        v = Ab @ v
        K.append(C @ v)
    return torch.stack(K)


def kernel_by_powers_transposed(Ab, Bb, C, L):
    """Wrong: v @ Ab multiplies by Ab transposed."""
    v, K = Bb, []
    for _ in range(L):
        K.append(C @ v)
        v = v @ Ab
    return torch.stack(K)


# ----------------------------------------------------------------------------------------------
# Exercise 2: the S4D kernel by a Vandermonde product
# ----------------------------------------------------------------------------------------------


def s4d_vandermonde(A, B, C, dt, L):
    """ZOH, then K_l = Σ_n C_n Bb_n exp(l·ΔA_n); 2·Re for complex A."""
    dA = dt * A                                                # (h, n)
    Bb = (torch.exp(dA) - 1) / A * B                           # (h, n)  zero-order hold
    l = torch.arange(L, dtype=torch.float64)                   # (l,)
    V = torch.exp(dA[..., None] * l)                           # (h, n, l)  Vandermonde: Ab_n^l
    K = ((C * Bb)[..., None] * V).sum(-2)                      # (h, l)
    return 2 * K.real if K.is_complex() else K


def s4d_vandermonde_real_part_only(A, B, C, dt, L):
    """Wrong: takes Re(K) and forgets the conjugate partner (a factor 2 for complex A)."""
    K = s4d_vandermonde(A, B, C, dt, L)
    return K / 2 if A.is_complex() else K


def s4d_vandermonde_euler_B(A, B, C, dt, L):
    """Wrong: Bb = ΔB (Euler) instead of the zero-order hold."""
    dA = dt * A
    V = torch.exp(dA[..., None] * torch.arange(L, dtype=torch.float64))
    K = ((C * dt * B)[..., None] * V).sum(-2)
    return 2 * K.real if K.is_complex() else K


def s4d_vandermonde_always_doubled(A, B, C, dt, L):
    """Wrong: doubles real systems too (the 2·Re rule is for conjugate pairs only)."""
    dA = dt * A
    Bb = (torch.exp(dA) - 1) / A * B
    V = torch.exp(dA[..., None] * torch.arange(L, dtype=torch.float64))
    K = ((C * Bb)[..., None] * V).sum(-2)
    return 2 * K.real


# ----------------------------------------------------------------------------------------------
# Exercise 3: causal convolution with the FFT
# ----------------------------------------------------------------------------------------------


def causal_fft_conv(u, K):
    """Zero-pad both to 2L so that the circular convolution is a linear one, keep the first L."""
    L = u.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(K, n=2 * L), n=2 * L)  # (..., h, 2l)
    return y[..., :L]                                          # (..., h, l)


def causal_fft_conv_circular(u, K):
    """Wrong: no padding, so the FFT computes a circular convolution (the tail wraps into the start)."""
    L = u.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(u) * torch.fft.rfft(K), n=L)


def causal_fft_conv_not_cropped(u, K):
    """Wrong: pads correctly but returns all 2L outputs."""
    L = u.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(K, n=2 * L), n=2 * L)


def causal_fft_conv_flipped(u, K):
    """Wrong: flips the kernel (correlation instead of convolution)."""
    return causal_fft_conv(u, K.flip(-1))


EXERCISES = [
    (check_kernel_by_powers, kernel_by_powers, [kernel_by_powers_starts_at_one, kernel_by_powers_transposed]),
    (check_s4d_vandermonde, s4d_vandermonde,
     [s4d_vandermonde_real_part_only, s4d_vandermonde_euler_B, s4d_vandermonde_always_doubled]),
    (check_causal_fft_conv, causal_fft_conv,
     [causal_fft_conv_circular, causal_fft_conv_not_cropped, causal_fft_conv_flipped]),
]
