"""Exploring state space models: example systems and inputs, runs that keep every state, HiPPO online.

The app's state explorer and HiPPO pages (and any notebook) call these; the math itself lives in
`discretize`, `lti`, `scan`, `hippo`, `models`: this module only names the examples and keeps the
intermediate results a picture needs.

Glossary
    N          state size (of the real system: a complex S4D state of N/2 entries stands for N)
    L          sequence length (number of steps)
    u          input sequence (L,), float64;  tokens: (L,) int64 when the input is a token sequence
    A, B, C    continuous system: A dense (N, N) or diagonal (N,) (complex for S4D-Lin/Inv), B, C like A's rows
    Δ, dt      step size;  Ab, Bb: the discrete system (see `discretize`)
    states     every state over time (L, N): for a complex state the real pair's contribution 2·Re x_n
    K          the convolution kernel K_l = C Ab^l Bb (L,)
    (A trained selective model's states come from `mamba_edu.probe.trace_layer`.)

Systems (`make_system`)
    hippo-legs / hippo-legt / hippo-fout    HiPPO operators (A, B) used as time-invariant SSMs, as S4 does
    s4d-lin / s4d-inv / s4d-real            the S4D initialisations of a diagonal A (B = 1)
    random                                  A = S − D with S skew-symmetric and D a positive diagonal:
                                            Re λ = −v*Dv/|v|² < 0 for every eigenpair, so always stable
    C is drawn from a seeded normal distribution (a system needs some readout to show an output).

Inputs (`make_input`)
    impulse u_0 = 1; step u = 1; sine with `cycles` periods over the sequence; seeded Gaussian noise;
    a selective-copying sequence (`tasks.selective_copying`) or typed text (`tokenizer.text_to_tokens`),
    both as tokens, shown to an LTI system as the signal u_t = token_t / (V − 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import hippo, lti, tasks
from ._checks import check_choice, check_float, check_int, check_tensor, fail
from .discretize import discretize
from .tokenizer import text_to_tokens

F64 = torch.float64

SYSTEMS = {"hippo-legs": "HiPPO-LegS", "hippo-legt": "HiPPO-LegT", "hippo-fout": "HiPPO-FouT",
           "s4d-lin": "S4D-Lin", "s4d-inv": "S4D-Inv", "s4d-real": "S4D-Real", "random": "random stable"}
INPUTS = {"impulse": "impulse", "step": "step", "sine": "sine", "noise": "noise",
          "selective-copy": "selective-copying sequence", "text": "text (typed)"}
TOKEN_INPUTS = ("selective-copy", "text")


# ----------------------------------------------------------------------------------------------
# Systems
# ----------------------------------------------------------------------------------------------


@dataclass
class System:
    """A continuous-time SISO SSM x' = A x + B u, y = C x."""

    name: str
    A: torch.Tensor  # (N, N) dense, or (N,) / (N/2,) diagonal
    B: torch.Tensor  # (N,) or like the diagonal
    C: torch.Tensor  # like B
    diagonal: bool

    @property
    def state_size(self) -> int:
        """N of the real system (a complex diagonal entry stands for a conjugate pair)."""
        n = self.A.shape[-1]
        return 2 * n if self.A.is_complex() else n


