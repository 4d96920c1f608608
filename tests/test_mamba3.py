"""Mamba-3 (mamba_edu.mamba3): the chunked form, the step and the complex-state form agree with the
sequential reference in float64; the limits (λ = 1 is Mamba-2's Euler update, angle 0 is a real
state, MIMO rank 1 is SISO); the layer's step equals its forward; the trapezoid's error order; and,
on a GPU with mamba-ssm importable, the official Triton kernels."""

import math

import pytest
import torch

from mamba_edu import discretize, mamba3, ssd
from mamba_edu.mamba3 import (Mamba3, Mamba3State, mamba3_chunked, mamba3_complex_ref, mamba3_official_args,
                              mamba3_sequential, rotate)

F64 = torch.float64


def inputs(b=2, l=13, h=3, p=4, r=1, n=8, s=2, seed=0, dtype=F64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    rn = lambda *sh: torch.randn(*sh, generator=g, dtype=F64).to(dtype=dtype, device=device)  # noqa: E731
    ru = lambda *sh: torch.rand(*sh, generator=g, dtype=F64).to(dtype=dtype, device=device)  # noqa: E731
    dt = 0.1 + 0.6 * ru(b, l, h)
    return dict(x=rn(b, l, h, p), dt=dt, adt=-ru(b, l, h) * dt, lam=ru(b, l, h), B=rn(b, l, r, h, n),
                C=rn(b, l, r, h, n), omega=3 * rn(b, l, h, s))


def close(a, b, tol=1e-10):
    assert a.shape == b.shape
    err = float((a - b).abs().max()) / max(1.0, float(b.abs().max()))
    assert err < tol, err


@pytest.mark.parametrize("l,chunk", [(1, 4), (13, 1), (13, 4), (13, 5), (16, 8), (13, 64)])
@pytest.mark.parametrize("extras", [False, True])
def test_chunked_equals_sequential(l, chunk, extras):
    a = inputs(l=l, seed=l + chunk)
    kw = dict(D=torch.randn(3, dtype=F64), z=torch.randn(2, l, 3, 4, dtype=F64)) if extras else {}
    ys, st = mamba3_sequential(**a, **kw, return_state=True)
    yc, stc = mamba3_chunked(**a, **kw, return_state=True, chunk_size=chunk)
    close(yc, ys)
    for u, v in zip(stc, st):
        close(u, v)


@pytest.mark.parametrize("r", [2, 3])
def test_mimo_chunked_equals_sequential(r):
    a = inputs(r=r, seed=r)
    g = torch.Generator().manual_seed(7)
    w = {k: torch.randn(3, r, 4, generator=g, dtype=F64) for k in ("mimo_x", "mimo_z", "mimo_o")}
    kw = dict(D=torch.randn(3, dtype=F64), z=torch.randn(2, 13, 3, 4, dtype=F64), **w)
    ys, st = mamba3_sequential(**a, **kw, return_state=True)
    yc, stc = mamba3_chunked(**a, **kw, return_state=True, chunk_size=4)
    close(yc, ys)
    for u, v in zip(stc, st):
        close(u, v)


def test_state_carries_across_calls():
    """Prefill 6 tokens, keep the state, continue: the same as one call over all 13."""
    a = inputs()
    whole = mamba3_sequential(**a)
    first = {k: v[:, :6] for k, v in a.items()}
    rest = {k: v[:, 6:] for k, v in a.items()}
    for fn in (mamba3_sequential, mamba3_chunked):
        y1, st = fn(**first, return_state=True)
        y2 = fn(**rest, state=st)
        close(torch.cat([y1, y2], 1), whole)


def test_complex_state_equals_rotations():
    """Idea 2: rotating B and C by θ_t on a real state == a complex state that turns by e^{−iωΔ}."""
    a = inputs(s=3, seed=3)
    D = torch.randn(3, dtype=F64)
    close(mamba3_complex_ref(**a, D=D), mamba3_sequential(**a, D=D))


def test_lambda_one_is_mamba2():
    """λ = 1, no rotation: β = 0 and the update is Mamba-2's H_t = exp(ΔA) H + Δ x Bᵀ (ssd_scan_ref)."""
    b, l, h, p, n = 2, 11, 3, 4, 5
    g = torch.Generator().manual_seed(1)
    x, B, C = (torch.randn(b, l, h, k, generator=g, dtype=F64) for k in (p, n, n))
    dt = 0.1 + torch.rand(b, l, h, generator=g, dtype=F64)
    A = -torch.rand(h, generator=g, dtype=F64) - 0.1
    D = torch.randn(h, generator=g, dtype=F64)
    want = ssd.ssd_scan_ref(x, dt, A, B, C, D=D)  # B, C with one group per head
    got = mamba3_chunked(x, dt, dt * A, torch.ones_like(dt), B[:, :, None], C[:, :, None],
                         torch.zeros(b, l, h, 0, dtype=F64), D=D, chunk_size=4)
    close(got, want)
    # and λ < 1 really differs (the test above could not pass by ignoring λ)
    other = mamba3_chunked(x, dt, dt * A, 0.5 * torch.ones_like(dt), B[:, :, None], C[:, :, None],
                           torch.zeros(b, l, h, 0, dtype=F64), D=D, chunk_size=4)
    assert float((other - want).abs().max()) > 1e-3


def test_angle_zero_is_the_real_model():
    """ω = 0 rotates nothing: the same as no rotating entries at all (s = 0); ω ≠ 0 differs."""
    a = inputs()
    zero = {**a, "omega": torch.zeros_like(a["omega"])}
    none = {**a, "omega": a["omega"][..., :0]}
    close(mamba3_chunked(**zero), mamba3_sequential(**none))
    assert float((mamba3_sequential(**a) - mamba3_sequential(**none)).abs().max()) > 1e-3


def test_mimo_rank_one_is_siso():
    a = inputs(r=1)
    ones = {k: torch.ones(3, 1, 4, dtype=F64) for k in ("mimo_x", "mimo_z", "mimo_o")}
    z = torch.randn(2, 13, 3, 4, dtype=F64)
    close(mamba3_chunked(**a, z=z, **ones), mamba3_sequential(**a, z=z))


def test_rotate():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 8, generator=g, dtype=F64)
    th = torch.rand(5, 3, generator=g, dtype=F64) * 6
    for halves in (False, True):
        out = rotate(v, th, halves)
        close(out.norm(dim=-1), v.norm(dim=-1))  # a rotation keeps lengths
        close(rotate(out, -th, halves), v)  # and is undone by the opposite angle
        close(rotate(v, th + 2 * math.pi, halves), out)
        assert torch.equal(out[..., 6:] if not halves else out[..., 3:4], v[..., 6:] if not halves else v[..., 3:4])
    # the pair (0, 1) turned by π/2: (a, b) -> (−b, a)
    e = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    close(rotate(e, torch.tensor([[math.pi / 2]], dtype=F64)), torch.tensor([[-2.0, 1.0, 3.0, 4.0]], dtype=F64))
    with pytest.raises(ValueError, match="theta"):
        rotate(e, torch.zeros(1, 3, dtype=F64))


