"""The machinery every check uses: run the learner's function safely, compare, report.

Integrity (see docs/course/threat-model.md): while a check runs the learner's function, the library
functions that answer the exercise are switched off (`forbid`: calling one raises `Blocked`, which the
verdict reports as "write it yourself"); where the exercise teaches a method, `method` reads the
function's source (its AST) and says what is missing. Both hold in the notebook and in the grader, which
runs the same checks.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import itertools
import textwrap
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch


SALT = 0  # added to every seed a check draws its inputs from; the grader sets a fresh one for each check


def gen(seed: int) -> torch.Generator:
    """A generator for a check's random inputs (the same in the notebook for a given seed; the grader salts it)."""
    return torch.Generator().manual_seed(seed + SALT)


def seed_all(seed: int) -> None:
    """torch.manual_seed for a check's inputs (salted like `gen`)."""
    torch.manual_seed(seed + SALT)


class Mismatch(Exception):
    """Raised inside a check when the learner's answer differs; its message is the verdict."""


class Blocked(Exception):
    """Raised when the learner's code calls a library function that the exercise asks them to write."""


# ----------------------------------------------------------------------------------------------
# Switching library functions off while the learner's function runs
# ----------------------------------------------------------------------------------------------
#
# A function is switched off by swapping its code object (`f.__code__`) for one that raises: every
# reference to it is affected, also one the learner took earlier (`from mamba_edu.lti import s4d_kernel
# as k`). The original code is put back when the learner's function returns.

_ORIGINAL: dict[int, Callable] = {}  # key -> a copy of the switched-off function, for grader-owned code
_ACTIVE: dict[int, tuple[str, str]] = {}  # key -> (qualified name, exercise) while switched off
_KEYS = itertools.count()
_LIFTED = 0  # > 0 while grader-owned code (an instrument) runs inside the learner's call


def _call_blocked(key: int, args, kwargs):
    if _LIFTED or key not in _ACTIVE:
        return _ORIGINAL[key](*args, **kwargs)
    name, exercise = _ACTIVE[key]
    raise Blocked(f"`{name}` is switched off while the check runs your `{exercise}`: it computes the answer "
                  "of this exercise. Write it yourself (with torch operations), don't call the library.")


def _target(f) -> types.FunctionType | None:
    f = inspect.unwrap(f)
    f = getattr(f, "__func__", f)  # a bound or class method
    return f if isinstance(f, types.FunctionType) else None


def _blocking_code(f: types.FunctionType, key: int) -> types.CodeType:
    """A code object with f's free variables whose body forwards to _call_blocked(key, ...)."""
    free = f.__code__.co_freevars
    lines = ["def _outer():"] + [f"    {v} = None" for v in free] + [
        "    def _blocked(*args, **kwargs):"]
    if free:
        lines.append(f"        if False: ({', '.join(free)},)")
    lines += ["        from mamba_edu.exercises._core import _call_blocked",
              f"        return _call_blocked({key}, args, kwargs)", "    return _blocked"]
    scope: dict = {}
    exec(compile("\n".join(lines), f"<switched off: {f.__qualname__}>", "exec"), scope)
    code = scope["_outer"]().__code__
    if code.co_freevars != free:
        raise RuntimeError(f"cannot switch off {f.__qualname__}")
    return code.replace(co_name=f.__code__.co_name, co_qualname=f.__code__.co_qualname)


@contextlib.contextmanager
def switched_off(funcs: Iterable[Callable], exercise: str):
    """Within the block, calling any of `funcs` raises Blocked (naming it and `exercise`)."""
    swapped = []
    try:
        for f in funcs:
            target = _target(f)
            if target is None or any(t is target for t, _, _ in swapped):
                continue
            key = next(_KEYS)
            copy = types.FunctionType(target.__code__, target.__globals__, target.__name__, target.__defaults__,
                                      target.__closure__)
            copy.__kwdefaults__ = target.__kwdefaults__
            _ORIGINAL[key] = copy
            _ACTIVE[key] = (f"{target.__module__}.{target.__qualname__}", exercise)
            old = target.__code__
            target.__code__ = _blocking_code(target, key)
            swapped.append((target, old, key))
        yield
    finally:
        for target, old, key in reversed(swapped):
            target.__code__ = old
            _ACTIVE.pop(key, None)


@contextlib.contextmanager
def library_allowed():
    """Grader-owned code (an instrument handed to the learner's function) may call switched-off functions."""
    global _LIFTED
    _LIFTED += 1
    try:
        yield
    finally:
        _LIFTED -= 1


