"""Checks for chapter 07 (scans).

    check_combine(fn)             fn(left, right) -> the pair left ⊕ right, for pairs (a, b) of tensors
    check_hillis_steele_cost(fn)  fn(L) -> (work, depth) of the Hillis–Steele scan of length L
    check_blelloch_scan(fn)       fn(a, b, combine) -> h, an inclusive Blelloch scan of (..., L), L = 2^k,
                                  that calls `combine` once per tree level

Each compares the learner's function with `mamba_edu.scan` (its combine, its scans and the work and
depth they count as they run) and returns a Verdict; none raises.
"""

from __future__ import annotations

import math

import torch

from ..scan import _combine, combine, scan_blelloch, scan_chunked, scan_hillis_steele, scan_inplace, scan_sequential
from ..scan import scan as scan_fn
from ..selective import selective_scan_naive, selective_scan_parallel, selective_scan_ref
from ._core import Mismatch, Verdict, compare, gen, library_allowed, run_check

_SCANS = (scan_sequential, scan_hillis_steele, scan_blelloch, scan_chunked, scan_inplace, scan_fn,
          selective_scan_ref, selective_scan_naive, selective_scan_parallel)  # every library scan

F64 = torch.float64


def _pair(out, what: str):
    if out is None:
        raise Mismatch(f"{what}: your function returned None (is there a `return`?)")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise Mismatch(f"{what}: expected a pair (a, b), got {type(out).__name__}")
    return out


def _same(x, y) -> bool:
    return (isinstance(x, torch.Tensor) and x.shape == y.shape and bool(torch.isfinite(x).all())
            and torch.allclose(x.detach().to(F64), y, rtol=1e-9, atol=1e-12))


def _pairs(g: torch.Generator, *shapes):
    """Random pairs (a, b): a in (0.5, 1.5) (a decay, possibly > 1), b standard normal."""
    return [(torch.rand(s, generator=g, dtype=F64) + 0.5, torch.randn(s, generator=g, dtype=F64)) for s in shapes]


# ----------------------------------------------------------------------------------------------
# Exercise: the operator
# ----------------------------------------------------------------------------------------------


def _combine_case(name: str, left, right):
    def test(fn):
        a, b = _pair(fn((left[0].clone(), left[1].clone()), (right[0].clone(), right[1].clone())), "result")
        want_a, want_b = combine(left, right)
        compare(a, want_a, "a-part (the product of the decays)", rtol=1e-9, atol=1e-12)
        try:
            compare(b, want_b, "b-part", rtol=1e-9, atol=1e-12)
        except Mismatch as e:
            (a1, b1), (a2, b2) = left, right
            hints = [(a1 * b2 + b1, "that applies the LATER step first: left is the earlier step, so "
                                    "h ↦ a2·(a1·h + b1) + b2"),
                     (b1 + b2, "the earlier b must pass through the later decay: a2·b1 + b2"),
                     (a1 * b1 + b2, "the earlier b is multiplied by the later step's a2, not by a1")]
            for cand, hint in hints:
                if _same(b, torch.broadcast_to(cand, want_b.shape)):
                    raise Mismatch(f"{e}: {hint}") from None
            raise
    return name, test


def _two_steps(fn):
    """The composed pair must do what two steps of the recurrence do to a state h."""
    g = gen(11)
    (a1, b1), (a2, b2) = _pairs(g, (6,), (6,))
    h = torch.randn(6, generator=g, dtype=F64)
    a, b = _pair(fn((a1, b1), (a2, b2)), "result")
    compare(a * h + b, a2 * (a1 * h + b1) + b2, "one step with your pair, h ↦ a·h + b, against two steps",
            rtol=1e-9, atol=1e-12)


def _associative(fn):
    g = gen(12)
    x, y, z = _pairs(g, (5,), (5,), (5,))
    left = _pair(fn(_pair(fn(x, y), "x ⊕ y"), z), "(x ⊕ y) ⊕ z")
    right = _pair(fn(x, _pair(fn(y, z), "y ⊕ z")), "x ⊕ (y ⊕ z)")
    compare(left[0], right[0], "a-part of (x ⊕ y) ⊕ z against x ⊕ (y ⊕ z)", rtol=1e-9, atol=1e-12)
    compare(left[1], right[1], "b-part of (x ⊕ y) ⊕ z against x ⊕ (y ⊕ z)", rtol=1e-9, atol=1e-12)


