"""Reference solutions for notebook 10 (the Mamba block and inference), with plausible wrong answers
for the tests."""

import torch
import torch.nn.functional as F

from mamba_edu.exercises.block import check_block_parameters, check_greedy_generate, check_mamba_step

# Exercise 1: a Mamba block's parameters --------------------------------------------------------


def block_parameter_count(d_model, d_state, d_conv, expand, dt_rank):
    d, n, k, r = d_model, d_state, d_conv, dt_rank
    e = expand * d
    return (d * 2 * e                # in_proj: x and z branches, no bias
            + e * k + e              # conv1d: one k-tap filter per channel, and a bias
            + e * (r + 2 * n)        # x_proj: Δ's low-rank input, B and C
            + r * e + e              # dt_proj: rank r up to e channels, with bias
            + e * n + e              # A_log and D
            + e * d)                 # out_proj


def block_parameter_count_no_biases(d_model, d_state, d_conv, expand, dt_rank):
    return block_parameter_count(d_model, d_state, d_conv, expand, dt_rank) - 2 * expand * d_model


def block_parameter_count_single_in_proj(d_model, d_state, d_conv, expand, dt_rank):
    return block_parameter_count(d_model, d_state, d_conv, expand, dt_rank) - d_model * expand * d_model


def block_parameter_count_projections_only(d_model, d_state, d_conv, expand, dt_rank):
    return 3 * expand * d_model * d_model


# Exercise 2: one decoding step of the block ------------------------------------------------------


def mamba_step(block, x, conv, h):
    xs, z = block.in_proj(x).chunk(2, dim=-1)                       # (b, e) each
    window = torch.cat([conv, xs[..., None]], dim=-1)               # (b, e, k): the last k inputs
    xs = (window * block.conv1d.weight[:, 0]).sum(-1) + block.conv1d.bias   # (b, e)
    y, h = block.s6.step(F.silu(xs), h, z=z)                        # (b, e), (b, e, n)
    return block.out_proj(y), window[..., 1:], h


def mamba_step_no_silu(block, x, conv, h):
    xs, z = block.in_proj(x).chunk(2, dim=-1)
    window = torch.cat([conv, xs[..., None]], dim=-1)
    xs = (window * block.conv1d.weight[:, 0]).sum(-1) + block.conv1d.bias
    y, h = block.s6.step(xs, h, z=z)
    return block.out_proj(y), window[..., 1:], h


def mamba_step_no_gate(block, x, conv, h):
    xs, z = block.in_proj(x).chunk(2, dim=-1)
    window = torch.cat([conv, xs[..., None]], dim=-1)
    xs = (window * block.conv1d.weight[:, 0]).sum(-1) + block.conv1d.bias
    y, h = block.s6.step(F.silu(xs), h)
    return block.out_proj(y), window[..., 1:], h


def mamba_step_stale_window(block, x, conv, h):
    out, _, h = mamba_step(block, x, conv, h)
    return out, conv, h


# Exercise 3: greedy generation with the recurrent state -----------------------------------------


@torch.no_grad()
def greedy_generate(model, prompt, n_new):
    state = model.init_state(prompt.shape[0])
    for t in range(prompt.shape[1]):                                # read the prompt, one token at a time
        logits, state = model.step(prompt[:, t], state)
    out = [prompt]
    for _ in range(n_new):
        nxt = logits.argmax(-1)                                     # (b,) the most likely next token
        out.append(nxt[:, None])
        logits, state = model.step(nxt, state)                      # feed it back
    return torch.cat(out, dim=1)


@torch.no_grad()
def greedy_generate_fresh_state(model, prompt, n_new):
    """Forgets the past: a new state for every token."""
    state = model.init_state(prompt.shape[0])
    for t in range(prompt.shape[1]):
        logits, state = model.step(prompt[:, t], state)
    out = [prompt]
    for _ in range(n_new):
        nxt = logits.argmax(-1)
        out.append(nxt[:, None])
        logits, _ = model.step(nxt, model.init_state(prompt.shape[0]))
    return torch.cat(out, dim=1)


@torch.no_grad()
def greedy_generate_first_prompt_token(model, prompt, n_new):
    """Predicts the first new token from the first prompt token only."""
    state = model.init_state(prompt.shape[0])
    logits, state = model.step(prompt[:, 0], state)
    out = [prompt]
    for _ in range(n_new):
        nxt = logits.argmax(-1)
        out.append(nxt[:, None])
        logits, state = model.step(nxt, state)
    return torch.cat(out, dim=1)


@torch.no_grad()
def greedy_generate_new_only(model, prompt, n_new):
    return greedy_generate(model, prompt, n_new)[:, prompt.shape[1]:]


EXERCISES = [
    (check_block_parameters, block_parameter_count,
     [block_parameter_count_no_biases, block_parameter_count_single_in_proj, block_parameter_count_projections_only]),
    (check_mamba_step, mamba_step, [mamba_step_no_silu, mamba_step_no_gate, mamba_step_stale_window]),
    (check_greedy_generate, greedy_generate,
     [greedy_generate_fresh_state, greedy_generate_first_prompt_token, greedy_generate_new_only]),
]
