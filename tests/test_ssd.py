"""Mamba-2 / SSD: the chunked algorithm, the semiseparable matrix and the scan are one map.

float64 references over odd lengths and several chunk sizes, gradients, the Mamba-1 reference as a
cross-check, structure (ranks), FLOP counts against torch's counter, and bad input.
"""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mamba_edu import ssd
from mamba_edu.selective import selective_scan_ref

f64 = torch.float64


def inputs(b=2, l=13, h=4, p=3, n=5, g=2, seed=0, dtype=f64):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=f64)  # noqa: E731
    x = r(b, l, h, p)
    dt = torch.rand(b, l, h, generator=gen, dtype=f64) * 0.5 + 0.05
    A = -torch.rand(h, generator=gen, dtype=f64) - 0.1
    B, C = (r(b, l, g, n), r(b, l, g, n)) if g else (r(b, l, n), r(b, l, n))
    D, h0 = r(h), r(b, h, p, n)
    return [t.to(dtype) for t in (x, dt, A, B, C, D, h0)]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("l", [1, 7, 33])
@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
def test_chunked_equals_matrix_equals_scan(seed, l, chunk):
    x, dt, A, B, C, D, h0 = inputs(l=l, seed=seed, g=2 if seed == 0 else 0)
    y_scan = ssd.ssd_scan_ref(x, dt, A, B, C, D)
    y_mat = ssd.ssd_by_matrix(x, dt, A, B, C, D)
    y_chunk = ssd.ssd_chunked(x, dt, A, B, C, chunk=chunk, D=D)
    torch.testing.assert_close(y_mat, y_scan, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(y_chunk, y_scan, rtol=1e-10, atol=1e-10)
    # with an initial state, and the final state
    y1, s1 = ssd.ssd_scan_ref(x, dt, A, B, C, D, h0=h0, return_final_state=True)
    y2, s2 = ssd.ssd_chunked(x, dt, A, B, C, chunk=chunk, D=D, h0=h0, return_final_state=True)
    torch.testing.assert_close(y2, y1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s2, s1, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(y1, y_scan)  # h0 matters


def test_scan_is_the_recurrence_written_out():
    """One head, one channel, by hand: h_t = a_t h_{t-1} + Δ_t x_t B_t, y_t = C_t·h_t."""
    x, dt, A, B, C, D, _ = inputs(b=1, l=6, h=1, p=1, n=3, g=0)
    y = ssd.ssd_scan_ref(x, dt, A, B, C)
    h = torch.zeros(3, dtype=f64)
    for t in range(6):
        h = math.exp(dt[0, t, 0] * A[0]) * h + dt[0, t, 0] * x[0, t, 0, 0] * B[0, t]
        assert abs(float(y[0, t, 0, 0]) - float(C[0, t] @ h)) < 1e-12


def test_splitting_a_sequence_in_two_carries_the_state():
    x, dt, A, B, C, D, _ = inputs(l=20)
    y, s = ssd.ssd_chunked(x, dt, A, B, C, chunk=8, return_final_state=True)
    ya, sa = ssd.ssd_chunked(x[:, :9], dt[:, :9], A, B[:, :9], C[:, :9], chunk=8, return_final_state=True)
    yb, sb = ssd.ssd_chunked(x[:, 9:], dt[:, 9:], A, B[:, 9:], C[:, 9:], chunk=8, h0=sa, return_final_state=True)
    torch.testing.assert_close(torch.cat([ya, yb], 1), y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sb, s, rtol=1e-10, atol=1e-10)


def test_ssd_is_mamba1_with_a_scalar_A_per_head():
    """Mamba-2's SSM is Mamba-1's selective scan with every row of A equal to the head's scalar."""
    b, l, h, p, n = 2, 11, 3, 2, 4
    x, dt, A, B, C, D, _ = inputs(b=b, l=l, h=h, p=p, n=n, g=0)
    y = ssd.ssd_scan_ref(x, dt, A, B, C)
    u = x.reshape(b, l, h * p).transpose(1, 2)  # (b, d, l), channel = head·p + i
    delta = dt.repeat_interleave(p, dim=2).transpose(1, 2)  # (b, d, l)
    A1 = A.repeat_interleave(p)[:, None].expand(h * p, n)  # (d, n): the same rate for all n
    y1 = selective_scan_ref(u, delta, A1, B.transpose(1, 2), C.transpose(1, 2))  # (b, d, l)
    torch.testing.assert_close(y1.transpose(1, 2).reshape(b, l, h, p), y, rtol=1e-10, atol=1e-10)


def test_gradients_of_chunked_equal_those_of_the_scan():
    x, dt, A, B, C, D, h0 = inputs(b=1, l=9, h=2, p=2, n=3, g=1)
    args = [t.clone().requires_grad_() for t in (x, dt, A, B, C, D, h0)]

    def loss(fn, a):
        y, s = fn(*a[:5], D=a[5], h0=a[6], return_final_state=True)
        return (y * torch.linspace(-1, 1, y.numel(), dtype=f64).reshape(y.shape)).sum() + s.pow(2).sum()

    g_scan = torch.autograd.grad(loss(ssd.ssd_scan_ref, args), args)
    g_chunk = torch.autograd.grad(loss(lambda *a, **k: ssd.ssd_chunked(*a, chunk=4, **k), args), args)
    for name, gs, gc in zip("x dt A B C D h0".split(), g_scan, g_chunk):
        torch.testing.assert_close(gc, gs, rtol=1e-9, atol=1e-10, msg=f"gradient of {name}")
    small = [t[:, :5].clone().requires_grad_() if i in (0, 1, 3, 4) else t.clone().requires_grad_()
             for i, t in enumerate((x, dt, A, B, C))]
    assert torch.autograd.gradcheck(lambda *a: ssd.ssd_chunked(*a, chunk=2), small)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
def test_low_precision_inputs_keep_their_dtype(dtype, tol):
    ref = ssd.ssd_scan_ref(*inputs(l=17)[:5])
    x, dt, A, B, C, _, _ = inputs(l=17, dtype=dtype)
    y = ssd.ssd_chunked(x, dt, A, B, C, chunk=8)
    assert y.dtype == dtype
    assert float((y.double() - ref).abs().max() / ref.abs().max()) < tol


def test_semiseparable_matrix_entries_and_structure():
    x, dt, A, B, C, D, _ = inputs(b=1, l=12, h=2, p=1, n=3, g=1)
    M = ssd.semiseparable_matrix(dt, A, B, C)  # (1, 2, 12, 12)
    assert M.shape == (1, 2, 12, 12)
    for hh, t, s in [(0, 5, 2), (1, 11, 0), (1, 7, 7)]:
        decay = math.exp(float(A[hh]) * float(dt[0, s + 1:t + 1, hh].sum()))
        assert abs(float(M[0, hh, t, s]) - float(C[0, t, 0] @ B[0, s, 0]) * decay) < 1e-12
    assert bool((M[0, :].triu(1) == 0).all())
    L = ssd.decay_matrix(dt, A)
    torch.testing.assert_close(L.diagonal(dim1=-2, dim2=-1), torch.ones(1, 2, 12, dtype=f64))
    # semiseparable: blocks below the diagonal have rank <= n (here 3), diagonal blocks full rank
    R = ssd.block_ranks(M[0, 0], 4)
    assert R.shape == (3, 3)
    assert R.diagonal().tolist() == [4, 4, 4] and all(int(R[i, j]) == 3 for i in range(3) for j in range(i))
    assert int(R.triu(1).sum()) == 0
    # the decay mask alone is 1-semiseparable
    RL = ssd.block_ranks(L[0, 1], 4)
    assert all(int(RL[i, j]) == 1 for i in range(3) for j in range(i))


def test_segsum_is_exact_and_stable():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=f64)
    S = ssd.segsum(x)
    assert S[3, 1].item() == 3.0 + 4.0 and S[2, 2].item() == 0.0 and S[0, 0].item() == 0.0
    assert S[1, 2].item() == -math.inf and bool(torch.isinf(S.triu(1)[S.triu(1) != 0]).all())
    # a huge first value does not swamp later small ones (a cumsum difference would in float32)
    y = torch.tensor([-1e6, 1e-3, 1e-3, 1e-3], dtype=torch.float32)
    assert abs(ssd.segsum(y)[3, 1].item() - 2e-3) < 1e-9
    cs = torch.cumsum(y, 0)
    assert abs((cs[3] - cs[1]).item() - 2e-3) > 1e-4  # the naive way loses it


def test_attention_matrix_rows_are_a_softmax():
    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(3, 2, 7, 4, generator=g, dtype=f64).unbind(0)
    P = ssd.attention_matrix(q, k)
    torch.testing.assert_close(P.sum(-1), torch.ones(2, 7, dtype=f64))
    assert bool((P.triu(1) == 0).all())
    torch.testing.assert_close(P @ v, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert int(torch.linalg.matrix_rank(P[0, 3:, :3])) == 3  # not low rank below the diagonal


@pytest.mark.parametrize("L,q", [(64, 16), (100, 32), (7, 64)])
def test_matmul_flops_are_what_torch_counts(L, q):
    h, p, n = 3, 4, 5
    x, dt, A, B, C, _, _ = inputs(b=1, l=L, h=h, p=p, n=n, g=0, dtype=torch.float32)
    with FlopCounterMode(display=False) as fc:
        ssd.ssd_chunked(x, dt, A, B, C, chunk=q)
    counts = ssd.ssd_flops(L, h, p, n, q)
    assert fc.get_total_flops() == counts["chunked"]["matmul"]
    with FlopCounterMode(display=False) as fc:
        ssd.ssd_scan_ref(x, dt, A, B, C)
    assert fc.get_total_flops() == counts["scan"]["matmul"] == 0
    assert counts["scan"]["elementwise"] == L * h * (5 * p * n + p + 1)
    assert ssd.ssd_flops(L, h, p, n, q, batch=3)["chunked"]["matmul"] == 3 * counts["chunked"]["matmul"]


def test_matmul_time_split_attributes_time_to_matrix_products():
    x, dt, A, B, C, _, _ = inputs(b=1, l=64, h=2, p=8, n=8, g=0, dtype=torch.float32)
    chunked = ssd.matmul_time_split(lambda: ssd.ssd_chunked(x, dt, A, B, C, chunk=16), repeat=2)
    assert set(chunked) == {"matrix products", "everything else"}
    assert chunked["matrix products"] > 0 and chunked["everything else"] > 0
    scan = ssd.matmul_time_split(lambda: ssd.ssd_scan_ref(x[:, :8], dt[:, :8], A, B[:, :8], C[:, :8]), repeat=1)
    assert scan["matrix products"] == 0 and scan["everything else"] > 0
    mm = ssd.matmul_time_split(lambda: torch.randn(64, 64) @ torch.randn(64, 64), repeat=2, warmup=0)
    assert mm["matrix products"] > 0


def test_to_chunks_pads_the_end():
    t = torch.arange(10.0).reshape(1, 5, 2)
    c = ssd.to_chunks(t, 2)
    assert c.shape == (1, 3, 2, 2) and c[0, 2, 1].tolist() == [0.0, 0.0] and c[0, 2, 0].tolist() == [8.0, 9.0]


def test_bad_input():
    x, dt, A, B, C, D, h0 = inputs()
    cases = [
        (lambda: ssd.ssd_chunked(x[0], dt, A, B, C), "'x'"),
        (lambda: ssd.ssd_chunked(x, -dt, A, B, C), "'dt'"),
        (lambda: ssd.ssd_chunked(x, dt, -A, B, C), "'A'"),
        (lambda: ssd.ssd_chunked(x, dt, A[:2], B, C), "'A'"),
        (lambda: ssd.ssd_chunked(x, dt, A, B[:, :, :, :2], C), "'C'"),
        (lambda: ssd.ssd_chunked(x, dt, A, torch.randn(2, 13, 3, 5, dtype=f64), C), "'B'"),
        (lambda: ssd.ssd_chunked(x, dt, A, B, C, chunk=0), "'chunk'"),
        (lambda: ssd.ssd_chunked(x, dt, A, B, C, D=D[:1]), "'D'"),
        (lambda: ssd.ssd_scan_ref(x, dt, A, B, C, h0=h0[:, :1]), "'h0'"),
        (lambda: ssd.block_ranks(torch.zeros(3, 4), 2), "'M'"),
        (lambda: ssd.ssd_flops(0, 1, 1, 1, 1), "'L'"),
    ]
    for fn, name in cases:
        with pytest.raises(ValueError, match=name):
            fn()
