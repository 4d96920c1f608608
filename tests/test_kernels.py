"""The Triton kernels against the float64 reference: forward, gradients, last state, every optional
argument, groups, ragged sizes and dtypes. On a CPU they run under TRITON_INTERPRET=1 at small shapes
(the interpreter emulates every program in Python); the `gpu` tests repeat them at real sizes."""

import os

import pytest
import torch
import triton
import triton.language as tl

import mamba_edu
from mamba_edu.kernels.selective_scan_fused import _scatter_positions, _sum_scatter
from mamba_edu.selective import selective_scan_ref

TRITON_IMPLS = ["triton_simple", "triton_scan", "fused"]
ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
pytestmark = pytest.mark.skipif(not ON_GPU and os.environ.get("TRITON_INTERPRET") != "1",
                                reason="Triton kernels need a GPU or TRITON_INTERPRET=1")
TOL = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 3e-3}


@triton.jit
def _sum_scatter_kernel(x_ptr, out_ptr, R: tl.constexpr, Q: tl.constexpr, S: tl.constexpr):
    """`_sum_scatter` on an (R, Q, S) tile: stores the sums each row keeps and their positions."""
    c = tl.arange(0, R)[:, None, None]
    q = tl.arange(0, Q)[None, :, None]
    j = tl.arange(0, S // R)[None, None, :]
    x = tl.load(x_ptr + (c * Q + q) * S + tl.arange(0, S)[None, None, :])  # (R, Q, S)
    y = _sum_scatter(x, c)  # (R, Q, S/R)
    f = _scatter_positions(c, R, S) + q * 0  # (R, Q, S/R)
    tl.store(out_ptr + (c * Q + q) * (S // R) + j, y)
    tl.store(out_ptr + R * Q * (S // R) + (c * Q + q) * (S // R) + j, f.to(tl.float32))


def _inputs(b, d, l, n, g, dtype, seed, device=DEVICE):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    bc = (b, g, n, l) if g else (b, n, l)
    x = dict(u=r(b, d, l), delta=0.5 * r(b, d, l) - 1, A=-torch.exp(0.5 * r(d, n)), B=r(*bc), C=r(*bc),
             D=r(d), z=r(b, d, l), delta_bias=0.1 * r(d))
    low = {"u", "delta", "B", "C", "z"}
    return {k: (v.to(dtype) if k in low else v).to(device) for k, v in x.items()}


# the fused forwards, each with its backward (seq: `_bwd_seq_kernel`, lscan: `_bwd_lscan_kernel`):
# fused_op.config picks one per shape on a GPU
FUSED_KERNELS = {"lscan": {}, "seq": dict(KERNEL="seq", BLOCK_D=4), "seq2": dict(KERNEL="seq", BLOCK_D=2, LANES=2)}


@pytest.fixture(params=list(FUSED_KERNELS))
def fused_kernel(request):
    from mamba_edu.kernels import fused_op
    fused_op.OVERRIDE.update(FUSED_KERNELS[request.param])
    yield request.param
    fused_op.OVERRIDE.clear()


def _first_sequence(x: dict, k: int) -> dict:
    """The inputs of the first sequence and its first k channels (B, C: the first sequence's)."""
    per_channel, shared = ("u", "delta", "z"), ("B", "C")
    return {kk: v[:1, :k] if kk in per_channel else v[:1] if kk in shared else v[:k] for kk, v in x.items()}


def _rel(a, b):
    return float((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm())


@pytest.mark.parametrize("impl", TRITON_IMPLS)
@pytest.mark.parametrize("b,d,l,n,g,dtype", [
    (1, 5, 37, 3, None, torch.float32),  # ragged everything, N not a power of two
    (2, 4, 33, 8, 2, torch.bfloat16),  # groups, bf16
    (1, 6, 20, 4, 3, torch.float16),
])
def test_forward_matches_reference(impl, b, d, l, n, g, dtype):
    x = _inputs(b, d, l, n, g, dtype, seed=b * 100 + l)
    ref, last_ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True,
                                       return_last_state=True)
    out, last = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=True, impl=impl)
    assert out.dtype == dtype and last.dtype == torch.float32
    assert _rel(out, ref) < TOL[dtype] and _rel(last, last_ref) < 1e-5


@pytest.mark.parametrize("l", [13, 37])  # one chunk (the state is not carried) and several, on a CPU
@pytest.mark.parametrize("want_last", [False, True])
def test_fused_with_and_without_the_last_state(l, want_last, fused_kernel):
    x = _inputs(2, 4, l, 4, None, torch.float32, seed=l)
    ref, last_ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True,
                                       return_last_state=True)
    res = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=want_last, impl="fused")
    out = res[0] if want_last else res
    assert _rel(out, ref) < TOL[torch.float32]
    if want_last:
        assert _rel(res[1], last_ref) < 1e-5


@pytest.mark.parametrize("n,dtype,lanes", [(13, torch.float32, 1), (16, torch.bfloat16, 1), (40, torch.float32, 1),
                                           (13, torch.float32, 4), (16, torch.bfloat16, 4), (5, torch.float16, 2)])
def test_fused_seq_state_in_groups_of_one_load(n, dtype, lanes):
    # the seq forward keeps a channel's state in `lanes` lanes, up to 4 tiles of K entries each (K: 16 bytes'
    # worth, 4 fp32 or 8 for 16-bit inputs, fewer when n/lanes needs fewer): one lane, 13 entries are 4 ragged
    # tiles, 16 bf16 entries 2, and 40 fall back to lscan; four lanes, 13 fp32 entries are one tile of 4 per
    # lane, 16 bf16 entries one tile of K = 4; two lanes, 5 entries are one tile of K = 4 (3 of the 8 padding)
    from mamba_edu.kernels import fused_op
    x = _inputs(1, 4, 21, n, None, dtype, seed=n)
    ref, last_ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True,
                                       return_last_state=True)
    fused_op.OVERRIDE.update(KERNEL="seq", BLOCK_D=4, LANES=lanes)
    try:
        out, last = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=True, impl="fused")
    finally:
        fused_op.OVERRIDE.clear()
    assert _rel(out, ref) < TOL[dtype] and _rel(last, last_ref) < 1e-5


