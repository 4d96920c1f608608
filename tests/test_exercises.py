"""Every exercise check: full marks for the reference solution, a clear failure for wrong answers,
"not attempted" for the notebook's stub, and never an exception."""

import importlib.util
from pathlib import Path

import pytest

from mamba_edu.exercises import Verdict

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_FILES = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.py"))


def _load(path):
    spec = importlib.util.spec_from_file_location(f"solutions_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cases():
    for path in SOLUTION_FILES:
        for check, solution, wrongs in _load(path).EXERCISES:
            yield pytest.param(check, solution, wrongs, id=f"{path.stem}-{check.__name__}")


def _stub(*args, **kwargs):
    ...


@pytest.mark.parametrize("check,solution,wrongs", list(_cases()))
def test_check_accepts_the_solution_and_rejects_wrong_answers(check, solution, wrongs):
    v = check(solution, quiet=True)
    assert isinstance(v, Verdict) and v.passed, v.message
    assert wrongs, "each exercise is tested against at least one wrong answer"
    for wrong in wrongs:
        w = check(wrong, quiet=True)
        assert not w.passed and w.attempted and w.message, f"{wrong.__name__} was accepted"
    s = check(_stub, quiet=True)
    assert not s.passed and not s.attempted


def test_every_notebook_with_exercises_has_solutions():
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert (ROOT / "notebooks" / "solutions" / f"{nb.stem}.py").exists(), f"no solutions for {nb.name}"
