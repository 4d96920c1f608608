"""The first-order linear recurrence h_t = a_t·h_{t-1} + b_t and its parallel scans.

Glossary
    L        sequence length (the LAST dimension of every tensor here); any leading shape "..."
             holds independent sequences (batch, channels, state entries, ...)
    a_t      the decay at step t: how much of the old state survives       a: (..., L)
    b_t      the input at step t: what is written into the state           b: (..., L)
    h_t      the state after step t; h_{-1} = h0 (zeros unless given)      h: (..., L), h0: (...)
    (a, b)   a pair stands for the affine map  h ↦ a·h + b  (one step of the recurrence)
    ⊕        the combine operator on pairs:  (a1, b1) ⊕ (a2, b2) = (a1·a2, a2·b1 + b2),
             left = earlier step, right = later step
    work     how many ⊕ a method performs for ONE length-L sequence (the total cost)
    depth    how many parallel steps it takes (the time with unlimited processors)

The key idea. One step of the recurrence is the affine function f_t(h) = a_t·h + b_t. Doing step
1 then step 2 is the composition f_2(f_1(h)) = a_2·(a_1·h + b_1) + b_2 = (a_1·a_2)·h + (a_2·b_1 + b_2):
again an affine function, the pair (a_1·a_2, a_2·b_1 + b_2) = (a_1, b_1) ⊕ (a_2, b_2). Composing
functions is associative, so ⊕ is associative:

    ((x ⊕ y) ⊕ z) = (x ⊕ (y ⊕ z))

and that is all a parallel scan needs. The state h_t is the b-part of x_0 ⊕ x_1 ⊕ ... ⊕ x_t
(starting from h_{-1} = 0), and associativity lets us bracket that product however we like: as a
left-to-right loop (sequential: depth L−1), as doubling jumps (Hillis–Steele: depth ⌈log2 L⌉,
more work), or as a tree (Blelloch: depth ~2·log2 L with work < 2L). The a-part of the same
product is the cumulative product a_0·a_1·...·a_t.

`scan_inplace` is the same Blelloch scan done in place on strided views along any dimension `dim`
(no copies, no autograd, no stats): the form `selective_scan_parallel` runs on big tensors.

The initial state is folded into the first input: b_0 ← a_0·h0 + b_0, after which every scan runs
from h_{-1} = 0. This fold is not counted as work (it is the same for every method).

Every scan takes `stats=True` to also return a `ScanStats` (work, depth, counted by the code as it
runs), and `record=True` on top of that to keep a snapshot of the working (a, b) arrays after each
parallel step, laid out as an in-place algorithm would hold them (for step-by-step pictures; keep
L small). Exact work and depth of each method are given in its docstring and tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._checks import COMPLEX_DTYPES, FLOAT_DTYPES, check_choice, check_int, check_tensor, fail

Pair = tuple  # (a, b): two tensors (or numbers) of broadcastable shapes


@dataclass
class ScanStep:
    """The working arrays after one parallel step: `a` and `b` have the input's shape (..., L)."""

    label: str
    a: torch.Tensor
    b: torch.Tensor


@dataclass
class ScanStats:
    """Cost of one scan, counted for one length-L sequence, and (with record=True) its steps."""

    work: int = 0  # number of ⊕ performed
    depth: int = 0  # number of parallel steps
    steps: list[ScanStep] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# The operator
# ----------------------------------------------------------------------------------------------


def _combine(left, right):
    a1, b1 = left
    a2, b2 = right
    # (a1, b1) ⊕ (a2, b2) = (a1·a2, a2·b1 + b2): first apply step 1, then step 2
    return a1 * a2, a2 * b1 + b2


def combine(left: Pair, right: Pair) -> Pair:
    """(a1, b1) ⊕ (a2, b2) = (a1·a2, a2·b1 + b2), elementwise; `left` is the earlier step.

    The pair (1, 0) is the identity: it is the map h ↦ h.
    """
    for name, p in (("left", left), ("right", right)):
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            fail("combine", name, "a pair (a, b)", f"{type(p).__name__} {p!r}")
        for x in p:
            if isinstance(x, bool) or not isinstance(x, (torch.Tensor, int, float, complex)):
                fail("combine", name, "a pair (a, b) of tensors or numbers", f"an element of type {type(x).__name__}")
    return _combine(left, right)