def _identity(fn):
    g = gen(13)
    (a, b), = _pairs(g, (4,))
    one, zero = torch.ones(4, dtype=F64), torch.zeros(4, dtype=F64)
    for what, out in (("(1, 0) ⊕ x", fn((one, zero), (a, b))), ("x ⊕ (1, 0)", fn((a, b), (one, zero)))):
        got = _pair(out, what)
        compare(got[0], a, f"a-part of {what} (the identity leaves x unchanged)", rtol=1e-12, atol=0)
        compare(got[1], b, f"b-part of {what} (the identity leaves x unchanged)", rtol=1e-12, atol=0)


def check_combine(fn, quiet: bool = False) -> Verdict:
    """fn((a1, b1), (a2, b2)) -> (a1·a2, a2·b1 + b2), elementwise on tensors of broadcastable shapes;
    the left pair is the earlier step. Compared with `mamba_edu.scan.combine`."""
    g = gen(10)
    p = _pairs(g, (5,), (5,), (3, 1), (3, 4))
    cases = [
        _combine_case("two pairs of shape (5,)", p[0], p[1]),
        _combine_case("broadcasting: (3, 1) ⊕ (3, 4)", p[2], p[3]),
        ("your pair does what two steps of the recurrence do", _two_steps),
        ("associativity: (x ⊕ y) ⊕ z = x ⊕ (y ⊕ z)", _associative),
        ("the identity (1, 0)", _identity),
    ]
    return run_check("combine", fn, cases, quiet=quiet, forbid=(combine, _combine) + _SCANS,
                     success="correct: your ⊕ composes two steps, in the right order, and is associative.")


# ----------------------------------------------------------------------------------------------
# Exercise: work and depth of Hillis–Steele
# ----------------------------------------------------------------------------------------------


def _count(got, what: str) -> int:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)) or (isinstance(got, float) and not got.is_integer()):
        raise Mismatch(f"{what}: expected a whole number, got {got!r}")
    return int(got)


def _hs_case(L: int):
    def test(fn):
        ones = torch.ones(L, dtype=F64)
        _, st = scan_hillis_steele(ones, ones, stats=True)  # the library counts as it runs
        out = fn(L)
        if out is None:
            raise Mismatch("your function returned None (is there a `return`?)")
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise Mismatch(f"expected a pair (work, depth), got {type(out).__name__}")
        work, depth = _count(out[0], "work"), _count(out[1], "depth")
        if depth != st.depth:
            hint = ""
            if L > 1 and depth == int(math.log2(L)) and st.depth == depth + 1:
                hint = ": L is not a power of two, so one more step is needed (round log2 L up)"
            raise Mismatch(f"depth: expected {st.depth} steps, got {depth}{hint}")
        if work != st.work:
            hint = ""
            if work == L * st.depth:
                hint = (": at offset d only the positions i ≥ d combine (L − d of them), not all L")
            elif L > 1 and work == (L - 1) * st.depth:
                hint = ": at offset d, L − d positions combine (the offsets are 1, 2, 4, …)"
            raise Mismatch(f"work: expected {st.work} ⊕, got {work}{hint}")
    return f"L = {L}", test


def check_hillis_steele_cost(fn, quiet: bool = False) -> Verdict:
    """fn(L) -> (work, depth) of the Hillis–Steele scan of one length-L sequence: the number of ⊕
    and of parallel steps, compared with what `mamba_edu.scan.scan_hillis_steele` counts as it runs."""
    cases = [_hs_case(L) for L in (1, 2, 8, 5, 100, 1024, 1000)]
    return run_check("hillis_steele_cost", fn, cases, quiet=quiet, forbid=_SCANS,
                     success="correct for powers of two and other lengths.")


# ----------------------------------------------------------------------------------------------
# Exercise: a Blelloch scan
# ----------------------------------------------------------------------------------------------


def squared_combine(left, right):
    """Another associative operator with the same identity (1, 0): the maps h ↦ a²·h + b composed,
    (a1, b1) ⊕ (a2, b2) = (a1·a2, a2²·b1 + b2). Its inclusive scan gives h_t = a_t²·h_{t−1} + b_t."""
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a2 * a2 * b1 + b2


