"""The fused selective scan in Triton: forward and backward, state never written to HBM.

Read `selective_scan_simple.py` first: the same recurrence, one time step per iteration. Two
forwards live here, and `fused_op.config` picks one per shape (measured on an H100:
results/bench/NOTES.md). They differ in what the 32 lanes of a warp share out among themselves.

- `_fwd_seq_kernel`: the lanes share out the CHANNELS. The teaching loop, one lane per channel
  (or LANES lanes per channel, each with n/LANES of its state entries) and the state in registers,
  time in order. It executes the fewest instructions (exp2 and three multiply-adds per state entry
  and step), but a warp covers 32/LANES channels, so b·d·LANES/32 warps must fill the GPU: more
  lanes per channel when there are few channels. What makes it fast is moving data well: u, Δ, z
  and out travel K steps at a time (16 bytes per lane), and so do the rows of B and C (K steps of
  each of a lane's entries), all loaded one K-step block ahead of their use; every tile has the
  axes (step, channel, lane part, entry), so that Triton gives them one layout and moves no value
  from one lane to another (a layout conversion through shared memory) except the shuffles that
  add up y.
- `_fwd_lscan_kernel`: the lanes share out TIME. A program takes BLOCK_L time steps of
  BLOCK_D channels as (BLOCK_D, BLOCK_L) tiles, each lane a run of consecutive steps (the way
  the official CUDA kernel is organised), and for each state entry n solves the chunk's
  recurrence h_t = a_t·h_{t-1} + b_t, a_t = exp(Δ_t·A), b_t = Δ_t·B_t·u_t, with
  `tl.associative_scan` and the first-order operator (a1, b1) ⊕ (a2, b2) = (a1·a2, a2·b1 + b2)
  (chapter 07): a plain loop inside each lane, shuffles only for the lanes' totals. The state
  carried in from the previous chunk enters as h_t = (Π_{s≤t} a_s)·h_carry + h_t|0. More
  instructions per element (the scan's shuffles), but b·d programs: the default when b·d is small.

Per program and chunk (lscan), or per K steps (seq):

    HBM → registers   u, Δ, z; B, C rows (shared by the channels of a group: from L1/L2)
    on chip           softplus, a = exp2(Δ·A·log2 e), b = Δ·u·B, the recurrence,
                      y = Σ_n C·h, out = (y + D·u)·silu(z)
    registers → HBM   out; for training, the state every BLOCK_L steps (a checkpoint 1/BLOCK_L
                      the size of all states) and y + D·u (the backward's gate needs it)

Two backwards, each recomputing the states from the forward's checkpoints (`_bwd_seq_kernel`
after the seq forward when N <= 32: checkpoints every K steps; `_bwd_lscan_kernel` otherwise:
every BLOCK_L = 64 steps) and running the adjoint recurrence backwards in time:

    g_t = ∂loss/∂h_t = C_t·dy_t + a_{t+1}·g_{t+1}

Every gradient is a sum of products of g with things already on chip:

    ∂/∂b_t = g_t                    →  du_t = Δ_t Σ_n g B_t,   dB_t = Σ_d g Δ_t u_t
    ∂/∂a_t = g_t·h_{t-1}, and a_t·h_{t-1} = h_t − b_t  (no shift needed)
                                    →  dA = Σ_{b,t} Δ_t g_t (h_t − b_t),
                                       dΔ_t = Σ_n g (B_t u_t + A (h_t − b_t))
    y_t = Σ_n C h                   →  dC_t = Σ_d dy_t h_t

- `_bwd_seq_kernel` (after the seq forward, N <= 32: `fused_op.SEQ_BWD_MAX_N`): the seq forward's tiles, blocks
  of K steps from the last to the first; the block's K states recomputed into registers, the
  adjoint walked back through them in the lane (g carried in registers from block to block: no
  scan, no shuffles), then each gradient is a product of tiles summed along one axis.
- `_bwd_lscan_kernel` (lscan's layout): chunks last to first, per state entry a forward scan for
  the states and a reverse scan for g (`tl.associative_scan(reverse=True)`, which Triton does
  with butterfly shuffles).

dA, dD and d(delta_bias) (summed over the batch and time) are reduced on chip per program. dB
and dC are summed over the program's BLOCK_D channels on chip, then
- seq: by a reduce-scatter across the lanes (`_sum_scatter`: each lane ends with a share of the
  sums, in 28 shuffles for 32 values over 8 lanes where a butterfly needs 96) and added with atomic
  adds into one (b, g, N, L) float32 tensor: no partials to write and read back, but the order of
  the additions, and so the last bits of dB and dC, vary from run to run;
- lscan: written as per-program partials, (b, d/4, N, L), that PyTorch adds up per group
  (deterministic).
No (batch, dim, L, N) tensor is ever written.
"""

from __future__ import annotations

import triton
import triton.language as tl



@triton.jit
def first_order_combine(a1, b1, a2, b2):
    """(a1, b1) then (a2, b2): the map h → a2·(a1·h + b1) + b2."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _only_if(mask, cond):
    """mask where the scalar condition cond holds, else all False: `mask & cond`, written as a select
    (Triton 3.9's interpreter with NumPy 2.4 broadcasts a scalar boolean to int32, which a masked load
    then refuses: "mask has unsupported dtype"). The same instructions on a GPU."""
    return tl.where(cond, mask, False)


@triton.jit
def _hw(x, OP: tl.constexpr):
    """The GPU's bare approximate instruction OP ("ex2", "lg2" or "rcp") on float32 x, results below
    2^-126 flushed to 0: one instruction, where the exact versions add a sequence around it. Inline
    PTX: a GPU only (the interpreter on a CPU cannot run it)."""
    return tl.inline_asm_elementwise(OP + ".approx.ftz.f32 $0, $1;", "=f,f", [x], dtype=tl.float32,
                                     is_pure=True, pack=1)


@triton.jit
def _exp2(x, FAST: tl.constexpr):
    """2^x; FAST: the hardware instruction (a decay below 2^-126 is 0 for the state anyway)."""
    if FAST:
        return _hw(x, "ex2")
    else:
        return tl.exp2(x)


@triton.jit
def _log2(x, FAST: tl.constexpr):
    """log2(x); FAST: the hardware instruction (absolute error ~2^-22 near 1), not the exact
    logarithm's ~20 instructions."""
    if FAST:
        return _hw(x, "lg2")
    else:
        return tl.log2(x)


