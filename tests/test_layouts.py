"""Every memory layout, stride and dtype the selective-scan contract admits, for every registered
implementation that runs here, against the float64 reference: forward, last state and every gradient.

The contract fixes shapes, not memory: u, Δ, z may be transposed views (MambaBlock's z is a chunk of a
(b, l, 2e) tensor, transposed; S6.projections' Δ is (b, l, d) in memory), views with offsets and
steps, or stride-0 expansions (B, C, D shared across the batch or the channels). A kernel that reads a
tensor with another tensor's strides, or assumes contiguity, gives silently wrong answers, so the
layouts are drawn by hypothesis, and the repros found so far stay in a fixed table below.

On a CPU the Triton kernels run under TRITON_INTERPRET=1 at tiny shapes; the `gpu` tests repeat the
matrix at a real size.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import mamba_edu
from mamba_edu.models import MambaBlock, TinyLM
from mamba_edu.selective import selective_scan_ref

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")
REGISTRY = mamba_edu.implementations()
# every implementation that runs here (the Triton kernels: on a GPU, or on a CPU under TRITON_INTERPRET=1)
IMPLS = [name for name, e in REGISTRY.items() if e.available(DEVICE)[0]]
FORWARD_ONLY = [name for name in IMPLS if not REGISTRY[name].has_backward]
# relative error (norm) against float64: forward, and gradients (a longer chain of roundings)
TOL = {torch.float32: 2e-5, torch.bfloat16: 3e-2}
GRAD_TOL = {torch.float32: 2e-4, torch.bfloat16: 6e-2}
# examples per implementation (more for a longer hunt: MAMBA_EDU_LAYOUT_EXAMPLES=500)
EXAMPLES = int(os.environ.get("MAMBA_EDU_LAYOUT_EXAMPLES", "25"))
# the fused forwards a GPU may pick (`fused_op.config`), each with its backward; on a CPU lscan by default
FUSED_KERNELS = {"lscan": {}, "seq": dict(KERNEL="seq", BLOCK_D=4), "seq2": dict(KERNEL="seq", BLOCK_D=2, LANES=2)}


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.double().cpu(), ref.double().cpu()
    scale = float(ref.detach().norm())
    err = float((a.detach() - ref.detach()).norm())
    return err / scale if scale > 0 else err


# ----------------------------------------------------------------------------------------------
# Layouts: each is (the shape of the leaf tensor, a differentiable map leaf → a view of the full shape
# with that memory layout). The same map is applied to the float64 leaf for the reference, so both see
# the same values; gradients are compared on the leaves.
# ----------------------------------------------------------------------------------------------


def _transposed(t):
    """The same values, the last two axes swapped in memory."""
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


def _offset(t):
    """A view into a larger tensor: a storage offset and strides of the padded tensor."""
    pad = F.pad(t, [1, 2] * t.dim())
    return pad[tuple(slice(1, 1 + s) for s in t.shape)]


def _stepped(t):
    """Every other element of a larger tensor along the last axis (stride 2 there)."""
    return torch.stack([t, torch.zeros_like(t)], dim=-1).flatten(-2)[..., ::2]


def _channels_last(t):
    """As MambaBlock makes z: the second half of a (…, L, 2·C) tensor, transposed to (…, C, L)."""
    tt = t.transpose(-1, -2)  # (…, L, C)
    return torch.cat([torch.zeros_like(tt), tt], dim=-1).chunk(2, dim=-1)[1].transpose(-1, -2)


LAYOUTS_ND = ["contiguous", "transposed", "offset", "stepped", "channels_last", "expanded"]
LAYOUTS_1D = ["contiguous", "offset", "stepped", "expanded"]


def _layout(kind: str, shape: tuple[int, ...]):
    """(leaf shape, leaf → view): "expanded" shares the leaf's first axis (stride 0) across the full shape."""
    maps = {"contiguous": lambda t: t, "transposed": _transposed, "offset": _offset, "stepped": _stepped,
            "channels_last": _channels_last}
    if kind == "expanded":
        return (1, *shape[1:]), lambda t: t.expand(*shape)
    return shape, maps[kind]


def _values(name: str, shape, gen) -> torch.Tensor:
    """Values as a trained Mamba has them: A < 0, Δ around softplus(-1), small bias."""
    r = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if name == "A":
        return -torch.exp(0.5 * r)
    if name == "delta":
        return 0.5 * r - 1
    if name == "delta_bias":
        return 0.1 * r
    return r