@pytest.mark.parametrize("lanes,l,d", [(1, 36, 8), (2, 32, 8), (4, 24, 8), (2, 36, 8), (2, 32, 5)])
def test_fused_seq_whole_blocks_load_without_masks(lanes, l, d, monkeypatch):
    # L a multiple of K, whole channel blocks and n = LANES·E: the seq forward's loads drop their masks
    # (FULL); the other cases keep them. Both against the reference, and the flag as launched.
    from mamba_edu.kernels import fused_op
    launched = []
    kernel = fused_op._fwd_seq_kernel

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kw):
                launched.append((kw["FULL"], kw["PAIRS"]))
                return kernel[grid](*args, **kw)
            return launch

    monkeypatch.setattr(fused_op, "_fwd_seq_kernel", Spy())
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")
    monkeypatch.setitem(fused_op.OVERRIDE, "BLOCK_D", 4 // lanes)
    monkeypatch.setitem(fused_op.OVERRIDE, "LANES", lanes)
    x = _inputs(1, d, l, 16, None, torch.bfloat16, seed=l + lanes)
    ref, last_ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True,
                                       return_last_state=True)
    out, last = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=True, impl="fused")
    k = 4 if lanes == 1 else 8  # 16-byte bf16 loads, but at most 64 values of B per lane: K·E <= 64
    full = l % k == 0 and d % (4 // lanes) == 0
    assert launched == [(full, full)]  # bf16 B and C in whole blocks: read as pairs of steps
    assert _rel(out, ref) < TOL[torch.bfloat16] and _rel(last, last_ref) < 1e-5


def test_fused_seq_reads_bf16_pairs_only_where_it_may(monkeypatch):
    # B and C as 32-bit words of two steps: bf16, whole blocks, rows contiguous in time at even offsets
    from mamba_edu.kernels import fused_op
    x = _inputs(2, 8, 32, 16, None, torch.bfloat16, seed=5)
    B4 = x["B"].unsqueeze(1)  # (b, g, n, l), as fused_op sees it
    assert fused_op._bf16_pairs(B4, B4, True)
    assert not fused_op._bf16_pairs(B4, B4, False)  # masked blocks
    assert not fused_op._bf16_pairs(B4.half(), B4.half(), True)
    odd = torch.zeros(2, 16, 33, dtype=torch.bfloat16, device=DEVICE)[..., 1:].unsqueeze(1)  # starts 2 bytes in
    assert not fused_op._bf16_pairs(odd, B4, True)
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")
    monkeypatch.setitem(fused_op.OVERRIDE, "LANES", 2)
    pairs = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    monkeypatch.setitem(fused_op.OVERRIDE, "PAIRS", False)
    one_by_one = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    assert torch.equal(pairs, one_by_one)  # the same float32 values of B and C, the same arithmetic


@pytest.mark.parametrize("lanes,n", [(2, 8), (4, 16), (4, 13)])
def test_fused_seq_lanes_share_the_gate(lanes, n, monkeypatch):
    # SHARE: a channel's lanes reduce-scatter y and each gates and stores its own K/LANES steps (with at
    # most 4 state entries per lane, `fused_op.seq_shares_the_gate`); the same outputs as every lane doing all
    from mamba_edu.kernels import fused_op
    assert fused_op.seq_shares_the_gate(lanes, -(-n // lanes), 4) == (n <= 4 * lanes)  # fp32: K = 4 steps
    assert not fused_op.seq_shares_the_gate(8, 2, 4)  # fewer steps than lanes: nothing to share out
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")
    monkeypatch.setitem(fused_op.OVERRIDE, "LANES", lanes)
    monkeypatch.setitem(fused_op.OVERRIDE, "BLOCK_D", 2)
    x = _inputs(2, 4, 21, n, None, torch.float32, seed=n)
    ref, last_ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True,
                                       return_last_state=True)
    outs = []
    for share in (True, False):
        monkeypatch.setitem(fused_op.OVERRIDE, "SHARE", share)
        out, last = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=True, impl="fused")
        assert _rel(out, ref) < 1e-5 and _rel(last, last_ref) < 1e-5
        outs.append(out)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 2, 4, 8])
