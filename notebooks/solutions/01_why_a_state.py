"""Reference solutions for notebook 01 (why a state?), with plausible wrong answers for the tests."""

import math

import torch

from mamba_edu.exercises.cost import check_kv_cache_bytes, check_max_attention_length, check_ssm_step


# Exercise 1: the KV cache -------------------------------------------------------------------


def kv_cache_bytes(n_layers, n_heads, head_dim, L, batch=1, bytes_per_element=2):
    # keys and values (2), for every layer, sequence, head, channel of a head and past token
    return 2 * n_layers * batch * n_heads * head_dim * L * bytes_per_element


def kv_cache_bytes_keys_only(n_layers, n_heads, head_dim, L, batch=1, bytes_per_element=2):
    return n_layers * batch * n_heads * head_dim * L * bytes_per_element


def kv_cache_bytes_one_layer(n_layers, n_heads, head_dim, L, batch=1, bytes_per_element=2):
    return 2 * batch * n_heads * head_dim * L * bytes_per_element


def kv_cache_elements(n_layers, n_heads, head_dim, L, batch=1, bytes_per_element=2):
    return 2 * n_layers * batch * n_heads * head_dim * L


# Exercise 2: one step of a fixed-size state -------------------------------------------------


def ssm_step(h, delta, A, B, C, u):
    dA = delta[:, None] * A                                   # (d, n)
    h_new = torch.exp(dA) * h + delta[:, None] * B[None, :] * u[:, None]  # (d, n)
    y = h_new @ C                                             # (d,)
    return y, h_new


def ssm_step_euler(h, delta, A, B, C, u):
    h_new = (1 + delta[:, None] * A) * h + delta[:, None] * B[None, :] * u[:, None]
    return h_new @ C, h_new


def ssm_step_reads_old_state(h, delta, A, B, C, u):
    h_new = torch.exp(delta[:, None] * A) * h + delta[:, None] * B[None, :] * u[:, None]
    return h @ C, h_new


def ssm_step_no_delta_on_input(h, delta, A, B, C, u):
    h_new = torch.exp(delta[:, None] * A) * h + B[None, :] * u[:, None]
    return h_new @ C, h_new


# Exercise 3: the longest sequence whose scores fit a budget --------------------------------


def max_attention_length(budget_bytes, n_heads=1, batch=1, bytes_per_element=4):
    return math.isqrt(budget_bytes // (batch * n_heads * bytes_per_element))


def max_attention_length_rounded(budget_bytes, n_heads=1, batch=1, bytes_per_element=4):
    return round(math.sqrt(budget_bytes / (batch * n_heads * bytes_per_element)))


def max_attention_length_ignores_heads(budget_bytes, n_heads=1, batch=1, bytes_per_element=4):
    return math.isqrt(budget_bytes // (batch * bytes_per_element))


def max_attention_length_off_by_one(budget_bytes, n_heads=1, batch=1, bytes_per_element=4):
    return math.isqrt(budget_bytes // (batch * n_heads * bytes_per_element) - 1)


EXERCISES = [
    (check_kv_cache_bytes, kv_cache_bytes, [kv_cache_bytes_keys_only, kv_cache_bytes_one_layer, kv_cache_elements]),
    (check_ssm_step, ssm_step, [ssm_step_euler, ssm_step_reads_old_state, ssm_step_no_delta_on_input]),
    (check_max_attention_length, max_attention_length,
     [max_attention_length_rounded, max_attention_length_ignores_heads, max_attention_length_off_by_one]),
]