# ----------------------------------------------------------------------------------------------
# Shared plumbing: validation, the h0 fold, recording
# ----------------------------------------------------------------------------------------------


def _check(func: str, a, b, h0, stats, record) -> int:
    """Validate the common arguments of every scan; return L."""
    check_tensor(func, "a", a, dims="(..., L)", dtypes=FLOAT_DTYPES + COMPLEX_DTYPES)
    if a.dim() < 1 or a.shape[-1] < 1:
        fail(func, "a", "a tensor of shape (..., L) with at least 1 dimension and L >= 1", f"shape {tuple(a.shape)}")
    check_tensor(func, "b", b, shape=tuple(a.shape), dims="(..., L) like a", dtypes=(a.dtype,), device=a.device)
    if h0 is not None:
        check_tensor(func, "h0", h0, shape=tuple(a.shape[:-1]), dims="(...) = a.shape[:-1]", dtypes=(a.dtype,),
                     device=a.device)
    for name, flag in (("stats", stats), ("record", record)):
        if not isinstance(flag, bool):
            fail(func, name, "True or False", repr(flag))
    if record and not stats:
        fail(func, "record", "False unless stats=True (the steps are returned in ScanStats)", "record=True")
    return a.shape[-1]


def _fold_h0(a, b, h0):
    """b_0 ← a_0·h0 + b_0, so that the scan itself can start from h_{-1} = 0."""
    if h0 is None:
        return b
    b0 = a[..., :1] * h0.unsqueeze(-1) + b[..., :1]  # (..., 1)
    return torch.cat((b0, b[..., 1:]), dim=-1)  # (..., L)


class _Canvas:
    """The working (a, b) arrays as an in-place algorithm would hold them: for recording only.

    Holds detached copies (never part of the autograd graph); `snap` appends a ScanStep whose
    arrays are `view(canvas)`, by default the canvas itself.
    """

    def __init__(self, a, b, st: ScanStats, view=lambda x: x):
        self.a, self.b = a.detach().clone(), b.detach().clone()  # (..., L) or (..., n, C)
        self.st, self.view = st, view

    def write(self, index, a, b):
        self.a[index], self.b[index] = a.detach(), b.detach()

    def snap(self, label: str):
        self.st.steps.append(ScanStep(label, self.view(self.a).clone(), self.view(self.b).clone()))


def _result(h, st, stats):
    return (h, st) if stats else h


# ----------------------------------------------------------------------------------------------
# Sequential: the loop (depth L − 1)
# ----------------------------------------------------------------------------------------------


def scan_sequential(a, b, h0=None, *, stats: bool = False, record: bool = False):
    """h_t = a_t·h_{t-1} + b_t, one step after the other.  a, b: (..., L) → h: (..., L)

    Work L − 1, depth L − 1 (every ⊕ waits for the previous one).
    """
    L = _check("scan_sequential", a, b, h0, stats, record)
    st = ScanStats()
    b = _fold_h0(a, b, h0)  # (..., L)
    cv = _Canvas(a, b, st) if record else None
    A, H = a[..., 0], b[..., 0]  # (...): prefix product of a, and the state h_0
    Hs = [H]
    for t in range(1, L):
        # (A, h)_t = (A, h)_{t-1} ⊕ (a_t, b_t), i.e. h_t = a_t·h_{t-1} + b_t
        A, H = _combine((A, H), (a[..., t], b[..., t]))  # (...)
        Hs.append(H)
        st.work += 1
        st.depth += 1
        if cv:
            cv.write((..., t), A, H)
            cv.snap(f"t = {t}")
    h = torch.stack(Hs, dim=-1)  # (..., L)
    return _result(h, st, stats)


# ----------------------------------------------------------------------------------------------
# Hillis–Steele: doubling offsets (work O(L log L), depth ⌈log2 L⌉)
# ----------------------------------------------------------------------------------------------