@st.composite
def problems(draw):
    """A problem: sizes, which optional inputs, and for every input its layout and dtype."""
    b, d, l, n = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 20)), draw(st.integers(1, 6))
    groups = draw(st.sampled_from([None] + [g for g in (1, 2, 3) if d % g == 0]))
    bc = (b, n, l) if groups is None else (b, groups, n, l)
    shapes = dict(u=(b, d, l), delta=(b, d, l), A=(d, n), B=bc, C=bc, D=(d,), z=(b, d, l), delta_bias=(d,))
    present = {k: k not in ("D", "z", "delta_bias") or draw(st.booleans()) for k in shapes}
    spec = {}
    for k, shape in shapes.items():
        if not present[k]:
            continue
        layout = draw(st.sampled_from(LAYOUTS_1D if len(shape) == 1 else LAYOUTS_ND))
        low_precision = k in ("u", "delta", "B", "C", "z")  # A, D, delta_bias: float32 parameters
        dtype = draw(st.sampled_from([torch.float32, torch.bfloat16])) if low_precision else torch.float32
        spec[k] = (shape, layout, dtype)
    return dict(spec=spec, softplus=draw(st.booleans()), last=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _build(spec: dict, softplus: bool, seed: int, grad: bool, delta_at: float | None = None):
    """(inputs for the implementation, float64 inputs for the reference, their leaves: name → (leaf, leaf64));
    delta_at: Δ before the softplus near that value."""
    gen = torch.Generator().manual_seed(seed)
    x, x64, leaves = {}, {}, {}
    for k, (shape, layout, dtype) in spec.items():
        leaf_shape, view = _layout(layout, shape)
        v = _values(k, leaf_shape, gen)
        if k == "delta" and not softplus:
            v = v.abs() + 0.05  # Δ used as given must be positive
        if k == "delta" and delta_at is not None:
            v = delta_at + 0.2 * v
        leaf = v.to(dtype).to(DEVICE).requires_grad_(grad)
        leaf64 = leaf.detach().double().cpu().requires_grad_(grad)  # the same (rounded) values
        x[k], x64[k] = view(leaf), view(leaf64)
        leaves[k] = (leaf, leaf64)
    return x, x64, leaves


def _check_against_reference(impl: str, spec: dict, softplus: bool, last: bool, seed: int):
    has_backward = REGISTRY[impl].has_backward
    x, x64, leaves = _build(spec, softplus, seed, grad=has_backward)
    with torch.set_grad_enabled(has_backward):
        res = mamba_edu.selective_scan(**x, delta_softplus=softplus, return_last_state=last, impl=impl)
    ref = selective_scan_ref(**x64, delta_softplus=softplus, return_last_state=last)
    out, h = res if last else (res, None)
    ref_out, ref_h = ref if last else (ref, None)
    low = any(dt == torch.bfloat16 for _, _, dt in spec.values())
    tol, gtol = (TOL[torch.bfloat16], GRAD_TOL[torch.bfloat16]) if low else (TOL[torch.float32], GRAD_TOL[torch.float32])
    layouts = {k: v[1] for k, v in spec.items()}
    assert out.dtype == spec["u"][2] and out.shape == spec["u"][0]
    assert _rel(out, ref_out) < tol, (impl, layouts)
    if last:
        assert h.dtype == torch.float32 and _rel(h, ref_h) < max(tol, 1e-5), (impl, layouts)
    if not has_backward:
        return
    g = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    g = g.to(out.dtype).double()  # ∂loss/∂out as the implementation receives it (rounded to a bf16 out)
    gh = torch.randn(ref_h.shape, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64) if last else None
    loss = (out.float() * g.float().to(DEVICE)).sum() + ((h * gh.float().to(DEVICE)).sum() if last else 0)
    loss.backward()
    ((ref_out * g).sum() + ((ref_h * gh).sum() if last else 0)).backward()
    for k, (leaf, leaf64) in leaves.items():
        assert leaf.grad is not None and leaf.grad.shape == leaf.shape, (impl, k, layouts)
        assert _rel(leaf.grad, leaf64.grad) < gtol, (impl, k, layouts, _rel(leaf.grad, leaf64.grad))


@pytest.fixture
def fused_override():
    """Set fused_op.OVERRIDE for one example (the fused forward the GPU's rule could pick), cleared after."""
    if "fused" not in IMPLS:
        yield lambda _kind: None
        return
    from mamba_edu.kernels import fused_op

    def use(kind):
        fused_op.OVERRIDE.clear()
        fused_op.OVERRIDE.update(FUSED_KERNELS[kind])

    yield use
    fused_op.OVERRIDE.clear()


# each implementation once; fused once per forward kernel (with its backward), on half as many examples each
IMPL_KERNELS = [(i, k) for i in IMPLS for k in (FUSED_KERNELS if i == "fused" else ["-"])]


@pytest.mark.parametrize("impl,fused_kernel", IMPL_KERNELS)
def test_every_layout_and_dtype_matches_the_reference(impl, fused_kernel, fused_override):
    if impl == "fused":
        fused_override(fused_kernel)

    @settings(max_examples=EXAMPLES if impl != "fused" else max(1, EXAMPLES // 2), deadline=None)
    @given(p=problems())
    def check(p):
        _check_against_reference(impl, p["spec"], p["softplus"], p["last"], p["seed"])

    check()


# ----------------------------------------------------------------------------------------------
# The fixed table: every repro found so far (name → the layout of each input)
# ----------------------------------------------------------------------------------------------


def _spec(b, d, l, n, layouts: dict, dtypes: dict | None = None, g=None, drop=()):
    bc = (b, n, l) if g is None else (b, g, n, l)
    shapes = dict(u=(b, d, l), delta=(b, d, l), A=(d, n), B=bc, C=bc, D=(d,), z=(b, d, l), delta_bias=(d,))
    dtypes = dtypes or {}
    return {k: (s, layouts.get(k, "contiguous"), dtypes.get(k, torch.float32)) for k, s in shapes.items()
            if k not in drop}


REPROS = {
    # fused read a non-contiguous z with the pointer of z.contiguous() and the strides of z (forward and
    # backward): MambaBlock's z, a transposed chunk
    "fused z channels-last": _spec(1, 8, 8, 4, dict(z="channels_last")),
    "fused z transposed, bf16": _spec(2, 4, 13, 4, dict(z="transposed"), dict(u=torch.bfloat16, z=torch.bfloat16)),
    # triton_scan assumed its materialised tensors contiguous: a Δ laid out (b, l, d), as S6.projections makes it
    "Δ laid out (b, l, d)": _spec(2, 8, 16, 4, dict(delta="transposed")),
    # stride-0 B, C and D shared by the batch / the channels, u from a padded buffer
    "expanded B, C, D; offset u": _spec(2, 4, 11, 3, dict(B="expanded", C="expanded", D="expanded", u="offset")),
    "grouped B, C channels-last": _spec(1, 6, 9, 4, dict(B="channels_last", C="channels_last"), g=3),
    "everything channels-last": _spec(2, 4, 10, 5, dict(u="channels_last", delta="channels_last", z="channels_last",
                                                       B="transposed", C="transposed", A="transposed")),
}


@pytest.mark.parametrize("impl,fused_kernel", IMPL_KERNELS)
@pytest.mark.parametrize("name", list(REPROS))
def test_known_layout_repros(impl, fused_kernel, name, fused_override):
    if impl == "fused":
        fused_override(fused_kernel)
    _check_against_reference(impl, REPROS[name], softplus=True, last=True, seed=len(name))


# ----------------------------------------------------------------------------------------------
# softplus: log1p(e^x) for x <= 20 (the official rule), not log(1 + e^x), which is 0 below about -17
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shift", [-30.0, -16.0, -5.0, 0.0, 19.0, 25.0])
def test_softplus_follows_the_official_rule(impl, shift, fused_override):
    """Δ = softplus(δ + bias) at very negative δ: Δ ≈ e^δ, tiny but not 0, so the output and every
    gradient (dA, dB, dC through Δ) are nonzero and match the reference; and linear above 20."""
    fused_override("lscan")
    x, x64, leaves = _build(_spec(1, 2, 6, 3, {}, drop=("D", "z", "delta_bias")), softplus=True, seed=3,
                            grad=REGISTRY[impl].has_backward, delta_at=shift)
    with torch.set_grad_enabled(REGISTRY[impl].has_backward):
        out = mamba_edu.selective_scan(**x, delta_softplus=True, impl=impl)
    ref = selective_scan_ref(**x64, delta_softplus=True)
    assert out.abs().max() > 0 and _rel(out, ref) < 1e-4, (impl, _rel(out, ref))  # no D·u: y alone
    if REGISTRY[impl].has_backward:
        out.sum().backward()
        ref.sum().backward()
        # (at Δ ≈ 20 the decay exp(Δ·A) is ~e^-20: dA, a sum of such tiny terms, is left to the matrix above)
        for k in ("A", "B", "C", "delta") if shift < 0 else ("B", "C", "delta"):
            grad, grad64 = leaves[k][0].grad, leaves[k][1].grad
            assert grad.abs().max() > 0, (impl, k)  # log(1 + e^x) gives exactly 0 here at -30
            assert _rel(grad, grad64) < 1e-3, (impl, k, _rel(grad, grad64))


# ----------------------------------------------------------------------------------------------
# Forward-only implementations refuse inputs that require grad
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", FORWARD_ONLY)
@pytest.mark.parametrize("name", ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"])
def test_forward_only_implementations_refuse_grad(impl, name):
    x, _, _ = _build(_spec(1, 2, 4, 2, {}), softplus=True, seed=1, grad=False)
    x[name] = x[name].clone().requires_grad_()
    with pytest.raises(ValueError, match=f"argument '{name}' must be a tensor that does not require grad: "
                                         f"impl='{impl}' is forward only \\(use impl='fused' or 'parallel'"):
        mamba_edu.selective_scan(**x, delta_softplus=True, impl=impl)
    with torch.no_grad():  # without autograd, the same inputs are fine
        out = mamba_edu.selective_scan(**x, delta_softplus=True, impl=impl)
    assert torch.isfinite(out).all()


# ----------------------------------------------------------------------------------------------
# The models: MambaBlock and TinyLM with every implementation against `parallel`
# ----------------------------------------------------------------------------------------------


def _grads(model) -> dict:
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _model_run(model, inputs, impl: str, backward: bool):
    """(output, gradients of every parameter) with every S6 layer set to `impl`."""
    for m in model.modules():
        if hasattr(m, "impl") and m.__class__.__name__ == "S6":
            m.impl = impl
    model.zero_grad(set_to_none=True)
    with torch.set_grad_enabled(backward):
        out = model(inputs)
    if backward:
        (out.float() ** 2).mean().backward()
    return out.detach(), _grads(model) if backward else {}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("model_kind", ["block", "tinylm"])
def test_models_agree_with_parallel_for_every_implementation(impl, model_kind, fused_override):
    fused_override("lscan")
    torch.manual_seed(0)
    if model_kind == "block":
        model = MambaBlock(4, 4).to(DEVICE)
        inputs = torch.randn(2, 8, 4, device=DEVICE)
    else:
        model = TinyLM(11, d_model=8, n_layers=2, d_state=4).to(DEVICE)
        inputs = torch.randint(0, 11, (2, 9), device=DEVICE)
    backward = REGISTRY[impl].has_backward
    want, want_grads = _model_run(model, inputs, "parallel", backward)
    got, got_grads = _model_run(model, inputs, impl, backward)
    assert _rel(got, want) < 1e-5, (impl, _rel(got, want))
    assert set(got_grads) == set(want_grads)
    for k in want_grads:
        assert _rel(got_grads[k], want_grads[k]) < 1e-4, (impl, k, _rel(got_grads[k], want_grads[k]))
    if not backward:  # a forward-only kernel in a model that trains: refused, with a message that says why
        with pytest.raises(ValueError, match="is forward only"):
            _model_run(model, inputs, impl, True)


def test_mamba_block_repro_fused_against_parallel():
    """The repro of the fused z bug: MambaBlock(4, 4) on randn(1, 8, 4) differed by ~1e33."""
    if "fused" not in IMPLS:
        pytest.skip("fused does not run here")
    torch.manual_seed(0)
    block = MambaBlock(4, 4).to(DEVICE)
    x = torch.randn(1, 8, 4, device=DEVICE)
    outs = {}
    for impl in ("parallel", "fused"):
        block.s6.impl = impl
        with torch.no_grad():
            outs[impl] = block(x)
    torch.testing.assert_close(outs["fused"], outs["parallel"], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# On a GPU: the same matrix at a real size, and the block's default path
# ----------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "naive"])
@pytest.mark.parametrize("name", list(REPROS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_layouts_at_a_real_size(impl, name, dtype):
    """b = 2, d = 256, L = 1000, N = 16 with each repro's layouts (and the default kernel choice)."""
    layouts = {k: v[1] for k, v in REPROS[name].items()}
    g = 2 if "grouped" in name else None
    dtypes = {k: dtype for k in ("u", "delta", "B", "C", "z")}
    _check_against_reference(impl, _spec(2, 256, 1000, 16, layouts, dtypes, g=g), softplus=True, last=True, seed=7)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_mamba_block_default_path_matches_parallel(dtype):
    """MambaBlock(64, 16).cuda() on (2, 128, 64): impl="auto" (fused on a GPU) against parallel, forward and
    every parameter's gradient (the fused z bug gave a max difference of 0.234 for outputs of size 0.208)."""
    torch.manual_seed(0)
    block = MambaBlock(64, 16).cuda().to(dtype)
    x = torch.randn(2, 128, 64, device="cuda", dtype=dtype)
    got, got_grads = _model_run(block, x, "auto", True)
    want, want_grads = _model_run(block, x, "parallel", True)
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    assert _rel(got, want) < tol
    for k in want_grads:
        assert _rel(got_grads[k], want_grads[k]) < 10 * tol, k