def test_rotation_is_relative():
    """Adding the same angle to every θ_t (a constant offset in the state's angle) changes nothing."""
    a = inputs()
    st0 = mamba3.zero_state(2, 3, 4, 8, 2, dtype=F64)
    shifted = st0._replace(angle=torch.full_like(st0.angle, 1.234))
    close(mamba3_sequential(**a, state=shifted), mamba3_sequential(**a))


@pytest.mark.parametrize("rope,rank,groups", [(0.5, 1, 1), (1, 1, 2), (0, 1, 1), (0.5, 2, 1)])
def test_layer_step_equals_forward(rope, rank, groups):
    torch.manual_seed(0)
    m = Mamba3(16, d_state=8, headdim=8, ngroups=groups, rope_fraction=rope, mimo_rank=rank, chunk_size=4).double()
    u = torch.randn(2, 11, 16, dtype=F64)
    y = m(u)
    st = Mamba3State(*(t.double() for t in m.init_state(2)))
    steps = []
    for t in range(11):
        o, st = m.step(u[:, t], st)
        steps.append(o)
    close(torch.stack(steps, 1), y)
    # prefill then step
    y5, st5 = m.forward_with_state(u[:, :5])
    o, _ = m.step(u[:, 5], st5)
    close(o, y[:, 5])
    assert m.n_angles == int(8 * rope) // 2


def test_layer_trains():
    torch.manual_seed(0)
    m = Mamba3(8, d_state=4, headdim=4, mimo_rank=2)
    u = torch.randn(2, 9, 8, requires_grad=True)
    m(u).square().sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert u.grad is not None and float(m.in_proj.weight.grad.abs().sum()) > 0


def test_layer_rejects_bad_settings():
    with pytest.raises(ValueError, match="rope_fraction"):
        Mamba3(8, rope_fraction=0.3)
    with pytest.raises(ValueError, match="headdim"):
        Mamba3(8, headdim=5)
    with pytest.raises(ValueError, match="u"):
        Mamba3(8, d_state=4, headdim=4)(torch.randn(2, 8))


