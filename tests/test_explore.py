"""mamba_edu.explore: the example systems and inputs, runs that keep every state, HiPPO online helpers."""

import math

import pytest
import torch

from mamba_edu import explore
from mamba_edu.discretize import discretize
from mamba_edu.formula import parse_formula
from mamba_edu.hippo import hippo_project, hippo_reconstruct
from mamba_edu.lti import causal_conv

F64 = torch.float64


@pytest.mark.parametrize("name", list(explore.SYSTEMS))
def test_every_system_is_stable_and_has_its_size(name):
    s = explore.make_system(name, 8, seed=3)
    assert s.state_size == 8
    A = s.A if not s.diagonal else torch.diag(s.A)
    eig = torch.linalg.eigvals(A.to(torch.complex128))
    # continuous-time stable; FouT keeps one unused slot (sin of frequency 0) with eigenvalue exactly 0
    assert float(eig.real.max()) < (1e-12 if name == "hippo-fout" else 0)
    again = explore.make_system(name, 8, seed=3)
    assert torch.equal(s.C, again.C) and torch.equal(s.A, again.A)  # seeded


def test_random_system_is_stable_for_many_seeds():
    for seed in range(20):
        s = explore.make_system("random", 12, seed=seed)
        assert float(torch.linalg.eigvals(s.A).real.max()) < 0


@pytest.mark.parametrize("name", ["hippo-legt", "s4d-lin", "s4d-real", "random"])
@pytest.mark.parametrize("method", ["zoh", "bilinear", "euler"])
def test_run_lti_states_output_kernel_agree(name, method):
    s = explore.make_system(name, 6, seed=1)
    u, _ = explore.make_input("noise", 40, seed=2)
    run = explore.run_lti(s, u, 0.05, method)
    Ab, Bb = discretize(s.A, s.B, 0.05, method, diagonal=s.diagonal)
    assert torch.equal(run.Ab, Ab)
    # the states: a plain loop x_k = Ab x_{k-1} + Bb u_k, doubled real part for complex states
    x = torch.zeros(Ab.shape[-1], dtype=Ab.dtype)
    for k in range(40):
        x = (Ab @ x if not s.diagonal else Ab * x) + Bb * u[k]
        want = 2 * x.real if x.is_complex() else x
        assert torch.allclose(run.states[k], want, atol=1e-12)
    # the output of the recurrence equals the convolution with the kernel
    y_conv = causal_conv(u[None], run.K[None])[0]
    assert torch.allclose(run.y, y_conv, atol=1e-9)
    assert run.K.shape == (40,) and run.eigenvalues.shape == (6,)
    want_eig = torch.linalg.eigvals(Ab) if not s.diagonal else None
    if want_eig is not None:
        assert torch.allclose(run.eigenvalues.abs().sort().values, want_eig.abs().sort().values)
    assert run.spectral_radius == pytest.approx(float(run.eigenvalues.abs().max()))


def test_euler_with_a_large_step_is_unstable_and_zoh_is_not():
    s = explore.make_system("hippo-legs", 8)
    u, _ = explore.make_input("impulse", 16)
    assert explore.run_lti(s, u, 1.0, "euler").spectral_radius > 1
    assert explore.run_lti(s, u, 1.0, "zoh").spectral_radius < 1


def test_impulse_response_is_the_kernel():
    s = explore.make_system("s4d-inv", 8)
    u, tokens = explore.make_input("impulse", 64)
    run = explore.run_lti(s, u, 0.1, "zoh")
    assert tokens is None and torch.allclose(run.y, run.K, atol=1e-10)


@pytest.mark.parametrize("kind", list(explore.INPUTS))
def test_inputs(kind):
    u, tokens = explore.make_input(kind, 32, seed=4, text="..ab?", vocab_size=16)
    if kind == "impulse":
        assert u.tolist() == [1.0] + [0.0] * 31
    elif kind == "step":
        assert (u == 1).all()
    elif kind == "sine":
        assert torch.allclose(u, torch.sin(2 * math.pi * 4 * torch.arange(32, dtype=F64) / 32))
    elif kind == "noise":
        assert torch.equal(u, explore.make_input("noise", 32, seed=4)[0]) and float(u.std()) > 0.5
    else:
        assert torch.allclose(u, tokens.double() / 15)
        assert len(tokens) == (32 if kind == "selective-copy" else 5)
    with pytest.raises(ValueError, match="argument 'kind' must be one of"):
        explore.make_input("chirp", 8)
    with pytest.raises(ValueError, match="argument 'text' must be at least one character"):
        explore.make_input("text", 8, text="")


def test_lti_cost_grows_as_documented():
    assert explore.lti_cost(8, 100, dense=True) == 100 * 8**3
    assert explore.lti_cost(8, 100, dense=False) == 100 * 8**2


SIG = parse_formula("sin(2*pi*t) + 0.5*cos(2*pi*3*t)")


def test_step_at_and_sample_times():
    times = explore.sample_times(3.0, 300)
    assert times[0] == pytest.approx(0.005) and times[-1] == pytest.approx(2.995)
    assert explore.step_at(2.0, 3.0, 300) == 199  # c_199 is the memory at (199 + 1)·0.01 = 2.0 s
    assert explore.step_at(0.001, 3.0, 300) == 0 and explore.step_at(9.0, 3.0, 300) == 299


def test_hippo_memories_legs_prefix_equals_smaller_projection():
    mems = explore.hippo_memories(SIG, "legs", [4, 12], 3.0, 120)
    f = SIG(explore.sample_times(3.0, 120))
    assert torch.allclose(mems[4], hippo_project(f, "legs", 4, 3.0 / 120), atol=1e-10)
    assert torch.equal(mems[12], hippo_project(f, "legs", 12, 3.0 / 120))


def test_hippo_window_and_errors():
    mems = explore.hippo_memories(SIG, "legt", [4, 16], 3.0, 300)
    k = explore.step_at(2.0, 3.0, 300)
    s, f, f_hat, (lo, hi) = explore.hippo_window(SIG, mems[16][k], "legt", 2.0, 1.0)
    assert (lo, hi) == (1.0, 2.0) and s.min() > 1.0 and s.max() < 2.0
    assert torch.allclose(f, SIG(s)) and torch.allclose(f_hat, hippo_reconstruct(mems[16][k], "legt", 2.0, s))
    errs = explore.hippo_errors_vs_N(SIG, mems, "legt", 2.0, 3.0)
    assert errs[16] == pytest.approx(explore.relative_error(f_hat, f))
    assert errs[16] < 0.05 < errs[4]  # more coefficients, a better memory


def test_history_is_zero_before_the_start():
    s = torch.tensor([-0.5, 0.25], dtype=F64)
    assert explore.history(SIG, s).tolist() == [0.0, pytest.approx(float(SIG(s[1:])[0]))]


def test_finite_steps_counts_until_an_unstable_run_overflows():
    s = explore.make_system("hippo-legs", 16)
    u, _ = explore.make_input("impulse", 400)
    stable, unstable = explore.run_lti(s, u, 0.02, "zoh"), explore.run_lti(s, u, 1.0, "euler")
    assert stable.finite_steps == 400
    n = unstable.finite_steps
    assert 0 < n < 400  # ρ = 15: 15^k overflows float64 near k = 262
    assert torch.isfinite(unstable.states[:n]).all() and torch.isfinite(unstable.y[:n]).all()
    assert not (torch.isfinite(unstable.states[n]).all() and torch.isfinite(unstable.y[n]) and torch.isfinite(unstable.K[n]))
