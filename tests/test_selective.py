"""The selective scan contract: every registered implementation against the float64 reference."""

import inspect
import itertools
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
import torch.nn.functional as F

import mamba_edu
from mamba_edu import selective
from mamba_edu.selective import (S6, check_selective_scan_args, selective_scan_naive, selective_scan_parallel,
                                 selective_scan_ref)
from tests.conftest import TOL

IMPLS = {"ref": selective_scan_ref, **{k: v.load() for k, v in mamba_edu.implementations().items()
                                        if v.available("cpu")[0] and not v.needs_triton}}


def make_inputs(seed, b=2, d=4, l=17, n=4, groups=None, dtype=torch.float32, wtype=torch.float32,
                has_D=True, has_z=True, has_bias=True):
    """Random inputs in the ranges the official tests use; groups=None means B, C of shape (b, n, l)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    bc_shape = (b, n, l) if groups is None else (b, groups, n, l)
    return dict(
        u=r(b, d, l).to(dtype),
        delta=(0.5 * torch.rand(b, d, l, generator=g)).to(dtype),
        A=(-0.5 * torch.rand(d, n, generator=g)).to(wtype),
        B=r(*bc_shape).to(dtype),
        C=r(*bc_shape).to(dtype),
        D=r(d).to(wtype) if has_D else None,
        z=r(b, d, l).to(dtype) if has_z else None,
        delta_bias=(0.5 * torch.rand(d, generator=g)).to(wtype) if has_bias else None,
    )


def to64(kw):
    return {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}


def assert_close(got, want, dtype):
    torch.testing.assert_close(got.double(), want.double(), **TOL[dtype])


FLAGS = list(itertools.product([False, True], repeat=4))  # D, z, delta_bias, softplus


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("groups", [None, 1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("l", [1, 7, 64, 129])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_reference(impl, groups, dtype, l, seed):
    for has_D, has_z, has_bias, softplus in FLAGS:
        kw = make_inputs(seed * 1000 + l, l=l, groups=groups, dtype=dtype, has_D=has_D, has_z=has_z,
                         has_bias=has_bias)
        out, last = IMPLS[impl](**kw, delta_softplus=softplus, return_last_state=True)
        want, want_last = selective_scan_ref(**to64(kw), delta_softplus=softplus, return_last_state=True)
        assert out.dtype == dtype and out.shape == kw["u"].shape
        assert last.dtype == torch.float32 and last.shape == (2, 4, 4)
        assert_close(out, want, dtype)
        assert_close(last, want_last, torch.float32)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_float64_inputs_stay_float64(impl):
    kw = to64(make_inputs(3, groups=2))
    out, last = IMPLS[impl](**kw, delta_softplus=True, return_last_state=True)
    want, want_last = selective_scan_ref(**kw, delta_softplus=True, return_last_state=True)
    assert out.dtype == torch.float64 and last.dtype == torch.float64
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, want_last, rtol=1e-12, atol=1e-12)


def test_reference_follows_the_recurrence_by_hand():
    """One channel, one state entry, three steps, written out: h_t = e^{Δ_t a} h_{t-1} + Δ_t b_t u_t."""
    u = torch.tensor([[[1.0, 2.0, -1.0]]], dtype=torch.float64)
    delta = torch.tensor([[[0.5, 0.1, 1.0]]], dtype=torch.float64)
    A = torch.tensor([[-2.0]], dtype=torch.float64)
    B = torch.tensor([[[1.0, 0.5, 2.0]]], dtype=torch.float64)
    C = torch.tensor([[[3.0, 1.0, -1.0]]], dtype=torch.float64)
    D = torch.tensor([0.25], dtype=torch.float64)
    z = torch.tensor([[[0.0, 1.0, 2.0]]], dtype=torch.float64)
    h, ys = 0.0, []
    for t in range(3):
        dt = float(delta[0, 0, t])
        h = math.exp(dt * -2.0) * h + dt * float(B[0, 0, t]) * float(u[0, 0, t])
        y = float(C[0, 0, t]) * h + 0.25 * float(u[0, 0, t])
        ys.append(y * float(F.silu(z[0, 0, t])))
    out, last = selective_scan_ref(u, delta, A, B, C, D, z, return_last_state=True)
    torch.testing.assert_close(out[0, 0], torch.tensor(ys, dtype=torch.float64))
    assert abs(float(last[0, 0, 0]) - h) < 1e-12


def test_groups_share_B_and_C():
    """G = 2 over 4 channels: channels 0, 1 use group 0 and channels 2, 3 use group 1."""
    kw = to64(make_inputs(5, groups=2, has_z=False))
    out = selective_scan_ref(**kw)
    for c in range(4):
        grp = c // 2
        one = dict(u=kw["u"][:, c:c + 1], delta=kw["delta"][:, c:c + 1], A=kw["A"][c:c + 1],
                   B=kw["B"][:, grp], C=kw["C"][:, grp], D=kw["D"][c:c + 1], delta_bias=kw["delta_bias"][c:c + 1])
        torch.testing.assert_close(selective_scan_ref(**one), out[:, c:c + 1])


METHODS = ["inplace", "blelloch"]  # the fast default and one scan of SCANS (tensors with L last)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("max_elements", [1, 50, 10**9])
def test_parallel_chunking_keeps_the_result(max_elements, dtype, method):
    kw = make_inputs(6, l=37, groups=2, dtype=dtype, wtype=torch.float32 if dtype != torch.float64 else dtype)
    want, want_last = selective_scan_ref(**to64(kw), delta_softplus=True, return_last_state=True)
    got, last = selective_scan_parallel(**kw, delta_softplus=True, return_last_state=True, method=method,
                                        max_elements=max_elements)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else TOL[dtype]
    assert got.dtype == dtype and got.shape == kw["u"].shape and got.is_contiguous()
    torch.testing.assert_close(got.double(), want, **tol)
    torch.testing.assert_close(last.double(), want_last, **(tol if dtype == torch.float64 else TOL[torch.float32]))
    assert selective.parallel_chunk_length(2, 4, 37, 4, max_elements) == max(1, min(37, max_elements // 32))


def test_parallel_default_is_the_inplace_scan():
    default = inspect.signature(selective_scan_parallel).parameters["method"].default
    assert default == "inplace"
    kw = make_inputs(14, groups=2)
    torch.testing.assert_close(selective_scan_parallel(**kw), selective_scan_parallel(**kw, method="inplace"),
                               rtol=0, atol=0)
    with torch.inference_mode():  # no autograd at all: the scan runs in place directly
        torch.testing.assert_close(selective_scan_parallel(**kw), selective_scan_ref(**kw), **TOL[torch.float32])


@pytest.mark.parametrize("method", ["sequential", "hillis_steele", "blelloch", "chunked"])
def test_parallel_with_every_scan(method):
    kw = to64(make_inputs(7, l=23))
    torch.testing.assert_close(selective_scan_parallel(**kw, method=method), selective_scan_ref(**kw))


def test_parallel_bad_method_names_the_argument():
    with pytest.raises(ValueError, match="selective_scan: argument 'method' must be one of 'inplace', 'sequential'"):
        selective_scan_parallel(**make_inputs(15), method="brent_kung")


def _grads(impl, kw, **opts):
    """Gradients of a random readout of out and of the last state with respect to every input."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in kw.items()}
    out, last = impl(**leaves, delta_softplus=True, return_last_state=True, **opts)
    g = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() + (last**2).sum()
    return torch.autograd.grad(loss, list(leaves.values()))


