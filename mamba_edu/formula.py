"""Signals typed as formulas, parsed safely: "sin(2*pi*3*t) + 0.5*exp(-t)" → values at the times t.

Glossary
    formula    a text such as "sin(2*pi*t) * exp(-t/2)": one arithmetic expression in the time t
    t          the times (a tensor); the formula is evaluated elementwise on it
    node       one element of the expression's syntax tree (a number, a name, an operation, a call)
    PRESETS    example signals {name: formula}, used by the app's HiPPO page and the notebooks

Safety: a formula is never handed to eval(). It is parsed by Python's `ast` into a syntax tree,
and every node must be on a whitelist:

    numbers         1, 2.5, 1e-3                      (no strings, no complex numbers, no True/False)
    names           t, pi, e
    operators       + - * / ** (and ^, read as **),  unary + and -
    calls           one of FUNCTIONS by its bare name, positional arguments only: sin(t), max(t, 0)

Anything else (attribute access such as `t.__class__`, subscripts, lambdas, comprehensions,
comparisons, keyword arguments, other names such as `__import__` or `open`) is rejected with a
ValueError that says what was found. The evaluation itself is done by the tree walk below with
torch functions on float64 tensors, so a huge power such as `9**9**9` becomes inf (and is then
rejected as non-finite) instead of a Python integer that would take forever to compute. The text
is limited to MAX_CHARS characters and MAX_NODES nodes.
"""

from __future__ import annotations

import ast
import math

import torch

from ._checks import check_tensor, fail

MAX_CHARS = 200
MAX_NODES = 80

NAMES = {"t": None, "pi": math.pi, "e": math.e}  # t is the argument


def _step(x):
    return (x >= 0).to(x.dtype)  # Heaviside step: 1 for x ≥ 0, else 0


FUNCTIONS = {
    # name: (torch function, number of arguments)
    "sin": (torch.sin, 1), "cos": (torch.cos, 1), "tan": (torch.tan, 1),
    "exp": (torch.exp, 1), "log": (torch.log, 1), "sqrt": (torch.sqrt, 1),
    "abs": (torch.abs, 1), "tanh": (torch.tanh, 1), "sinh": (torch.sinh, 1), "cosh": (torch.cosh, 1),
    "atan": (torch.atan, 1), "sign": (torch.sign, 1), "floor": (torch.floor, 1), "step": (_step, 1),
    "min": (torch.minimum, 2), "max": (torch.maximum, 2),
}

_BINOPS = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow}
_UNARY = {ast.UAdd: lambda x: x, ast.USub: torch.neg}

# Example signals over a few seconds: smooth, oscillating, with a jump, a chirp, a burst.
PRESETS = {
    "two tones": "sin(2*pi*t) + 0.5*cos(2*pi*3*t)",
    "chirp": "sin(2*pi*(0.5 + 1.5*t)*t)",
    "damped oscillation": "exp(-t/2) * cos(2*pi*2*t)",
    "square wave": "sign(sin(2*pi*t))",
    "burst": "exp(-((t - 1.5)/0.15)^2) * sin(2*pi*5*t)",
    "steps": "step(t - 0.5) - 2*step(t - 1.5) + step(t - 2.5)",
}

_ALLOWED = ("numbers, the names t, pi, e, the operators + - * / ** ^ and the functions "
            + ", ".join(FUNCTIONS))


def _reject(what: str) -> None:
    fail("parse_formula", "text", f"a formula in t using only {_ALLOWED}", what)


def _describe(node: ast.AST) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
             ast.Compare: "a comparison", ast.BoolOp: "a logical operator", ast.IfExp: "an if-expression",
             ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.List: "a list",
             ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.Starred: "a starred argument",
             ast.NamedExpr: "an assignment (:=)", ast.JoinedStr: "an f-string"}
    for cls, name in kinds.items():
        if isinstance(node, cls):
            return name
    return f"a {type(node).__name__} expression"