def make_system(name: str, N: int, seed: int = 0) -> System:
    """The example system `name` (a key of SYSTEMS) with real state size N; C (and the random A) from `seed`."""
    func = "make_system"
    check_choice(func, "name", name, SYSTEMS)
    N = check_int(func, "N", N)
    check_int(func, "seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    if name.startswith("hippo-"):
        A, B = hippo.hippo_operator(name[6:], N)                          # (n, n), (n,)
        C = torch.randn(N, generator=g, dtype=F64) / math.sqrt(N)         # (n,)
        return System(name, A, B, C, diagonal=False)
    if name.startswith("s4d-"):
        A = lti.s4d_init(1, N, name[4:])[0]                               # (n/2,) complex or (n,) real
        B = torch.ones_like(A)                                            # (n',)
        C = torch.randn(A.shape + ((2,) if A.is_complex() else ()), generator=g, dtype=F64) * math.sqrt(0.5)
        C = torch.view_as_complex(C) if A.is_complex() else C             # (n',)
        return System(name, A, B, C, diagonal=True)
    W = torch.randn(N, N, generator=g, dtype=F64) * (4.0 / math.sqrt(N))  # (n, n)
    D = 0.1 + 0.9 * torch.rand(N, generator=g, dtype=F64)                 # (n,)  decay rates in [0.1, 1)
    A = (W - W.T) / 2 - torch.diag(D)                                     # (n, n)  skew − positive diagonal
    B = torch.randn(N, generator=g, dtype=F64)                            # (n,)
    C = torch.randn(N, generator=g, dtype=F64) / math.sqrt(N)             # (n,)
    return System(name, A, B, C, diagonal=False)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def make_input(kind: str, L: int = 256, *, seed: int = 0, text: str = "", vocab_size: int = 16,
               n_data: int = 4, cycles: float = 4.0, task: str = "selective-copy"):
    """(u (L,) float64, tokens (L,) int64 or None) for the input `kind` (a key of INPUTS).

    Token inputs set their own length: a selective-copying sequence has L tokens (L − n_data noisy
    ones, then n_data markers); text has one token per character (per byte beyond ASCII), mapped
    with `text_to_tokens(text, vocab_size, task)`.
    """
    func = "make_input"
    check_choice(func, "kind", kind, INPUTS)
    if kind == "text":  # its own length, whatever L says
        tokens = text_to_tokens(text, vocab_size, task)                   # (l,)
        if tokens.numel() == 0:
            fail(func, "text", "at least one character", "an empty text")
        return tokens.to(F64) / (vocab_size - 1), tokens
    L = check_int(func, "L", L)
    check_int(func, "seed", seed, minimum=0)
    k = torch.arange(L, dtype=F64)                                        # (l,)
    if kind == "impulse":
        return (k == 0).to(F64), None
    if kind == "step":
        return torch.ones(L, dtype=F64), None
    if kind == "sine":
        cycles = check_float(func, "cycles", cycles, positive=True)
        return torch.sin(2 * math.pi * cycles * k / L), None
    if kind == "noise":
        return torch.randn(L, generator=torch.Generator().manual_seed(seed), dtype=F64), None
    check_int(func, "L", L, minimum=n_data + 1)  # selective copying: L − n_data noisy tokens, then the markers
    tokens = tasks.selective_copying(1, seq_len=L - n_data, n_data=n_data, vocab_size=vocab_size,
                                     seed=seed).tokens[0]                 # (l,)
    return tokens.to(F64) / (vocab_size - 1), tokens


# ----------------------------------------------------------------------------------------------
# Running an LTI system, keeping everything a picture needs
# ----------------------------------------------------------------------------------------------


def lti_states(Ab: torch.Tensor, Bb: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Every state of x_k = Ab x_{k-1} + Bb u_k (x_{-1} = 0) → (L, N), by `lti.lti_recurrent` itself.

    Ab (N, N) dense or (N,) diagonal, Bb (N,), u (L,). Each state entry is an output of the same
    system read out with C = e_n (the n-th unit vector): run N copies of the system, copy n reading
    entry n, so y_n = e_n·x = x_n. A complex state gives 2·Re x_n, the real pair's contribution.
    """
    func = "lti_states"
    check_tensor(func, "Ab", Ab, ndim=(1, 2), dims="(N,) diagonal or (N, N) dense", dtypes=lti.DTYPES)
    M = Ab.shape[-1]
    check_tensor(func, "Bb", Bb, shape=(M,), dims="(N,)", dtypes=lti.DTYPES)
    check_tensor(func, "u", u, ndim=1, dims="(L,)", dtypes=lti.REAL)
    Abr = Ab.expand(M, *Ab.shape)                                         # (m, n, n) or (m, n): N copies
    Bbr = Bb.expand(M, M)                                                 # (m, n)
    eye = torch.eye(M, dtype=u.dtype)                                     # (m, n)  copy m reads entry m
    return lti.lti_recurrent(Abr, Bbr, eye, u.expand(M, -1)).T            # (l, m)


@dataclass
class LTIRun:
    """A system run on one input: the discrete system, every state, the output, kernel and eigenvalues."""

    Ab: torch.Tensor
    Bb: torch.Tensor
    states: torch.Tensor  # (L, N) real
    y: torch.Tensor  # (L,)
    K: torch.Tensor  # (L,)
    eigenvalues: torch.Tensor  # (N,) complex: of Ab (both members of each conjugate pair)

    @property
    def spectral_radius(self) -> float:
        return float(self.eigenvalues.abs().max())

    @property
    def finite_steps(self) -> int:
        """How many leading steps have finite states, output and kernel: all L unless an unstable
        system (ρ > 1) overflowed float64, e.g. Euler with a large step."""
        ok = (torch.isfinite(self.states).all(1) & torch.isfinite(self.y) & torch.isfinite(self.K)).long()  # (l,)
        return int(ok.cumprod(0).sum())


def run_lti(system: System, u: torch.Tensor, dt: float, method: str = "zoh") -> LTIRun:
    """Discretise `system` with step dt by `method`, then run it on u (L,).

        Ab, Bb = discretize(A, B, Δ, method)
        states x_k = Ab x_{k-1} + Bb u_k            (lti_states)
        y_k = C x_k                                 (lti_recurrent: the recurrent mode)
        K_l = C Ab^l Bb                             (lti_kernel; y = K ∗ u is the same output, chapter 04)

    y comes from the recurrence rather than the FFT convolution: for an unstable system the values
    span hundreds of orders of magnitude (and may overflow), which the FFT would smear over every step.
    """
    func = "run_lti"
    check_tensor(func, "u", u, ndim=1, dims="(L,)", dtypes=(F64,))
    Ab, Bb = discretize(system.A, system.B, dt, method, diagonal=system.diagonal)  # (n, n)/(n,), (n,)
    L = u.shape[0]
    states = lti_states(Ab, Bb, u)                                        # (l, n)
    K = lti.lti_kernel(Ab[None], Bb[None], system.C[None], L)[0]          # (l,)
    y = lti.lti_recurrent(Ab[None], Bb[None], system.C[None], u[None])[0]  # (l,)
    if system.diagonal:
        eig = torch.cat([Ab, Ab.conj()]) if Ab.is_complex() else Ab.to(torch.complex128)  # (N,)
    else:
        eig = torch.linalg.eigvals(Ab)                                    # (n,)
    return LTIRun(Ab, Bb, states, y, K, eig)


def lti_cost(N: int, L: int, dense: bool) -> int:
    """Multiply-adds of `run_lti` (the states dominate: N copies of an N-state system over L steps)."""
    return L * N * (N * N if dense else N)


# ----------------------------------------------------------------------------------------------
# HiPPO online: project a signal, reconstruct the window at a chosen time, error against N
# ----------------------------------------------------------------------------------------------


def sample_times(T: float, L: int) -> torch.Tensor:
    """Midpoints (k + ½)·dt of L steps of dt = T/L (sample k is held over (k·dt, (k+1)·dt])  (L,)."""
    T = check_float("sample_times", "T", T, positive=True)
    L = check_int("sample_times", "L", L)
    return (torch.arange(L, dtype=F64) + 0.5) * (T / L)                   # (l,)


def step_at(t: float, T: float, L: int) -> int:
    """The index k of the last sample taken by time t: the memory c_k is the one at t_k = (k+1)·T/L ≤ t."""
    t = check_float("step_at", "t", t, positive=True)
    return min(L - 1, max(0, math.floor(t / (T / L) + 1e-9) - 1))


def relative_error(f_hat: torch.Tensor, f: torch.Tensor) -> float:
    """‖f̂ − f‖₂ / ‖f‖₂ (‖f̂‖₂ when f is zero)."""
    ref = float(f.norm())
    return float((f_hat - f).norm()) / (ref if ref > 0 else 1.0)


def history(signal, s: torch.Tensor) -> torch.Tensor:
    """The signal at times s (M,), 0 before time 0 (there is no history before the start)."""
    return torch.where(s >= 0, signal(s.clamp(min=0)), torch.zeros_like(s))  # (m,)


def hippo_window(signal, c: torch.Tensor, measure: str, t: float, theta: float = 1.0, M: int = 400):
    """Reconstruct the memory window at time t from the coefficients c (N,) taken then.

    Returns (s (M,), f (M,), f_hat (M,), (lo, t)): midpoints of the window [lo, t] (lo = 0 for LegS,
    t − θ otherwise), the signal there (0 before time 0: there is no history), its reconstruction.
    """
    check_int("hippo_window", "M", M)
    lo = 0.0 if measure == "legs" else t - theta
    s = lo + (torch.arange(M, dtype=F64) + 0.5) * ((t - lo) / M)          # (m,)
    f = history(signal, s)                                                # (m,)
    f_hat = hippo.hippo_reconstruct(c.to(F64), measure, t, s, theta=theta)  # (m,)
    return s, f, f_hat, (lo, t)


def hippo_memories(signal, measure: str, Ns, T: float, L: int, theta: float = 1.0) -> dict:
    """{N: c (L, N)}: the online coefficients of `signal` sampled L times over [0, T], for each N in Ns.

    LegS projects once with the largest N and keeps the first n coefficients for each n: its A is
    lower triangular, so c_0 … c_{n−1} never depend on the later ones (chapter 03 checks this).
    LegT and FouT project once per N.
    """
    Ns = sorted({check_int("hippo_memories", "Ns", int(n)) for n in Ns})
    dt = T / check_int("hippo_memories", "L", L)
    f = signal(sample_times(T, L))                                        # (l,)
    if measure == "legs":
        c = hippo.hippo_project(f, measure, Ns[-1], dt)                   # (l, max N)
        return {n: c[:, :n] for n in Ns}                                  # (l, n) each
    return {n: hippo.hippo_project(f, measure, n, dt, theta=theta) for n in Ns}  # (l, n) each


def hippo_errors_vs_N(signal, memories: dict, measure: str, t: float, T: float, theta: float = 1.0) -> dict:
    """{N: relative error of the window reconstructed at time t} from memories {N: c (L, N)} over [0, T]."""
    errors = {}
    for n, c in memories.items():
        L = c.shape[0]
        k = step_at(t, T, L)
        _, f, f_hat, _ = hippo_window(signal, c[k], measure, (k + 1) * T / L, theta)
        errors[n] = relative_error(f_hat, f)
    return errors


__all__ = ["SYSTEMS", "INPUTS", "TOKEN_INPUTS", "System", "make_system", "make_input", "lti_states", "LTIRun",
           "run_lti", "lti_cost", "sample_times", "step_at",
           "relative_error", "history", "hippo_window", "hippo_memories", "hippo_errors_vs_N"]
