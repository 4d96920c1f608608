"""Memory cost against the sequence length L: attention's score matrix and key-value cache against
a recurrent state of fixed size.

    naive attention materialises the scores S = QKᵀ/√d_head      batch·heads·L² elements
    decoding with attention keeps K and V of every past token    2·layers·batch·heads·d_head·L
    decoding with a Mamba block keeps a conv window and a state  layers·batch·e·(k−1 + n)
"""

from __future__ import annotations

import math

from ._checks import check_int

FP32 = 4


def kv_cache_bytes(n_layers: int, n_heads: int, head_dim: int, L: int, batch: int = 1,
                   bytes_per_element: int = 2) -> int:
    """Bytes of a Transformer's key-value cache after L tokens: 2·n_layers·batch·n_heads·head_dim·L·s.

    The 2 counts keys and values. For grouped-query attention pass the number of key-value heads.
    """
    func = "kv_cache_bytes"
    for name, v in (("n_layers", n_layers), ("n_heads", n_heads), ("head_dim", head_dim), ("batch", batch),
                    ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    check_int(func, "L", L, minimum=0)
    return 2 * n_layers * batch * n_heads * head_dim * L * bytes_per_element


def attention_scores_bytes(L: int, n_heads: int = 1, batch: int = 1, bytes_per_element: int = 4) -> int:
    """Bytes of the (batch, heads, L, L) score matrix QKᵀ that naive attention materialises."""
    func = "attention_scores_bytes"
    check_int(func, "L", L, minimum=0)
    for name, v in (("n_heads", n_heads), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    return batch * n_heads * L * L * bytes_per_element


def max_attention_length(budget_bytes: int, n_heads: int = 1, batch: int = 1, bytes_per_element: int = 4) -> int:
    """The largest L whose score matrix fits the budget: batch·heads·L²·s ≤ budget_bytes (0 if none)."""
    func = "max_attention_length"
    check_int(func, "budget_bytes", budget_bytes, minimum=0)
    for name, v in (("n_heads", n_heads), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    # L² ≤ budget/(b·h·s)  ⇔  L² ≤ ⌊budget/(b·h·s)⌋ since L² is an integer
    return math.isqrt(budget_bytes // (batch * n_heads * bytes_per_element))


def mamba_state_bytes(n_layers: int, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                      batch: int = 1, bytes_per_element: int = FP32) -> int:
    """Bytes of a Mamba model's decoding state: n_layers·batch·e·((k − 1) + n)·s, e = expand·d_model.

    Per layer a (batch, e, k−1) window of the causal convolution and the (batch, e, n) SSM state
    (`mamba_edu.models.MambaBlock.init_state`); it does not depend on the position.
    """
    func = "mamba_state_bytes"
    for name, v in (("n_layers", n_layers), ("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv),
                    ("expand", expand), ("batch", batch), ("bytes_per_element", bytes_per_element)):
        check_int(func, name, v)
    return n_layers * batch * expand * d_model * (d_conv - 1 + d_state) * bytes_per_element
