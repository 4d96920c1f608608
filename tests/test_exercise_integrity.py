"""Exercises a learner cannot pass without doing them: while a check runs the learner's function, the
library functions that answer it are switched off, and where the exercise teaches a method the check
proves the method. For every exercise: the reference passes (tests/test_exercises.py), an answer that calls
the library fails saying to write it, and (where a method is taught) a right answer by the wrong method
fails saying why. Answers here are plain `def`s, as a learner writes them in a cell."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from mamba_edu import cost as cost_lib
from mamba_edu import iomodel, machine, ssd
from mamba_edu.course import catalog
from mamba_edu.discretize import bilinear, zoh
from mamba_edu.exercises import block, cost, discretization, hippo, lti, memory, scans, selection, tasks
from mamba_edu.exercises import mamba3 as m3_checks
from mamba_edu.exercises import ssd as ssd_checks
from mamba_edu.exercises import triton as triton_checks
from mamba_edu.exercises._core import Blocked, switched_off
from mamba_edu.hippo import hippo_legs, hippo_reconstruct
from mamba_edu.lti import causal_conv, lti_kernel, s4d_kernel
from mamba_edu.models import MambaBlock
from mamba_edu.scan import combine as library_combine
from mamba_edu.scan import scan_hillis_steele, scan_sequential
from mamba_edu.train import answer_metrics

# ----------------------------------------------------------------------------------------------
# Answers that call the library
# ----------------------------------------------------------------------------------------------


def trapezoid_lib(H, x_prev, B_prev, x, B, dt, adt, lam):
    from mamba_edu import mamba3

    alpha, beta, gamma = mamba3.trapezoid_coefficients(dt, adt, lam)
    return alpha * H + beta * torch.outer(x_prev, B_prev) + gamma * torch.outer(x, B)


def rotate_lib(v, theta):
    from mamba_edu import mamba3

    return mamba3.rotate(v, theta)


def tiled_lib(u, delta, A, B, C, BLOCK_D):
    from mamba_edu.selective import selective_scan_ref

    return selective_scan_ref(u, delta, A, B, C)


def chunked_lib(a, b, T):
    return scan_sequential(a, b)


def scan_backward_lib(a, b, checkpoints, grad_h, K):
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    return torch.autograd.grad(scan_sequential(a, b), [a, b], grad_h)


def kv_lib(n_layers, n_heads, head_dim, L, batch, s):
    return cost_lib.kv_cache_bytes(n_layers, n_heads, head_dim, L, batch=batch, bytes_per_element=s)


def ssm_step_lib(h, delta, A, B, C, u):
    from mamba_edu.selective import selective_scan_ref

    y, h_new = selective_scan_ref(u[None, :, None], delta[None, :, None], A, B[None, :, None], C[None, :, None],
                                  return_last_state=True)
    return y[0, :, 0], h_new[0] + torch.exp(delta[:, None] * A) * h


def max_len_lib(budget, n_heads, batch, s):
    return cost_lib.max_attention_length(budget, n_heads=n_heads, batch=batch, bytes_per_element=s)


def zoh_lib(A, B, dt):
    return zoh(A, B, dt, diagonal=True)


def bilinear_lib(A, B, dt):
    return bilinear(A, B, dt)


def legs_lib(N):
    return hippo_legs(N)


def reconstruct_lib(c, x):
    return hippo_reconstruct(c, "legs", 1.0, x)


def quadrature_lib(f_mid, N):
    return hippo.legs_quadrature_reference(f_mid, N)


def powers_lib(Ab, Bb, C, L):
    return lti_kernel(Ab[None], Bb[None], C[None], L)[0]


def vandermonde_lib(A, B, C, dt, L):
    return s4d_kernel(A, B, C, dt, L)


def conv_lib(u, K):
    return causal_conv(u, K)


def accuracy_lib(logits, targets):
    _, tok, seq = answer_metrics(logits, targets)
    return tok, seq


def s6_params_lib(s6, x):
    _, B, C = s6.projections(x)
    return s6.delta(x), B, C


def gated_rnn_lib(u, s):
    return selection.gated_rnn_reference(u, s)


def loopless_lib(delta, A, Bu):
    return scan_sequential(torch.exp(delta[:, None, :] * A[:, :, None]), Bu)


def combine_lib(left, right):
    return library_combine(left, right)


def hillis_steele_cost_lib(L):
    ones = torch.ones(L, dtype=torch.float64)
    _, st = scan_hillis_steele(ones, ones, stats=True)
    return st.work, st.depth


def blelloch_lib(a, b, combine):
    combine((a[..., :1], b[..., :1]), (a[..., :1], b[..., :1]))  # one call, to look busy
    return scan_sequential(a, b)


def sram_gap_lib(spec):
    total = machine.on_chip_sram_bytes(spec, registers=False)
    return total, machine.orders_of_magnitude(spec.hbm_bytes, total)


def materialised_lib(b, d, L, N):
    s = iomodel.ScanShape(b, d, L, N)
    return iomodel.materialised_bytes(s) - iomodel.min_bytes(s)


def attainable_lib(intensity, peak, bandwidth):
    return iomodel.attainable(intensity, peak, bandwidth)


def parameters_lib(d_model, d_state, d_conv, expand, dt_rank):
    return sum(p.numel() for p in MambaBlock(d_model, d_state=d_state, d_conv=d_conv, expand=expand,
                                             dt_rank=dt_rank).parameters())


def mamba_step_lib(blk, x, conv, h):
    out, (conv, h) = blk.step(x, (conv, h))
    return out, conv, h


def greedy_lib(model, prompt, n_new):
    return block.greedy_reference(model, prompt, n_new)


def segsum_lib(x):
    return ssd.segsum(x)


def semiseparable_lib(dt, A, B, C):
    return ssd.semiseparable_matrix(dt[None, :, None], torch.tensor([A], dtype=dt.dtype), B[None], C[None])[0, 0]


def chunk_states_lib(Xb, log_a, B):
    return ssd.ssd_chunk_states(Xb[None, :, :, None], log_a[None, None], B[None, :, :, None])[0, :, 0]


# ----------------------------------------------------------------------------------------------
# Right answers by the wrong method
# ----------------------------------------------------------------------------------------------


def powers_by_matrix_power(Ab, Bb, C, L):
    return torch.stack([C @ torch.linalg.matrix_power(Ab, l) @ Bb for l in range(L)])


def vandermonde_by_loop(A, B, C, dt, L):
    dA = dt * A
    Bb = (torch.exp(dA) - 1) / A * B
    K = torch.stack([(C * Bb * torch.exp(l * dA)).sum(-1) for l in range(L)], dim=-1)
    return 2 * K.real if A.is_complex() else K


def conv_direct(u, K):
    L = u.shape[-1]
    y = torch.zeros_like(u)
    for j in range(L):
        y[..., j:] += K[:, j, None] * u[..., : L - j]
    return y


def conv_by_conv1d(u, K):
    L = u.shape[-1]
    x = u.reshape(-1, *u.shape[-2:])
    y = F.conv1d(F.pad(x, (L - 1, 0)), K.flip(-1)[:, None], groups=K.shape[0])
    return y.reshape(u.shape)


def loopless_with_a_loop(delta, A, Bu):
    h, out = torch.zeros_like(Bu[..., 0]), []
    for t in range(delta.shape[-1]):
        h = torch.exp(delta[:, t, None] * A) * h + Bu[..., t]
        out.append(h)
    return torch.stack(out, dim=-1)


def blelloch_own_loop(a, b, combine):
    """Computes a·h + b itself and calls combine once per level on nothing useful."""
    L = a.shape[-1]
    for _ in range(2 * int(math.log2(L)) - 1):
        combine((a[..., :1], b[..., :1]), (a[..., :1], b[..., :1]))
    h, out = torch.zeros_like(b[..., 0]), []
    for t in range(L):
        h = a[..., t] * h + b[..., t]
        out.append(h)
    return torch.stack(out, dim=-1)


def greedy_full_forward(model, prompt, n_new):
    tokens = prompt
    for _ in range(n_new):
        tokens = torch.cat([tokens, model(tokens)[:, -1].argmax(-1)[:, None]], dim=1)
    return tokens


def greedy_replays_prefix(model, prompt, n_new):
    """Right tokens, but a fresh state each time: the whole prefix goes through step again."""
    tokens = prompt
    for _ in range(n_new):
        state = model.init_state(prompt.shape[0])
        for t in range(tokens.shape[1]):
            logits, state = model.step(tokens[:, t], state)
        tokens = torch.cat([tokens, logits.argmax(-1)[:, None]], dim=1)
    return tokens


# {exercise: (check, answer that calls the library, [(right answer by a wrong method, words its message holds)])}
SHORTCUTS = {
    "kv_cache_bytes": (cost.check_kv_cache_bytes, kv_lib, []),
    "ssm_step": (cost.check_ssm_step, ssm_step_lib, []),
    "max_attention_length": (cost.check_max_attention_length, max_len_lib, []),
    "zoh_diagonal": (discretization.check_zoh_diagonal, zoh_lib, []),
    "bilinear_2x2": (discretization.check_bilinear_2x2, bilinear_lib, []),
    "legs_matrices": (hippo.check_legs_matrices, legs_lib, []),
    "legs_reconstruct": (hippo.check_legs_reconstruct, reconstruct_lib, []),
    "legs_quadrature": (hippo.check_legs_quadrature, quadrature_lib, []),
    "kernel_by_powers": (lti.check_kernel_by_powers, powers_lib, [(powers_by_matrix_power, "matrix_power")]),
    "s4d_vandermonde": (lti.check_s4d_vandermonde, vandermonde_lib, [(vandermonde_by_loop, "list comprehension")]),
    "causal_fft_conv": (lti.check_causal_fft_conv, conv_lib, [(conv_direct, "calls no FFT"),
                                                              (conv_by_conv1d, "it uses conv1d")]),
    "answer_accuracy": (tasks.check_answer_accuracy, accuracy_lib, []),
    "s6_params": (selection.check_s6_params, s6_params_lib, []),
    "gated_rnn": (selection.check_gated_rnn, gated_rnn_lib, []),
    "states_without_a_loop": (selection.check_states_without_a_loop, loopless_lib,
                              [(loopless_with_a_loop, "for loop")]),
    "combine": (scans.check_combine, combine_lib, []),
    "hillis_steele_cost": (scans.check_hillis_steele_cost, hillis_steele_cost_lib, []),
    "blelloch_scan": (scans.check_blelloch_scan, blelloch_lib, [(blelloch_own_loop, "built from `combine` alone")]),
    "sram_gap": (memory.check_sram_gap, sram_gap_lib, []),
    "materialised_bytes": (memory.check_materialised_bytes, materialised_lib, []),
    "attainable": (memory.check_attainable, attainable_lib, []),
    "block_parameter_count": (block.check_block_parameters, parameters_lib, []),
    "mamba_step": (block.check_mamba_step, mamba_step_lib, []),
    "greedy_generate": (block.check_greedy_generate, greedy_lib, [(greedy_full_forward, "switched off"),
                                                                  (greedy_replays_prefix, "a new state forgets the past")]),
    "segsum": (ssd_checks.check_segsum, segsum_lib, []),
    "semiseparable_matrix": (ssd_checks.check_semiseparable_matrix, semiseparable_lib, []),
    "chunk_states": (ssd_checks.check_chunk_states, chunk_states_lib, []),
    "trapezoid_update": (m3_checks.check_trapezoid_update, trapezoid_lib, []),
    "rotate_pairs": (m3_checks.check_rotate_pairs, rotate_lib, []),
    "tiled_scan": (triton_checks.check_tiled_scan, tiled_lib, []),
    "chunked_states": (triton_checks.check_chunked_states, chunked_lib, []),
    "scan_backward": (triton_checks.check_scan_backward, scan_backward_lib, []),
}
# exercises no library function answers (the learner's own reasoning, or a Triton kernel)
# (mimo_update: the library's MIMO path lives inside mamba3_step; its check switches mamba_edu.mamba3 off
# like the other chapter-12 checks)
NO_LIBRARY_ANSWER = {"largest_stable_euler_step", "copy_by_content", "induction_lookup",
                     "add_kernel", "discretise_kernel", "scan_kernel", "mimo_update"}


def test_every_exercise_is_covered():
    names = {e.name for stem in (p.stem for p in catalog.chapters().values()) for e in catalog.exercises(stem)}
    assert names == set(SHORTCUTS) | NO_LIBRARY_ANSWER
    assert not set(SHORTCUTS) & NO_LIBRARY_ANSWER


@pytest.mark.parametrize("name", sorted(SHORTCUTS))
def test_calling_the_library_fails_and_says_to_write_it(name):
    check, lib, _ = SHORTCUTS[name]
    v = check(lib, quiet=True)
    assert not v.passed and v.attempted
    # three switch-offs say it in their words (exercises/_core, _blocking for chapter 09's ladder, chapter 12's)
    assert re.search(r"(write|compute) it yourself", v.message, re.IGNORECASE), v.message


@pytest.mark.parametrize("name,wrong", [(n, w) for n, (_, _, ws) in sorted(SHORTCUTS.items()) for w in ws],
                         ids=lambda x: x if isinstance(x, str) else x[0].__name__)
def test_the_wrong_method_fails_and_says_why(name, wrong):
    check = SHORTCUTS[name][0]
    answer, words = wrong
    v = check(answer, quiet=True)
    assert not v.passed and v.attempted
    assert words in v.message, v.message


def test_switched_off_covers_references_taken_earlier_and_comes_back():
    k = s4d_kernel  # a learner's `from mamba_edu.lti import s4d_kernel as k`, taken before the check
    A = -torch.ones(1, 2, dtype=torch.float64)
    with switched_off([s4d_kernel], "s4d_vandermonde"):
        with pytest.raises(Blocked, match="s4d_kernel"):
            k(A, A, A, 0.1, 3)
    assert k(A, A, A, 0.1, 3).shape == (1, 3)  # back after the check


def test_a_check_leaves_the_library_working():
    lti.check_s4d_vandermonde(vandermonde_lib, quiet=True)
    A = -torch.ones(1, 2, dtype=torch.float64)
    assert s4d_kernel(A, A, A, 0.1, 3).shape == (1, 3)
    assert MambaBlock(4, d_state=2).step is not None
