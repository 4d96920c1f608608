"""Models: shapes, recurrent decoding equals the full forward, the state does not grow, bad input."""

import pytest
import torch

from mamba_edu import models
from mamba_edu.models import MambaBlock, S4DLayer, TinyLM, state_bytes


@pytest.mark.parametrize("init", ["lin", "inv", "real"])
def test_s4d_layer_step_equals_forward(init):
    torch.manual_seed(0)
    layer = S4DLayer(d_model=6, d_state=8, init=init).double()
    x = torch.randn(2, 13, 6, dtype=torch.float64)
    y = layer(x)
    assert y.shape == x.shape
    h = layer.init_state(2)
    steps = []
    for t in range(13):
        yt, h = layer.step(x[:, t], h)
        steps.append(yt)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-9, atol=1e-9)


def test_mamba_block_step_equals_forward():
    torch.manual_seed(1)
    block = MambaBlock(d_model=8, d_state=4, d_conv=4, expand=2).double()
    x = torch.randn(3, 11, 8, dtype=torch.float64)
    y = block(x)
    assert y.shape == x.shape
    state = block.init_state(3)
    state = tuple(s.double() for s in state)
    steps = []
    for t in range(11):
        yt, state = block.step(x[:, t], state)
        steps.append(yt)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-9, atol=1e-9)


def test_mamba_block_is_causal():
    """Changing token t changes no output before t."""
    torch.manual_seed(2)
    block = MambaBlock(d_model=8, d_state=4).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 6] += 1.0
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, :6], y2[:, :6])
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


@pytest.mark.parametrize("mixer", ["mamba", "s4d"])
def test_tiny_lm_decoding_equals_forward(mixer):
    torch.manual_seed(3)
    lm = TinyLM(vocab_size=17, d_model=16, n_layers=2, mixer=mixer).double()
    tokens = torch.randint(0, 17, (2, 12))
    with torch.no_grad():
        logits = lm(tokens)
    assert logits.shape == (2, 12, 17)
    torch.testing.assert_close(lm.decode(tokens), logits, rtol=1e-8, atol=1e-8)
    assert lm.lm_head.weight is lm.embedding.weight


def test_decoding_state_has_a_fixed_size():
    lm = TinyLM(vocab_size=11, d_model=16, n_layers=2)
    state = lm.init_state(1)
    sizes = []
    with torch.no_grad():
        for t in range(20):
            _, state = lm.step(torch.tensor([t % 11]), state)
            sizes.append(state_bytes(state))
    assert len(set(sizes)) == 1
    # 2 layers x (conv window (1, 32, 3) + SSM state (1, 32, 16)) fp32
    assert sizes[0] == 2 * (32 * 3 + 32 * 16) * 4


def test_tiny_lm_trains_a_little():
    """A few optimiser steps on a repeating pattern lower the loss: the model is differentiable end to end."""
    torch.manual_seed(4)
    lm = TinyLM(vocab_size=5, d_model=16, n_layers=1)
    tokens = torch.arange(40).remainder(5).unsqueeze(0)
    opt = torch.optim.AdamW(lm.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        logits = lm(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_input():
    lm = TinyLM(vocab_size=7, d_model=8, n_layers=1)
    with pytest.raises(ValueError, match="argument 'tokens'"):
        lm(torch.randint(0, 7, (2, 3, 4)))
    with pytest.raises(ValueError, match="argument 'tokens'"):
        lm(torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match="argument 'tokens'"):
        lm(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="argument 'mixer'"):
        TinyLM(vocab_size=7, mixer="lstm")
    with pytest.raises(ValueError, match="argument 'x'"):
        MambaBlock(d_model=8)(torch.randn(1, 4, 9))
    with pytest.raises(ValueError, match="argument 'init'"):
        S4DLayer(4, init="legs")
    with pytest.raises(ValueError, match="argument 'd_model'"):
        MambaBlock(d_model=0)
    assert set(models.MIXERS) >= {"mamba", "s4d"}
