"""Signals typed as formulas: the whitelist parser evaluates what it should and refuses the rest."""

import math
import time

import pytest
import torch

from mamba_edu.formula import MAX_CHARS, PRESETS, evaluate_formula, parse_formula

t = torch.linspace(0.0, 3.0, 301, dtype=torch.float64)


@pytest.mark.parametrize("text, expected", [
    ("sin(2*pi*t) + 0.5*cos(2*pi*3*t)", lambda t: torch.sin(2 * math.pi * t) + 0.5 * torch.cos(6 * math.pi * t)),
    ("exp(-t/2) * cos(2*pi*2*t)", lambda t: torch.exp(-t / 2) * torch.cos(4 * math.pi * t)),
    ("t^2 + 1", lambda t: t**2 + 1),  # ^ is a power, with the power's precedence
    ("-t**2", lambda t: -(t**2)),
    ("2", lambda t: torch.full_like(t, 2.0)),  # a constant fills every time
    ("e**(-t) + pi", lambda t: math.e ** (-t) + math.pi),
    ("step(t - 1.5) * max(t, 2) + min(t, 1) + abs(t - 2) + sign(t - 1)",
     lambda t: (t >= 1.5).double() * torch.clamp(t, min=2) + torch.clamp(t, max=1) + (t - 2).abs() + torch.sign(t - 1)),
    ("sqrt(t) + log(1 + t) + tanh(t) + atan(t) + floor(t) + sinh(t/3) + cosh(t/3) + tan(t/4)",
     lambda t: (t.sqrt() + torch.log1p(t) + t.tanh() + t.atan() + t.floor() + torch.sinh(t / 3) + torch.cosh(t / 3)
                + torch.tan(t / 4))),
])
def test_values_match_torch(text, expected):
    assert torch.allclose(evaluate_formula(text, t), expected(t), rtol=1e-12, atol=1e-12)


def test_presets_are_valid_and_vary():
    for name, text in PRESETS.items():
        y = parse_formula(text)(t)
        assert y.shape == t.shape and y.dtype == torch.float64, name
        assert float(y.std()) > 0.1, name  # a signal, not a constant


def test_float32_times_and_shape():
    y = parse_formula("sin(t)")(t.float())
    assert y.dtype == torch.float64 and torch.allclose(y, torch.sin(t), atol=1e-6)
    with pytest.raises(ValueError, match="argument 't' must be a 1-D"):
        parse_formula("t")(t[None])


@pytest.mark.parametrize("text, says", [
    ("__import__('os')", "a call of '__import__'"),
    ("__import__('os').system('echo hacked')", "a call through attribute access"),
    ("open('/etc/passwd')", "a call of 'open'"),
    ("t.__class__", "attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("(lambda: 1)()", "a lambda"),
    ("[x for x in (1, 2)]", "a comprehension"),
    ("t[0]", "a subscript"),
    ("t > 1", "a comparison"),
    ("t if t else 1", "an if-expression"),
    ("'abc'", "the constant 'abc'"),
    ("True + t", "the constant True"),
    ("1j * t", "the constant 1j"),
    ("x + 1", "the name 'x'"),
    ("sin", "the name 'sin' (a function: call it with parentheses)"),
    ("sin(t, 2)", "sin(...) with 2 argument(s) (it takes 1)"),
    ("max(t)", "max(...) with 1 argument(s) (it takes 2)"),
    ("sin(x=t)", "keyword arguments in sin(...)"),
    ("t // 2", "the operator FloorDiv"),
    ("t % 2", "the operator Mod"),
    ("~t", "the operator Invert"),
    ("(y := 2)", "an assignment"),
    ("f'{t}'", "an f-string"),
    ("sin(t", "a valid arithmetic expression"),
    ("t; import os", "a valid arithmetic expression"),
    ("", "a non-empty formula"),
    ("t + " * 60 + "t", f"at most {MAX_CHARS} characters"),
    ("(" * 100 + "t" + ")" * 99, "a valid arithmetic expression"),
    ("+".join(["t"] * 60), "syntax nodes"),
])
def test_hostile_and_invalid_inputs_are_refused(text, says):
    with pytest.raises(ValueError) as err:
        parse_formula(text)
    msg = str(err.value)
    assert msg.startswith("parse_formula: argument 'text' must be"), msg
    assert says in msg, msg


def test_not_a_string():
    with pytest.raises(ValueError, match="must be a string; got int"):
        parse_formula(3)


@pytest.mark.parametrize("text", ["9**9**9", "10**10**10**10", "exp(exp(exp(t + 10)))", "1e309 * t"])
def test_huge_values_are_refused_quickly(text):
    start = time.perf_counter()
    f = parse_formula(text)  # parsing never computes: no Python big integers
    with pytest.raises(ValueError, match="finite values at every time"):
        f(t)
    # a hang guard, not a speed target: computing 9**9**9 takes minutes, the others never end; parsing and
    # refusing takes microseconds, so 10 s holds on any machine, however busy
    assert time.perf_counter() - start < 10.0


def test_non_finite_values_name_the_first_time():
    with pytest.raises(ValueError, match=r"301 NaN or infinite value\(s\) for 'log\(t - 5\)', the first at t = 0"):
        evaluate_formula("log(t - 5)", t)
    with pytest.raises(ValueError, match="the first at t = 0"):
        evaluate_formula("1/t", t)  # only t = 0 is infinite