def test_sum_scatter_leaves_each_lane_its_share_of_the_sums(rows):
    # the seq backward's reduce-scatter over a program's channels: row c ends with S/R of the sums
    q, s = 2, 16
    x = torch.randn(rows, q, s, device=DEVICE)
    out = torch.empty(2 * rows * q * (s // rows), device=DEVICE)
    _sum_scatter_kernel[(1,)](x, out, rows, q, s, num_warps=1)
    sums, pos = out[:out.numel() // 2].view(rows, q, s // rows), out[out.numel() // 2:].view(rows, q, s // rows).long()
    assert sorted(pos[:, 0].flatten().tolist()) == list(range(s))  # every sum kept by exactly one row
    torch.testing.assert_close(sums, x.sum(0)[None].expand(rows, q, s).gather(2, pos), rtol=1e-6, atol=1e-6)


def test_fused_seq_backward_butterfly_and_reduce_scatter_agree(monkeypatch):
    from mamba_edu.kernels import fused_op
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")
    x = _inputs(1, 8, 24, 16, None, torch.float32, seed=11)
    grads = []
    for scatter in (True, False):
        monkeypatch.setitem(fused_op.OVERRIDE_BWD, "SCATTER", scatter)
        xf = {k: v.clone().requires_grad_() for k, v in x.items()}
        out = mamba_edu.selective_scan(**xf, delta_softplus=True, impl="fused")
        out.pow(2).sum().backward()
        grads.append({k: v.grad for k, v in xf.items()})
    monkeypatch.delitem(fused_op.OVERRIDE_BWD, "SCATTER")
    cfg = lambda: fused_op.config(1, 8, 24, 16, 1, torch.device(DEVICE), 4, training=True, backward=True)  # noqa: E731
    assert cfg()["SCATTER"]  # the default: 8 channels of a warp, 16 values per lane
    monkeypatch.setitem(fused_op.OVERRIDE_BWD, "num_warps", 2)
    assert not cfg()["SCATTER"]  # channels across warps: no shuffles between them
    for k in x:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-6)


def test_fused_forward_choice_follows_the_measured_rule():
    from mamba_edu.kernels.fused_op import forward_kind, seq_lanes
    sms = 132  # an H100
    assert forward_kind(8, 4096, 16, 2, sms) == "seq" and seq_lanes(8, 4096, sms) == 2  # 2048 warps: 15.5 per SM
    assert forward_kind(8, 1536, 16, 2, sms) == "seq" and seq_lanes(8, 1536, sms) == 4  # 1536 warps: 11.6 per SM
    assert forward_kind(1, 1536, 16, 2, sms) == "lscan"  # 192 warps even with 4 lanes per channel
    assert forward_kind(1, 1536, 16, 2, sms, training=True) == "seq"  # the seq backward needs its checkpoints
    assert forward_kind(8, 4096, 64, 2, sms) == "seq" and forward_kind(8, 4096, 65, 4, sms) == "lscan"  # E <= 32


@pytest.mark.parametrize("n,bwd", [(1, (1, 1)), (5, (4, 2)), (16, (4, 4)), (32, (4, 8)), (64, None), (256, None)])
def test_fused_training_pairs_each_forward_with_its_backward(n, bwd):
    """Training with the seq forward and N <= 32: a checkpoint every K steps and the seq backward with
    4 entries per lane, `bwd` = (E, LANES); above, the lscan backward over the seq forward's chunks
    of 64 (N = 64), or both lscan (N = 256: the seq forward's tiles do not fit). With the lscan
    forward, always the lscan backward over the same chunks."""
    from mamba_edu.kernels import fused_op
    dev = torch.device("cpu")
    try:
        fused_op.OVERRIDE.update(KERNEL="seq", LANES=4)
        fwd = fused_op.config(2, 64, 100, n, 1, dev, 2, training=True)
        back = fused_op.config(2, 64, 100, n, 1, dev, 2, training=True, backward=True)
        if bwd:
            assert fwd["KERNEL"] == back["KERNEL"] == "seq" and fwd["BLOCK_L"] == fwd["K"] == back["K"]
            assert (back["E"], back["LANES"]) == bwd == fused_op.bwd_seq_block(n)
        else:
            assert fwd["KERNEL"] == ("seq" if n == 64 else "lscan") and back["KERNEL"] == "lscan"
            assert back["BLOCK_L"] == fwd["BLOCK_L"] == 64
        fused_op.OVERRIDE.update(KERNEL="lscan")
        fwd = fused_op.config(2, 64, 100, n, 1, dev, 2, training=True)
        back = fused_op.config(2, 64, 100, n, 1, dev, 2, training=True, backward=True)
        assert back["KERNEL"] == "lscan" and back["BLOCK_L"] == fwd["BLOCK_L"] == 16
    finally:
        fused_op.OVERRIDE.clear()


def test_fused_gpu_config_for_a_forced_kernel(monkeypatch):
    """Forcing the kernel that the GPU's rule did not pick gives that kernel's own defaults."""
    from types import SimpleNamespace

    from mamba_edu.kernels import fused_op
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _d: SimpleNamespace(multi_processor_count=132))
    gpu = torch.device("cuda")
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "lscan")  # the rule picks seq at 8 × 1536
    cfg = fused_op.config(8, 1536, 2048, 16, 1, gpu, 2)
    assert cfg["KERNEL"] == "lscan" and cfg["BLOCK_D"] == 1 and cfg["BLOCK_L"] == 512 and "LANES" not in cfg
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")  # the rule picks lscan at 1 × 1536
    cfg = fused_op.config(1, 1536, 8192, 16, 1, gpu, 2)
    assert cfg["KERNEL"] == "seq" and cfg["LANES"] == 4 and cfg["BLOCK_D"] == 8


