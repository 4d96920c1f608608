"""Reference solutions for notebook 07 (scans), with plausible wrong answers for the tests."""

import math

import torch

from mamba_edu.exercises.scans import check_blelloch_scan, check_combine, check_hillis_steele_cost

# Exercise 1: the operator --------------------------------------------------------------------


def combine(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2           # first step 1, then step 2: h ↦ a2·(a1·h + b1) + b2


def combine_reversed(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a1 * b2 + b1           # applies the later step first


def combine_add(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, b1 + b2                # forgets that the earlier b decays


def combine_wrong_decay(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a1 * b1 + b2


# Exercise 2: work and depth of Hillis–Steele -------------------------------------------------


def hillis_steele_cost(L):
    depth = math.ceil(math.log2(L)) if L > 1 else 0
    work = sum(L - 2**k for k in range(depth))    # at offset d = 2^k, the positions i ≥ d combine
    return work, depth


def hillis_steele_cost_floor(L):
    depth = int(math.log2(L)) if L > 1 else 0      # rounds down: one step short when L is not 2^k
    return sum(L - 2**k for k in range(depth)), depth


def hillis_steele_cost_all_positions(L):
    depth = math.ceil(math.log2(L)) if L > 1 else 0
    return L * depth, depth


def hillis_steele_cost_sequential(L):
    return L - 1, L - 1


# Exercise 3: a Blelloch scan -----------------------------------------------------------------


def blelloch_scan(a, b, combine):
    a, b = a.clone(), b.clone()                   # (..., L), worked on in place
    L = a.shape[-1]
    s = 1
    while s < L:                                  # up-sweep: x[i] ← x[i − s] ⊕ x[i] at i ≡ 2s − 1 (mod 2s)
        lo, hi = slice(s - 1, None, 2 * s), slice(2 * s - 1, None, 2 * s)
        a[..., hi], b[..., hi] = combine((a[..., lo], b[..., lo]), (a[..., hi], b[..., hi]))
        s *= 2
    s = L // 4
    while s >= 1:                                 # down-sweep: x[i] ← x[i − s] ⊕ x[i] at i = 3s − 1, 5s − 1, …
        lo, hi = slice(2 * s - 1, L - s, 2 * s), slice(3 * s - 1, None, 2 * s)
        a[..., hi], b[..., hi] = combine((a[..., lo], b[..., lo]), (a[..., hi], b[..., hi]))
        s //= 2
    return b


def blelloch_no_down_sweep(a, b, combine):
    a, b = a.clone(), b.clone()
    L, s = a.shape[-1], 1
    while s < L:
        lo, hi = slice(s - 1, None, 2 * s), slice(2 * s - 1, None, 2 * s)
        a[..., hi], b[..., hi] = combine((a[..., lo], b[..., lo]), (a[..., hi], b[..., hi]))
        s *= 2
    return b


def blelloch_swapped_operands(a, b, combine):
    a, b = a.clone(), b.clone()
    L, s = a.shape[-1], 1
    while s < L:
        lo, hi = slice(s - 1, None, 2 * s), slice(2 * s - 1, None, 2 * s)
        a[..., hi], b[..., hi] = combine((a[..., hi], b[..., hi]), (a[..., lo], b[..., lo]))
        s *= 2
    s = L // 4
    while s >= 1:
        lo, hi = slice(2 * s - 1, L - s, 2 * s), slice(3 * s - 1, None, 2 * s)
        a[..., hi], b[..., hi] = combine((a[..., hi], b[..., hi]), (a[..., lo], b[..., lo]))
        s //= 2
    return b


def hillis_steele_instead(a, b, combine):
    L, d = a.shape[-1], 1
    while d < L:
        A, B = combine((a[..., :-d], b[..., :-d]), (a[..., d:], b[..., d:]))
        a, b = torch.cat((a[..., :d], A), -1), torch.cat((b[..., :d], B), -1)
        d *= 2
    return b


def sequential_loop(a, b, combine):
    A, H = a[..., 0], b[..., 0]
    hs = [H]
    for t in range(1, a.shape[-1]):
        A, H = combine((A, H), (a[..., t], b[..., t]))
        hs.append(H)
    return torch.stack(hs, -1)


def library_scan(a, b, combine):
    from mamba_edu.scan import scan_blelloch
    return scan_blelloch(a, b)                    # right values, but never uses the given combine


EXERCISES = [
    (check_combine, combine, [combine_reversed, combine_add, combine_wrong_decay]),
    (check_hillis_steele_cost, hillis_steele_cost,
     [hillis_steele_cost_floor, hillis_steele_cost_all_positions, hillis_steele_cost_sequential]),
    (check_blelloch_scan, blelloch_scan,
     [blelloch_no_down_sweep, blelloch_swapped_operands, hillis_steele_instead, sequential_loop, library_scan]),
]
