"""Reference solutions for notebook 09 (a fused selective scan in Triton), with plausible wrong
answers for the tests. The kernels run on a CUDA GPU, or on a CPU under TRITON_INTERPRET=1 (set
before this file is imported, as `make test` does)."""

import triton
import triton.language as tl

import torch

import mamba_edu
from mamba_edu.exercises.triton import (check_add_kernel, check_chunked_states, check_discretise_kernel,
                                       check_scan_backward, check_scan_kernel, check_tiled_scan)
from mamba_edu.scan import scan_chunked

# Exercise 1: vector addition with a mask ---------------------------------------------------


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,) this program's elements
    mask = offs < n  # the last block may run past the end
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)


@triton.jit
def add_kernel_no_mask(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs) + tl.load(y_ptr + offs))


@triton.jit
def add_kernel_first_block_only(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)  # every program handles the same block
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


@triton.jit
def add_kernel_subtracts(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) - tl.load(y_ptr + offs, mask=mask), mask=mask)


# Exercise 2: discretisation on a 2-D tile --------------------------------------------------


@triton.jit
def discretise_kernel(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,)
    offs_n = tl.arange(0, BLOCK_N)  # (BN,)
    mask_d = offs_d < dim
    mask = mask_d[:, None] & (offs_n < N)[None, :]  # (BD, BN)
    x = tl.load(delta_ptr + offs_d, mask=mask_d, other=0.0) + tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    dt = tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)  # softplus, linear above 20
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask, other=0.0)  # (BD, BN)
    tl.store(out_ptr + offs_d[:, None] * N + offs_n[None, :], tl.exp(dt[:, None] * A), mask=mask)


@triton.jit
def discretise_kernel_no_softplus(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N, BLOCK_D: tl.constexpr,
                                  BLOCK_N: tl.constexpr):
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask = mask_d[:, None] & (offs_n < N)[None, :]
    dt = tl.load(delta_ptr + offs_d, mask=mask_d, other=0.0) + tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + offs_d[:, None] * N + offs_n[None, :], tl.exp(dt[:, None] * A), mask=mask)


@triton.jit
def discretise_kernel_mask_d_only(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N, BLOCK_D: tl.constexpr,
                                  BLOCK_N: tl.constexpr):
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask = mask_d[:, None] & (offs_n >= 0)[None, :]  # forgets that BLOCK_N may exceed N
    x = tl.load(delta_ptr + offs_d, mask=mask_d, other=0.0) + tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    dt = tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + offs_d[:, None] * N + offs_n[None, :], tl.exp(dt[:, None] * A), mask=mask)


@triton.jit
def discretise_kernel_row_stride_block(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N, BLOCK_D: tl.constexpr,
                                       BLOCK_N: tl.constexpr):
    offs_d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask = mask_d[:, None] & (offs_n < N)[None, :]
    x = tl.load(delta_ptr + offs_d, mask=mask_d, other=0.0) + tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0)
    dt = tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)
    # rows of A are N apart in memory, not BLOCK_N
    A = tl.load(A_ptr + offs_d[:, None] * BLOCK_N + offs_n[None, :], mask=mask, other=0.0)
    tl.store(out_ptr + offs_d[:, None] * BLOCK_N + offs_n[None, :], tl.exp(dt[:, None] * A), mask=mask)


# Exercise 3: the selective scan, one time step per iteration -------------------------------


@triton.jit
def scan_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N,
                BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_b = tl.program_id(0)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,) this program's channels
    offs_n = tl.arange(0, BLOCK_N)  # (BN,)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_d[:, None] & mask_n[None, :],
                other=0.0)  # (BD, BN), kept in registers
    row = pid_b * dim * L + offs_d * L  # (BD,) where u, delta, out of these channels start
    col = pid_b * N * L + offs_n * L  # (BN,) where B, C of this sequence start
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # the state, never written to memory
    for t in range(0, L):
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)  # (BD,)
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0)  # (BD,)
        Bt = tl.load(B_ptr + col + t, mask=mask_n, other=0.0)  # (BN,)
        Ct = tl.load(C_ptr + col + t, mask=mask_n, other=0.0)  # (BN,)
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]  # (BD, BN)
        tl.store(out_ptr + row + t, tl.sum(h * Ct[None, :], axis=1), mask=mask_d)


@triton.jit
def scan_kernel_output_before_update(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N,
                                     BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_b = tl.program_id(0)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_d[:, None] & mask_n[None, :], other=0.0)
    row = pid_b * dim * L + offs_d * L
    col = pid_b * N * L + offs_n * L
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for t in range(0, L):
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + col + t, mask=mask_n, other=0.0)
        Ct = tl.load(C_ptr + col + t, mask=mask_n, other=0.0)
        tl.store(out_ptr + row + t, tl.sum(h * Ct[None, :], axis=1), mask=mask_d)  # y from h_{t-1}
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]