class _Guarded:
    """The learner's function as a check calls it: each call runs with `forbid` switched off.
    Attributes (a Triton kernel's `.fn`) and `kernel[grid](...)` launches pass through."""

    def __init__(self, fn, forbid, exercise):
        self._fn, self._forbid, self._exercise = fn, tuple(forbid), exercise

    def __call__(self, *args, **kwargs):
        with switched_off(self._forbid, self._exercise):
            return self._fn(*args, **kwargs)

    def __getitem__(self, grid):
        return _Guarded(self._fn[grid], self._forbid, self._exercise)

    def __getattr__(self, name):
        return getattr(self._fn, name)


# ----------------------------------------------------------------------------------------------
# Reading the learner's source (the method)
# ----------------------------------------------------------------------------------------------


def unwrap(fn):
    """The learner's own object behind the grader's wrappers (a recorder, a guard)."""
    while hasattr(type(fn), "_mamba_edu_wraps") or isinstance(fn, _Guarded):
        fn = fn._fn
    return fn


def source_of(fn) -> str | None:
    """The source of the learner's function (a Triton kernel's Python function), or None if unreadable."""
    recorded = getattr(fn, "_mamba_edu_source", None)
    if isinstance(recorded, str):
        return recorded
    fn = unwrap(fn)
    fn = getattr(fn, "fn", fn)  # @triton.jit keeps the Python function in .fn
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None


def function_tree(fn) -> ast.FunctionDef | None:
    """The AST of the learner's `def` (None when its source cannot be read or parsed)."""
    src = source_of(fn)
    if src is None:
        return None
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return None
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return defs[0] if defs else None


def called_names(node: ast.AST) -> set[str]:
    """Every name the code calls: `f(...)` gives f, `torch.fft.rfft(...)` gives rfft."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f.attr)
    return out


def named(node: ast.AST) -> set[str]:
    """Every name and attribute the code mentions."""
    return ({n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)})


def loops(node: ast.AST) -> list[str]:
    """The Python loops in the code: `for`, `while` and comprehensions."""
    kinds = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
             ast.ListComp: "a list comprehension", ast.GeneratorExp: "a generator expression",
             ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension"}
    return [f"{kinds[type(n)]} (line {n.lineno})" for n in ast.walk(node) if type(n) in kinds]


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
    src = source_of(fn)
    if src is None:
        return False  # no source to read (e.g. a lambda in a string): judge it by its answers
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return False
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
              success: str = "correct on every case.", quiet: bool = False, forbid: Iterable[Callable] = (),
              method: Callable[[ast.FunctionDef | None], str | None] | None = None) -> Verdict:
    """Run `fn` through each (case name, test) pair; the first failure is reported, never raised.

    `forbid`: library functions switched off while `fn` runs. `method(tree)`: given the AST of `fn`'s
    `def` (None if its source cannot be read), returns what is wrong with the method, or None."""
    if not callable(fn):
        v = Verdict(exercise, False, f"expected your function, got {type(fn).__name__}", attempted=False)
    elif _is_stub(fn):
        v = Verdict(exercise, False, "not attempted yet: replace the `...` with your code and run the cell again.",
                    attempted=False)
    else:
        v = Verdict(exercise, True, success)
        guarded = _Guarded(fn, forbid, exercise)
        for name, test in cases:
            try:
                test(guarded)
            except (Mismatch, Blocked) as e:
                v = Verdict(exercise, False, f"case '{name}': {e}")
                break
            except Exception as e:  # the learner's code raised: report it, never propagate
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                v = Verdict(exercise, False, f"case '{name}': your code raised {tb}")
                break
        why = method(function_tree(fn)) if v.passed and method is not None else None
        if why:  # right answers, by another method than the one the exercise teaches
            v = Verdict(exercise, False, f"right answers, but the method: {why}")
    if not quiet:
        print(v)
    return v


def method_rule(rule: Callable[[ast.FunctionDef], str | None]) -> Callable[[ast.FunctionDef | None], str | None]:
    """A `method` for run_check from a rule on the AST; an unreadable source is reported (the method is
    part of the exercise, so the check must see it)."""
    def check(tree):
        if tree is None:
            return ("the check cannot read your function's source, and this exercise is about the method: define "
                    "it with `def` in a notebook cell and run that cell")
        return rule(tree)
    return check