# method None: the default; max_elements 96 cuts L = 19 into chunks of 3 steps (b·d·n = 32): a carried state
@pytest.mark.parametrize("method", [None, "inplace", "blelloch"])
@pytest.mark.parametrize("max_elements", [96, None])
@pytest.mark.parametrize("groups", [None, 2])
def test_parallel_gradients_match_naive(groups, max_elements, method):
    kw = to64(make_inputs(8, l=19, groups=groups))
    opts = {k: v for k, v in dict(method=method, max_elements=max_elements).items() if v is not None}
    for k, ga, gb in zip(kw, _grads(selective_scan_naive, kw), _grads(selective_scan_parallel, kw, **opts)):
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-10, msg=lambda m, k=k: f"grad of {k}: {m}")


@pytest.mark.parametrize("name", ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"])
def test_parallel_inplace_gradient_of_one_input(name):
    # only one input requires grad: the in-place scan must still give autograd what it needs
    kw = to64(make_inputs(16, l=21, groups=2))
    grads = []
    for impl in (selective_scan_naive, selective_scan_parallel):
        leaves = {k: v.clone().requires_grad_(k == name) for k, v in kw.items()}
        out = impl(**leaves, delta_softplus=True, **({"max_elements": 96} if impl is selective_scan_parallel else {}))
        grads.append(torch.autograd.grad((out * out).sum(), leaves[name])[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", [None, "inplace"])
def test_parallel_gradients_match_naive_bfloat16(method):
    kw = make_inputs(9, l=33, groups=1, dtype=torch.bfloat16)
    grads = []
    opts = {} if method is None else {"method": method}
    for impl, opts in ((selective_scan_naive, {}), (selective_scan_parallel, opts)):
        leaves = {k: v.clone().requires_grad_(True) for k, v in kw.items()}
        impl(**leaves, delta_softplus=True, **opts).float().sum().backward()
        grads.append([leaves[k].grad.double() for k in kw])
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb, **TOL[torch.bfloat16])


def test_dispatcher_and_registry():
    kw = make_inputs(10)
    reg = mamba_edu.implementations()
    assert {"naive", "parallel"} <= set(reg)
    for name, entry in reg.items():
        assert entry.name == name and entry.description
        ok, why = entry.available("cpu")
        assert ok or why
    want = selective_scan_ref(**kw)
    for impl in ["auto", "naive", "parallel"]:
        torch.testing.assert_close(mamba_edu.selective_scan(**kw, impl=impl), want, **TOL[torch.float32])
    with pytest.raises(ValueError, match="'impl'"):
        mamba_edu.selective_scan(**kw, impl="magic")


# ---------------------------------------------------------------------------- bad input


def _bad(kw, **change):
    return {**kw, **change}


BAD_CASES = [
    ("u", lambda kw: _bad(kw, u=kw["u"][0])),
    ("u", lambda kw: _bad(kw, u=kw["u"].int())),
    ("u", lambda kw: _bad(kw, u=kw["u"].numpy())),
    ("delta", lambda kw: _bad(kw, delta=kw["delta"][..., :-1])),
    ("A", lambda kw: _bad(kw, A=kw["A"][:-1])),
    ("A", lambda kw: _bad(kw, A=kw["A"].to(torch.complex64))),
    ("A", lambda kw: _bad(kw, A=kw["A"].clone().fill_(float("nan")))),
    ("B", lambda kw: _bad(kw, B=kw["B"][..., :-1])),
    ("B", lambda kw: _bad(kw, B=torch.zeros(2, 3, 4, 17))),  # 3 groups do not divide 4 channels
    ("C", lambda kw: _bad(kw, C=torch.zeros(2, 2, 4, 17))),  # grouped unlike B
    ("C", lambda kw: _bad(kw, C=kw["C"][:, :2])),
    ("D", lambda kw: _bad(kw, D=torch.ones(5))),
    ("z", lambda kw: _bad(kw, z=kw["z"][:1])),
    ("delta_bias", lambda kw: _bad(kw, delta_bias=torch.ones(4, 1))),
    ("delta_bias", lambda kw: _bad(kw, delta_bias=torch.full((4,), float("inf")))),
]


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("arg,make", BAD_CASES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_CASES)])
def test_bad_input_names_the_argument(impl, arg, make):
    kw = make(make_inputs(11))
    with pytest.raises(ValueError, match=f"argument '{arg}'"):
        IMPLS[impl](**kw)