@triton.jit
def _softplus(x, FAST: tl.constexpr):
    """softplus(x) by the official kernel's rule: log1p(e^x) for x <= 20, x itself above.

    Not log(1 + e^x) as written: in fp32, 1 + e^x rounds to 1 below x ≈ -16.6 and the log is then
    exactly 0 (so Δ, and with it dA, dB, dC, vanish), and it loses digits well before. With y = e^x
    and w = 1 + y (rounded):
        x < -3:   log1p(y) = y − y²/2 + y³/3 − y⁴/4 + …   (y < 0.05: the rest is < 2e-6 of it)
        else:     log1p(y) = ln w − ((w − 1) − y)/w        (ln w corrected for the rounding of 1 + y)
    FAST (hardware ex2 and lg2): without the correction, as lg2's own error (~2^-22 near 1) is as large:
    relative error < 5e-6 for x >= -3. Four FMAs and a select more than log(1 + e^x), once per
    (channel, step), not per state entry."""
    y = _exp2(tl.minimum(x, 20.0) * 1.4426950408889634, FAST)  # e^x; the min keeps it finite
    series = y * (1.0 - y * (0.5 - y * (0.3333333333333333 - 0.25 * y)))
    w = 1.0 + y
    logw = 0.6931471805599453 * _log2(w, FAST)
    if not FAST:
        logw -= ((w - 1.0) - y) / w
    return tl.where(x > 20.0, x, tl.where(x < -3.0, series, logw))


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    """1 / (1 + e^-x). FAST: hardware exp2 and an approximate reciprocal (no division sequence)."""
    if FAST:
        return _hw(1.0 + _exp2(x * -1.4426950408889634, FAST), "rcp")
    else:
        return tl.sigmoid(x)


# ----------------------------------------------------------------------------------------------
# Lanes sharing work: a sum that leaves each lane a share of the result
# ----------------------------------------------------------------------------------------------


