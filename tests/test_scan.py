"""The scans of h_t = a_t·h_{t-1} + b_t: associativity, agreement with the loop, gradients, cost."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mamba_edu.scan import (SCANS, ScanStats, ScanStep, combine, scan, scan_blelloch, scan_chunked,
                            scan_hillis_steele, scan_inplace, scan_sequential)

PARALLEL = ["hillis_steele", "blelloch", "chunked"]
# (method, extra keywords): every parallel scan, chunked at a few chunk sizes
VARIANTS = [("hillis_steele", {}), ("blelloch", {}), ("chunked", {"chunk": 1}), ("chunked", {"chunk": 3}),
            ("chunked", {"chunk": 64})]
VARIANT_IDS = ["hillis_steele", "blelloch", "chunked1", "chunked3", "chunked64"]


def make(lead, L, seed, dtype=torch.float64, with_h0=True, a_max=1.2, zeros=False):
    """Random a (|a| ≤ a_max, optionally with some exact zeros: state resets), b and h0."""
    g = torch.Generator().manual_seed(seed)
    shape = (*lead, L)
    if dtype.is_complex:
        r = torch.rand(shape, generator=g, dtype=torch.float64)  # (..., L)
        phase = 2 * torch.pi * torch.rand(shape, generator=g, dtype=torch.float64)  # (..., L)
        a = torch.polar(a_max * r, phase)  # (..., L)
    else:
        a = a_max * (2 * torch.rand(shape, generator=g, dtype=torch.float64) - 1)  # (..., L)
    if zeros:
        a = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.1, 0, a)  # (..., L)
    b = torch.randn(shape, generator=g, dtype=torch.float64)  # (..., L)
    h0 = torch.randn(lead, generator=g, dtype=torch.float64) if with_h0 else None  # (...)
    if dtype.is_complex:
        b = torch.complex(b, torch.randn(shape, generator=g, dtype=torch.float64))  # (..., L)
        h0 = None if h0 is None else torch.complex(h0, torch.randn(lead, generator=g, dtype=torch.float64))
    return a.to(dtype), b.to(dtype), (None if h0 is None else h0.to(dtype))


def assert_scan_close(h, ref, a, b, h0, rel):
    """|h − ref| ≤ rel·s_t, s = the scan of |a|, |b|, |h0|: the size of the terms that make up h_t.

    (An elementwise relative error would be meaningless where the terms cancel and h_t ≈ 0.)
    """
    s = scan_sequential(a.abs().double(), b.abs().double(), None if h0 is None else h0.abs().double())  # (..., L)
    err = (h.to(ref.dtype) - ref).abs()  # (..., L)
    assert h.shape == ref.shape
    assert bool((err <= rel * s + 1e-300).all()), f"max error / scale = {float((err / (s + 1e-300)).max()):.3g}"


def call(method, a, b, h0=None, **kw):
    return SCANS[method](a, b, h0, **kw)


# ----------------------------------------------------------------------------------------------
# The operator
# ----------------------------------------------------------------------------------------------

reals = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
complexes = st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), is_complex=st.booleans())
def test_combine_is_associative(data, n, is_complex):
    dtype = torch.complex128 if is_complex else torch.float64
    xs = [torch.tensor(data.draw(st.lists(complexes if is_complex else reals, min_size=n, max_size=n)), dtype=dtype)
          for _ in range(6)]
    x, y, z = (xs[0], xs[1]), (xs[2], xs[3]), (xs[4], xs[5])
    left = combine(combine(x, y), z)
    right = combine(x, combine(y, z))
    for p, q in zip(left, right):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(a=reals, b=reals)
def test_combine_identity_and_meaning(a, b):
    x = (torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    for p, q in zip(combine((1.0, 0.0), x), x):
        assert p == q
    for p, q in zip(combine(x, (1.0, 0.0)), x):
        assert p == q
    # (a1, b1) ⊕ (a2, b2) applied to h is step 1 then step 2
    a2, b2, h = 0.5, -2.0, 3.0
    A, B = combine(x, (a2, b2))
    torch.testing.assert_close(A * h + B, a2 * (x[0] * h + x[1]) + b2, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Every scan is the loop
# ----------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(method=st.sampled_from(PARALLEL), chunk=st.sampled_from([1, 2, 3, 7, 64, 500]),
       lead=st.lists(st.integers(1, 3), min_size=0, max_size=3), L=st.integers(1, 300),
       seed=st.integers(0, 2**31 - 1), with_h0=st.booleans(), is_complex=st.booleans(), zeros=st.booleans())
def test_every_scan_equals_sequential(method, chunk, lead, L, seed, with_h0, is_complex, zeros):
    dtype = torch.complex128 if is_complex else torch.float64
    a, b, h0 = make(tuple(lead), L, seed, dtype, with_h0, zeros=zeros)
    kw = {"chunk": chunk} if method == "chunked" else {}
    ref = scan_sequential(a, b, h0)  # (..., L)
    h = call(method, a, b, h0, **kw)  # (..., L)
    assert h.dtype == dtype
    assert_scan_close(h, ref, a, b, h0, rel=1e-10)


def test_sequential_is_the_recurrence():
    a, b, h0 = make((3,), 20, 0)
    h = h0
    for t in range(20):
        h = a[:, t] * h + b[:, t]  # (3,)
        torch.testing.assert_close(scan_sequential(a, b, h0)[:, t], h, rtol=0, atol=0)


@pytest.mark.parametrize("method", list(SCANS))
def test_h0_default_zero_and_h0_is_one_more_step(method):
    a, b, h0 = make((2, 3), 37, 1)
    kw = {"chunk": 8} if method == "chunked" else {}
    torch.testing.assert_close(call(method, a, b, **kw), call(method, a, b, torch.zeros_like(h0), **kw))
    # starting from h0 = starting from 0 with one extra step (anything, h0) in front
    a1 = torch.cat((torch.zeros_like(a[..., :1]), a), dim=-1)  # (2, 3, 38)
    b1 = torch.cat((h0.unsqueeze(-1), b), dim=-1)  # (2, 3, 38)
    torch.testing.assert_close(call(method, a, b, h0, **kw), call(method, a1, b1, **kw)[..., 1:],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", list(SCANS))
def test_dispatch(method):
    a, b, h0 = make((2,), 9, 2)
    torch.testing.assert_close(scan(a, b, h0, method=method), SCANS[method](a, b, h0), rtol=0, atol=0)
    assert set(SCANS) == {"sequential", "hillis_steele", "blelloch", "chunked"}
    assert scan(a, b).shape == (2, 9)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1000])
@pytest.mark.parametrize("L", [1, 2, 5, 63, 64, 65, 200])
def test_chunked_chunk_sizes(chunk, L):
    a, b, h0 = make((2, 2), L, L + chunk)
    ref = scan_sequential(a, b, h0)
    assert_scan_close(scan_chunked(a, b, h0, chunk=chunk), ref, a, b, h0, rel=1e-10)


@pytest.mark.parametrize("method", list(SCANS))
def test_float32(method):
    a, b, h0 = make((4,), 257, 3)
    a32, b32, h32 = a.float(), b.float(), h0.float()
    h = call(method, a32, b32, h32)
    assert h.dtype == torch.float32
    assert_scan_close(h, scan_sequential(a, b, h0), a, b, h0, rel=1e-5)


@pytest.mark.parametrize("method", list(SCANS))
def test_complex(method):
    a, b, h0 = make((3,), 100, 4, dtype=torch.complex128)
    h = call(method, a, b, h0)
    assert h.dtype == torch.complex128
    # reference written independently of the library: the loop in plain Python complex numbers
    for i in range(3):
        x = complex(h0[i])
        for t in range(100):
            x = complex(a[i, t]) * x + complex(b[i, t])
            assert abs(complex(h[i, t]) - x) <= 1e-10 * (1 + abs(x))
    h64 = call(method, a.to(torch.complex64), b.to(torch.complex64), h0.to(torch.complex64))
    assert h64.dtype == torch.complex64
    assert_scan_close(h64, h, a, b, h0, rel=1e-5)


def test_zero_size_leading_dim():
    a = torch.rand(0, 5, dtype=torch.float64)
    for method in SCANS:
        assert call(method, a, a.clone()).shape == (0, 5)


# ----------------------------------------------------------------------------------------------
# In place: the same scan on strided views, along any dimension
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("L", range(1, 71))
def test_scan_inplace_equals_sequential(L):
    a, b, h0 = make((2, 3), L, 20 + L)  # (2, 3, L), h0: (2, 3)
    ref = scan_sequential(a, b, h0)  # (2, 3, L)
    # along the last dimension, with h0 folded in
    a1, b1 = a.clone(), b.clone()
    assert_scan_close(scan_inplace(a1, b1, dim=-1, h0=h0), ref, a, b, h0, rel=1e-12)
    torch.testing.assert_close(a1, torch.cumprod(a, dim=-1), rtol=1e-12, atol=1e-14)  # a ← prefix products
    # along a middle dimension (time-major), h0 folded by the caller
    am, bm = a.movedim(-1, 1).contiguous(), b.movedim(-1, 1).contiguous()  # (2, L, 3)
    bm[:, 0] += am[:, 0] * h0
    h = scan_inplace(am, bm, dim=1)  # (2, L, 3)
    assert_scan_close(h.movedim(1, -1), ref, a, b, h0, rel=1e-12)


def test_scan_inplace_complex_and_float32():
    a, b, h0 = make((3,), 45, 21, dtype=torch.complex128, a_max=1.0)
    assert_scan_close(scan_inplace(a.clone(), b.clone(), h0=h0), scan_sequential(a, b, h0), a, b, h0, rel=1e-12)
    a, b, h0 = make((4,), 257, 22)
    h = scan_inplace(a.float(), b.float(), h0=h0.float())
    assert h.dtype == torch.float32
    assert_scan_close(h, scan_sequential(a, b, h0), a, b, h0, rel=1e-5)


def test_scan_inplace_really_is_in_place():
    a, b, _ = make((4, 5), 33, 23)
    b_t = b.transpose(0, 1)  # (5, 4, 33): a non-contiguous view works too
    ref = scan_sequential(a, b)  # (4, 5, 33)
    ptr = b.data_ptr()
    h = scan_inplace(a.transpose(0, 1), b_t, dim=2)
    assert h is b_t and h.data_ptr() == ptr
    torch.testing.assert_close(b, ref, rtol=1e-12, atol=1e-12)  # b itself now holds h


def test_scan_inplace_is_not_a_teaching_method():
    # SCANS is iterated with stats/record, which scan_inplace does not take
    assert scan_inplace not in SCANS.values()


XI = torch.rand(2, 5, dtype=torch.float64)  # (2, L = 5)


@pytest.mark.parametrize("name,kw", [
    ("a", dict(a=XI.long(), b=XI.long())),
    ("a", dict(a=torch.tensor(1.0, dtype=torch.float64), b=torch.tensor(1.0, dtype=torch.float64))),
    ("a", dict(a=torch.rand(2, 0, dtype=torch.float64), b=torch.rand(2, 0, dtype=torch.float64))),
    ("b", dict(a=XI.clone(), b=XI[:, :4].clone())),
    ("b", dict(a=XI.clone(), b=XI.float())),
    ("dim", dict(a=XI.clone(), b=XI.clone(), dim=2)),
    ("dim", dict(a=XI.clone(), b=XI.clone(), dim=True)),
    ("h0", dict(a=XI.clone(), b=XI.clone(), h0=torch.rand(5, dtype=torch.float64))),
], ids=["a-long", "a-0d", "a-empty", "b-shape", "b-dtype", "dim-range", "dim-bool", "h0-shape"])
def test_scan_inplace_errors(name, kw):
    with pytest.raises(ValueError, match=f"scan_inplace: argument '{name}'"):
        scan_inplace(**kw)


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------


def grads(method, a, b, h0, w, **kw):
    a, b, h0 = (x.detach().requires_grad_() for x in (a, b, h0))
    h = call(method, a, b, h0, **kw)  # (..., L)
    loss = (h * w).real.sum()
    return torch.autograd.grad(loss, (a, b, h0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("L", [1, 2, 5, 8, 37, 130])
@pytest.mark.parametrize("method,kw", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_sequential(method, kw, L, dtype):
    a, b, h0 = make((2, 3), L, 10 + L, dtype=dtype, a_max=1.0)
    w = make((2, 3), L, 99, dtype=dtype)[1]  # (2, 3, L): a random readout of every state
    for g, g_ref in zip(grads(method, a, b, h0, w, **kw), grads("sequential", a, b, h0, w)):
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method,kw", VARIANTS + [("sequential", {})], ids=VARIANT_IDS + ["sequential"])
def test_gradcheck(method, kw):
    a, b, h0 = make((2,), 6, 5)
    a, b, h0 = (x.requires_grad_() for x in (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b, h0: call(method, a, b, h0, **kw), (a, b, h0))


def test_gradcheck_complex_and_record():
    a, b, h0 = make((2,), 5, 6, dtype=torch.complex128, a_max=1.0)
    a, b, h0 = (x.requires_grad_() for x in (a, b, h0))
    # recording snapshots must not disturb autograd
    f = lambda a, b, h0: scan_blelloch(a, b, h0, stats=True, record=True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(f, (a, b, h0))


# ----------------------------------------------------------------------------------------------
# Work and depth: counted by the code, checked against closed forms
# ----------------------------------------------------------------------------------------------


def log2_floor(n):
    return n.bit_length() - 1


def hs_cost(L):
    K = (L - 1).bit_length()  # ⌈log2 L⌉
    return K * L - 2**K + 1, K  # Σ_{k<K} (L − 2^k), K


def blelloch_cost(L):
    work = 2 * L - bin(L).count("1") - log2_floor(L) - 1
    depth = 0 if L == 1 else log2_floor(L) + log2_floor(2 * L // 3)
    return work, depth


def chunked_cost(L, chunk):
    C = min(chunk, L)
    n = -(-L // C)
    W, D = blelloch_cost(C)
    return n * W + max(n - 2, 0) + (n - 1) * C, D + max(n - 2, 0) + (n >= 2)


LENGTHS = list(range(1, 70)) + [127, 128, 129, 255, 256, 257, 300, 1000, 1024]


@pytest.mark.parametrize("L", LENGTHS)
def test_work_and_depth(L):
    a = torch.rand(L, dtype=torch.float64)
    b = torch.rand(L, dtype=torch.float64)
    cases = [("sequential", {}, (L - 1, L - 1)), ("hillis_steele", {}, hs_cost(L)), ("blelloch", {}, blelloch_cost(L))]
    cases += [("chunked", {"chunk": c}, chunked_cost(L, c)) for c in (1, 3, 16, 64, 2000)]
    for method, kw, (work, depth) in cases:
        _, s = call(method, a, b, stats=True, **kw)
        assert isinstance(s, ScanStats) and s.steps == []
        assert (s.work, s.depth) == (work, depth), (method, kw)
    _, s = scan_blelloch(a, b, stats=True)
    assert s.work <= max(2 * L - 2, 0)
    if L & (L - 1) == 0 and L > 1:  # a power of two, L = 2^k
        k = log2_floor(L)
        assert (s.work, s.depth) == (2 * L - 2 - k, 2 * k - 1)
    # work and depth do not depend on the leading shape
    _, s2 = scan_blelloch(a.expand(3, 2, L), b.expand(3, 2, L), stats=True)
    assert (s2.work, s2.depth) == (s.work, s.depth)


# ----------------------------------------------------------------------------------------------
# Recording the steps
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("L", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("method,kw", VARIANTS + [("sequential", {})], ids=VARIANT_IDS + ["sequential"])
def test_record(method, kw, L):
    a, b, h0 = make((2,), L, 7)
    h, s = call(method, a, b, h0, stats=True, record=True, **kw)
    assert len(s.steps) == s.depth
    for step in s.steps:
        assert isinstance(step, ScanStep) and isinstance(step.label, str) and step.label
        assert step.a.shape == a.shape and step.b.shape == a.shape and not step.b.requires_grad
    if L > 1:
        # the last working arrays are the whole inclusive scan: cumulative products and states
        torch.testing.assert_close(s.steps[-1].b, h, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(s.steps[-1].a, torch.cumprod(a, dim=-1), rtol=1e-12, atol=1e-12)


def test_record_pictures_with_all_ones():
    # a = 1, b = 1: the working b counts how many inputs each position has summed so far
    ones = torch.ones(8)
    _, s = scan_blelloch(ones, ones, stats=True, record=True)
    assert [x.b.tolist() for x in s.steps] == [
        [1, 2, 1, 2, 1, 2, 1, 2],  # up-sweep: pairs
        [1, 2, 1, 4, 1, 2, 1, 4],  # up-sweep: blocks of 4
        [1, 2, 1, 4, 1, 2, 1, 8],  # up-sweep: the root
        [1, 2, 1, 4, 1, 6, 1, 8],  # down-sweep, stride 2
        [1, 2, 3, 4, 5, 6, 7, 8],  # down-sweep, stride 1
    ]
    _, s = scan_hillis_steele(ones, ones, stats=True, record=True)
    assert [x.b.tolist() for x in s.steps] == [[1, 2, 2, 2, 2, 2, 2, 2], [1, 2, 3, 4, 4, 4, 4, 4],
                                               [1, 2, 3, 4, 5, 6, 7, 8]]
    _, s = scan_chunked(ones, ones, chunk=3, stats=True, record=True)
    assert [x.b.tolist() for x in s.steps] == [
        [1, 2, 1, 1, 2, 1, 1, 2],  # local up-sweep in chunks [0:3], [3:6], [6:8] + padding
        [1, 2, 3, 1, 2, 3, 1, 2],  # local down-sweep
        [1, 2, 3, 1, 2, 6, 1, 2],  # carry reaches the end of chunk 2
        [1, 2, 3, 4, 5, 6, 7, 8],  # fix-up
    ]


# ----------------------------------------------------------------------------------------------
# Errors: a ValueError that names the argument
# ----------------------------------------------------------------------------------------------

X = torch.rand(2, 5, dtype=torch.float64)
H = torch.rand(2, dtype=torch.float64)

BAD = [
    ("a", dict(a=[1.0, 2.0], b=X)),
    ("a", dict(a=X.long(), b=X.long())),
    ("a", dict(a=torch.tensor(1.0), b=torch.tensor(1.0))),
    ("a", dict(a=torch.rand(2, 0), b=torch.rand(2, 0))),
    ("b", dict(a=X, b=X[:, :4])),
    ("b", dict(a=X, b=X.float())),
    ("b", dict(a=X, b=torch.empty(2, 5, dtype=torch.float64, device="meta"))),
    ("b", dict(a=X, b=None)),
    ("h0", dict(a=X, b=X, h0=X)),
    ("h0", dict(a=X, b=X, h0=H.float())),
    ("h0", dict(a=X, b=X, h0=torch.rand(3, dtype=torch.float64))),
    ("stats", dict(a=X, b=X, stats=1)),
    ("record", dict(a=X, b=X, record=True)),
]


@pytest.mark.parametrize("method", list(SCANS))
@pytest.mark.parametrize("name,kw", BAD, ids=[f"{n}{i}" for i, (n, _) in enumerate(BAD)])
def test_errors(method, name, kw):
    with pytest.raises(ValueError, match=f"{SCANS[method].__name__}: argument '{name}'"):
        SCANS[method](**kw)
    with pytest.raises(ValueError, match=f"argument '{name}'"):
        scan(**kw, method=method)


@pytest.mark.parametrize("chunk", [0, -3, 2.5, True, "8"])
def test_error_chunk(chunk):
    with pytest.raises(ValueError, match="scan_chunked: argument 'chunk'"):
        scan_chunked(X, X, chunk=chunk)


def test_error_method_and_combine():
    with pytest.raises(ValueError, match="scan: argument 'method'.*'blelloch'"):
        scan(X, X, method="brent_kung")
    with pytest.raises(ValueError, match="combine: argument 'left'"):
        combine((1.0, 2.0, 3.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="combine: argument 'right'"):
        combine((1.0, 2.0), (1.0, "x"))
