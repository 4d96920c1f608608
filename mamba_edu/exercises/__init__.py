"""Automatic checks for the notebooks' exercises: a clear verdict on the learner's own code.

Glossary
    exercise   a small function the learner writes in a notebook cell (its stub body is `...`)
    check      `check_<name>(fn)`: runs the learner's function on several cases, compares with
               the library's answer and reports what is wrong (shape, the first index where the
               value differs, which case) or that it is right
    Verdict    what a check returns: `passed`, and a message; it prints itself in a notebook

A check never raises: an unsolved stub, an exception in the learner's code or a wrong answer is
reported, so "Run All" always reaches the end of the notebook and later cells never depend on the
learner's answer. The reference solutions live outside the learner's notebooks
(`notebooks/solutions/`), where the tests and the course build use them.

One module per chapter topic holds that chapter's checks; they are all re-exported here.
"""

from __future__ import annotations

from ._core import Verdict, compare, run_check

__all__ = ["Verdict", "compare", "run_check"]