def test_bad_arguments_name_themselves():
    a = inputs()
    with pytest.raises(ValueError, match="'lam'"):
        mamba3_sequential(**{**a, "lam": a["lam"] + 1.5})
    with pytest.raises(ValueError, match="'C'"):
        mamba3_chunked(**{**a, "C": a["C"][..., :4]})
    with pytest.raises(ValueError, match="'omega'"):
        mamba3_chunked(**{**a, "omega": torch.zeros(2, 13, 3, 5, dtype=F64)})
    with pytest.raises(ValueError, match="chunk_size"):
        mamba3_chunked(**a, chunk_size=0)
    with pytest.raises(ValueError, match="state"):
        mamba3_chunked(**a, state=(1, 2))


def test_float32_close_to_float64():
    a = inputs(l=40)
    ref = mamba3_sequential(**a)
    got = mamba3_chunked(**{k: v.float() for k, v in a.items()}, chunk_size=16)
    assert got.dtype == torch.float32
    close(got.double(), ref, tol=1e-4)


def test_exp_trapezoidal_rule():
    A = torch.tensor([[0.0, 1.0], [-4.0, -0.5]], dtype=F64)
    B = torch.tensor([0.0, 1.0], dtype=F64)
    Ab, prev, cur = discretize.exp_trapezoidal(A, B, 0.1, lam=1.0)
    close(Ab, discretize.zoh(A, B, 0.1)[0])
    close(prev, torch.zeros(2, dtype=F64))
    close(cur, 0.1 * B)
    Ab, prev, cur = discretize.exp_trapezoidal(A, B, 0.1)
    close(prev, 0.05 * Ab @ B)
    close(cur, 0.05 * B)
    # diagonal A: the same as the dense diag(A)
    a = torch.tensor([-1.0, -3.0], dtype=F64)
    d = discretize.exp_trapezoidal(a, torch.ones(2, dtype=F64), torch.tensor([0.1, 0.2], dtype=F64), lam=0.3)
    e = discretize.exp_trapezoidal(torch.diag(a), torch.ones(2, dtype=F64), torch.tensor([0.1, 0.2], dtype=F64), lam=0.3)
    close(d[0], torch.diagonal(e[0], dim1=-2, dim2=-1))
    close(d[1], e[1])
    close(d[2], e[2])
    with pytest.raises(ValueError, match="lam"):
        discretize.exp_trapezoidal(A, B, 0.1, lam=1.5)


def test_trapezoid_is_second_order():
    """Global error on a smooth input: exponential-Euler and ZOH O(Δ), the trapezoid (λ = ½) O(Δ²)."""
    from mamba_edu.measure import fit_power_law

    dts = [0.1, 0.05, 0.025]
    slopes = {rule: fit_power_law(dts, mamba3.trapezoid_error(dts, rule=rule))[1] for rule in ("euler", "zoh", "trapezoid")}
    assert 0.9 < slopes["euler"] < 1.1 and 0.9 < slopes["zoh"] < 1.1
    assert 1.9 < slopes["trapezoid"] < 2.1
    # λ = 1 is exactly the Euler rule
    close(mamba3.trapezoid_error(dts, lam=1.0), mamba3.trapezoid_error(dts, rule="euler"))


def test_mimo_raises_arithmetic_intensity():
    rows = [mamba3.mimo_decode_intensity(64, 128, r) for r in (1, 2, 4, 8)]
    assert len({row["bytes"] - 2 * 64 * 128 * 4 - 3 * 64 * 4 for row in rows}) == 4  # only B, C inputs grow
    assert [row["flops"] for row in rows] == [64 * 128 * (1 + 4 * r) for r in (1, 2, 4, 8)]
    ratio = rows[3]["intensity"] / rows[0]["intensity"]
    assert 5.5 < ratio < 33 / 5  # 33/5 more flops, a few % more bytes (the r keys and queries)
    with pytest.raises(ValueError, match="rank"):
        mamba3.mimo_decode_intensity(64, 128, 0)


def test_official_argument_layout_matches_our_layout():
    """mamba3_official_args (raw Trap, Angles, biases, grouped Q/K) == the glossary's layout."""
    g = torch.Generator().manual_seed(0)
    b, l, h, gq, n, p, s = 2, 9, 4, 2, 8, 4, 2
    rn = lambda *sh: torch.randn(*sh, generator=g, dtype=F64)  # noqa: E731
    Q, K, V = rn(b, l, gq, n), rn(b, l, gq, n), rn(b, l, h, p)
    DT = 0.1 + torch.rand(b, h, l, generator=g, dtype=F64)
    ADT, Trap, Qb, Kb, Ang, D, Z = -DT * 0.5, rn(b, h, l), rn(h, n), rn(h, n), rn(b, l, h, s), rn(h), rn(b, l, h, p)
    got = mamba3_official_args(Q, K, V, ADT, DT, Trap, Qb, Kb, Ang, D, Z, chunk_size=4)
    C = (Q.repeat_interleave(2, 2) + Qb)[:, :, None]
    B = (K.repeat_interleave(2, 2) + Kb)[:, :, None]
    want = mamba3_sequential(V, DT.transpose(1, 2), ADT.transpose(1, 2), torch.sigmoid(Trap).transpose(1, 2), B, C,
                             math.pi * torch.tanh(Ang), D=D, z=Z)
    close(got, want)
    close(mamba3_official_args(Q, K, V, ADT, DT, Trap, Qb, Kb, Ang, D, Z, mode="sequential"), want)