def test_a_parameter_changed_in_place_is_checked_again():
    # checked values are remembered per version (a GPU check waits for the GPU), so an in-place
    # change, which bumps the version, must bring the check back
    kw = make_inputs(13)
    selective_scan_ref(**kw)
    kw["A"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="argument 'A'"):
        selective_scan_ref(**kw)


def test_meta_device_mismatch_is_reported():
    kw = make_inputs(12)
    kw["B"] = kw["B"].to("meta")
    with pytest.raises(ValueError, match="argument 'B'.*device"):
        check_selective_scan_args(**kw)


# ---------------------------------------------------------------------------- S6 layer


def test_s6_forward_matches_reference_and_step():
    torch.manual_seed(0)
    layer = S6(d=6, n=4).double()
    x = torch.randn(2, 6, 9, dtype=torch.float64)
    z = torch.randn(2, 6, 9, dtype=torch.float64)
    y, last = layer(x, z=z, return_last_state=True)
    delta, B, C = layer.projections(x)
    want = selective_scan_ref(x, delta, layer.A, B, C, layer.D, z, layer.dt_proj.bias, delta_softplus=True)
    torch.testing.assert_close(y, want)
    h = torch.zeros(2, 6, 4, dtype=torch.float64)
    steps = []
    for t in range(9):
        yt, h = layer.step(x[:, :, t], h, z=z[:, :, t])
        steps.append(yt)
    torch.testing.assert_close(torch.stack(steps, -1), y)
    torch.testing.assert_close(h, last)