@triton.jit
def scan_kernel_no_batch_offset(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N,
                                BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_d[:, None] & mask_n[None, :], other=0.0)
    row = offs_d * L  # every program reads and writes sequence 0
    col = offs_n * L
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for t in range(0, L):
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + col + t, mask=mask_n, other=0.0)
        Ct = tl.load(C_ptr + col + t, mask=mask_n, other=0.0)
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]
        tl.store(out_ptr + row + t, tl.sum(h * Ct[None, :], axis=1), mask=mask_d)


@triton.jit
def scan_kernel_no_delta_on_input(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N,
                                  BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_b = tl.program_id(0)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < N
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_d[:, None] & mask_n[None, :], other=0.0)
    row = pid_b * dim * L + offs_d * L
    col = pid_b * N * L + offs_n * L
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for t in range(0, L):
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        dt = tl.load(delta_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + col + t, mask=mask_n, other=0.0)
        Ct = tl.load(C_ptr + col + t, mask=mask_n, other=0.0)
        h = tl.exp(dt[:, None] * A) * h + u[:, None] * Bt[None, :]  # B·u without Δ
        tl.store(out_ptr + row + t, tl.sum(h * Ct[None, :], axis=1), mask=mask_d)


# Exercise 4: the launch, tiled over channels ----------------------------------------------------


def tiled_scan(u, delta, A, B, C, BLOCK_D):
    batch, dim, L = u.shape
    N = A.shape[1]
    out = torch.empty(batch, dim, L, device=u.device, dtype=torch.float32)  # (batch, dim, L)
    grid = (batch, triton.cdiv(dim, BLOCK_D))  # every channel block, the last one ragged
    scan_kernel[grid](u, delta, A, B, C, out, dim, L, N, BLOCK_D=BLOCK_D, BLOCK_N=triton.next_power_of_2(N))
    return out