# ----------------------------------------------------------------------------------------------
# The official kernels (GPU machine, mamba-ssm importable)
# ----------------------------------------------------------------------------------------------


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.gpu
def test_official_siso_combined_kernel():
    """mamba_ssm.ops.triton.mamba3.mamba3_siso_combined.mamba3_siso_combined against our float64
    reference, called with the same arguments (Q = C, K = B, V = x, ADT, DT, Trap pre-sigmoid,
    Q_bias, K_bias, Angles pre-tanh, D, Z). The kernel rounds Q, K, V, Trap, Angles, Z to bf16:
    our reference gets the same rounded inputs."""
    off = pytest.importorskip("mamba_ssm.ops.triton.mamba3.mamba3_siso_combined")
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    b, l, h, gq, n, p, s = 2, 200, 4, 1, 64, 32, 16
    rn = lambda *sh: torch.randn(*sh, generator=g, device=dev)  # noqa: E731
    bf = lambda t: t.to(torch.bfloat16)  # noqa: E731
    Q, K, V, Z = bf(rn(b, l, gq, n)), bf(rn(b, l, gq, n)), bf(rn(b, l, h, p)), bf(rn(b, l, h, p))
    DT = torch.nn.functional.softplus(rn(b, h, l) - 2)
    ADT = -torch.rand(b, h, l, generator=g, device=dev) * DT
    Trap, Ang = bf(rn(b, h, l)), bf(rn(b, l, h, s))
    Qb, Kb, D = 1 + 0.1 * rn(h, n), 1 + 0.1 * rn(h, n), rn(h)
    out = off.mamba3_siso_combined(Q, K, V, ADT, DT, Trap, Qb, Kb, Ang, D=D, Z=Z, chunk_size=64)
    ref = mamba3_official_args(*(t.double() for t in (Q, K, V, ADT, DT, Trap, Qb, Kb, Ang, D, Z)), chunk_size=64)
    assert out.shape == ref.shape
    assert _rel(out, ref) < 2e-2, _rel(out, ref)


@pytest.mark.gpu
def test_official_siso_step_kernel():
    """mamba_ssm.ops.triton.mamba3.mamba3_siso_step.mamba3_siso_step (one decoding step) against
    our mamba3_step: Input_States = (angle, H, rotated previous K, previous V)."""
    off = pytest.importorskip("mamba_ssm.ops.triton.mamba3.mamba3_siso_step")
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(1)
    b, h, n, p, s = 2, 4, 64, 32, 16
    rn = lambda *sh: torch.randn(*sh, generator=g, device=dev)  # noqa: E731
    Q, K, V, Z = rn(b, 1, n), rn(b, 1, n), rn(b, h, p), rn(b, h, p)
    DT = torch.nn.functional.softplus(rn(b, h) - 1)
    ADT, Trap, Ang = -0.5 * DT, rn(b, h), rn(b, h, s)
    Qb, Kb, D = rn(h, n), rn(h, n), rn(h)
    st = (torch.rand(b, h, s, generator=g, device=dev) * 6, rn(b, h, p, n), rn(b, h, n), rn(b, h, p))
    res = off.mamba3_siso_step(Q, K, V, ADT, DT, Trap, Qb, Kb, Ang, D=D, Z=Z, Input_States=st)
    out, states = res if isinstance(res, tuple) else (res, None)
    d = lambda t: t.double()  # noqa: E731
    ours, new = mamba3.mamba3_step(d(V), d(DT), d(ADT), torch.sigmoid(d(Trap)), (d(K) + d(Kb))[:, None],
                                   (d(Q) + d(Qb))[:, None], math.pi * torch.tanh(d(Ang)),
                                   Mamba3State(d(st[0]), d(st[1]), d(st[2])[:, None], d(st[3])), D=d(D), z=d(Z))
    assert _rel(out, ours) < 2e-2, _rel(out, ours)
    if states is not None:
        assert _rel(states[1], new.ssm) < 1e-2