def test_fused_skips_the_operator_dispatch_in_eager_mode(monkeypatch):
    """Outside torch.compile the forward (and, with a gradient, an autograd.Function around the same
    forward and backward) is called directly: each custom operator's dispatch costs tens of microseconds
    of CPU time, as long as a small problem's kernels. The gradients are those of the operator path."""
    from mamba_edu.kernels import fused_op
    calls = []
    for name in ("selective_scan_fwd", "selective_scan_bwd"):
        op = getattr(fused_op, name)
        monkeypatch.setattr(fused_op, name, lambda *a, op=op, name=name: calls.append(name) or op(*a))
    x = _inputs(1, 4, 16, 4, None, torch.float32, seed=2)
    with torch.no_grad():
        out = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    xs = {k: v.clone().requires_grad_() for k, v in x.items()}
    eager = mamba_edu.selective_scan(**xs, delta_softplus=True, impl="fused")
    torch.testing.assert_close(eager, out)
    go = torch.randn_like(out)
    eager_grads = torch.autograd.grad(eager, list(xs.values()), go)
    assert calls == []
    xo = {k: v.clone().requires_grad_() for k, v in x.items()}  # the operators, as torch.compile calls them
    B4, C4 = xo["B"].unsqueeze(1), xo["C"].unsqueeze(1)
    op_out = fused_op.selective_scan_fwd(xo["u"], xo["delta"], xo["A"], B4, C4, xo["D"], xo["z"], xo["delta_bias"],
                                         True, True, False)[0]
    op_grads = torch.autograd.grad(op_out, list(xo.values()), go)
    assert calls == ["selective_scan_fwd", "selective_scan_bwd"]
    for name, a, b in zip(xs, eager_grads, op_grads):
        torch.testing.assert_close(a, b, msg=name)