def scan_hillis_steele(a, b, h0=None, *, stats: bool = False, record: bool = False):
    """Step k: every position i ≥ 2^k takes x_i ← x_{i−2^k} ⊕ x_i, all at once.  (..., L) → (..., L)

    After step k, position i holds x_{max(0, i−2^{k+1}+1)} ⊕ ... ⊕ x_i, so after K = ⌈log2 L⌉
    steps every position holds its full prefix. Work Σ_{k<K} (L − 2^k) = K·L − 2^K + 1,
    depth K.
    """
    L = _check("scan_hillis_steele", a, b, h0, stats, record)
    st = ScanStats()
    b = _fold_h0(a, b, h0)  # (..., L)
    d = 1
    while d < L:
        # x_i ← x_{i−d} ⊕ x_i for i ≥ d; positions i < d already hold their whole prefix
        A, B = _combine((a[..., :-d], b[..., :-d]), (a[..., d:], b[..., d:]))  # (..., L−d)
        a = torch.cat((a[..., :d], A), dim=-1)  # (..., L)
        b = torch.cat((b[..., :d], B), dim=-1)  # (..., L)
        st.work += L - d
        st.depth += 1
        if record:
            st.steps.append(ScanStep(f"offset {d}", a.detach().clone(), b.detach().clone()))
        d *= 2
    return _result(b, st, stats)


# ----------------------------------------------------------------------------------------------
# Blelloch: up-sweep (tree reduction) then down-sweep (work O(L), depth ~2·log2 L)
# ----------------------------------------------------------------------------------------------


def _interleave(even, odd):
    """out[2k] = even[k], out[2k+1] = odd[k].  (..., ⌈M/2⌉), (..., ⌊M/2⌋) → (..., M)"""
    m = odd.shape[-1]
    x = torch.stack((even[..., :m], odd), dim=-1).flatten(-2)  # (..., 2m)
    return torch.cat((x, even[..., m:]), dim=-1)  # (..., M)


def _blelloch(a, b, st: ScanStats, cv: _Canvas | None, copies: int = 1, stride: int = 1):
    """Inclusive scan of one tree level.  a, b: (..., M) → (..., M)

    Node k of this level stands for the block of the original sequence that ends at position
    (k+1)·stride − 1 (the layout of in-place Blelloch). `copies` independent sequences are
    scanned side by side (the chunks of `scan_chunked`), for the work count.
    """
    M = a.shape[-1]
    if M == 1:
        return a, b
    m = M // 2
    # Up-sweep, one level of the tree reduction: node k of the next level = x_{2k} ⊕ x_{2k+1}.
    # In-place Blelloch does exactly this at positions i ≡ 2·stride − 1 (mod 2·stride). An odd
    # last node has no partner: it waits (no padding needed).
    A, B = _combine((a[..., 0:2 * m:2], b[..., 0:2 * m:2]), (a[..., 1:2 * m:2], b[..., 1:2 * m:2]))  # (..., m)
    st.work += copies * m
    st.depth += 1
    if cv:
        cv.write((..., slice(2 * stride - 1, None, 2 * stride)), A, B)
        cv.snap(f"up-sweep, stride {2 * stride}")
    # Recurse: the half-length level is scanned the same way (up to the root and back down).
    # Afterwards node k there holds x_0 ⊕ ... ⊕ x_{2k+1}: the prefix of every ODD node here.
    P, Q = _blelloch(A, B, st, cv, copies, 2 * stride)  # (..., m)
    # Down-sweep, one level: every EVEN node 2k ≥ 2 takes prefix_{2k−1} ⊕ x_{2k}; node 0 is
    # its own prefix. In-place Blelloch does the same move at positions 2k·stride + stride − 1,
    # pushing the prefixes from the root back down to the leaves (its exclusive variant first
    # sets the root to the identity and swaps; this inclusive form skips that and some ⊕).
    e = (M - 1) // 2  # even nodes 2, 4, ..., ≤ M − 1
    Pe, Qe = _combine((P[..., :e], Q[..., :e]), (a[..., 2:M:2], b[..., 2:M:2]))  # (..., e)
    if e:
        st.work += copies * e
        st.depth += 1
    A = _interleave(torch.cat((a[..., :1], Pe), dim=-1), P)  # (..., M)
    B = _interleave(torch.cat((b[..., :1], Qe), dim=-1), Q)  # (..., M)
    if cv and e:
        cv.write((..., slice(stride - 1, None, stride)), A, B)
        cv.snap(f"down-sweep, stride {stride}")
    return A, B


