"""Input validation shared by every public function of the library.

Every check raises ``ValueError`` with one sentence that names the function, the argument,
what was expected and what came, e.g.

    selective_scan: argument 'delta' must have shape (batch, dim, L) = (2, 8, 33); got (2, 8, 32).

so a learner never meets a crash deep inside a kernel or a silently wrong answer.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
REAL_DTYPES = FLOAT_DTYPES
COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def fail(func: str, name: str, expected: str, got: object) -> None:
    """Raise the library's standard error message."""
    raise ValueError(f"{func}: argument '{name}' must be {expected}; got {got}.")


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)} on {x.device}"
    return f"{type(x).__name__} {x!r}"


def check_tensor(
    func: str,
    name: str,
    x: object,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    dims: str | None = None,
    dtypes: Iterable[torch.dtype] | None = FLOAT_DTYPES,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a tensor of the given rank, shape, dtype and device.

    ``shape`` may hold ``None`` for a free dimension; ``dims`` names the dimensions for the
    message, e.g. ``"(batch, dim, L)"``.
    """
    if not isinstance(x, torch.Tensor):
        fail(func, name, "a torch.Tensor", _describe(x))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            if dims:
                want += f" {dims}"
            fail(func, name, f"a {want} tensor", f"shape {tuple(x.shape)}")
    if shape is not None:
        ok = len(shape) == x.dim() and all(s is None or s == t for s, t in zip(shape, x.shape))
        if not ok:
            want = tuple("*" if s is None else s for s in shape)
            label = f"{dims} = {want}" if dims else f"{want}"
            fail(func, name, f"of shape {label}", f"{tuple(x.shape)}")
    if dtypes is not None:
        dtypes = tuple(dtypes)
        if x.dtype not in dtypes:
            names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
            fail(func, name, f"of dtype {names}", str(x.dtype).replace("torch.", ""))
    if device is not None and x.device != torch.device(device):
        fail(func, name, f"on device {device} (like the other inputs)", f"device {x.device}")
    return x


def check_finite(func: str, name: str, x: torch.Tensor) -> torch.Tensor:
    """Check that every element of ``x`` is finite (no NaN or inf).

    Skipped while torch.compile traces: a check that reads values would break the graph (the
    eager call of the same code checks them). On a GPU the answer has to come back to the CPU,
    which waits for the GPU to finish everything queued before it: so a tensor that passed is
    marked with its version counter (which every in-place change bumps) and not checked again
    until it changes, and a kernel called again and again with the same parameters never waits."""
    if torch.compiler.is_compiling():
        return x
    if getattr(x, "_mamba_edu_finite_version", None) == x._version:
        return x
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        fail(func, name, "finite everywhere", f"{bad} NaN or infinite value(s)")
    x._mamba_edu_finite_version = x._version
    return x


def check_positive(func: str, name: str, x: torch.Tensor) -> torch.Tensor:
    """Check that ``x`` is finite and strictly positive everywhere (step sizes, time scales)."""
    check_finite(func, name, x)
    if not bool((x > 0).all()):
        fail(func, name, "strictly positive everywhere", f"minimum {float(x.min()):.4g}")
    return x


def check_int(func: str, name: str, n: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Check that ``n`` is a Python (or 0-d tensor) integer in [minimum, maximum]."""
    if isinstance(n, torch.Tensor) and n.dim() == 0 and not n.is_floating_point():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int):
        fail(func, name, "an integer", _describe(n))
    hi = "" if maximum is None else f" and <= {maximum}"
    if n < minimum or (maximum is not None and n > maximum):
        fail(func, name, f"an integer >= {minimum}{hi}", n)
    return n


def check_float(func: str, name: str, v: object, *, positive: bool = False) -> float:
    """Check that ``v`` is a finite real number (strictly positive if asked)."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        fail(func, name, "a finite real number", _describe(v))
    if positive and v <= 0:
        fail(func, name, "a number > 0", v)
    return float(v)


def check_choice(func: str, name: str, value: object, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        fail(func, name, "one of " + ", ".join(repr(c) for c in choices), repr(value))
    return value  # type: ignore[return-value]