def test_s6_initialisation():
    layer = S6(d=32, n=8, dt_min=1e-3, dt_max=1e-1)
    assert torch.allclose(layer.A[0], -torch.arange(1.0, 9.0))  # S4D-Real
    dt = F.softplus(layer.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-3 * 0.999 and float(dt.max()) <= 1e-1 * 1.001
    assert layer.dt_rank == 2
    delta = layer.delta(torch.randn(1, 32, 5))
    assert delta.shape == (1, 32, 5) and bool((delta > 0).all())
    with pytest.raises(ValueError, match="argument 'x'"):
        layer(torch.randn(1, 31, 5))
    with pytest.raises(ValueError, match="argument 'dt_min'"):
        selective.dt_bias_init(4, dt_min=0.5, dt_max=0.1)


_DT = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


_FLAWS = [(None, 0)] + [(f, i) for f in ("size", "dtype", "device", "type") for i in range(8)]


@pytest.mark.parametrize("flaw,where", _FLAWS, ids=[f"{f}-{i}" for f, i in _FLAWS])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_the_fast_argument_check_accepts_only_what_the_full_check_accepts(flaw, where, data):
    """`_valid_sizes` (the one-pass fast path) may send any call to the checks one by one, but whatever it
    accepts, those checks accept too, with the same sizes. Drawn: valid arguments in any float dtypes, then
    at most one flaw (a size one off, an int or complex dtype, another device, a non-tensor)."""
    from mamba_edu import selective

    b, l, n = (data.draw(st.integers(0, 3)) for _ in range(3))
    d = data.draw(st.sampled_from([1, 2, 4]))
    g = data.draw(st.sampled_from([None, 1, 2, 3]))
    bc = (b, n, l) if g is None else (b, g, n, l)
    shapes = [(b, d, l), (b, d, l), (d, n), bc, bc, (d,), (b, d, l), (d,)]
    present = [True] * 5 + [i == where or data.draw(st.booleans()) for i in range(5, 8)]
    args = []
    for i, (shape, keep) in enumerate(zip(shapes, present)):
        dtype, device = data.draw(st.sampled_from(_DT)), "cpu"
        if i == where and flaw == "size" and shape:
            k = data.draw(st.integers(0, len(shape) - 1))
            shape = shape[:k] + (shape[k] + 1,) + shape[k + 1:]
        if i == where and flaw == "dtype":
            dtype = data.draw(st.sampled_from([torch.int64, torch.complex64, torch.bool]))
        if i == where and flaw == "device":
            device = "meta"
        x = torch.ones(shape, dtype=dtype, device=device) if keep or i < 5 else None
        if i == where and flaw == "type" and x is not None:
            x = x.tolist()
        args.append(x)
    fast = selective._valid_sizes(*args)
    if flaw is None and l >= 1 and n >= 1 and (g is None or (g >= 1 and d % g == 0)):
        assert fast is not None  # the fast path takes every valid call here
    if fast is not None:
        assert selective._check_one_by_one(*args, func="selective_scan") == fast
