"""The checks of chapter 09's ladder make the library's scans unavailable while they run, by any name, and put
everything back afterwards (even when the learner's code raises)."""

import mamba_edu
import mamba_edu.scan as scan_mod
from mamba_edu.exercises.triton import check_chunked_states
from mamba_edu.scan import scan_sequential as my_alias


def _uses_an_alias(a, b, T):
    return my_alias(a, b)  # imported under another name: still blocked


def _raises(a, b, T):
    raise ZeroDivisionError("boom")


def test_library_is_blocked_under_any_name_and_restored():
    before = (mamba_edu.selective_scan, scan_mod.scan_sequential, scan_mod.scan_chunked, my_alias)
    v = check_chunked_states(_uses_an_alias, quiet=True)
    assert not v.passed and v.attempted and "not available during this check" in v.message
    assert globals()["my_alias"] is before[3]
    v = check_chunked_states(_raises, quiet=True)
    assert not v.passed and "ZeroDivisionError" in v.message
    assert (mamba_edu.selective_scan, scan_mod.scan_sequential, scan_mod.scan_chunked) == before[:3]