def test_fused_backward_materialises_no_zero_gradients():
    """The checkpoints and the value before the gate are outputs of the forward operator that no loss
    uses: their gradients must reach the backward as None, not as zero tensors (as large as all
    the checkpoints: a memset of 300 MB at the main shape)."""
    x = {k: v.requires_grad_() for k, v in _inputs(1, 4, 16, 4, None, torch.float32, seed=2).items()}
    out = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    with torch.profiler.profile() as prof:
        out.sum().backward()
    zeros = {e.name for e in prof.events()} & {"aten::zeros", "aten::zeros_like", "aten::zero_"}
    assert not zeros and torch.isfinite(x["u"].grad).all()


def test_fused_seq_backward_runs_after_the_seq_forward(monkeypatch):
    from mamba_edu.kernels import fused_op
    launched = []
    for name in ("_bwd_seq_kernel", "_bwd_lscan_kernel"):
        kernel = getattr(fused_op, name)
        monkeypatch.setattr(fused_op, name, type("Spy", (), {
            "__getitem__": lambda self, grid, k=kernel, nm=name: (launched.append(nm), k[grid])[1]})())
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "seq")
    x = {k: v.requires_grad_() for k, v in _inputs(1, 4, 16, 4, None, torch.float32, seed=2).items()}
    mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused").sum().backward()
    monkeypatch.setitem(fused_op.OVERRIDE, "KERNEL", "lscan")
    mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused").sum().backward()
    assert launched == ["_bwd_seq_kernel", "_bwd_lscan_kernel"]


@pytest.mark.parametrize("opts", [dict(delta_bias=None), dict(D=None, z=None, delta_bias=None), dict(z=None)])
def test_fused_optional_arguments_and_no_softplus(opts, fused_kernel):
    x = {**_inputs(1, 4, 19, 4, None, torch.float32, seed=7), **opts}
    x["delta"] = x["delta"].abs()  # without softplus, Δ must be positive for exp(Δ·A) to decay
    kw = {k: v for k, v in x.items()}
    ref = selective_scan_ref(**{k: (v.double() if v is not None else None) for k, v in kw.items()})
    out = mamba_edu.selective_scan(**kw, impl="fused")
    assert _rel(out, ref) < 1e-5


@pytest.mark.parametrize("g,dlast", [(None, False), (2, True)])
def test_fused_gradients_match_reference(g, dlast, fused_kernel):
    x = _inputs(1, 4, 37, 5, g, torch.float32, seed=3)
    x64 = {k: v.double().cpu().requires_grad_() for k, v in x.items()}
    xf = {k: v.clone().requires_grad_() for k, v in x.items()}
    ref, h_ref = selective_scan_ref(**x64, delta_softplus=True, return_last_state=True)
    out, h = mamba_edu.selective_scan(**xf, delta_softplus=True, return_last_state=True, impl="fused")
    go, gh = torch.randn_like(ref), torch.randn_like(h_ref) if dlast else torch.zeros_like(h_ref)
    ((ref * go).sum() + (h_ref * gh).sum()).backward()
    loss = (out * go.float().to(out.device)).sum()
    if dlast:
        loss = loss + (h * gh.float().to(h.device)).sum()
    loss.backward()
    for k in x:
        assert _rel(xf[k].grad, x64[k].grad) < 1e-4, k