def scan_blelloch(a, b, h0=None, *, stats: bool = False, record: bool = False):
    """Work-efficient scan: pairwise up-sweep to the root, then down-sweep.  (..., L) → (..., L)

    Written recursively: combine pairs (x_{2k}, x_{2k+1}), scan the half-length sequence, then
    fill in the even positions. With L_j = ⌊L / 2^j⌋ the length of tree level j:
        work  = Σ_j (L_j − 1) = 2L − popcount(L) − ⌊log2 L⌋ − 1
                (≤ 2L − 2; equal to 2L − 2 − log2 L for L = 2^k)
        depth = ⌊log2 L⌋ up-sweep steps + ⌊log2(2L/3)⌋ down-sweep steps
                (2·log2 L − 1 for L = 2^k; 0 for L = 1)
    """
    L = _check("scan_blelloch", a, b, h0, stats, record)
    st = ScanStats()
    b = _fold_h0(a, b, h0)  # (..., L)
    cv = _Canvas(a, b, st) if record else None
    _, h = _blelloch(a, b, st, cv)  # (..., L)
    return _result(h, st, stats)


# ----------------------------------------------------------------------------------------------
# Chunked: scan chunks in parallel, carry the state between chunks, fix up (how GPU kernels do it)
# ----------------------------------------------------------------------------------------------


