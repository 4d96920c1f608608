"""The machinery every check uses: run the learner's function safely, compare, report."""

from __future__ import annotations

import ast
import inspect
import textwrap
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch


class Mismatch(Exception):
    """Raised inside a check when the learner's answer differs; its message is the verdict."""


@dataclass
class Verdict:
    """The outcome of one check: `passed`, `attempted`, and a message for the learner."""

    exercise: str
    passed: bool
    message: str
    attempted: bool = True
    details: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅" if self.passed else ("⏳" if not self.attempted else "❌")
        return f"{mark} {self.exercise}: {self.message}"

    def _repr_markdown_(self) -> str:
        return str(self)


def _is_stub(fn: Callable) -> bool:
    """True when `fn` is still the notebook's stub: its body is only a docstring and `...` (or `pass`)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False  # no source to read (e.g. a lambda in a string): judge it by its answers
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    if not defs or isinstance(defs[0], ast.Lambda):
        return False
    body = [s for s in defs[0].body
            if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str))]
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and s.value.value is Ellipsis) for s in body)


def compare(got: Any, want: torch.Tensor, what: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise Mismatch with a precise message unless `got` is a tensor close to `want`."""
    if got is None:
        raise Mismatch(f"{what}: your function returned None (is there a `return`?)")
    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise Mismatch(f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if got.is_complex() != want.is_complex():
        raise Mismatch(f"{what}: expected a {'complex' if want.is_complex() else 'real'} tensor, got {got.dtype}")
    g, w = got.detach().to(torch.complex128 if want.is_complex() else torch.float64), want.detach().to(
        torch.complex128 if want.is_complex() else torch.float64)
    if not bool(torch.isfinite(g).all()):
        idx = tuple(int(i) for i in (~torch.isfinite(g)).nonzero()[0])
        raise Mismatch(f"{what}: non-finite value {g[idx].item()} at index {idx}")
    bad = (g - w).abs() > atol + rtol * w.abs()
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        n = int(bad.sum())
        raise Mismatch(f"{what}: at index {idx} expected {w[idx].item():.6g}, got {g[idx].item():.6g} "
                       f"({n} of {bad.numel()} values differ)")


def run_check(exercise: str, fn: Callable, cases: Iterable[tuple[str, Callable[[Callable], None]]],
              success: str = "correct on every case.", quiet: bool = False) -> Verdict:
    """Run `fn` through each (case name, test) pair; the first failure is reported, never raised."""
    if not callable(fn):
        v = Verdict(exercise, False, f"expected your function, got {type(fn).__name__}", attempted=False)
    elif _is_stub(fn):
        v = Verdict(exercise, False, "not attempted yet: replace the `...` with your code and run the cell again.",
                    attempted=False)
    else:
        v = Verdict(exercise, True, success)
        for name, test in cases:
            try:
                test(fn)
            except Mismatch as e:
                v = Verdict(exercise, False, f"case '{name}': {e}")
                break
            except Exception as e:  # the learner's code raised: report it, never propagate
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                v = Verdict(exercise, False, f"case '{name}': your code raised {tb}")
                break
    if not quiet:
        print(v)
    return v