def test_fused_handles_non_contiguous_inputs(fused_kernel):
    x = _inputs(1, 4, 24, 4, None, torch.float32, seed=5)
    u_t = x["u"].transpose(1, 2).contiguous().transpose(1, 2)  # same values, L no longer contiguous
    ref = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    out = mamba_edu.selective_scan(**{**x, "u": u_t}, delta_softplus=True, impl="fused")
    # the same values: strided loads may change the order of the scan's sums, so not bit for bit
    assert not u_t.is_contiguous() and _rel(out, ref) < TOL[torch.float32]


def test_kernels_reject_bad_input_clearly():
    x = _inputs(1, 4, 8, 4, None, torch.float32, seed=1)
    with pytest.raises(ValueError, match="argument 'u' must be float16, bfloat16 or float32"):
        mamba_edu.selective_scan(**{**x, "u": x["u"].double()}, impl="fused")
    with pytest.raises(ValueError, match="argument 'A' must be of shape \\(dim, N\\) with N <= 256"):
        mamba_edu.selective_scan(**_inputs(1, 2, 4, 257, None, torch.float32, seed=1), impl="fused")
    with pytest.raises(ValueError, match="argument 'delta' must be of shape \\(batch, dim, L\\)"):
        mamba_edu.selective_scan(**{**x, "delta": x["delta"][..., :4]}, impl="triton_scan")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("b,d,l,n,g", [(2, 1536, 2048, 16, None), (1, 96, 4097, 64, 3), (1, 33, 777, 256, None)])
def test_gpu_fused_forward_and_gradients_at_real_sizes(dtype, b, d, l, n, g):
    x = _inputs(b, d, l, n, g, dtype, seed=l)
    k = d if g else min(d, 64)  # the float64 reference on the first sequence and (up to) 64 channels
    xf = {kk: v.clone().requires_grad_() for kk, v in x.items()}
    out, h = mamba_edu.selective_scan(**xf, delta_softplus=True, return_last_state=True, impl="fused")
    go = torch.randn_like(out)
    (out * go).sum().backward()
    sl = _first_sequence(x, k)
    x64 = {kk: v.double().requires_grad_() for kk, v in sl.items()}
    ref, h_ref = selective_scan_ref(**x64, delta_softplus=True, return_last_state=True)
    (ref * go[:1, :k].double()).sum().backward()
    assert _rel(out[:1, :k], ref) < TOL[dtype] and _rel(h[:1, :k], h_ref) < 1e-4
    for kk in ("u", "delta", "z"):
        assert _rel(xf[kk].grad[:1, :k], x64[kk].grad) < 3 * TOL[dtype], kk


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("cfg", [dict(KERNEL="seq", BLOCK_D=32, LANES=1), dict(KERNEL="seq", BLOCK_D=16, LANES=2),
                                 dict(KERNEL="seq", BLOCK_D=8, LANES=4), dict(KERNEL="lscan", BLOCK_D=1, BLOCK_L=1024)])
def test_gpu_every_fused_forward_at_real_sizes(dtype, cfg):
    """Each forward the tuning script times, whatever `config` picks by default, on the first sequence."""
    from mamba_edu.kernels import fused_op
    x = _inputs(2, 1536, 2048, 16, None, dtype, seed=11)
    fused_op.OVERRIDE.update(cfg)
    try:
        out, h = mamba_edu.selective_scan(**x, delta_softplus=True, return_last_state=True, impl="fused")
    finally:
        fused_op.OVERRIDE.clear()
    sl = _first_sequence(x, 64)
    ref, h_ref = selective_scan_ref(**{kk: v.double() for kk, v in sl.items()}, delta_softplus=True,
                                    return_last_state=True)
    assert _rel(out[:1, :64], ref) < TOL[dtype] and _rel(h[:1, :64], h_ref) < 1e-4


