"""Mamba-2 and state space duality (SSD): one sequence map, computed as a scan or as matrices.

Glossary (the Mamba-2 paper's symbols; the argument layout of the official `mamba_chunk_scan_combined`)
    b      batch size
    l      sequence length L (T in the paper)
    h      number of heads; each head is one SSM whose state decays by ONE scalar per token
    p      head dimension P: the channels of a head (the "values")
    n      state size N of a head
    g      groups sharing one B and C: head i uses group i // (h // g); g = 1 shares them across heads
    q      chunk length Q of the chunked algorithm;  c = ⌈l / q⌉ chunks
    x      input                                              (b, l, h, p)
    dt     step size Δ > 0, per token and head                (b, l, h)
    A      one real number per head (h,), negative: the state matrix is A·I, a scalar times identity
    a_t    exp(Δ_t·A): how much of a head's whole state survives token t    (b, l, h)
    B, C   input and output projections, per token            (b, l, g, n), or (b, l, n) for g = 1
    D      skip connection per head (h,)
    h_t    the state of a head: a p × n matrix                (b, h, p, n)
    M      the L × L matrix of the sequence map, per head     (b, h, l, l):  y = M·(Δ ⊙ x)
    L      the decay mask (1-semiseparable): L[t, s] = a_{s+1}⋯a_t for s ≤ t, 0 above the diagonal

The recurrence (one head, Mamba-2's selective SSM):

    h_t = a_t · h_{t-1} + (Δ_t x_t) ⊗ B_t          a p × n state, ONE decay a_t for all of it
    y_t = h_t · C_t  (+ D · x_t)                    (b, h, p): a sum over the n state entries

Mamba-1 (`mamba_edu.selective`) gives every channel a diagonal A with n different rates. Mamba-2
restricts A to a scalar times the identity, per head. Unrolling the recurrence then gives

    y_t = Σ_{s ≤ t} (C_t · B_s) · (a_{s+1} ⋯ a_t) · Δ_s x_s = Σ_s M[t, s] · Δ_s x_s ,
    M = L ∘ (C Bᵀ)

which is causal *linear attention* (queries C, keys B, values Δx) with a decay mask L, where
softmax attention has softmax(Q Kᵀ). M is **semiseparable**: every block below the diagonal has
rank ≤ n, because it factors through the n-dimensional state. That is the duality: the same map
is a linear-time recurrence (`ssd_scan_ref`) and a quadratic matrix product (`ssd_by_matrix`),
and the chunked algorithm (`ssd_chunked`) mixes the two: matrices inside chunks of Q tokens,
the recurrence between chunks. Its heavy work is matrix products, which GPU tensor cores run
many times faster than the scan's elementwise multiply–adds (`ssd_flops` counts both kinds).

Chunk layout (the chunked algorithm's steps take it): X̄ = Δ ⊙ x as (b, c, q, h, p), the log
decays Δ·A as (b, h, c, q), B and C as (b, c, q, h, n).

State math is float32 (float64 when any input is float64); outputs have x's dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import check_finite, check_int, check_positive, check_tensor, fail

# ----------------------------------------------------------------------------------------------
# Arguments: validation, dtypes, B and C per head
# ----------------------------------------------------------------------------------------------


def check_ssd_args(x, dt, A, B, C, D=None, h0=None, func: str = "ssd"):
    """Validate the SSD arguments; return the sizes (b, l, h, p, n, g). Raises ValueError."""
    check_tensor(func, "x", x, ndim=4, dims="(batch, L, heads, head_dim)")
    b, l, h, p = x.shape
    if min(b, l, h, p) < 1:
        fail(func, "x", "of shape (batch, L, heads, head_dim) with every size >= 1", f"shape {tuple(x.shape)}")
    dev = x.device
    check_tensor(func, "dt", dt, shape=(b, l, h), dims="(batch, L, heads)", device=dev)
    check_positive(func, "dt", dt)
    check_tensor(func, "A", A, shape=(h,), dims="(heads,)", device=dev)
    check_finite(func, "A", A)
    if bool((A > 0).any()):
        fail(func, "A", "<= 0 for every head (a decay: exp(Δ·A) <= 1)", f"maximum {float(A.max()):.4g}")
    for name, M in (("B", B), ("C", C)):
        check_tensor(func, name, M, ndim=(3, 4), dims="(batch, L, N) or (batch, L, G, N)", device=dev)
        if M.dim() == 3:
            check_tensor(func, name, M, shape=(b, l, None), dims="(batch, L, N)", device=dev)
        else:
            G = M.shape[2]
            if G < 1 or h % G:
                fail(func, name, f"grouped as (batch, L, G, N) with heads % G == 0 (heads = {h})", f"G = {G}")
            check_tensor(func, name, M, shape=(b, l, G, None), dims="(batch, L, G, N)", device=dev)
    if B.shape[-1] < 1:
        fail(func, "B", "of state size N >= 1", f"shape {tuple(B.shape)}")
    gB, gC = (B.shape[2] if B.dim() == 4 else 1), (C.shape[2] if C.dim() == 4 else 1)
    if gB != gC or B.shape[-1] != C.shape[-1]:
        fail(func, "C", f"of B's groups and state size (G = {gB}, N = {B.shape[-1]})",
             f"G = {gC}, N = {C.shape[-1]}")
    n = B.shape[-1]
    if D is not None:
        check_tensor(func, "D", D, shape=(h,), dims="(heads,)", device=dev)
    if h0 is not None:
        check_tensor(func, "h0", h0, shape=(b, h, p, n), dims="(batch, heads, head_dim, N)", device=dev)
    return b, l, h, p, n, gB


def state_dtype(*tensors) -> torch.dtype:
    """float64 if any input is float64, else float32: the dtype every SSD computation runs in."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def per_head(M: torch.Tensor, h: int) -> torch.Tensor:
    """B or C as one (b, l, h, n) tensor: group k serves heads k·(h/G) … (k+1)·(h/G) − 1."""
    if M.dim() == 3:
        return M.unsqueeze(2).expand(-1, -1, h, -1)  # (b, l, h, n), a view
    return M.repeat_interleave(h // M.shape[2], dim=2)  # (b, l, h, n)


def _finish(y, x, D):
    """y + D·x, cast back to x's dtype.  (b, l, h, p)"""
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * x.to(y.dtype)  # (b, l, h, p)
    return y.to(x.dtype)


# ----------------------------------------------------------------------------------------------
# The recurrence: linear time, one token after the other
# ----------------------------------------------------------------------------------------------


def ssd_scan_ref(x, dt, A, B, C, D=None, h0=None, return_final_state: bool = False):
    """The reference: the recurrence, token by token.  x (b, l, h, p) → y (b, l, h, p)

        a_t = exp(Δ_t·A)                     one scalar per head and token
        h_t = a_t · h_{t-1} + (Δ_t x_t) ⊗ B_t      h: (b, h, p, n), h_{-1} = h0 (zeros if None)
        y_t = h_t · C_t + D · x_t

    With `return_final_state` also returns h_{L-1} (b, h, p, n) in the state dtype.
    """
    b, l, h, p, n, _ = check_ssd_args(x, dt, A, B, C, D, h0, func="ssd_scan_ref")
    f = state_dtype(x, dt, A, B, C, D, h0)
    a = torch.exp(dt.to(f) * A.to(f))  # (b, l, h)
    xb = dt.to(f)[..., None] * x.to(f)  # (b, l, h, p): Δ_t x_t
    Bh, Ch = per_head(B, h).to(f), per_head(C, h).to(f)  # (b, l, h, n) each
    state = torch.zeros(b, h, p, n, dtype=f, device=x.device) if h0 is None else h0.to(f)  # (b, h, p, n)
    ys = []
    for t in range(l):
        state = a[:, t, :, None, None] * state + xb[:, t, :, :, None] * Bh[:, t, :, None, :]  # (b, h, p, n)
        ys.append((state * Ch[:, t, :, None, :]).sum(-1))  # (b, h, p)
    y = _finish(torch.stack(ys, dim=1), x, D)  # (b, l, h, p)
    return (y, state) if return_final_state else y


# ----------------------------------------------------------------------------------------------
# The matrix: quadratic time, all tokens at once ("attention mode")
# ----------------------------------------------------------------------------------------------


def segsum(x: torch.Tensor) -> torch.Tensor:
    """Segment sums (..., T) → (..., T, T):  out[..., t, s] = x_{s+1} + … + x_t for s ≤ t, −∞ for s > t.

    exp(segsum(log a)) is the decay mask L[t, s] = a_{s+1}⋯a_t (1 on the diagonal, 0 above it).
    Computed as a masked cumulative sum over t, never as a difference cumsum_t − cumsum_s, which
    would cancel catastrophically in floating point when the sums are large.
    """
    check_tensor("segsum", "x", x, ndim=range(1, 9), dims="(..., T)")
    T = x.shape[-1]
    rows = x[..., :, None].expand(*x.shape, T)  # (..., T, T): rows[k, s] = x_k
    after_s = torch.ones(T, T, dtype=torch.bool, device=x.device).tril(-1)  # (T, T): k > s
    # out[t, s] = Σ_{k ≤ t} [k > s]·x_k : a cumulative sum down the rows k
    out = torch.cumsum(rows.masked_fill(~after_s, 0), dim=-2)  # (..., T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # (T, T): s ≤ t
    return out.masked_fill(~causal, -math.inf)  # (..., T, T)


def decay_matrix(dt, A) -> torch.Tensor:
    """The decay mask of every head, L = exp(segsum(Δ·A)):  dt (b, l, h), A (h,) → (b, h, l, l)

        L[t, s] = a_{s+1} ⋯ a_t = exp(A · (Δ_{s+1} + … + Δ_t))  for s ≤ t,   0 above the diagonal

    A 1-semiseparable matrix: every block below the diagonal has rank 1 (it is u vᵀ with
    u_t = a_0⋯a_t and v_s = 1 / (a_0⋯a_s) as long as no a is 0).
    """
    check_tensor("decay_matrix", "dt", dt, ndim=3, dims="(batch, L, heads)")
    check_positive("decay_matrix", "dt", dt)
    check_tensor("decay_matrix", "A", A, shape=(dt.shape[2],), dims="(heads,)", device=dt.device)
    f = state_dtype(dt, A)
    log_a = (dt.to(f) * A.to(f)).transpose(1, 2)  # (b, h, l): log a_t = Δ_t·A
    return torch.exp(segsum(log_a))  # (b, h, l, l)


def semiseparable_matrix(dt, A, B, C) -> torch.Tensor:
    """The sequence map of every head as an L × L matrix:  → M (b, h, l, l)

        M[t, s] = (C_t · B_s) · a_{s+1} ⋯ a_t   for s ≤ t,   0 above the diagonal,
        M = L ∘ (C Bᵀ),   and   y = M · (Δ ⊙ x)   (+ D·x)

    C Bᵀ is linear attention's score matrix (queries C, keys B); L masks it causally and decays
    it with the distance. Every block of M below the diagonal has rank ≤ n (semiseparable).
    """
    func = "semiseparable_matrix"
    check_tensor(func, "dt", dt, ndim=3, dims="(batch, L, heads)")
    b, l, h = dt.shape
    x_like = torch.zeros(b, l, h, 1, dtype=dt.dtype, device=dt.device)  # only its shape is checked
    check_ssd_args(x_like, dt, A, B, C, func=func)
    f = state_dtype(dt, A, B, C)
    Bh, Ch = per_head(B, h).to(f), per_head(C, h).to(f)  # (b, l, h, n) each
    scores = torch.einsum("bthn,bshn->bhts", Ch, Bh)  # (b, h, l, l): C_t · B_s
    return decay_matrix(dt, A).to(f) * scores  # (b, h, l, l)


def ssd_by_matrix(x, dt, A, B, C, D=None):
    """The quadratic ("attention") mode: build M and multiply.  x (b, l, h, p) → y (b, l, h, p)

        y[t] = Σ_s M[t, s] · Δ_s x_s  (+ D · x_t)        O(l² (n + p)) work per head, no state
    """
    check_ssd_args(x, dt, A, B, C, D, func="ssd_by_matrix")
    f = state_dtype(x, dt, A, B, C, D)
    M = semiseparable_matrix(dt, A, B, C).to(f)  # (b, h, l, l)
    xb = dt.to(f)[..., None] * x.to(f)  # (b, l, h, p): Δ_s x_s
    y = torch.einsum("bhts,bshp->bthp", M, xb)  # (b, l, h, p)
    return _finish(y, x, D)


def attention_matrix(q, k, causal: bool = True) -> torch.Tensor:
    """Softmax attention's L × L matrix, for comparison with M:  q, k (..., l, d) → (..., l, l)

        P = softmax_rows(q kᵀ / √d), entries above the diagonal masked to 0 when causal

    Every row sums to 1, and P is not low-rank below the diagonal: softmax's exp of every score
    makes it full rank, which is why attention must keep every key (the KV cache).
    """
    check_tensor("attention_matrix", "q", q, ndim=range(2, 9), dims="(..., L, d)")
    check_tensor("attention_matrix", "k", k, shape=tuple(q.shape), dims="(..., L, d) like q", device=q.device)
    l, d = q.shape[-2], q.shape[-1]
    S = q @ k.transpose(-1, -2) / math.sqrt(d)  # (..., l, l)
    if causal:
        future = torch.ones(l, l, dtype=torch.bool, device=q.device).triu(1)  # (l, l): s > t
        S = S.masked_fill(future, -math.inf)  # (..., l, l)
    return S.softmax(dim=-1)  # (..., l, l)


# ----------------------------------------------------------------------------------------------
# The chunked algorithm (the Mamba-2 paper's minimal SSD listing, one step per function)
#
#   M split into q × q blocks:   diagonal blocks   → small masked matrices, as in "attention mode"
#                                off-diagonal blocks → rank ≤ n: go through the state at chunk ends
#   1. ssd_diagonal_blocks     Y_diag = (L ∘ C Bᵀ) X̄ inside each chunk           matrix products
#   2. ssd_chunk_states        the state each chunk alone leaves at its end        matrix products
#   3. ssd_state_passing       the state entering each chunk (recurrence over c)   a small c × c matrix
#   4. ssd_off_diagonal_blocks Y_off = C · (decay ⊙ entering state)               matrix products
# ----------------------------------------------------------------------------------------------


def to_chunks(t: torch.Tensor, chunk: int) -> torch.Tensor:
    """(b, l, ...) → (b, c, q, ...) with c = ⌈l / q⌉, padding the end of the sequence with zeros.

    Zeros are harmless at the end: a padded token has Δ = 0, so a = 1 and Δ·x = 0 (nothing
    written, nothing forgotten), and its outputs are cut off.
    """
    check_int("to_chunks", "chunk", chunk)
    b, l = t.shape[:2]
    c = -(-l // chunk)
    pad = c * chunk - l
    if pad:
        t = F.pad(t, [0, 0] * (t.dim() - 2) + [0, pad])  # (b, c·q, ...)
    return t.reshape(b, c, chunk, *t.shape[2:])  # (b, c, q, ...)


def ssd_diagonal_blocks(Xb, log_a, B, C) -> torch.Tensor:
    """Step 1, the outputs from inside each chunk:  → Y_diag (b, c, q, h, p)

        Y_diag[t] = Σ_{s ≤ t, same chunk} (C_t · B_s) · exp(segsum(log a))[t, s] · X̄_s

    Xb = X̄ = Δ ⊙ x (b, c, q, h, p), log_a = Δ·A (b, h, c, q), B, C (b, c, q, h, n).
    Two matrix products per chunk and head: (q × n)(n × q), then (q × q)(q × p).
    """
    Lmask = torch.exp(segsum(log_a))  # (b, h, c, q, q): decay from s to t within the chunk
    scores = torch.einsum("bcthn,bcshn->bhcts", C, B)  # (b, h, c, q, q): C_t · B_s
    return torch.einsum("bhcts,bcshp->bcthp", scores * Lmask, Xb)  # (b, c, q, h, p)


def ssd_chunk_states(Xb, log_a, B) -> torch.Tensor:
    """Step 2, the state each chunk leaves at its end when it starts from zero:  → (b, c, h, p, n)

        S_c = Σ_{s in chunk c} (a_{s+1} ⋯ a_end) · X̄_s ⊗ B_s       one (p × q)(q × n) product
    """
    cum = torch.cumsum(log_a, dim=-1)  # (b, h, c, q): log(a_first ⋯ a_s)
    to_end = torch.exp(cum[..., -1:] - cum)  # (b, h, c, q): a_{s+1} ⋯ a_end (a difference within one chunk)
    Bd = B * to_end.permute(0, 2, 3, 1)[..., None]  # (b, c, q, h, n): decayed keys
    return torch.einsum("bcshp,bcshn->bchpn", Xb, Bd)  # (b, c, h, p, n)


def ssd_state_passing(states, log_a, h0=None):
    """Step 3, the recurrence between chunks:  → (state entering each chunk (b, c, h, p, n), final (b, h, p, n))

        H_c = (a over all of chunk c−1) · H_{c−1} + S_{c−1},    H_0 = h0 (zeros if None)

    written, as in the paper's listing, as one (c+1) × (c+1) decay matrix applied to [h0, S_0, …]:
    SSD again, one level up (c is small). The official kernel runs this recurrence as a scan.
    """
    b, c, h, p, n = states.shape
    if h0 is None:
        h0 = torch.zeros(b, h, p, n, dtype=states.dtype, device=states.device)
    states = torch.cat([h0[:, None].to(states.dtype), states], dim=1)  # (b, c+1, h, p, n)
    chunk_log_a = torch.cumsum(log_a, dim=-1)[..., -1]  # (b, h, c): log of each chunk's total decay
    Lc = torch.exp(segsum(F.pad(chunk_log_a, (1, 0))))  # (b, h, c+1, c+1)
    H = torch.einsum("bhzc,bchpn->bzhpn", Lc, states)  # (b, c+1, h, p, n)
    return H[:, :-1], H[:, -1]


def ssd_off_diagonal_blocks(C, states_in, log_a) -> torch.Tensor:
    """Step 4, the outputs from before each chunk, read out of the entering state:  → Y_off (b, c, q, h, p)

        Y_off[t] = (a_first ⋯ a_t) · H_c · C_t          one (q × n)(n × p) product per chunk and head
    """
    from_start = torch.exp(torch.cumsum(log_a, dim=-1))  # (b, h, c, q): a_first ⋯ a_t
    Y = torch.einsum("bcthn,bchpn->bcthp", C, states_in)  # (b, c, q, h, p)
    return Y * from_start.permute(0, 2, 3, 1)[..., None]  # (b, c, q, h, p)


def ssd_chunked(x, dt, A, B, C, chunk: int = 64, D=None, h0=None, return_final_state: bool = False):
    """The chunked SSD algorithm (Mamba-2):  x (b, l, h, p) → y (b, l, h, p)

        Y = Y_diag + Y_off  (+ D·x),   the four steps above on chunks of q = `chunk` tokens

    Equal to `ssd_scan_ref` and `ssd_by_matrix` for every l and q (tested in float64). Work
    O(l·q·(n + p) + l·n·p) per head: linear in l for a fixed q, and almost all of it matrix products.
    """
    b, l, h, p, n, _ = check_ssd_args(x, dt, A, B, C, D, h0, func="ssd_chunked")
    check_int("ssd_chunked", "chunk", chunk)
    f = state_dtype(x, dt, A, B, C, D, h0)
    Xb = to_chunks(dt.to(f)[..., None] * x.to(f), chunk)  # (b, c, q, h, p): X̄ = Δ ⊙ x
    log_a = to_chunks(dt.to(f) * A.to(f), chunk).permute(0, 3, 1, 2)  # (b, h, c, q): Δ·A
    Bc = to_chunks(per_head(B, h).to(f), chunk)  # (b, c, q, h, n)
    Cc = to_chunks(per_head(C, h).to(f), chunk)  # (b, c, q, h, n)
    Y_diag = ssd_diagonal_blocks(Xb, log_a, Bc, Cc)  # (b, c, q, h, p)
    S = ssd_chunk_states(Xb, log_a, Bc)  # (b, c, h, p, n)
    H_in, final = ssd_state_passing(S, log_a, None if h0 is None else h0.to(f))  # (b, c, h, p, n), (b, h, p, n)
    Y_off = ssd_off_diagonal_blocks(Cc, H_in, log_a)  # (b, c, q, h, p)
    y = (Y_diag + Y_off).reshape(b, -1, h, p)[:, :l]  # (b, l, h, p)
    y = _finish(y, x, D)
    return (y, final) if return_final_state else y


# ----------------------------------------------------------------------------------------------
# Structure and cost
# ----------------------------------------------------------------------------------------------


def block_ranks(M: torch.Tensor, chunk: int) -> torch.Tensor:
    """The rank of every q × q block of one head's matrix M (l, l) → (c, c) int64.

    For a semiseparable M of state size n, every block strictly below the diagonal has rank ≤ n:
    it factors through the state at the chunk boundary. Blocks above the diagonal are 0.
    Ranks use torch.linalg.matrix_rank's default tolerance for M's dtype (float32 at least), so
    rounding noise in a float32 M does not count as rank.
    """
    check_tensor("block_ranks", "M", M, ndim=2, dims="(L, L)")
    l = M.shape[0]
    if M.shape[1] != l:
        fail("block_ranks", "M", "a square (L, L) matrix", f"shape {tuple(M.shape)}")
    check_int("block_ranks", "chunk", chunk)
    c = -(-l // chunk)
    R = torch.zeros(c, c, dtype=torch.int64)
    for i in range(c):
        for j in range(i + 1):
            blk = M[i * chunk:(i + 1) * chunk, j * chunk:(j + 1) * chunk]  # (≤q, ≤q)
            blk = blk if blk.dtype in (torch.float32, torch.float64) else blk.float()
            R[i, j] = int(torch.linalg.matrix_rank(blk))
    return R


def ssd_flops(L: int, heads: int, head_dim: int, d_state: int, chunk: int, batch: int = 1) -> dict:
    """Floating-point operations of the scan and of the chunked algorithm, split by kind.

    {"scan": {"matmul": …, "elementwise": …}, "chunked": {…}}. A multiply–add counts 2.
    With c = ⌈L/q⌉ chunks, per batch element and head:

        scan      elementwise  L·(5pn + p + 1)        a·h, Δx ⊗ B, the add, h ∘ C and its sum; Δx; exp
                  matmul       0
        chunked   matmul       c·(2q²n + 2q²p + 4qnp) + 2(c+1)²pn      steps 1, 2, 4, then step 3
                  elementwise  L·(p + 1) + c·(3q² + qn + qp + 3q + qp) + 2(c+1)²
                               (Δx, Δ·A; segsum+exp and the mask in step 1; decays in 2 and 4; the sum)

    The chunked algorithm does MORE arithmetic than the scan (by about (q(n+p) + 2np)/(2.5 np)),
    but nearly all of it is matrix products, which tensor cores run at many times the rate of
    elementwise work. The matmul counts equal what torch.utils.flop_counter counts (tested).
    """
    func = "ssd_flops"
    for name, v in (("L", L), ("heads", heads), ("head_dim", head_dim), ("d_state", d_state), ("chunk", chunk),
                    ("batch", batch)):
        check_int(func, name, v)
    p, n, q = head_dim, d_state, chunk
    c = -(-L // q)
    scale = batch * heads
    scan = {"matmul": 0, "elementwise": scale * L * (5 * p * n + p + 1)}
    chunked = {"matmul": scale * (c * (2 * q * q * n + 2 * q * q * p + 4 * q * n * p) + 2 * (c + 1) ** 2 * p * n),
               "elementwise": scale * (L * (p + 1) + c * (3 * q * q + q * n + 2 * q * p + 3 * q) + 2 * (c + 1) ** 2)}
    return {"scan": scan, "chunked": chunked}


MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::_scaled_mm")


def matmul_time_split(fn, repeat: int = 3, warmup: int = 1) -> dict[str, float]:
    """Where the time of `fn()` goes: {"matrix products": s, "everything else": s} per call.

    Runs `fn` under the PyTorch profiler and adds up each operator's own ("self") time: the device
    time of its kernels when `fn` ran any on a GPU, else its CPU time. Matrix products are the operators of
    MATMUL_OPS (einsum and matmul dispatch to them); everything else (elementwise work, exp,
    cumulative sums, copies for layout changes) is the rest. Profiling adds a little overhead,
    so the two parts sum to about, not exactly, the plain run time.
    """
    from torch.profiler import ProfilerActivity, profile

    from .measure import stderr_silenced  # the profiler's C++ side prints start/stop lines to stderr

    check_int("matmul_time_split", "repeat", repeat)
    check_int("matmul_time_split", "warmup", warmup, minimum=0)
    cuda = torch.cuda.is_available()
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with stderr_silenced(), profile(activities=acts) as prof:
        for _ in range(repeat):
            fn()
        if cuda:
            torch.cuda.synchronize()
    from torch.autograd import DeviceType

    # operators only: a kernel also appears as its own event, and its time is already its operator's
    events = [ev for ev in prof.key_averages() if ev.device_type == DeviceType.CPU]
    on_device = cuda and sum(getattr(ev, "self_device_time_total", 0.0) for ev in events) > 0
    mm = other = 0.0
    for ev in events:
        t = (getattr(ev, "self_device_time_total", 0.0) if on_device else ev.self_cpu_time_total) * 1e-6  # µs → s
        if ev.key in MATMUL_OPS:
            mm += t
        else:
            other += t
    return {"matrix products": mm / repeat, "everything else": other / repeat}


__all__ = [
    "check_ssd_args", "per_head", "ssd_scan_ref", "segsum", "decay_matrix", "semiseparable_matrix",
    "ssd_by_matrix", "attention_matrix", "to_chunks", "ssd_diagonal_blocks", "ssd_chunk_states",
    "ssd_state_passing", "ssd_off_diagonal_blocks", "ssd_chunked", "block_ranks", "ssd_flops", "MATMUL_OPS",
    "matmul_time_split",
]
