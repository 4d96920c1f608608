"""Reference solutions for notebook 08 (the GPU memory hierarchy), with plausible wrong answers for the tests."""

import math

import torch

from mamba_edu.exercises.memory import check_attainable, check_materialised_bytes, check_sram_gap

# Exercise 1: shared memory is per SM ---------------------------------------------------------


def sram_gap(spec):
    total = spec.sms * spec.shared_per_sm            # every SM has its own shared memory
    return total, math.log10(spec.hbm_bytes / total)


def sram_gap_one_sm(spec):
    return spec.shared_per_sm, math.log10(spec.hbm_bytes / spec.shared_per_sm)   # the "five orders" mistake


def sram_gap_l1_block(spec):
    total = spec.sms * spec.l1_shared_per_sm
    return total, math.log10(spec.hbm_bytes / total)


def sram_gap_natural_log(spec):
    total = spec.sms * spec.shared_per_sm
    return total, math.log(spec.hbm_bytes / total)


# Exercise 2: what materialising costs --------------------------------------------------------


def materialised_bytes(batch, dim, L, N):
    # Ab, Bbu written (2), read by the scan (2), h written (1), read by the C-projection (1): fp32
    return 6 * batch * dim * L * N * 4


def materialised_bytes_elements(batch, dim, L, N):
    return 6 * batch * dim * L * N


def materialised_bytes_writes_only(batch, dim, L, N):
    return 2 * batch * dim * L * N * 4


def materialised_bytes_bf16(batch, dim, L, N):
    return 6 * batch * dim * L * N * 2


# Exercise 3: the roofline --------------------------------------------------------------------


def attainable(intensity, peak, bandwidth):
    return torch.clamp(intensity * bandwidth, max=peak)


def attainable_max(intensity, peak, bandwidth):
    return torch.clamp(intensity * bandwidth, min=peak)


def attainable_wrong_units(intensity, peak, bandwidth):
    return intensity * peak


def attainable_memory_only(intensity, peak, bandwidth):
    return intensity * bandwidth


EXERCISES = [
    (check_sram_gap, sram_gap, [sram_gap_one_sm, sram_gap_l1_block, sram_gap_natural_log]),
    (check_materialised_bytes, materialised_bytes,
     [materialised_bytes_elements, materialised_bytes_writes_only, materialised_bytes_bf16]),
    (check_attainable, attainable, [attainable_max, attainable_wrong_units, attainable_memory_only]),
]