def scan_chunked(a, b, h0=None, chunk: int = 64, *, stats: bool = False, record: bool = False):
    """Split L into n chunks of C = min(chunk, L), scan all chunks at once, then carry.  (..., L) → (..., L)

    1. local: Blelloch within every chunk, all n chunks side by side (a GPU: one block each);
    2. carry: T_c = chunk c's total (A, B) pair; the state entering chunk c+1 is
       T_0 ⊕ ... ⊕ T_c, a short sequential pass over the chunk totals;
    3. fix-up: inside chunk c ≥ 1, x ← carry_in ⊕ x_local, i.e. h = h_local + (prefix product of a
       within the chunk)·h_carry, all positions at once.
    The last chunk is padded with the identity (1, 0); padded positions are computed and counted:
        work  = n·W(C) + max(n − 2, 0) + (n − 1)·C,   depth = D(C) + max(n − 2, 0) + [n ≥ 2]
    with W, D the work and depth of `scan_blelloch`.
    """
    func = "scan_chunked"
    L = _check(func, a, b, h0, stats, record)
    check_int(func, "chunk", chunk, minimum=1)
    st = ScanStats()
    b = _fold_h0(a, b, h0)  # (..., L)
    lead = a.shape[:-1]
    C = min(chunk, L)
    n = -(-L // C)  # ⌈L / C⌉ chunks
    pad = n * C - L
    # the identity (1, 0) leaves every prefix unchanged: padding at the end changes nothing before it
    a = torch.cat((a, a.new_ones(*lead, pad)), dim=-1).reshape(*lead, n, C)  # (..., n, C)
    b = torch.cat((b, b.new_zeros(*lead, pad)), dim=-1).reshape(*lead, n, C)  # (..., n, C)
    cv = _Canvas(a, b, st, view=lambda x: x.reshape(*lead, n * C)[..., :L]) if record else None

    # 1. every chunk scanned independently, all at once
    A, B = _blelloch(a, b, st, cv, copies=n)  # (..., n, C): prefixes within each chunk

    # 2. carry: the state at the end of chunk c is T_0 ⊕ ... ⊕ T_c (T_c = last column of chunk c)
    carry = [(A[..., 0, -1], B[..., 0, -1])]  # pairs (...) entering chunks 1, 2, ..., n − 1
    for c in range(1, n - 1):
        carry.append(_combine(carry[-1], (A[..., c, -1], B[..., c, -1])))  # (...)
        st.work += 1
        st.depth += 1
        if cv:
            cv.write((..., c, C - 1), *carry[-1])
            cv.snap(f"carry into chunk {c + 1}")

    # 3. fix-up: x ← carry_in ⊕ x_local in chunks 1 .. n − 1, every position at once
    if n > 1:
        Ac = torch.stack([p[0] for p in carry], dim=-1).unsqueeze(-1)  # (..., n−1, 1)
        Bc = torch.stack([p[1] for p in carry], dim=-1).unsqueeze(-1)  # (..., n−1, 1)
        # (Ac, Bc) ⊕ (A, B) = (Ac·A, A·Bc + B): h = h_local + (prefix product of a)·h_carry
        A1, B1 = _combine((Ac, Bc), (A[..., 1:, :], B[..., 1:, :]))  # (..., n−1, C)
        A = torch.cat((A[..., :1, :], A1), dim=-2)  # (..., n, C)
        B = torch.cat((B[..., :1, :], B1), dim=-2)  # (..., n, C)
        st.work += (n - 1) * C
        st.depth += 1
        if cv:
            cv.write((...,), A, B)
            cv.snap("fix-up: carry into every chunk")
    h = B.reshape(*lead, n * C)[..., :L]  # (..., L)
    return _result(h, st, stats)


# ----------------------------------------------------------------------------------------------
# In place: Blelloch (Brent–Kung) on strided views, the fast form for big tensors
# ----------------------------------------------------------------------------------------------


def _combine_inplace(a, b, s: int, first: int):
    """x_i ← x_{i−s} ⊕ x_i at every position i = first, first + 2s, … < L, in place.  a, b: (L, ...)

    (a_{i−s}, b_{i−s}) ⊕ (a_i, b_i) = (a_{i−s}·a_i, a_i·b_{i−s} + b_i): b first, it needs the old a_i.
    Positions i and i − s are two views with step 2s (no copies); the two sets never overlap.
    """
    L = a.shape[0]
    if first >= L:
        return
    ai, bi = a[first::2 * s], b[first::2 * s]  # (m, ...): positions i
    al, bl = a[first - s:L - s:2 * s], b[first - s:L - s:2 * s]  # (m, ...): positions i − s
    bi.addcmul_(ai, bl)  # b_i ← a_i·b_{i−s} + b_i
    ai.mul_(al)  # a_i ← a_{i−s}·a_i


def _extent(x: torch.Tensor) -> tuple[int, int]:
    """The bytes [start, end) of x's storage that x can touch."""
    start = x.storage_offset() * x.element_size()
    span = sum((n - 1) * abs(st) for n, st in zip(x.shape, x.stride())) + 1
    return start, start + span * x.element_size()


def _check_writable(func: str, a: torch.Tensor, b: torch.Tensor) -> None:
    """Both inputs are overwritten, so they must be separate memory with one element per address:
    scan_inplace(x, x), a view of the other, or an expanded (stride-0) tensor would read values
    the scan has already overwritten and return a silently wrong h. And no autograd."""
    for name, x in (("a", a), ("b", b)):
        if any(st == 0 and n > 1 for n, st in zip(x.shape, x.stride())):
            fail(func, name, "a tensor with its own memory per element (it is overwritten in place)",
                 "an expanded (stride-0) view: pass .clone()")
        if x.requires_grad and torch.is_grad_enabled():
            fail(func, name, "a tensor that does not require grad (no autograd through in-place writes)",
                 "a tensor that requires grad: use scan_blelloch, or detach()")
    if a.numel() and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr():
        (a0, a1), (b0, b1) = _extent(a), _extent(b)
        if a0 < b1 and b0 < a1:
            fail(func, "b", "memory separate from a's (both are overwritten in place)",
                 "a tensor that shares memory with a: pass b.clone()")


def scan_inplace(a, b, dim: int = -1, h0=None):
    """The inclusive Blelloch (Brent–Kung) scan along `dim`, in place; returns b, which now holds h.

    a, b: (..., L, ...) with L at position `dim`; h0: a's shape without `dim`, folded into b_0.
    Afterwards b_t = h_t and a_t = a_0·a_1·…·a_t (the prefix products): both inputs are
    overwritten, nothing of their size is allocated. Any L ≥ 1, not only powers of two.

    Up-sweep, for s = 1, 2, 4, … while 2s ≤ L: every i = 2s−1, 4s−1, … < L takes
    x_i ← x_{i−s} ⊕ x_i; afterwards position i holds the ⊕ of the block of inputs that ends at
    i, whose length is the largest power of two dividing i + 1.
    Down-sweep, for s from the largest power of two < L down to 1: every i = 3s−1, 5s−1, … < L
    (i = 2s·j + s − 1, j ≥ 1) takes x_i ← x_{i−s} ⊕ x_i, where x_{i−s} already holds its whole
    prefix; afterwards every position holds its whole prefix x_0 ⊕ … ⊕ x_i.
    The work is `scan_blelloch`'s (each ⊕ one element of a and of b per leading index); each of
    the ~2·log2 L levels is two elementwise in-place kernels over strided views. With L not the
    last dimension (time-major tensors), the view of every level selects whole contiguous rows.
    No autograd (the in-place writes would destroy what backward needs), no stats, no record.
    """
    func = "scan_inplace"
    check_tensor(func, "a", a, dtypes=FLOAT_DTYPES + COMPLEX_DTYPES)
    if a.dim() < 1:
        fail(func, "a", "a tensor with at least 1 dimension (the time axis dim)", f"shape {tuple(a.shape)}")
    if not isinstance(dim, int) or isinstance(dim, bool) or not -a.dim() <= dim < a.dim():
        fail(func, "dim", f"an integer in [{-a.dim()}, {a.dim() - 1}] (a dimension of a)", repr(dim))
    if a.shape[dim] < 1:
        fail(func, "a", f"a tensor with L >= 1 along dim {dim}", f"shape {tuple(a.shape)}")
    check_tensor(func, "b", b, shape=tuple(a.shape), dims="like a", dtypes=(a.dtype,), device=a.device)
    _check_writable(func, a, b)
    if h0 is not None:
        lead = tuple(a.shape[:dim % a.dim()] + a.shape[dim % a.dim() + 1:])
        check_tensor(func, "h0", h0, shape=lead, dims="a's shape without dim", dtypes=(a.dtype,), device=a.device)
    x, y = a.movedim(dim, 0), b.movedim(dim, 0)  # (L, ...): views, time first
    L = x.shape[0]
    if h0 is not None:
        y[0].addcmul_(x[0], h0)  # b_0 ← a_0·h0 + b_0: the scan then starts from h_{-1} = 0
    s = 1
    while 2 * s <= L:  # up-sweep: blocks of 2s end at i = 2s−1, 4s−1, …
        _combine_inplace(x, y, s, 2 * s - 1)
        s *= 2
    s = 1 << ((L - 1).bit_length() - 1) if L > 1 else 0  # the largest power of two < L
    while s >= 1:  # down-sweep: the prefix reaches i = 3s−1, 5s−1, …
        _combine_inplace(x, y, s, 3 * s - 1)
        s //= 2
    return b


# ----------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------

SCANS = {
    "sequential": scan_sequential,
    "hillis_steele": scan_hillis_steele,
    "blelloch": scan_blelloch,
    "chunked": scan_chunked,
}


def scan(a, b, h0=None, method: str = "blelloch", **kw):
    """h_t = a_t·h_{t-1} + b_t over the last dimension by `method` (a key of SCANS).

    Extra keywords (stats, record, chunk) go to the method.  a, b: (..., L), h0: (...) → h: (..., L)
    """
    check_choice("scan", "method", method, SCANS)
    return SCANS[method](a, b, h0, **kw)
