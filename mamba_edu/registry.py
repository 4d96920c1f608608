"""The registry of selective-scan implementations, and the dispatcher `selective_scan`.

Glossary
    implementation   one way to compute the selective scan (same arguments, same result:
                     the contract in DESIGN.md and `mamba_edu.selective`)
    entry            its registry record: a name, what it needs (a GPU, Triton), where its
                     code lives (imported only when first used) and its bytes-moved formula
                     (the IO model, `mamba_edu.iomodel`)

Tests, benchmarks, notebooks and the app iterate `implementations()`; adding an
implementation is one `Implementation(...)` line in `_REGISTRY` below.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

import torch

from ._checks import fail
from .machine import interpreter_problem, triton_version
from .iomodel import ScanShape, fused_bytes, materialised_bytes, naive_bytes, triton_scan_bytes


@dataclass(frozen=True)
class Implementation:
    """One registry entry."""

    name: str
    description: str
    target: str  # "module:function", imported on first use (so Triton is never imported eagerly)
    bytes_moved: Callable[[ScanShape], int]
    needs_gpu: bool = False
    needs_triton: bool = False
    needs_package: str | None = None  # e.g. "mamba_ssm" for the official kernel
    has_backward: bool = True  # differentiable (autograd) or forward only

    def available(self, device: str | torch.device = "cpu") -> tuple[bool, str]:
        """Whether this implementation can run on `device` here, and if not, why not."""
        device = torch.device(device)
        if self.needs_package and importlib.util.find_spec(self.needs_package) is None:
            return False, f"the package '{self.needs_package}' is not installed"
        if self.needs_gpu and device.type != "cuda":
            return False, "it needs a CUDA GPU"
        if self.needs_triton:
            if triton_version() is None:
                return False, "Triton cannot be imported here"
            if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
                return False, "on a CPU, Triton kernels run only under TRITON_INTERPRET=1"
            if device.type != "cuda" and interpreter_problem():
                return False, interpreter_problem()
        return True, ""

    def load(self) -> Callable:
        """Import and return the implementation's function (cached: torch.compile then sees a lookup)."""
        fn = _LOADED.get(self.target)
        if fn is None:
            module, _, func = self.target.partition(":")
            fn = _LOADED[self.target] = getattr(importlib.import_module(module), func)
        return fn


_LOADED: dict[str, Callable] = {}


_REGISTRY: dict[str, Implementation] = {
    "naive": Implementation(
        "naive", "Python loop over time, one small PyTorch op per step",
        "mamba_edu.selective:selective_scan_naive", naive_bytes),
    "parallel": Implementation(
        "parallel", "PyTorch parallel scan over materialised (batch, dim, L, N) tensors, chunked over L",
        "mamba_edu.selective:selective_scan_parallel", materialised_bytes),
    "triton_simple": Implementation(
        "triton_simple", "Triton, one time step per loop iteration, state in registers (the teaching kernel)",
        "mamba_edu.kernels.selective_scan_simple:selective_scan_simple", fused_bytes,
        needs_triton=True, has_backward=False),
    "triton_scan": Implementation(
        "triton_scan", "Triton scan over (batch, dim, L, N) tensors that PyTorch materialises in HBM (unfused)",
        "mamba_edu.kernels.scan_unfused:selective_scan_triton_scan", triton_scan_bytes,
        needs_triton=True, has_backward=False),
    "fused": Implementation(
        "fused", "Triton: discretisation, the recurrence, C-projection and gate in one kernel; backward recomputes",
        "mamba_edu.kernels.fused_op:selective_scan_fused", fused_bytes, needs_triton=True),
    "official": Implementation(
        "official", "the official mamba-ssm CUDA kernel (only where the mamba_ssm package is installed)",
        "mamba_ssm.ops.selective_scan_interface:selective_scan_fn", fused_bytes,
        needs_gpu=True, needs_package="mamba_ssm"),
}


def implementations() -> dict[str, Implementation]:
    """The registry: name → Implementation (a copy; the registry itself is not changed)."""
    return dict(_REGISTRY)


def _auto(device: torch.device) -> str:
    """The implementation `impl="auto"` picks on `device`: fused on a GPU when it exists, else parallel."""
    for name in ("fused", "parallel"):
        entry = _REGISTRY.get(name)
        if entry is None:
            continue
        if entry.needs_triton and device.type != "cuda":
            continue  # the Triton interpreter is for tests and teaching, never the default
        if entry.available(device)[0]:
            return name
    return "naive"


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, impl: str = "auto"):
    """The selective scan (contract in DESIGN.md), computed by the registered implementation `impl`.

    `impl="auto"` picks the fastest implementation that runs on u's device.
    """
    device = u.device if isinstance(u, torch.Tensor) else torch.device("cpu")
    if impl == "auto":
        impl = _auto(device)
    if not isinstance(impl, str) or impl not in _REGISTRY:
        fail("selective_scan", "impl", "'auto' or one of " + ", ".join(map(repr, _REGISTRY)), repr(impl))
    entry = _REGISTRY[impl]
    ok, why = entry.available(device)
    if not ok:
        runnable = [k for k, e in _REGISTRY.items() if e.available(device)[0]]
        fail("selective_scan", "impl", f"an implementation that runs here ({', '.join(runnable)})",
             f"{impl!r}, which cannot run on {device}: {why}")
    return entry.load()(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                        return_last_state=return_last_state)


def io_bytes(impl: str, s: ScanShape) -> int:
    """Bytes implementation `impl` moves through HBM for shape `s` (its registry entry's IO model)."""
    if not isinstance(impl, str) or impl not in _REGISTRY:
        fail("io_bytes", "impl", "one of " + ", ".join(map(repr, _REGISTRY)), repr(impl))
    return _REGISTRY[impl].bytes_moved(s)
