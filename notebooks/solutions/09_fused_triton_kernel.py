"""Reference solutions for notebook 09 (a fused selective scan in Triton), with plausible wrong
answers for the tests. The kernels run on a CUDA GPU, or on a CPU under TRITON_INTERPRET=1 (set
before this file is imported, as `make test` does)."""

import triton
import triton.language as tl

from mamba_edu.exercises.triton import check_add_kernel, check_discretise_kernel, check_scan_kernel

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


EXERCISES = [
    (check_add_kernel, add_kernel, [add_kernel_no_mask, add_kernel_first_block_only, add_kernel_subtracts]),
    (check_discretise_kernel, discretise_kernel,
     [discretise_kernel_no_softplus, discretise_kernel_mask_d_only, discretise_kernel_row_stride_block]),
    (check_scan_kernel, scan_kernel,
     [scan_kernel_output_before_update, scan_kernel_no_batch_offset, scan_kernel_no_delta_on_input]),
]