def _check(node: ast.AST) -> None:
    """Walk the tree and reject every node that is not on the whitelist."""
    if isinstance(node, ast.Expression):
        _check(node.body)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            _reject(f"the constant {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id not in NAMES:
            _reject(f"the name '{node.id}'" + (" (a function: call it with parentheses)" if node.id in FUNCTIONS else ""))
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            _reject(f"the operator {type(node.op).__name__}")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            _reject(f"the operator {type(node.op).__name__}")
        _check(node.operand)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            if isinstance(node.func, ast.Name):
                _reject(f"a call of '{node.func.id}'")
            _reject(f"a call through {_describe(node.func)}")
        if node.keywords:
            _reject(f"keyword arguments in {node.func.id}(...)")
        want = FUNCTIONS[node.func.id][1]
        if len(node.args) != want:
            _reject(f"{node.func.id}(...) with {len(node.args)} argument(s) (it takes {want})")
        for a in node.args:
            _check(a)
    else:
        _reject(_describe(node))


def _eval(node: ast.AST, t: torch.Tensor) -> torch.Tensor:
    """Evaluate a checked tree on t, every value a float64 tensor."""
    if isinstance(node, ast.Expression):
        return _eval(node.body, t)
    if isinstance(node, ast.Constant):
        return torch.tensor(float(node.value), dtype=t.dtype, device=t.device)
    if isinstance(node, ast.Name):
        return t if node.id == "t" else torch.tensor(NAMES[node.id], dtype=t.dtype, device=t.device)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, t), _eval(node.right, t))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, t))
    fn, _ = FUNCTIONS[node.func.id]  # an ast.Call (the only node left after _check)
    return fn(*(_eval(a, t) for a in node.args))


class Formula:
    """A parsed, checked formula: call it on a tensor of times to get the signal there."""

    def __init__(self, text: str, tree: ast.Expression):
        self.text, self._tree = text, tree

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """f(t) (M,) for times t (M,), float64; a ValueError if any value is NaN or infinite."""
        check_tensor("Formula", "t", t, ndim=1, dims="(M,)", dtypes=(torch.float32, torch.float64))
        t = t.to(torch.float64)  # (m,)
        with torch.no_grad():
            y = _eval(self._tree, t).expand_as(t).clone()  # (m,)  a constant formula fills every t
        bad = ~torch.isfinite(y)
        if bool(bad.any()):
            first = float(t[bad][0])
            fail("Formula", "text", "a formula with finite values at every time",
                 f"{int(bad.sum())} NaN or infinite value(s) for {self.text!r}, the first at t = {first:.4g}")
        return y

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"


def parse_formula(text: str) -> Formula:
    """Parse and check `text`; returns a Formula to evaluate on times t. ValueError when not allowed.

    `^` is read as a power (as in most calculators): the text is rewritten to `**` before parsing,
    so that `t^2 + 1` means t² + 1.
    """
    if not isinstance(text, str):
        fail("parse_formula", "text", "a string", type(text).__name__)
    text = text.strip()
    if not text:
        fail("parse_formula", "text", "a non-empty formula in t, e.g. 'sin(2*pi*t)'", "an empty text")
    if len(text) > MAX_CHARS:
        fail("parse_formula", "text", f"at most {MAX_CHARS} characters", f"{len(text)} characters")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        msg = getattr(e, "msg", None) or type(e).__name__
        fail("parse_formula", "text", "a valid arithmetic expression", f"{text!r} ({msg})")
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_NODES:
        fail("parse_formula", "text", f"a formula of at most {MAX_NODES} syntax nodes", f"{n_nodes} nodes")
    _check(tree)
    return Formula(text, tree)


def evaluate_formula(text: str, t: torch.Tensor) -> torch.Tensor:
    """parse_formula(text)(t): the signal the formula describes at the times t (M,) → (M,) float64."""
    return parse_formula(text)(t)


__all__ = ["parse_formula", "evaluate_formula", "Formula", "FUNCTIONS", "NAMES", "PRESETS", "MAX_CHARS",
           "MAX_NODES"]
