"""mamba_edu.probe: the traced recurrence reproduces the layers, the kept parts add up to the state,
the mixing matrix reproduces the output (Toeplitz for LTI only), and bad inputs are refused."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mamba_edu import lti, probe, tasks
from mamba_edu.models import TinyLM
from mamba_edu.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "results" / "tasks" / "checkpoints"


def tiny(mixer, seed=0, **kw):
    torch.manual_seed(seed)
    return TinyLM(12, d_model=8, n_layers=2, mixer=mixer, d_state=4, **kw).eval()


def tokens(b=2, l=11, seed=0):
    return torch.randint(0, 12, (b, l), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layer", [0, 1])
def test_mamba_trace_reproduces_the_s6_layer(layer):
    model, tok = tiny("mamba"), tokens()
    tr = probe.trace_layer(model, tok, layer)
    b, e, n, l = tr.h.shape
    assert (b, e, n, l) == (2, 16, 4, 11) and tr.selective and not tr.is_complex
    blk = model.layers[layer]
    with torch.no_grad():
        x = model.embedding(tok)
        for prev in model.layers[:layer]:
            x = prev(x)
        xs, z = blk.mixer.inner(blk.norm(x))
        want = blk.mixer.s6(xs, z=z)  # (b, e, l): the library's selective scan
    got = (probe.ssm_output(tr) + blk.mixer.s6.D[:, None] * tr.u) * F.silu(z)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tr.delta, blk.mixer.s6.delta(xs).detach())


def test_s4d_trace_is_time_invariant_and_matches_the_convolution():
    model, tok = tiny("s4d"), tokens()
    tr = probe.trace_layer(model, tok, 0)
    assert tr.is_complex and not tr.selective
    assert torch.equal(tr.delta, tr.delta[..., :1].expand_as(tr.delta))  # one Δ per channel, every token
    mixer = model.layers[0].mixer
    with torch.no_grad():
        want = lti.causal_conv(tr.u, mixer.kernel(tr.u.shape[-1]))  # (b, d, l)
    torch.testing.assert_close(probe.ssm_output(tr), want, rtol=1e-4, atol=1e-5)
    assert probe.channel_selectivity(tr).abs().max() == 0
    torch.testing.assert_close(probe.typical_delta(tr)[0], torch.exp(torch.log(tr.delta[0]).mean(0)).expand(11))


def test_most_selective_channels_and_typical_delta():
    tr = probe.trace_layer(tiny("mamba"), tokens(), 0)
    sel = probe.channel_selectivity(tr)
    top = probe.most_selective(tr, 5)
    assert top.tolist() == sel.argsort(descending=True)[:5].tolist() and sel[top[0]] == sel.max()
    want = torch.exp(torch.log(tr.delta[:, top].double()).mean(1)).float()  # (b, l)
    torch.testing.assert_close(probe.typical_delta(tr, top), want)
    with pytest.raises(ValueError, match="'k'"):
        probe.most_selective(tr, 17)


@pytest.mark.parametrize("mixer", ["mamba", "s4d"])
def test_kept_parts_add_up_to_the_state(mixer):
    tr = probe.trace_layer(tiny(mixer), tokens(), 1)
    for t in (0, 5, 10):
        c = probe.kept(tr, t)
        assert c.shape[-1] == t + 1
        torch.testing.assert_close(c.sum(-1), tr.h[..., t], rtol=1e-4, atol=1e-5)
    kn = probe.kept_norm(tr)
    assert kn.shape == (2, 11)
    k2 = probe.kept_norm(tr, 10, channels=[0, 2])
    torch.testing.assert_close(k2, probe.kept(tr, 10)[:, [0, 2]].abs().pow(2).sum((1, 2)).sqrt())
    assert (k2 <= kn + 1e-6).all()
    torch.testing.assert_close(kn[:, -1], (tr.w[..., -1] * tr.u[:, :, None, -1]).abs().pow(2).sum((1, 2)).sqrt())
    torch.testing.assert_close(probe.state_norm(tr)[:, 3], tr.h[..., 3].abs().pow(2).sum((1, 2)).sqrt())


def test_transfer_is_the_product_of_decays_and_survives_underflow():
    a = torch.tensor([0.5, 0.25, 2.0, 0.0, 3.0], dtype=torch.float64)
    P = probe.transfer(a)
    for t in range(5):
        for s in range(5):
            want = torch.prod(a[s + 1:t + 1]).item() if s <= t else 0.0
            assert P[t, s].item() == pytest.approx(want)
    assert not torch.isnan(probe.transfer(torch.tensor([1e-30] * 20))).any()
    z = torch.tensor([0.9 + 0.3j, 0.5 - 0.5j, -0.7 + 0.1j, 0.2j], dtype=torch.complex128)
    Pz = probe.transfer(z)
    assert complex(Pz[3, 0]) == pytest.approx(complex(z[1] * z[2] * z[3]))
    assert complex(Pz[1, 2]) == 0 and complex(Pz[2, 2]) == pytest.approx(1)


@pytest.mark.parametrize("mixer", ["mamba", "s4d"])
def test_mixing_matrix_reproduces_the_output_and_is_toeplitz_only_for_lti(mixer):
    tr = probe.trace_layer(tiny(mixer, seed=1), tokens(b=1, l=9), 0)
    ch = 3
    M = probe.mixing_matrix(tr, ch)  # (1, l, l)
    assert torch.equal(M.triu(1), torch.zeros_like(M))  # causal
    y = (M @ tr.u[:, ch, :, None])[..., 0]  # (1, l)
    torch.testing.assert_close(y, probe.ssm_output(tr)[:, ch], rtol=1e-4, atol=1e-5)
    gap = probe.toeplitz_gap(M[0])
    if mixer == "s4d":
        assert gap < 1e-5
        with torch.no_grad():  # column 0 of M is the convolution kernel: M[t, 0] = K_t
            K = tiny("s4d", seed=1).layers[0].mixer.kernel(9)[ch]
        torch.testing.assert_close(M[0, :, 0], K, rtol=1e-4, atol=1e-6)
    else:
        assert gap > 1e-2


def test_trained_induction_model_keeps_only_the_key():
    if not (CKPT / "induction-mamba.pt").exists():
        pytest.skip("results/tasks not generated")
    model, _ = load_checkpoint(CKPT / "induction-mamba")
    batch = tasks.induction_heads(4, seq_len=64, vocab_size=16, seed=3)
    tr = probe.trace_layer(model, batch.tokens, 0)
    kn = probe.kept_norm(tr, 62)  # the state just before the query: (b, 63)
    first = (batch.tokens == tasks.SPECIAL).int().argmax(1)  # (b,) the trigger
    share = kn / kn.sum(1, keepdim=True)
    # the key (first + 1) or the tokens right after it (the causal conv spreads it over 4) hold
    # nearly everything the state keeps
    near_key = torch.stack([share[i, first[i] + 1:first[i] + 5].sum() for i in range(4)])
    assert (near_key > 0.7).all(), near_key
    top = kn.argmax(1)  # (b,) the token the state keeps most of
    assert ((top > first) & (top <= first + 4)).all(), (top, first)
    assert probe.channel_selectivity(tr).max() > 5  # Δ varies over many orders of magnitude


def test_bad_inputs_are_refused():
    model = tiny("mamba")
    with pytest.raises(ValueError, match="'layer'"):
        probe.trace_layer(model, tokens(), 2)
    with pytest.raises(ValueError, match="'tokens'"):
        probe.trace_layer(model, tokens().float(), 0)
    with pytest.raises(ValueError, match="'model'"):
        torch.manual_seed(0)
        probe.trace_layer(TinyLM(12, d_model=8, n_layers=1, mixer="attention"), tokens(), 0)
    tr = probe.trace_layer(model, tokens(), 0)
    with pytest.raises(ValueError, match="'t'"):
        probe.kept(tr, 11)
    with pytest.raises(ValueError, match="'channel'"):
        probe.mixing_matrix(tr, 16)
    with pytest.raises(ValueError, match="'channels'"):
        probe.kept_norm(tr, channels=[16])
    with pytest.raises(ValueError, match="'trace'"):
        probe.state_norm(tr.h)
    with pytest.raises(ValueError, match="'a'"):
        probe.transfer(torch.ones(2**13, 2**13))
