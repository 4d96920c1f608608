"""mamba_edu.block_reading.read and the per-token views of the Inside Mamba page, checked against direct
computation: the logits and every block's y equal the model's forward, the state after the last token
equals the recurrent step's, the writes and decays rebuild each state, and bad inputs are refused."""

import math

import pytest
import torch
import torch.nn.functional as F

from mamba_edu import block_reading, probe
from mamba_edu.models import TinyLM, state_bytes
from mamba_edu.tokenizer import byte_labels, utf8_tokens

from mamba_edu.cost import kv_cache_bytes


def tiny(seed=0, n_layers=2, d_conv=4):
    torch.manual_seed(seed)
    return TinyLM(256, d_model=16, n_layers=n_layers, d_state=4, d_conv=d_conv).eval()


def text_tokens(text="def f(x):\n    return x  # 🐍"):
    return utf8_tokens(text, 1024)[0]


@pytest.mark.parametrize("length", [1, 2, 3, 7, 40])
def test_read_reproduces_the_forward_and_each_s6_layer(length):
    model, tok = tiny(), text_tokens("héllo wörld, 🐍 code " * 3)[:length]
    r = block_reading.read(model, tok)
    with torch.no_grad():
        want = model(tok[None])[0]
    torch.testing.assert_close(r.logits, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(length))
    x = model.embedding(tok[None])
    for layer, b in zip(model.layers, r.blocks):
        with torch.no_grad():
            xs, z = layer.mixer.inner(layer.norm(x))
            y = layer.mixer.s6(xs, z=z)[0]  # (e, l): the library's selective scan (dispatcher)
            torch.testing.assert_close(b.y, y, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(b.out, layer.mixer(layer.norm(x))[0], rtol=1e-4, atol=1e-5)
            x = layer(x)
        torch.testing.assert_close(b.trace.u[0], xs[0])
        torch.testing.assert_close(b.gate, F.silu(z[0]))


@pytest.mark.parametrize("length", [1, 2, 5, 33])
def test_last_state_equals_the_recurrent_step(length):
    model, tok = tiny(seed=1), text_tokens("for i in range(10): print(i)" * 2)[:length]
    r = block_reading.read(model, tok)
    state = model.init_state(1)
    with torch.no_grad():
        for t in range(length):
            logits, state = model.step(tok[t:t + 1], state)
    torch.testing.assert_close(r.logits[-1], logits[0], rtol=1e-4, atol=1e-5)
    for b, (window, h) in zip(r.blocks, state):
        torch.testing.assert_close(b.trace.h[0, :, :, -1], h[0], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b.conv_window, window[0], rtol=1e-5, atol=1e-6)


def test_writes_and_decays_rebuild_every_state_and_survival_matches_kept():
    model, tok = tiny(seed=2), text_tokens()
    tr = block_reading.read(model, tok).blocks[1].trace
    L = tok.numel()
    for s in (0, 1, L // 2, L - 1):
        before, after = block_reading.states_around(tr, s)
        torch.testing.assert_close(after, tr.a[0, :, :, s] * before + block_reading.token_write(tr, s))
        # the write equals Δ_s·B_s·u_s from the S6 layer's own projections
        s6 = model.layers[1].mixer.s6
        with torch.no_grad():
            delta, (_, B, _) = s6.delta(tr.u), s6.projections(tr.u)
        torch.testing.assert_close(block_reading.token_write(tr, s), delta[0, :, s, None] * B[0, None, :, s] * tr.u[0, :, None, s])
        P = block_reading.survival(tr, s)  # (e, n, L − s)
        assert P.shape == (*tr.a.shape[1:3], L - s) and torch.equal(P[..., 0], torch.ones_like(P[..., 0]))
        for t in range(s, L):  # P[t, s] is the product of the decays after s, computed directly
            direct = torch.ones_like(P[..., 0])
            for r_ in range(s + 1, t + 1):
                direct = direct * tr.a[0, :, :, r_]
            torch.testing.assert_close(P[..., t - s], direct)
            torch.testing.assert_close(P[..., t - s] * block_reading.token_write(tr, s), probe.kept(tr, t)[0, :, :, s])
        frac = block_reading.kept_fraction(tr, s)
        assert frac[0] == pytest.approx(1.0) and bool((frac[1:] <= frac[:-1] + 1e-6).all())  # Ā ∈ (0, 1]: it only fades


def test_flow_stages_hold_the_block_values_in_order():
    model, tok = tiny(), text_tokens()
    r = block_reading.read(model, tok)
    stages = block_reading.flow_stages(r, 1, 5)
    names = [s["name"] for s in stages]
    assert names[0] == "RMSNorm(x)" and names[-1] == "next-byte logits" and "Δ" in names and "scan: h" in names
    b = r.blocks[1]
    got = {s["name"]: s["values"] for s in stages}
    torch.testing.assert_close(got["Δ"], b.trace.delta[0, :, 5])
    torch.testing.assert_close(got["scan: h"], b.trace.h[0, :, :, 5])
    torch.testing.assert_close(got["⊙ SiLU(z)"], b.y[:, 5])
    torch.testing.assert_close(got["next-byte logits"], r.logits[5])


def test_top_next_and_surprise():
    model, tok = tiny(), text_tokens()
    r = block_reading.read(model, tok)
    ids, p = block_reading.top_next(r, 3, 5)
    assert ids.shape == (5,) and bool((p[:-1] >= p[1:]).all())
    assert float(p[0]) == pytest.approx(float(r.probs[3].max()))
    bits = block_reading.surprise_bits(r)
    assert math.isnan(float(bits[-1]))
    want = -math.log2(float(torch.softmax(r.logits[4].double(), -1)[tok[5]]))
    assert float(bits[4]) == pytest.approx(want, rel=1e-5)


def test_memory_by_now_counts_the_real_state_and_cache():
    model = tiny()
    att = {"n_layers": 4, "d_model": 16, "n_heads": 4}
    for pos in (0, 1, 100):
        mem = block_reading.memory_by_now(model, pos, att)
        assert mem["mamba state"] == state_bytes(model.init_state(1))  # the tensors a decoder really keeps
        assert mem["attention KV cache"] == kv_cache_bytes(4, 4, 4, pos, bytes_per_element=4)
    torch.manual_seed(0)
    attn = TinyLM(256, d_model=16, n_layers=4, mixer="attention", n_heads=4).eval()
    state = attn.init_state(1)
    with torch.no_grad():
        for t in range(7):
            _, state = attn.step(torch.tensor([t]), state)
    assert state_bytes(state) == block_reading.memory_by_now(model, 7, att)["attention KV cache"]


def test_bad_inputs_are_refused_with_the_argument_named():
    model, tok = tiny(), text_tokens()
    with pytest.raises(ValueError, match="argument 'tokens'"):
        block_reading.read(model, tok[:0])
    with pytest.raises(ValueError, match="argument 'tokens'"):
        block_reading.read(model, tok[None].expand(2, -1))
    with pytest.raises(ValueError, match="argument 'model'"):
        block_reading.read(TinyLM(256, d_model=8, mixer="attention"), tok)
    r = block_reading.read(model, tok)
    with pytest.raises(ValueError, match="argument 't'"):
        block_reading.top_next(r, tok.numel())
    with pytest.raises(ValueError, match="argument 't'"):
        block_reading.survival(r.blocks[0].trace, -1)
    with pytest.raises(ValueError, match="argument 'layer'"):
        block_reading.flow_stages(r, 2, 0)
    with pytest.raises(ValueError, match="argument 'attention'"):
        block_reading.memory_by_now(model, 3, {"n_layers": 1})


@pytest.mark.parametrize("text, n_bytes, chars", [
    ("", 0, 0), ("abc", 3, 3), ("🐍" * 600, 2048, 512), ("a\ud800b", 5, 3), ("é" * 10, 20, 10),
])
def test_utf8_tokens_counts_bytes_and_cuts_whole_characters(text, n_bytes, chars):
    tok, kept = utf8_tokens(text, 2048)
    assert tok.numel() == n_bytes and kept == chars and (tok.numel() == 0 or int(tok.max()) < 256)
    assert len(byte_labels(tok)) == tok.numel()
    tok, kept = utf8_tokens("ab🐍", 5)  # the emoji does not fit whole: cut before it
    assert tok.tolist() == [97, 98] and kept == 2
    assert byte_labels(utf8_tokens(" \n🐍\x00", 64)[0]) == ["␣", "↵", "🐍", "·", "·", "·", "\\x00"]