@pytest.mark.gpu
@pytest.mark.parametrize("seq_bwd", [{}, dict(SCATTER=False)], ids=["reduce-scatter", "butterfly"])
def test_gpu_seq_and_lscan_backwards_agree_on_every_gradient(seq_bwd):
    """At a real size, all eight gradients (dB, dC, dA, dD, d(delta_bias) are sums over every channel,
    which the float64 reference on a slice cannot check) from the two independent backwards; the seq
    backward with dB, dC summed over its channels by a reduce-scatter (its default) or a butterfly."""
    from mamba_edu.kernels import fused_op
    x = _inputs(2, 1536, 2048, 16, 2, torch.float32, seed=12)  # float32 gradients: no rounding to bf16
    grads = []
    for kind in ("seq", "lscan"):
        fused_op.OVERRIDE.update(KERNEL=kind)
        fused_op.OVERRIDE_BWD.update(seq_bwd if kind == "seq" else {})
        try:
            xf = {k: v.clone().requires_grad_() for k, v in x.items()}
            out = mamba_edu.selective_scan(**xf, delta_softplus=True, impl="fused")
            out.backward(torch.ones_like(out))
        finally:
            fused_op.OVERRIDE.clear(), fused_op.OVERRIDE_BWD.clear()
        grads.append({k: v.grad for k, v in xf.items()})
    rel = {k: _rel(grads[0][k], grads[1][k]) for k in x}
    assert max(rel.values()) < 1e-4, rel


@pytest.mark.gpu
def test_gpu_fused_compiles_with_torch_compile():
    x = {k: v.requires_grad_() for k, v in _inputs(2, 64, 512, 16, None, torch.float32, seed=2).items()}
    f = torch.compile(lambda **kw: mamba_edu.selective_scan(**kw, delta_softplus=True, impl="fused"), fullgraph=True)
    eager = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    out = f(**x)
    out.sum().backward()
    assert torch.allclose(out, eager) and torch.isfinite(x["u"].grad).all()


def test_fused_traces_with_torch_compile_fullgraph():
    """The custom ops' fake implementations let torch.compile trace a call in one graph (aot_eager
    exercises the fake kernels and the registered autograd without compiling C++ on a CPU)."""
    x = {k: v.requires_grad_() for k, v in _inputs(1, 4, 16, 4, None, torch.float32, seed=4).items()}
    f = torch.compile(lambda **kw: mamba_edu.selective_scan(**kw, delta_softplus=True, impl="fused"),
                      fullgraph=True, backend="aot_eager")
    eager = mamba_edu.selective_scan(**x, delta_softplus=True, impl="fused")
    (g_eager,) = torch.autograd.grad(eager.sum(), [x["u"]])
    out = f(**x)
    (g_comp,) = torch.autograd.grad(out.sum(), [x["u"]])
    assert torch.allclose(out, eager) and torch.allclose(g_comp, g_eager)


@pytest.mark.parametrize("triton_version,numpy_version,works", [
    ("3.6.0", "2.3.5", True), ("3.6.0", "2.4.6", False), ("3.7.1", "2.4.6", True), ("3.9.0", "2.3.5", True),
    ("3.10.0", "2.4.0", True)])
def test_kernels_name_a_triton_numpy_pair_the_interpreter_cannot_run(triton_version, numpy_version, works,
                                                                      monkeypatch):
    """Triton 3.6's interpreter calls int() on one-element arrays, which NumPy 2.4 refuses: a clear error
    that says what to install, not an InterpreterError from inside a kernel."""
    import numpy

    from mamba_edu.kernels import _prep
    monkeypatch.setattr(triton, "__version__", triton_version)
    monkeypatch.setattr(numpy, "__version__", numpy_version)
    _prep.interpreter_problem.cache_clear()
    try:
        problem = _prep.interpreter_problem()
        assert (problem is None) == works
        if not works:
            assert "install numpy<2.4 or triton>=3.7" in problem
            if not ON_GPU:  # a launch on the CPU says so up front; the registry lists the kernels as not runnable
                x = _inputs(1, 2, 4, 2, None, torch.float32, seed=1)
                from mamba_edu.kernels.scan_unfused import selective_scan_triton_scan
                with pytest.raises(RuntimeError, match=f"triton_scan: Triton {triton_version}'s interpreter cannot run"):
                    selective_scan_triton_scan(**x)
                assert mamba_edu.implementations()["fused"].available("cpu") == (False, problem)
                with pytest.raises(ValueError, match=f"Triton {triton_version}'s interpreter cannot run"):
                    mamba_edu.selective_scan(**x, impl="triton_scan")
    finally:
        monkeypatch.undo()
        _prep.interpreter_problem.cache_clear()