def tiled_scan_floor_grid(u, delta, A, B, C, BLOCK_D):
    batch, dim, L = u.shape
    N = A.shape[1]
    out = torch.full((batch, dim, L), -12345.0, device=u.device)  # what was never written shows
    scan_kernel[(batch, dim // BLOCK_D)](u, delta, A, B, C, out, dim, L, N, BLOCK_D=BLOCK_D,
                                         BLOCK_N=triton.next_power_of_2(N))  # drops the ragged last block
    return out


def tiled_scan_calls_the_library(u, delta, A, B, C, BLOCK_D):
    return mamba_edu.selective_scan(u, delta, A, B, C, impl="triton_simple")  # not the exercise


# Exercise 5: chunks of time with a carried state ----------------------------------------------


def chunked_states(a, b, T):
    L = a.shape[-1]
    h_carry = torch.zeros(a.shape[:-1], dtype=a.dtype)  # (...)
    out = []
    for s in range(0, L, T):
        ac, bc = a[..., s:s + T], b[..., s:s + T]  # (..., T') this chunk
        P = torch.cumprod(ac, dim=-1)  # (..., T'): a_s·…·a_t inside the chunk
        h_local = torch.zeros_like(bc)  # (..., T'): the chunk's states from zero
        h = torch.zeros(a.shape[:-1], dtype=a.dtype)
        for t in range(ac.shape[-1]):
            h = ac[..., t] * h + bc[..., t]
            h_local[..., t] = h
        hc = P * h_carry[..., None] + h_local  # (..., T'): the carry enters in one multiply-add
        out.append(hc)
        h_carry = hc[..., -1]  # the chunk's last state
    return torch.cat(out, dim=-1)


def chunked_states_from_zero(a, b, T):
    out = []
    for s in range(0, a.shape[-1], T):
        ac, bc = a[..., s:s + T], b[..., s:s + T]
        h, hs = torch.zeros(a.shape[:-1], dtype=a.dtype), []
        for t in range(ac.shape[-1]):
            h = ac[..., t] * h + bc[..., t]
            hs.append(h)
        out.append(torch.stack(hs, -1))  # no carry: every chunk starts from zero
    return torch.cat(out, dim=-1)


def chunked_states_first_as_carry(a, b, T):
    h_carry = torch.zeros(a.shape[:-1], dtype=a.dtype)
    out = []
    for s in range(0, a.shape[-1], T):
        ac, bc = a[..., s:s + T], b[..., s:s + T]
        P = torch.cumprod(ac, dim=-1)
        h, hs = torch.zeros(a.shape[:-1], dtype=a.dtype), []
        for t in range(ac.shape[-1]):
            h = ac[..., t] * h + bc[..., t]
            hs.append(h)
        hc = P * h_carry[..., None] + torch.stack(hs, -1)
        out.append(hc)
        h_carry = hc[..., 0]  # the chunk's FIRST state
    return torch.cat(out, dim=-1)


def chunked_states_calls_the_library(a, b, T):
    return scan_chunked(a, b, chunk=T)


# Exercise 6: the backward, recomputing from checkpoints -----------------------------------------


def scan_backward(a, b, checkpoints, grad_h, K):
    L = a.shape[-1]
    grad_a, grad_b = torch.zeros_like(a), torch.zeros_like(b)
    g_next = torch.zeros(a.shape[:-1], dtype=a.dtype)  # g_{t+1}
    a_next = torch.zeros(a.shape[:-1], dtype=a.dtype)  # a_{t+1} (0 after the last step)
    starts = list(range(0, L, K))
    for s in reversed(starts):  # chunks from the last to the first
        e = min(s + K, L)
        c = s // K  # the checkpoint before this chunk holds h_{s−1}
        h = checkpoints[..., c - 1] if c >= 1 else torch.zeros(a.shape[:-1], dtype=a.dtype)
        hs = [h]  # h_{s−1}, h_s, …, h_{e−1}: recomputed, never stored for the whole sequence
        for t in range(s, e):
            hs.append(a[..., t] * hs[-1] + b[..., t])
        for t in range(e - 1, s - 1, -1):
            g = grad_h[..., t] + a_next * g_next  # g_t = ∂loss/∂h_t + a_{t+1}·g_{t+1}
            grad_b[..., t] = g
            grad_a[..., t] = g * hs[t - s]  # h_{t−1}
            g_next, a_next = g, a[..., t]
    return grad_a, grad_b


def scan_backward_uses_h_t(a, b, checkpoints, grad_h, K):
    L = a.shape[-1]
    h, hs = torch.zeros(a.shape[:-1], dtype=a.dtype), []
    for t in range(L):
        h = a[..., t] * h + b[..., t]
        hs.append(h)
    grad_a, grad_b = torch.zeros_like(a), torch.zeros_like(b)
    g_next = a_next = torch.zeros(a.shape[:-1], dtype=a.dtype)
    for t in range(L - 1, -1, -1):
        g = grad_h[..., t] + a_next * g_next
        grad_b[..., t], grad_a[..., t] = g, g * hs[t]  # h_t, not h_{t−1}
        g_next, a_next = g, a[..., t]
    return grad_a, grad_b


def scan_backward_chunks_from_zero(a, b, checkpoints, grad_h, K):
    L = a.shape[-1]
    grad_a, grad_b = torch.zeros_like(a), torch.zeros_like(b)
    g_next = a_next = torch.zeros(a.shape[:-1], dtype=a.dtype)
    for s in reversed(range(0, L, K)):
        e = min(s + K, L)
        hs = [torch.zeros(a.shape[:-1], dtype=a.dtype)]  # ignores the checkpoint: the chunk starts from zero
        for t in range(s, e):
            hs.append(a[..., t] * hs[-1] + b[..., t])
        for t in range(e - 1, s - 1, -1):
            g = grad_h[..., t] + a_next * g_next
            grad_b[..., t], grad_a[..., t] = g, g * hs[t - s]
            g_next, a_next = g, a[..., t]
    return grad_a, grad_b


def scan_backward_same_step_decay(a, b, checkpoints, grad_h, K):
    ga, gb = scan_backward(torch.roll(a, -1, dims=-1), b, checkpoints, grad_h, K)  # a_t where a_{t+1} belongs
    return ga, gb


EXERCISES = [
    (check_add_kernel, add_kernel, [add_kernel_no_mask, add_kernel_first_block_only, add_kernel_subtracts]),
    (check_discretise_kernel, discretise_kernel,
     [discretise_kernel_no_softplus, discretise_kernel_mask_d_only, discretise_kernel_row_stride_block]),
    (check_scan_kernel, scan_kernel,
     [scan_kernel_output_before_update, scan_kernel_no_batch_offset, scan_kernel_no_delta_on_input]),
    (check_tiled_scan, tiled_scan, [tiled_scan_floor_grid, tiled_scan_calls_the_library]),
    (check_chunked_states, chunked_states,
     [chunked_states_from_zero, chunked_states_first_as_carry, chunked_states_calls_the_library]),
    (check_scan_backward, scan_backward,
     [scan_backward_uses_h_t, scan_backward_chunks_from_zero, scan_backward_same_step_decay]),
]