@triton.jit
def _halve_and_add(x, c, M: tl.constexpr):
    """One step of a reduce-scatter along axis 0 of x (R, Q, S), whose rows c lie across lanes: rows c
    and c XOR M add up their values and each keeps half of the sums, the row with bit M set the second
    half. (R, Q, S) → (R, Q, S/2). The partner's half arrives by `tl.gather` along axis 0, which
    Triton turns into one shuffle per value when the rows are lanes of one warp: S/2 shuffles, where a
    butterfly (every row keeps every sum, `tl.sum`) needs S."""
    R: tl.constexpr = x.shape[0]
    Q: tl.constexpr = x.shape[1]
    S: tl.constexpr = x.shape[2]
    first, second = tl.split(tl.permute(tl.reshape(x, (R, Q, 2, S // 2)), (0, 1, 3, 2)))  # registers only
    upper = (c & M) != 0  # (R, 1, 1)
    send = tl.where(upper, first, second)  # the half the partner keeps
    return tl.where(upper, second, first) + tl.gather(send, tl.broadcast_to(c ^ M, send.shape), axis=0)


@triton.jit
def _sum_scatter(x, c):
    """Σ of x (R, Q, S) over axis 0 (c: the row, (R, 1, 1); R <= 32 rows across the lanes of a warp,
    R <= S), as a reduce-scatter: row c ends with S/R of the sums, those at `_scatter_positions`."""
    R: tl.constexpr = x.shape[0]
    if R >= 2:
        x = _halve_and_add(x, c, 1)
    if R >= 4:
        x = _halve_and_add(x, c, 2)
    if R >= 8:
        x = _halve_and_add(x, c, 4)
    if R >= 16:
        x = _halve_and_add(x, c, 8)
    if R >= 32:
        x = _halve_and_add(x, c, 16)
    return x


@triton.jit
def _scatter_positions(c, R: tl.constexpr, S: tl.constexpr):
    """Where `_sum_scatter`'s S/R sums of row c come from along the summed tile's last axis (c: (R, 1, 1))
    → (R, 1, S/R): step M halves the axis and bit M of c picks the half, the first bit the largest."""
    f = tl.arange(0, S // R)[None, None, :]
    w: tl.constexpr = S // 2
    if R >= 2:
        f += (c & 1) * w
    if R >= 4:
        f += ((c >> 1) & 1) * (w // 2)
    if R >= 8:
        f += ((c >> 2) & 1) * (w // 4)
    if R >= 16:
        f += ((c >> 3) & 1) * (w // 8)
    if R >= 32:
        f += ((c >> 4) & 1) * (w // 16)
    return f


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------


@triton.jit
def _at(x, sel, NEG0):
    """x at the step `sel` marks along axis 0, a register choice inside the lane: a sum of x there and
    -0.0 everywhere else, which the compiler folds away (x + -0.0 is x for every x, while x + 0.0 is
    not: -0.0 + 0.0 = 0.0). NEG0 is -0.0 made from its bits: Triton turns the literal -0.0 into 0.0."""
    return tl.sum(tl.where(sel, x, NEG0), axis=0, keep_dims=True)


@triton.jit
def _bf16_pairs(w):
    """32-bit words that each hold two bf16 values (steps 2j and 2j + 1) → (the even steps, the odd steps)
    as float32. A bf16 is the top half of the float32 with the same value: one shift or one mask per
    value, where Triton's conversion moves the upper half down and back up (two instructions)."""
    return (w << 16).to(tl.float32, bitcast=True), (w & -65536).to(tl.float32, bitcast=True)


@triton.jit
def _step_of(x, x_odd, k: tl.constexpr, offs, NEG0, PAIRS: tl.constexpr):
    """Step k of a block: of x (K steps along axis 0), or with PAIRS of x (even steps) or x_odd (odd)."""
    if PAIRS:
        if k % 2 == 0:
            return _at(x, offs == k // 2, NEG0)
        else:
            return _at(x_odd, offs == k // 2, NEG0)
    else:
        return _at(x, offs == k, NEG0)


@triton.jit
def _load(p, mask, FULL: tl.constexpr):
    """A block of an input; FULL (every block whole: L a multiple of K, every channel and entry of the
    tiles real) needs no mask, and a masked load costs instructions (predicates, zeroed registers)."""
    if FULL:
        return tl.load(p)
    else:
        return tl.load(p, mask=mask, other=0.0)


@triton.jit
def _seq_step(h, dt_k, dtu_k, A2, B_k, C_k, FAST_EXP2: tl.constexpr):
    """One time step for the E state entries in every lane: (h, the lane's part of y)."""
    h = _exp2(dt_k * A2, FAST_EXP2) * h + dtu_k * B_k  # (1, BD, P, E)
    return h, tl.sum(h * C_k, axis=3, keep_dims=True)  # y: a sum inside the lane, (1, BD, P, 1)


@triton.jit
def _fwd_seq_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr, ckpt_ptr, pre_ptr,
    dim, L, N, dim_per_group, n_chunks,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_g, sB_n, sB_l, sC_b, sC_g, sC_n, sC_l,
    sz_b, sz_d, sz_l, so_b, so_d, so_l,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_CKPT: tl.constexpr, FAST_EXP2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, K: tl.constexpr, E: tl.constexpr, LANES: tl.constexpr,
    FULL: tl.constexpr, PAIRS: tl.constexpr, SHARE: tl.constexpr,
):
    """The teaching loop, laid out so that (almost) nothing is shared or shuffled: LANES lanes per channel.

    Every tile is 4-D, (K, BLOCK_D, LANES, E) or a slice of it with some sizes 1: K time steps and E
    state entries inside each lane, the channels and their LANES parts across the lanes. Lane part p
    of a channel holds state entries n = p·E + e. Every K steps a lane loads, for its channel, K
    contiguous steps of u, Δ and z (the LANES lanes of a channel load the same ones) and, for each
    of its E entries, K steps of B and C (rows of B and C are contiguous in time: no copy is
    needed; all channels of a program load the same ones, from L1; bf16 ones as 32-bit words of two
    steps with PAIRS, `_bf16_pairs`). These loads are issued one
    K-step block ahead of their use, so their latency hides behind the current block's arithmetic.
    Step k is then taken out of each tile inside the lane (a register choice: no instruction).
    exp2 and the update are per-lane arithmetic; y = Σ_n C·h is a sum inside the lane and then,
    for LANES > 1, across the channel's lanes (shuffles, once per K steps): with SHARE as a
    reduce-scatter (`_sum_scatter`), after which each lane applies the D skip and the gate to its own
    K/LANES steps and stores them (`fused_op.seq_shares_the_gate`), else as a butterfly that gives every
    lane every sum, and one lane per channel finishes them. LANES = 1 is the plain
    loop; more lanes per channel give the GPU LANES times as many warps for the same channels, for
    shapes with too few channels to keep it busy. Every BLOCK_L steps the state is written out as
    a checkpoint for the backward.
    """
    pid_b = tl.program_id(1).to(tl.int64)
    pid_d = tl.program_id(0).to(tl.int64)
    offs_k = tl.arange(0, K)[:, None, None, None]  # (K, 1, 1, 1): time steps of a block
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)[None, :, None, None]  # (1, BD, 1, 1)
    offs_p = tl.arange(0, LANES)[None, None, :, None]  # (1, 1, P, 1): the part of the state a lane holds
    offs_e = tl.arange(0, E)[None, None, None, :]  # (1, 1, 1, E)
    n = offs_p * E + offs_e  # (1, 1, P, E): the state entry
    mask_n = n < N
    mask_d = offs_d < dim  # (1, BD, 1, 1)
    grp = (pid_d * BLOCK_D) // dim_per_group
    one_lane = offs_p == 0  # (1, 1, P, 1): the lane that stores a channel's outputs

    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (1, BD, 1, 1)
    rows = offs_k + offs_p * 0  # (K, 1, P, 1): every lane of a channel reads its K steps
    u_p = u_ptr + pid_b * su_b + offs_d * su_d + rows * su_l  # (K, BD, P, 1)
    dt_p = dt_ptr + pid_b * sdt_b + offs_d * sdt_d + rows * sdt_l
    # what finishes y (the D skip, the gate) and where it goes
    if SHARE:  # shared out: lane part p finishes S = K/P of the K steps, (BD, P, S) tiles
        p3 = tl.arange(0, LANES)[:, None, None]  # (P, 1, 1)
        d_s = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)[:, None, None]  # (BD, 1, 1)
        f_s = tl.permute(_scatter_positions(p3, LANES, K), (1, 0, 2))  # (1, P, S): the lane's steps
        mask_ds = d_s < dim
        us_p = u_ptr + pid_b * su_b + d_s * su_d + f_s * su_l  # (BD, P, S)
        z_p = z_ptr + pid_b * sz_b + d_s * sz_d + f_s * sz_l
        o_p = out_ptr + pid_b * so_b + d_s * so_d + f_s * so_l
        p_p = pre_ptr + (pid_b * dim + d_s) * L + f_s
        if HAS_D:
            Dv = tl.load(D_ptr + d_s, mask=mask_ds, other=0.0).to(tl.float32)  # (BD, 1, 1)
    else:  # by every lane of a channel, for all K steps; one of them stores
        z_p = z_ptr + pid_b * sz_b + offs_d * sz_d + rows * sz_l  # (K, BD, P, 1)
        o_p = out_ptr + pid_b * so_b + offs_d * so_d + rows * so_l
        p_p = pre_ptr + (pid_b * dim + offs_d) * L + rows
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (1, BD, 1, 1)
    # (K, BD, P, E): K steps of the lane's entries of B and C, the same for every channel of the group;
    # PAIRS (bf16 B and C, rows contiguous in time at even offsets): (K/2, BD, P, E) words of two steps
    if PAIRS:
        tl.static_assert(FULL, "PAIRS reads whole blocks (no masks)")
        offs_w = tl.arange(0, K // 2)[:, None, None, None]  # (K/2, 1, 1, 1): pairs of steps
        B_p = B_ptr.to(tl.pointer_type(tl.int32)) + (pid_b * sB_b + grp * sB_g + n * sB_n) // 2 + offs_w + offs_d * 0
        C_p = C_ptr.to(tl.pointer_type(tl.int32)) + (pid_b * sC_b + grp * sC_g + n * sC_n) // 2 + offs_w + offs_d * 0
        sB_l, sC_l = 1, 1  # words: a block starts t0 // 2 words on
    else:
        offs_w = offs_k
        B_p = B_ptr + pid_b * sB_b + grp * sB_g + n * sB_n + offs_k * sB_l + offs_d * 0
        C_p = C_ptr + pid_b * sC_b + grp * sC_g + n * sC_n + offs_k * sC_l + offs_d * 0
    s_p = (pid_b * dim + offs_d) * N  # (1, BD, 1, 1): (b, d) offset of a (…, N) state tensor
    A2 = tl.load(A_ptr + offs_d * sA_d + n * sA_n, mask=mask_d & mask_n, other=0.0) * 1.4426950408889634
    h = tl.zeros((1, BLOCK_D, LANES, E), dtype=tl.float32)  # the state, in registers for the whole sequence
    NEG0 = tl.full((1, 1, 1, 1), -2147483648, tl.int32).to(tl.float32, bitcast=True)  # -0.0

    # HBM → registers: the first block of K steps; in the loop, the next block is loaded before this one's math
    m_k = offs_k < L  # (K, 1, 1, 1)
    u_nx = _load(u_p, m_k & mask_d, FULL)
    dt_nx = _load(dt_p, m_k & mask_d, FULL)
    if SHARE:
        us_nx = _load(us_p, (f_s < L) & mask_ds, FULL)
        if HAS_Z:
            z_nx = _load(z_p, (f_s < L) & mask_ds, FULL)
    elif HAS_Z:
        z_nx = _load(z_p, m_k & mask_d, FULL)
    B_nx = _load(B_p, m_k & mask_n, FULL)
    C_nx = _load(C_p, m_k & mask_n, FULL)
    for t0 in range(0, L, K):
        m_kd = (t0 + offs_k < L) & mask_d  # (K, BD, 1, 1)
        t_nx = t0 + K  # the next block (FULL: after the last block, the last one again, unused)
        if FULL:
            t_nx = tl.minimum(t_nx, L - K)
        if STORE_CKPT:
            if t0 % BLOCK_L == 0:
                ck = ckpt_ptr + (s_p * n_chunks + (t0 // BLOCK_L) * N)  # (1, BD, 1, 1)
                tl.store(ck + n, h, mask=mask_d & mask_n)
        u = u_nx.to(tl.float32)  # (K, BD, P, 1)
        dt = dt_nx.to(tl.float32)
        if SHARE:  # the lane's own S steps, for the D skip and the gate (BD, P, S)
            u_o = us_nx.to(tl.float32)
            m_o = (t0 + f_s < L) & mask_ds
            us_nx = _load(us_p + t_nx * su_l, (t_nx + f_s < L) & mask_ds, FULL)
            if HAS_Z:
                z = z_nx.to(tl.float32)
                z_nx = _load(z_p + t_nx * sz_l, (t_nx + f_s < L) & mask_ds, FULL)
        else:
            u_o = u
            m_o = m_kd & one_lane  # one lane per channel stores
            if HAS_Z:
                z = z_nx.to(tl.float32)
        if PAIRS:
            B_blk, B_odd = _bf16_pairs(B_nx)  # (K/2, BD, P, E) each: the even and the odd steps
            C_blk, C_odd = _bf16_pairs(C_nx)
            t_rows = t_nx // 2
        else:
            B_blk, B_odd = B_nx.to(tl.float32), B_nx  # (K, BD, P, E); B_odd unused
            C_blk, C_odd = C_nx.to(tl.float32), C_nx
            t_rows = t_nx
        m_nx = t_nx + offs_k < L  # (K, 1, 1, 1)
        u_nx = _load(u_p + t_nx * su_l, m_nx & mask_d, FULL)
        dt_nx = _load(dt_p + t_nx * sdt_l, m_nx & mask_d, FULL)
        if HAS_Z and not SHARE:
            z_nx = _load(z_p + t_nx * sz_l, m_nx & mask_d, FULL)
        B_nx = _load(B_p + t_rows * sB_l, m_nx & mask_n, FULL)
        C_nx = _load(C_p + t_rows * sC_l, m_nx & mask_n, FULL)
        if HAS_BIAS:
            dt += bias
        if SOFTPLUS:
            dt = _softplus(dt, FAST_EXP2)
        if not FULL:
            dt = tl.where(m_kd, dt, 0.0)  # past the end: the state passes unchanged
        dtu = dt * u
        y = tl.zeros((K, BLOCK_D, LANES, 1), dtype=tl.float32)
        for k in tl.static_range(K):
            sel = offs_k == k  # (K, 1, 1, 1): step k of the block, inside each lane
            dt_k = _at(dt, sel, NEG0)  # (1, BD, P, 1)
            dtu_k = _at(dtu, sel, NEG0)
            B_k = _step_of(B_blk, B_odd, k, offs_w, NEG0, PAIRS)  # (1, BD, P, E)
            C_k = _step_of(C_blk, C_odd, k, offs_w, NEG0, PAIRS)
            h, y_k = _seq_step(h, dt_k, dtu_k, A2, B_k, C_k, FAST_EXP2)
            y = tl.where(sel, y_k, y)  # (K, BD, P, 1)
        if SHARE:  # add the parts of y held by a channel's lanes; each lane keeps the sums of its S steps
            y = _sum_scatter(tl.permute(tl.reshape(y, (K, BLOCK_D, LANES)), (2, 1, 0)), p3)  # (P, BD, S)
            y = tl.permute(y, (1, 0, 2))  # (BD, P, S)
        elif LANES > 1:  # add the parts of y held by a channel's lanes (shuffles); every lane gets the sum
            y = tl.sum(y, axis=2, keep_dims=True)  # (K, BD, 1, 1)
        if HAS_D:
            y += Dv * u_o
        if HAS_Z:
            if STORE_CKPT:  # the backward's dz needs the value before the gate
                tl.store(p_p + t0, y, mask=m_o)
            y *= z * _sigmoid(z, FAST_EXP2)
        tl.store(o_p + t0 * so_l, y, mask=m_o)  # registers → HBM: out only
    tl.store(last_ptr + s_p + n, h, mask=mask_d & mask_n)


# ----------------------------------------------------------------------------------------------
# Time inside the threads: the layout of the official CUDA kernel
# ----------------------------------------------------------------------------------------------


@triton.jit
def _fwd_lscan_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, carry_ptr, ckpt_ptr, pre_ptr,
    dim, L, N, dim_per_group, n_chunks, carry_stride,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_g, sB_n, sB_l, sC_b, sC_g, sC_n, sC_l,
    sz_b, sz_d, sz_l, so_b, so_d, so_l,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    STORE_CKPT: tl.constexpr, NEED_CARRY: tl.constexpr, FAST_EXP2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """Tiles (BLOCK_D, BLOCK_L) with time along the lanes, one state entry n at a time.

    Each lane holds a run of consecutive time steps of a channel (the loads along L are contiguous,
    so Triton gives each lane 16 bytes of them). For n = 0..N-1 the chunk's recurrence
    h_t = a_t·h_{t-1} + b_t is one `tl.associative_scan` along L: inside a lane it is a plain loop
    (one multiply-add per step), and only the lanes' totals travel between lanes. y accumulates
    C_t[n]·h_t over n in registers. B and C rows are read once per (program, n) and serve BLOCK_D
    channels. The state carried to the next chunk (and the last state) is written by the lane that
    holds the chunk's last step into a small (2, b, d, N) buffer (one half read, the other written,
    swapped every chunk).
    """
    pid_b = tl.program_id(1).to(tl.int64)
    pid_d = tl.program_id(0).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,)
    offs_l = tl.arange(0, BLOCK_L)  # (BL,)
    mask_d = offs_d < dim
    grp = (pid_d * BLOCK_D) // dim_per_group
    at_start = (offs_l == 0)[None, :]  # (1, BL): the chunk's first step
    at_end = mask_d[:, None] & (offs_l == BLOCK_L - 1)[None, :]  # (BD, BL): the chunk's last step
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
    u_base = u_ptr + pid_b * su_b + offs_d[:, None] * su_d  # (BD, 1)
    dt_base = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_base = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    o_base = out_ptr + pid_b * so_b + offs_d[:, None] * so_d
    p_base = pre_ptr + (pid_b * dim + offs_d[:, None]) * L
    A_col = A_ptr + offs_d * sA_d  # (BD,): entry n at + n·sA_n
    zero_d = offs_d[:, None] * 0  # (BD, 1)
    B_tile = B_ptr + pid_b * sB_b + grp * sB_g + zero_d  # (BD, 1): row n at + n·sB_n, for every channel
    C_tile = C_ptr + pid_b * sC_b + grp * sC_g + zero_d
    h_base = carry_ptr + (pid_b * dim + offs_d) * N  # (BD,): entry n at + n
    ck_base = ckpt_ptr + (pid_b * dim + offs_d) * n_chunks * N  # (BD,)

    for c in range(0, n_chunks):
        t = c * BLOCK_L + offs_l  # (BL,)
        mask_l = t < L
        m_dl = mask_d[:, None] & mask_l[None, :]  # (BD, BL)
        h_rd = h_base + (c % 2) * carry_stride  # the state before this chunk
        h_wr = h_base + ((c + 1) % 2) * carry_stride  # the state after it
        # HBM → registers: this chunk of u and Δ, contiguous along L
        u = tl.load(u_base + t[None, :] * su_l, mask=m_dl, other=0.0).to(tl.float32)  # (BD, BL)
        dt = tl.load(dt_base + t[None, :] * sdt_l, mask=m_dl, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt += bias[:, None]
        if SOFTPLUS:
            dt = _softplus(dt, FAST_EXP2)
        dt = tl.where(m_dl, dt, 0.0)  # past the end: a = 1, b = 0, the state passes unchanged
        dtu = dt * u
        y = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)
        # B and C rows as (BD, BL) tiles (stride 0 over the channels: the same row for each, from
        # L1), so that every tile has the layout of u; the next row is loaded before this one's scan
        Bn = tl.load(B_tile + t[None, :] * sB_l, mask=m_dl, other=0.0)
        Cn = tl.load(C_tile + t[None, :] * sC_l, mask=m_dl, other=0.0)
        for n in range(0, N):
            A2 = tl.load(A_col + n * sA_n, mask=mask_d, other=0.0).to(tl.float32) * 1.4426950408889634
            m_next = _only_if(m_dl, n + 1 < N)
            B_next = tl.load(B_tile + (n + 1) * sB_n + t[None, :] * sB_l, mask=m_next, other=0.0)
            C_next = tl.load(C_tile + (n + 1) * sC_n + t[None, :] * sC_l, mask=m_next, other=0.0)
            a = _exp2(dt * A2[:, None], FAST_EXP2)  # (BD, BL): exp(Δ·A)
            bu = dtu * Bn.to(tl.float32)  # Δ·u·B
            if NEED_CARRY:  # the state carried in enters as part of the first step: b_0 + a_0·h_carry
                h0 = tl.load(h_rd + n, mask=_only_if(mask_d, c > 0), other=0.0)  # (BD,)
                if STORE_CKPT:
                    tl.store(ck_base + c * N + n, h0, mask=mask_d)
                bu = tl.where(at_start, bu + a * h0[:, None], bu)
            _, h = tl.associative_scan((a, bu), axis=1, combine_fn=first_order_combine)  # (BD, BL): h_t[n]
            if NEED_CARRY:  # carry this chunk's last state out
                tl.store(h_wr + n, tl.sum(tl.where(at_end, h, 0.0), axis=1), mask=mask_d)
            y += h * Cn.to(tl.float32)
            Bn, Cn = B_next, C_next
        tl.debug_barrier()  # the carried state is written before the next chunk reads it
        if HAS_D:
            y += Dv[:, None] * u
        if HAS_Z:
            if STORE_CKPT:  # the backward's dz needs the value before the gate
                tl.store(p_base + t[None, :], y, mask=m_dl)
            z = tl.load(z_base + t[None, :] * sz_l, mask=m_dl, other=0.0).to(tl.float32)
            y *= z * _sigmoid(z, FAST_EXP2)
        tl.store(o_base + t[None, :] * so_l, y, mask=m_dl)  # registers → HBM: out only


@triton.jit
def _bwd_lscan_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dout_ptr, dlast_ptr, ckpt_ptr, pre_ptr,
    carry_ptr, du_ptr, ddt_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    dim, L, N, dim_per_group, n_chunks, n_dblocks, carry_stride,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_g, sB_n, sB_l, sC_b, sC_g, sC_n, sC_l,
    sz_b, sz_d, sz_l, sdo_b, sdo_d, sdo_l,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, FAST_EXP2: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """The backward in the forward's layout: chunks last to first, one state entry n at a time."""
    pid_b = tl.program_id(1).to(tl.int64)
    pid_d = tl.program_id(0).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)  # (BD,)
    offs_l = tl.arange(0, BLOCK_L)  # (BL,)
    offs_n = tl.arange(0, BLOCK_N)  # (BN,)
    mask_d = offs_d < dim
    grp = (pid_d * BLOCK_D) // dim_per_group
    at_start = mask_d[:, None] & (offs_l == 0)[None, :]  # (BD, BL): the chunk's first step
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
    u_base = u_ptr + pid_b * su_b + offs_d[:, None] * su_d  # (BD, 1)
    dt_base = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_base = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    do_base = dout_ptr + pid_b * sdo_b + offs_d[:, None] * sdo_d
    g_base = (pid_b * dim + offs_d[:, None]) * L  # (BD, 1): du, dΔ, dz, pre are contiguous (b, d, L)
    A_col = A_ptr + offs_d * sA_d  # (BD,)
    zero_d = offs_d[:, None] * 0  # (BD, 1)
    B_tile = B_ptr + pid_b * sB_b + grp * sB_g + zero_d  # (BD, 1): row n at + n·sB_n, for every channel
    C_tile = C_ptr + pid_b * sC_b + grp * sC_g + zero_d
    ck_base = ckpt_ptr + (pid_b * dim + offs_d) * n_chunks * N  # (BD,)
    gc_base = carry_ptr + (pid_b * dim + offs_d) * N  # (BD,): ∂loss/∂h carried backwards
    part_base = (pid_b * n_dblocks + pid_d) * N * L  # dB, dC partials (b, n_dblocks, N, L)

    dA_acc = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for ci in range(0, n_chunks):
        c = n_chunks - 1 - ci  # last chunk first
        t = c * BLOCK_L + offs_l  # (BL,)
        tn = t + 1  # the next step, for a_{t+1}
        mask_l = t < L
        m_dl = mask_d[:, None] & mask_l[None, :]
        m_dln = mask_d[:, None] & (tn < L)[None, :]
        g_rd = gc_base + (ci % 2) * carry_stride
        g_wr = gc_base + ((ci + 1) % 2) * carry_stride
        u = tl.load(u_base + t[None, :] * su_l, mask=m_dl, other=0.0).to(tl.float32)  # (BD, BL)
        dt_raw = tl.load(dt_base + t[None, :] * sdt_l, mask=m_dl, other=0.0).to(tl.float32)
        dtn = tl.load(dt_base + tn[None, :] * sdt_l, mask=m_dln, other=0.0).to(tl.float32)
        dout = tl.load(do_base + t[None, :] * sdo_l, mask=m_dl, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt_raw += bias[:, None]
            dtn += bias[:, None]
        if SOFTPLUS:
            dt = _softplus(dt_raw, FAST_EXP2)
            dtn = _softplus(dtn, FAST_EXP2)
        else:
            dt = dt_raw
        dt = tl.where(m_dl, dt, 0.0)
        dtn = tl.where(m_dln, dtn, 0.0)  # a_{t+1} = 1 past the end
        dtu = dt * u
        # the gate: out = pre·silu(z), pre = y + D·u saved by the forward
        if HAS_Z:
            z = tl.load(z_base + t[None, :] * sz_l, mask=m_dl, other=0.0).to(tl.float32)
            pre = tl.load(pre_ptr + g_base + t[None, :], mask=m_dl, other=0.0)
            sig = _sigmoid(z, FAST_EXP2)
            tl.store(dz_ptr + g_base + t[None, :], dout * pre * sig * (1.0 + z * (1.0 - sig)), mask=m_dl)
            dy = dout * z * sig
        else:
            dy = dout
        gB = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)  # Σ_n g·B
        gAah = tl.zeros((BLOCK_D, BLOCK_L), dtype=tl.float32)  # Σ_n g·A·a_t·h_{t-1}
        for n in range(0, N):
            An = tl.load(A_col + n * sA_n, mask=mask_d, other=0.0).to(tl.float32)  # (BD,)
            A2 = An * 1.4426950408889634
            Bn = tl.load(B_tile + n * sB_n + t[None, :] * sB_l, mask=m_dl, other=0.0).to(tl.float32)  # (BD, BL)
            Cn = tl.load(C_tile + n * sC_n + t[None, :] * sC_l, mask=m_dl, other=0.0).to(tl.float32)
            h0 = tl.load(ck_base + c * N + n, mask=mask_d, other=0.0)  # (BD,): state before the chunk
            # recompute the states of the chunk
            a = _exp2(dt * A2[:, None], FAST_EXP2)  # (BD, BL)
            bu = dtu * Bn
            a_cum, h_in = tl.associative_scan((a, bu), axis=1, combine_fn=first_order_combine)
            h = a_cum * h0[:, None] + h_in
            # the adjoint g_t = C_t·dy_t + a_{t+1}·g_{t+1}, a reverse scan, g after the chunk carried in
            g1 = tl.load(g_rd + n, mask=_only_if(mask_d, ci > 0), other=0.0)  # (BD,)
            if HAS_DLAST:
                g1 += tl.load(dlast_ptr + (pid_b * dim + offs_d) * N + n, mask=_only_if(mask_d, ci == 0), other=0.0)
            a_next = _exp2(dtn * A2[:, None], FAST_EXP2)
            a_rev, g_in = tl.associative_scan((a_next, dy * Cn), axis=1,
                                              combine_fn=first_order_combine, reverse=True)
            g = a_rev * g1[:, None] + g_in  # (BD, BL)
            if c > 0:  # carry g at the chunk's first step to the chunk before
                tl.store(g_wr + n, tl.sum(tl.where(at_start, g, 0.0), axis=1), mask=mask_d)
            # gradients: a_t·h_{t-1} = h_t − b_t
            gah = g * (h - bu)
            gB += g * Bn
            gAah += gah * An[:, None]
            dA_n = tl.sum(gah * dt, axis=1)  # (BD,)
            dA_acc += tl.where(offs_n[None, :] == n, dA_n[:, None], 0.0)
            tl.store(dB_ptr + part_base + n * L + t, tl.sum(g * dtu, axis=0), mask=mask_l)  # (BL,)
            tl.store(dC_ptr + part_base + n * L + t, tl.sum(h * dy, axis=0), mask=mask_l)
        tl.debug_barrier()  # the carried adjoint is written before the next chunk reads it
        ddt = gB * u + gAah
        du = gB * dt
        if HAS_D:
            du += Dv[:, None] * dy
            dD_acc += tl.sum(tl.where(m_dl, dy * u, 0.0), axis=1)
        if SOFTPLUS:
            ddt = ddt * _sigmoid(dt_raw, FAST_EXP2)
        ddt = tl.where(m_dl, ddt, 0.0)
        dbias_acc += tl.sum(ddt, axis=1)
        tl.store(du_ptr + g_base + t[None, :], du, mask=m_dl)
        tl.store(ddt_ptr + g_base + t[None, :], ddt, mask=m_dl)
    tl.store(dA_ptr + (pid_b * dim + offs_d[:, None]) * N + offs_n[None, :], dA_acc,
             mask=mask_d[:, None] & (offs_n < N)[None, :])
    if HAS_D:
        tl.store(dD_ptr + pid_b * dim + offs_d, dD_acc, mask=mask_d)
    if HAS_BIAS:
        tl.store(dbias_ptr + pid_b * dim + offs_d, dbias_acc, mask=mask_d)


# ----------------------------------------------------------------------------------------------
# Backward, in the seq forward's layout
# ----------------------------------------------------------------------------------------------


@triton.jit
def _bwd_seq_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dout_ptr, dlast_ptr, ckpt_ptr, pre_ptr,
    du_ptr, ddt_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    dim, L, N, dim_per_group, n_chunks,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_g, sB_n, sB_l, sC_b, sC_g, sC_n, sC_l,
    sz_b, sz_d, sz_l, sdo_b, sdo_d, sdo_l,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr, FAST_EXP2: tl.constexpr,
    BLOCK_D: tl.constexpr, K: tl.constexpr, E: tl.constexpr, LANES: tl.constexpr, FULL: tl.constexpr,
    SCATTER: tl.constexpr,
):
    """The backward with the seq forward's tiles (K, BLOCK_D, LANES, E): blocks of K steps, last to first.

    The forward (seq, training) wrote the state before every block of K steps. For each block, from
    the last to the first: load that checkpoint and recompute the block's K states into a tile H (in
    registers), walk the block backwards for the adjoint g (g_t = C_t·dy_t + a_{t+1}·g_{t+1}, g itself
    carried in registers from block to block: no scan, no shuffles) into a tile G, and then every
    gradient is a product of tiles summed along one axis, for the whole block at once:

        dC_t = Σ_d dy_t h_t          dB_t = Σ_d g_t Δ_t u_t      (over the program's channels: shuffles)
        du_t = Δ_t Σ_n g_t B_t + D dy_t                          (over the lane's entries, then its LANES)
        dΔ_t = Σ_n g_t (B_t u_t + A a_t h_{t-1}),  a_t h_{t-1} = h_t − b_t
        dA   = Σ_t Δ_t g_t (h_t − b_t)                           (accumulated in registers)

    dB and dC: the program's sums (SCATTER: a reduce-scatter, each lane a share; else a butterfly, every lane
    all of them) added atomically into (b, g, N, L) float32, one per group.
    """
    pid_b = tl.program_id(1).to(tl.int64)
    pid_d = tl.program_id(0).to(tl.int64)
    offs_k = tl.arange(0, K)[:, None, None, None]  # (K, 1, 1, 1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)[None, :, None, None]  # (1, BD, 1, 1)
    offs_p = tl.arange(0, LANES)[None, None, :, None]  # (1, 1, P, 1)
    offs_e = tl.arange(0, E)[None, None, None, :]  # (1, 1, 1, E)
    n = offs_p * E + offs_e  # (1, 1, P, E)
    mask_n = n < N
    mask_d = offs_d < dim
    grp = (pid_d * BLOCK_D) // dim_per_group
    one_lane = offs_p == 0  # (1, 1, P, 1): the lane that stores a channel's gradients

    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)  # (1, BD, 1, 1)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    rows = offs_k + offs_p * 0  # (K, 1, P, 1)
    u_p = u_ptr + pid_b * su_b + offs_d * su_d + rows * su_l  # (K, BD, P, 1)
    dt_p = dt_ptr + pid_b * sdt_b + offs_d * sdt_d + rows * sdt_l
    z_p = z_ptr + pid_b * sz_b + offs_d * sz_d + rows * sz_l
    do_p = dout_ptr + pid_b * sdo_b + offs_d * sdo_d + rows * sdo_l
    g_p = (pid_b * dim + offs_d) * L + rows  # (K, BD, P, 1): du, dΔ, dz and pre are contiguous (b, d, L)
    B_p = B_ptr + pid_b * sB_b + grp * sB_g + n * sB_n + offs_k * sB_l + offs_d * 0  # (K, BD, P, E)
    C_p = C_ptr + pid_b * sC_b + grp * sC_g + n * sC_n + offs_k * sC_l + offs_d * 0
    s_p = (pid_b * dim + offs_d) * N  # (1, BD, 1, 1)
    red_base = (pid_b * (dim // dim_per_group) + grp) * N * L  # dB, dC: the group's (N, L) sums, (b, g, N, L)
    part_p = red_base + n * L + offs_k  # (K, 1, P, E)
    if SCATTER:  # dB, dC summed over the channels by a reduce-scatter: lane c keeps K·E/BLOCK_D of the sums
        c3 = tl.arange(0, BLOCK_D)[:, None, None]  # (BD, 1, 1): the channel, across lanes
        f = _scatter_positions(c3, BLOCK_D, K * E)  # (BD, 1, K·E/BD): f = k·E + e of the sums lane c keeps
        sc_k = f // E
        sc_n = tl.arange(0, LANES)[None, :, None] * E + f % E  # (BD, P, K·E/BD)
        sc_p = red_base + sc_n * L + sc_k  # (BD, P, K·E/BD): where those sums go in (b, g, N, L)
    A = tl.load(A_ptr + offs_d * sA_d + n * sA_n, mask=mask_d & mask_n, other=0.0).to(tl.float32)  # (1, BD, P, E)
    A2 = A * 1.4426950408889634
    NEG0 = tl.full((1, 1, 1, 1), -2147483648, tl.int32).to(tl.float32, bitcast=True)  # -0.0

    if HAS_DLAST:  # ∂loss/∂h after the last step
        g = tl.load(dlast_ptr + s_p + n, mask=mask_d & mask_n, other=0.0)  # (1, BD, P, E)
    else:
        g = tl.zeros((1, BLOCK_D, LANES, E), dtype=tl.float32)
    dA_acc = tl.zeros((1, BLOCK_D, LANES, E), dtype=tl.float32)
    dD_acc = tl.zeros((K, BLOCK_D, LANES, 1), dtype=tl.float32)
    dbias_acc = tl.zeros((K, BLOCK_D, LANES, 1), dtype=tl.float32)
    n_blocks = tl.cdiv(L, K)
    for i in range(0, n_blocks):
        t0 = (n_blocks - 1 - i) * K  # last block first
        m_k = t0 + offs_k < L  # (K, 1, 1, 1)
        m_kd = m_k & mask_d  # (K, BD, 1, 1)
        h = tl.load(ckpt_ptr + s_p * n_chunks + (t0 // K) * N + n, mask=mask_d & mask_n, other=0.0)  # (1, BD, P, E)
        # HBM → registers: the block's K steps of u, Δ, dout (z, pre) and of the lane's rows of B and C
        u = _load(u_p + t0 * su_l, m_kd, FULL).to(tl.float32)  # (K, BD, P, 1)
        dt_raw = _load(dt_p + t0 * sdt_l, m_kd, FULL).to(tl.float32)
        dout = _load(do_p + t0 * sdo_l, m_kd, FULL).to(tl.float32)
        B_blk = _load(B_p + t0 * sB_l, m_k & mask_n, FULL).to(tl.float32)  # (K, BD, P, E)
        C_blk = _load(C_p + t0 * sC_l, m_k & mask_n, FULL).to(tl.float32)
        if HAS_BIAS:
            dt_raw += bias
        if SOFTPLUS:
            dt = _softplus(dt_raw, FAST_EXP2)
        else:
            dt = dt_raw
        if not FULL:
            dt = tl.where(m_kd, dt, 0.0)  # past the end: a = 1, b = 0
        dtu = dt * u
        # the gate: out = pre·silu(z), pre = y + D·u saved by the forward
        if HAS_Z:
            z = _load(z_p + t0 * sz_l, m_kd, FULL).to(tl.float32)
            pre = _load(pre_ptr + g_p + t0, m_kd, FULL)
            sig = _sigmoid(z, FAST_EXP2)
            tl.store(dz_ptr + g_p + t0, dout * pre * sig * (1.0 + z * (1.0 - sig)), mask=m_kd & one_lane)
            dy = dout * z * sig  # (K, BD, P, 1)
        else:
            dy = dout
        # recompute the block's states, forward in time, into H
        H = tl.zeros((K, BLOCK_D, LANES, E), dtype=tl.float32)
        for k in tl.static_range(K):
            sel = offs_k == k
            h = _exp2(_at(dt, sel, NEG0) * A2, FAST_EXP2) * h + _at(dtu, sel, NEG0) * _at(B_blk, sel, NEG0)
            H = tl.where(sel, h, H)  # (K, BD, P, E)
        # the adjoint, backwards in time, into G: g enters step t as a_{t+1}·g_{t+1}
        G = tl.zeros((K, BLOCK_D, LANES, E), dtype=tl.float32)
        for kk in tl.static_range(K):
            sel = offs_k == K - 1 - kk
            g += _at(C_blk, sel, NEG0) * _at(dy, sel, NEG0)  # g_t = C_t·dy_t + a_{t+1}·g_{t+1}
            G = tl.where(sel, g, G)
            g *= _exp2(_at(dt, sel, NEG0) * A2, FAST_EXP2)  # a_t·g_t, for step t − 1
        # every gradient of the block from the tiles
        if SCATTER:  # Σ_d: (K, BD, P, E) → (BD, P, K·E) → (BD, P, K·E/BD)
            dC_b = _sum_scatter(tl.reshape(tl.permute(H * dy, (1, 2, 0, 3)), (BLOCK_D, LANES, K * E)), c3)
            dB_b = _sum_scatter(tl.reshape(tl.permute(G * dtu, (1, 2, 0, 3)), (BLOCK_D, LANES, K * E)), c3)
            if FULL:
                tl.atomic_add(dC_ptr + sc_p + t0, dC_b, sem="relaxed")
                tl.atomic_add(dB_ptr + sc_p + t0, dB_b, sem="relaxed")
            else:
                m_sc = (sc_n < N) & (t0 + sc_k < L)
                tl.atomic_add(dC_ptr + sc_p + t0, dC_b, mask=m_sc, sem="relaxed")
                tl.atomic_add(dB_ptr + sc_p + t0, dB_b, mask=m_sc, sem="relaxed")
        else:  # Σ_d: (K, BD, P, E) → (K, 1, P, E), every lane of the channel axis with every sum (butterfly)
            tl.atomic_add(dC_ptr + part_p + t0, tl.sum(H * dy, axis=1, keep_dims=True), mask=m_k & mask_n,
                          sem="relaxed")
            tl.atomic_add(dB_ptr + part_p + t0, tl.sum(G * dtu, axis=1, keep_dims=True), mask=m_k & mask_n,
                          sem="relaxed")
        gah = G * (H - dtu * B_blk)  # g_t·a_t·h_{t-1}  (K, BD, P, E)
        dA_acc += tl.sum(gah * dt, axis=0, keep_dims=True)
        gB = tl.sum(G * B_blk, axis=3, keep_dims=True)  # (K, BD, P, 1): Σ over the lane's entries
        gA = tl.sum(gah * A, axis=3, keep_dims=True)
        if LANES > 1:  # ... and over the channel's lanes (shuffles)
            gB = tl.sum(gB, axis=2, keep_dims=True)  # (K, BD, 1, 1)
            gA = tl.sum(gA, axis=2, keep_dims=True)
        du = gB * dt
        if HAS_D:
            du += Dv * dy
            dD_acc += dy * u
        ddt = gB * u + gA
        if SOFTPLUS:
            ddt *= _sigmoid(dt_raw, FAST_EXP2)
        if not FULL:
            ddt = tl.where(m_kd, ddt, 0.0)
        dbias_acc += ddt
        tl.store(du_ptr + g_p + t0, du, mask=m_kd & one_lane)
        tl.store(ddt_ptr + g_p + t0, ddt, mask=m_kd & one_lane)
    tl.store(dA_ptr + s_p + n, dA_acc, mask=mask_d & mask_n)
    d_p = pid_b * dim + offs_d + offs_p * 0  # (1, BD, P, 1)
    if HAS_D:
        tl.store(dD_ptr + d_p, tl.sum(dD_acc, axis=0, keep_dims=True), mask=mask_d & one_lane)
    if HAS_BIAS:
        tl.store(dbias_ptr + d_p, tl.sum(dbias_acc, axis=0, keep_dims=True), mask=mask_d & one_lane)