class _Counter:
    """`combine` as the learner's scan receives it: an ⊕ (the library's by default), counting calls and ⊕
    per sequence. The counts are the grader's: `_replay_state` lets the grader carry them over."""

    def __init__(self, sequences: int, op=combine):
        self.sequences, self.calls, self.work, self.op = sequences, 0, 0, op

    def _replay_state(self) -> dict:
        return {"calls": self.calls, "work": self.work}

    def _replay_restore(self, state: dict) -> None:
        self.calls, self.work = int(state["calls"]), int(state["work"])

    def __call__(self, left, right):
        with library_allowed():
            a, b = self.op(left, right)
        self.calls += 1
        n = torch.broadcast_shapes(torch.as_tensor(a).shape, torch.as_tensor(b).shape).numel()
        self.work += -(-n // self.sequences)  # ⌈elements / sequences⌉: the ⊕ done for one sequence
        return a, b


def _wrong_positions(got: torch.Tensor, want: torch.Tensor) -> str:
    bad = ((got.detach().to(F64) - want).abs() > 1e-9 + 1e-9 * want.abs()).reshape(-1, want.shape[-1]).any(0)
    wrong = bad.nonzero().flatten().tolist()
    right = (~bad).nonzero().flatten().tolist()
    return f"positions {wrong} are wrong, {right} right"


def _blelloch_case(lead: tuple, L: int, seed: int, other_operator: bool = False):
    name = f"L = {L}" + (f", a batch of shape {lead}" if lead else "")
    if other_operator:
        name += ", with another ⊕ (h ↦ a²·h + b): only a scan built from `combine` gets it right"

    def test(fn):
        g = gen(seed)
        a = torch.rand(*lead, L, generator=g, dtype=F64) + 0.5  # (..., L)
        b = torch.randn(*lead, L, generator=g, dtype=F64)  # (..., L)
        want = scan_sequential(a * a if other_operator else a, b)  # (..., L)
        counter = _Counter(math.prod(lead), squared_combine if other_operator else combine)
        h = fn(a.clone(), b.clone(), counter)
        try:
            compare(h, want, "h", rtol=1e-9, atol=1e-12)
        except Mismatch as e:
            if other_operator:
                raise Mismatch(f"{e}: your scan does not take its result from the `combine` it was given (it "
                               "computes a·h + b itself?). The scan must be built from `combine` alone") from None
            if isinstance(h, torch.Tensor) and h.shape == want.shape:
                excl = torch.cat((torch.zeros_like(want[..., :1]), want[..., :-1]), dim=-1)
                if _same(h, excl):
                    raise Mismatch(f"{e}: that is the EXCLUSIVE scan (h shifted by one); the recurrence "
                                   "needs the inclusive one, h_t including x_t") from None
                raise Mismatch(f"{e}; {_wrong_positions(h, want)}") from None
            raise
        if L == 1:
            return
        if counter.calls == 0:
            raise Mismatch("your function never called the `combine` it was given: build the scan from it "
                           "(the check counts its calls to measure work and depth)")
        k = int(math.log2(L))
        if counter.work > 3 * L:
            raise Mismatch(f"your scan performed {counter.work} ⊕ for L = {L}: not work-efficient. Blelloch "
                           f"needs at most 2L − 2 = {2 * L - 2} (Hillis–Steele would need "
                           f"L·log2 L − L + 1 = {L * k - L + 1})")
        if counter.calls < k:
            raise Mismatch(f"your scan called combine {counter.calls} times for L = {L}: an up-sweep alone has "
                           f"log2 L = {k} levels, and the down-sweep {k - 1} more")
        if counter.calls > 2 * k + 1:
            raise Mismatch(f"your scan called combine {counter.calls} times for L = {L}: Blelloch has 2·log2 L − 1 "
                           f"= {2 * k - 1} parallel steps. Call combine once per tree level, on all that "
                           "level's pairs at once (slices with a stride, e.g. x[..., 2*s-1::2*s])")
    return name, test


def check_blelloch_scan(fn, quiet: bool = False) -> Verdict:
    """fn(a, b, combine) -> h with h_t = a_t·h_{t-1} + b_t (h_{-1} = 0) over the last dim of a, b
    (..., L), L a power of two, built from `combine` (the library's ⊕, which the check instruments):
    up-sweep then down-sweep, one call per level, at most 3L ⊕ and 2·log2 L + 1 calls. Compared with
    `mamba_edu.scan.scan_sequential`."""
    cases = [_blelloch_case((), L, 20 + L) for L in (1, 2, 8, 16, 64)]
    cases.append(_blelloch_case((3,), 32, 7))
    cases.append(_blelloch_case((2, 3), 128, 8))
    cases.append(_blelloch_case((2,), 16, 9, other_operator=True))
    return run_check("blelloch_scan", fn, cases, quiet=quiet, forbid=_SCANS,
                     success="correct, work-efficient (O(L) ⊕) and in O(log L) parallel steps.")
