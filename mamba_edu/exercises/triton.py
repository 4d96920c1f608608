"""Checks for chapter 09 (a fused selective scan in Triton): the learner writes Triton kernels.

    check_add_kernel(kernel)         kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
                                     out = x + y, one block of BLOCK elements per program, masked at the end
    check_discretise_kernel(kernel)  kernel(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N,
                                     BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
                                     out[d, n] = exp(softplus(delta[d] + bias[d]) · A[d, n]) on 2-D tiles
    check_scan_kernel(kernel)        kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N,
                                     BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
                                     the selective scan, one time step per loop iteration, state in registers
    check_tiled_scan(fn)            fn(u, delta, A, B, C, BLOCK_D) -> out: the launch, tiled over channels
    check_chunked_states(fn)        fn(a, b, T) -> h: chunks of time with a carried state
    check_scan_backward(fn)         fn(a, b, checkpoints, grad_h, K) -> (grad_a, grad_b): recompute from checkpoints

Each check launches the learner's `@triton.jit` kernel on small inputs (on a CUDA GPU, or on a CPU
when TRITON_INTERPRET=1 was set before the kernel was defined: Triton's interpreter) and compares
with PyTorch or `mamba_edu.selective_scan_ref`; the last three run with mamba_edu's scans unavailable and
compare with the check's own loop. Every tensor the kernel writes sits inside a larger
buffer whose tail (the guard) holds a known value: a store past the end lands there and is reported
("add a mask"), instead of corrupting memory. None raises.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..selective import selective_scan_ref
from ._blocking import run_blocked as _run_blocked
from ._core import Mismatch, Verdict, _is_stub, compare, gen, run_check, unwrap

GUARD_VALUE = -12345.0  # what every guard zone and every not-yet-written output element holds


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _why_cannot_launch(kernel) -> str | None:
    """None when `kernel` can run here, else what to do about it."""
    if getattr(kernel, "_mamba_edu_replayed", False):  # the grader replays answers recorded where it ran
        return None
    kernel = unwrap(kernel)
    if not hasattr(kernel, "fn") or not hasattr(kernel, "__getitem__"):
        return ("expected a Triton kernel: put `@triton.jit` on the line above `def` and run the cell again "
                f"(got a {type(kernel).__name__})")
    if _device() == "cpu":
        interpreted = type(kernel).__name__ == "InterpretedFunction"
        if os.environ.get("TRITON_INTERPRET") != "1" or not interpreted:
            return ("there is no CUDA GPU here, and this kernel was not defined under Triton's interpreter: set "
                    "os.environ['TRITON_INTERPRET'] = '1' before the kernel is defined (the notebook's first cell "
                    "does it), then run the kernel's cell again")
    return None


def _check_kernel(exercise: str, kernel, cases, success: str, quiet: bool) -> Verdict:
    """run_check for a kernel: the stub test looks at the Python function inside @triton.jit."""
    py = getattr(unwrap(kernel), "fn", kernel)  # @triton.jit keeps the learner's Python function in .fn
    if callable(py) and _is_stub(kernel if hasattr(kernel, "_mamba_edu_source") else py):
        return run_check(exercise, py, [], quiet=quiet)
    why = _why_cannot_launch(kernel)
    if why:
        v = Verdict(exercise, False, why)
        if not quiet:
            print(v)
        return v
    return run_check(exercise, kernel, cases, success=success, quiet=quiet)


def _guarded(values: torch.Tensor, guard: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(buffer, view): `values` copied into the front of a flat buffer followed by `guard` guard elements."""
    buf = torch.full((values.numel() + guard,), GUARD_VALUE, dtype=values.dtype, device=values.device)
    buf[: values.numel()] = values.flatten()
    return buf, buf[: values.numel()].view(values.shape)


def _check_guard(buf: torch.Tensor, numel: int, what: str, hint: str = "e.g. mask=offs < n") -> None:
    tail = buf[numel:]
    hit = (tail != GUARD_VALUE).nonzero()
    if hit.numel():
        raise Mismatch(f"your kernel wrote {hit.numel()} value(s) past the end of {what} (the first at "
                       f"{numel + int(hit[0])} of {numel} elements): a lane whose offset is out of range must not "
                       f"store — give tl.store (and tl.load) a mask, {hint}")


def _never_written(out: torch.Tensor, what: str, hint: str) -> None:
    idle = (out == GUARD_VALUE).nonzero()
    if idle.numel():
        idx = tuple(int(i) for i in idle[0])
        raise Mismatch(f"{what}{list(idx)} was never written ({idle.shape[0]} of {out.numel()} elements): {hint}")


# ----------------------------------------------------------------------------------------------
# Exercise: vector addition with a mask
# ----------------------------------------------------------------------------------------------


def _add_case(n: int, block: int):
    name = f"n = {n}, BLOCK = {block}: {-(-n // block)} program(s)"

    def test(kernel):
        dev = _device()
        g = gen(n)
        x = torch.randn(n, generator=g).to(dev)  # (n,)
        y = torch.randn(n, generator=g).to(dev)  # (n,)
        xb, xv = _guarded(x, block)
        yb, yv = _guarded(y, block)
        ob, out = _guarded(torch.full((n,), GUARD_VALUE, device=dev), block)
        kernel[(-(-n // block),)](xv, yv, out, n, BLOCK=block)
        _check_guard(ob, n, "out")
        _never_written(out, "out", "every program must handle its own block: offsets = "
                                   "tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)")
        if torch.allclose(out, x - y) and n > 0:
            raise Mismatch("you computed x − y; the exercise asks for x + y")
        compare(out, x + y, "out")
    return name, test


def check_add_kernel(kernel, quiet: bool = False) -> Verdict:
    """kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr) writes out[i] = x[i] + y[i] for i < n;
    launched on ⌈n / BLOCK⌉ programs, so the last block is partly past the end (masked)."""
    cases = [_add_case(1000, 256), _add_case(5, 8), _add_case(64, 16)]
    return _check_kernel("add_kernel", kernel, cases, quiet=quiet,
                         success="correct: one block per program, and the mask keeps the last one inside the data.")


# ----------------------------------------------------------------------------------------------
# Exercise: discretisation on a 2-D tile (channels × state)
# ----------------------------------------------------------------------------------------------


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x)  # log(1 + e^x), linear above 20 (as the kernels compute it)


def _discretise_case(dim: int, N: int, block_d: int, block_n: int):
    name = f"dim = {dim}, N = {N}, BLOCK_D = {block_d}, BLOCK_N = {block_n}"

    def test(kernel):
        dev = _device()
        g = gen(dim * 100 + N)
        delta = torch.randn(dim, generator=g).to(dev)  # (dim,)
        bias = (0.5 * torch.randn(dim, generator=g)).to(dev)  # (dim,)
        A = (-torch.exp(0.5 * torch.randn(dim, N, generator=g))).to(dev)  # (dim, N)
        db, dv = _guarded(delta, block_d)
        bb, bv = _guarded(bias, block_d)
        ab, av = _guarded(A, block_d * block_n)
        ob, out = _guarded(torch.full((dim, N), GUARD_VALUE, device=dev), block_d * block_n)
        kernel[(-(-dim // block_d),)](dv, bv, av, out, dim, N, BLOCK_D=block_d, BLOCK_N=block_n)
        _check_guard(ob, dim * N, "out", "on both axes: mask_d[:, None] & mask_n[None, :] with mask_d = offs_d < dim, "
                                         "mask_n = offs_n < N (BLOCK_N may exceed N); row d of A and out starts at d·N")
        _never_written(out, "out", "each program handles channels pid·BLOCK_D + tl.arange(0, BLOCK_D) and all N "
                                   "state entries (tl.arange(0, BLOCK_N))")
        want = torch.exp(_softplus(delta + bias)[:, None] * A)  # (dim, N)
        wrong = {"you forgot the softplus: Δ = softplus(delta + bias) = log(1 + exp(delta + bias))":
                 torch.exp((delta + bias)[:, None] * A),
                 "you forgot the bias: Δ = softplus(delta + bias)": torch.exp(_softplus(delta)[:, None] * A),
                 "that is Δ·A: the discretised Ab is exp(Δ·A)": _softplus(delta + bias)[:, None] * A}
        for hint, w in wrong.items():
            if torch.allclose(out, w, rtol=1e-5, atol=1e-6) and not torch.allclose(w, want, rtol=1e-5, atol=1e-6):
                raise Mismatch(hint)
        compare(out, want, "out = exp(softplus(delta + bias) · A)")
    return name, test


def check_discretise_kernel(kernel, quiet: bool = False) -> Verdict:
    """kernel(delta_ptr, bias_ptr, A_ptr, out_ptr, dim, N, BLOCK_D, BLOCK_N) writes, for one time step,
    out[d, n] = exp(softplus(delta[d] + bias[d]) · A[d, n]) (A and out contiguous (dim, N)); launched
    on ⌈dim / BLOCK_D⌉ programs with BLOCK_N >= N, so both axes can be partly masked."""
    cases = [_discretise_case(5, 3, 4, 4), _discretise_case(8, 16, 2, 16), _discretise_case(3, 5, 8, 8)]
    return _check_kernel("discretise_kernel", kernel, cases, quiet=quiet,
                         success="correct: a (BLOCK_D, BLOCK_N) tile per program, broadcast with [:, None] and "
                                 "[None, :], masked on both axes.")


# ----------------------------------------------------------------------------------------------
# Exercise: the selective scan, one time step per iteration
# ----------------------------------------------------------------------------------------------


def _scan_case(b: int, dim: int, L: int, N: int, block_d: int, block_n: int):
    name = f"batch {b}, dim {dim}, L {L}, N {N}, BLOCK_D {block_d}, BLOCK_N {block_n}"

    def test(kernel):
        dev = _device()
        g = gen(b * 1000 + dim * 10 + L)
        u = torch.randn(b, dim, L, generator=g)  # (b, d, L)
        delta = _softplus(0.5 * torch.randn(b, dim, L, generator=g) - 1.0)  # (b, d, L): already positive
        A = -torch.exp(0.5 * torch.randn(dim, N, generator=g))  # (d, N)
        B = torch.randn(b, N, L, generator=g)  # (b, N, L)
        C = torch.randn(b, N, L, generator=g)  # (b, N, L)
        want = selective_scan_ref(u.double(), delta.double(), A.double(), B.double(), C.double())  # (b, d, L)
        guard = block_d * L + block_n * L
        bufs = [_guarded(t.to(dev), guard) for t in (u, delta, A, B, C)]
        ob, out = _guarded(torch.full((b, dim, L), GUARD_VALUE, device=dev), guard)
        kernel[(b, -(-dim // block_d))](*(v for _, v in bufs), out, dim, L, N, BLOCK_D=block_d, BLOCK_N=block_n)
        _check_guard(ob, b * dim * L, "out")
        _never_written(out, "out", "program (pid_b, pid_d) writes out[pid_b, pid_d·BLOCK_D + tl.arange(0, BLOCK_D), t] "
                                   "for every t of the loop")
        got = out.double().cpu()
        close = lambda x, y: bool(((x - y).abs() <= 1e-4 + 1e-4 * y.abs()).all())  # noqa: E731
        if bool((got[..., 0] == 0).all()) and not bool((want[..., 0] == 0).all()):
            raise Mismatch("out at t = 0 is 0 everywhere: y_t = Σ_n C_t[n]·h_t[:, n] reads the state AFTER this "
                           "step's update (h_{−1} = 0, h_0 = Δ_0·u_0·B_0)")
        if b > 1 and close(got[0], want[0]) and not close(got[1:], want[1:]):
            raise Mismatch("sequence 0 is right, the others are not: offset every pointer by the sequence "
                           "(u, delta, out start at pid_b·dim·L; B, C at pid_b·N·L)")
        if close(got[..., 0], want[..., 0]) and not close(got[..., 1:], want[..., 1:]):
            raise Mismatch("step t = 0 is right, later steps are not: the state h must carry from one step to the "
                           "next (h = tl.zeros(...) once before the loop; h = exp(Δ_t·A)·h + Δ_t·u_t·B_t inside)")
        compare(out.cpu(), want, "out (batch, channel, t)", rtol=1e-4, atol=1e-4)
    return name, test


def check_scan_kernel(kernel, quiet: bool = False) -> Verdict:
    """kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, out_ptr, dim, L, N, BLOCK_D, BLOCK_N): with contiguous
    u, delta, out (batch, dim, L), A (dim, N), B, C (batch, N, L) and delta already positive, write
    out[b, d, t] = Σ_n C[b, n, t]·h_t[d, n], h_t = exp(delta_t·A) ⊙ h_{t−1} + delta_t·u_t·B_t, h_{−1} = 0;
    launched on (batch, ⌈dim / BLOCK_D⌉) programs. Compared with `selective_scan_ref` in float64."""
    cases = [_scan_case(1, 3, 5, 2, 4, 2), _scan_case(2, 5, 9, 3, 2, 4), _scan_case(1, 4, 12, 4, 4, 4)]
    return _check_kernel("scan_kernel", kernel, cases, quiet=quiet,
                         success="correct: your kernel keeps the state in registers and matches the reference.")


# ----------------------------------------------------------------------------------------------
# The ladder of chapter 09, steps 2-4: these checks make the library's scans unavailable while they
# run (a learner who calls them, by any name, gets an error that says so), and compute their own
# answers with a plain loop before that.
# ----------------------------------------------------------------------------------------------


def _loop_states(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The check's own oracle: h_t = a_t·h_{t−1} + b_t, h_{−1} = 0, by a loop over the last axis (float64)."""
    a, b = a.double(), b.double()
    h = torch.zeros(a.shape[:-1], dtype=torch.float64)
    out = []
    for t in range(a.shape[-1]):
        h = a[..., t] * h + b[..., t]
        out.append(h)
    return torch.stack(out, dim=-1)


# ---- step 2: tiling over channels: the launch ------------------------------------------------


def _tiled_case(b: int, dim: int, L: int, N: int, block_d: int):
    name = f"batch {b}, dim {dim}, L {L}, N {N}, BLOCK_D {block_d}"

    def test(fn):
        g = gen(7 * dim + L + block_d)
        u = torch.randn(b, dim, L, generator=g)  # (b, d, L)
        delta = _softplus(0.5 * torch.randn(b, dim, L, generator=g) - 1.0)  # (b, d, L)
        A = -torch.exp(0.5 * torch.randn(dim, N, generator=g))  # (d, N)
        B, C = torch.randn(b, N, L, generator=g), torch.randn(b, N, L, generator=g)  # (b, N, L)
        a = torch.exp(delta.double()[..., None, :] * A.double()[None, :, :, None])  # (b, d, N, L)
        bu = (delta * u).double()[..., None, :] * B.double()[:, None]  # (b, d, N, L)
        want = (_loop_states(a, bu) * C.double()[:, None]).sum(2)  # (b, d, L)
        dev = _device()
        got = _run_blocked(fn, *(t.to(dev) for t in (u, delta, A, B, C)), block_d)
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            idle = (got.cpu() == GUARD_VALUE) | ~torch.isfinite(got.cpu())
            if bool(idle.any()) and bool(idle[:, -1].any()) and not bool(idle[:, 0].any()):
                raise Mismatch("the last channels were never computed: the grid needs ⌈dim / BLOCK_D⌉ channel "
                               "blocks (triton.cdiv(dim, BLOCK_D)), not dim // BLOCK_D")
        compare(got.cpu() if isinstance(got, torch.Tensor) else got, want, "out (batch, channel, t)",
                rtol=1e-4, atol=1e-4)
    return name, test


def check_tiled_scan(fn, quiet: bool = False) -> Verdict:
    """fn(u, delta, A, B, C, BLOCK_D) -> out (batch, dim, L): allocate out, choose BLOCK_N, and launch your
    `scan_kernel` on a grid tiled over channels, BLOCK_D channels per program. Checked for BLOCK_D = 1, 2, 4, 8
    with dim and N multiples of nothing; mamba_edu's scans are unavailable while it runs."""
    cases = [_tiled_case(1, 5, 6, 3, 1), _tiled_case(2, 7, 5, 5, 2), _tiled_case(1, 13, 4, 3, 4),
             _tiled_case(2, 6, 3, 2, 8)]
    return run_check("tiled_scan", fn, cases, quiet=quiet,
                     success="correct: the grid covers every channel block, whatever BLOCK_D.")


# ---- step 3: chunks of time with a carried state ------------------------------------------------


def _chunk_case(shape: tuple, L: int, T: int):
    name = f"a, b of shape {(*shape, L)}, chunks of T = {T}"

    def test(fn):
        g = gen(L * 31 + T)
        a = torch.rand(*shape, L, generator=g, dtype=torch.float64) * 0.6 + 0.4  # (..., L)
        b = torch.randn(*shape, L, generator=g, dtype=torch.float64)  # (..., L)
        want = _loop_states(a, b)  # (..., L)
        got = _run_blocked(fn, a.clone(), b.clone(), T)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and T < L:
            first = want[..., :T]
            if bool(torch.allclose(got[..., :T], first)) and not bool(torch.allclose(got[..., T:], want[..., T:])):
                starts = torch.cat([_loop_states(a[..., s:s + T], b[..., s:s + T]) for s in range(0, L, T)], -1)
                if bool(torch.allclose(got, starts)):
                    raise Mismatch("every chunk starts from zero: the state carried in from the previous chunk is "
                                   "missing (h_t = P_t·h_carry + h_local_t, P_t the product of a inside the chunk)")
                raise Mismatch(f"the first chunk (t < {T}) is right, later ones are not: h_carry is the LAST state of "
                               "the previous chunk, and it enters through the prefix product P_t of this chunk")
        compare(got, want, "h (…, t)", rtol=1e-9, atol=1e-9)
    return name, test


def check_chunked_states(fn, quiet: bool = False) -> Verdict:
    """fn(a, b, T) -> h with h_t = a_t·h_{t−1} + b_t (h_{−1} = 0) over the last axis, computed chunk by chunk:
    each chunk of T steps from zero (local states and prefix products), then h = P·h_carry + h_local with the
    carry passed from chunk to chunk. L need not be a multiple of T; mamba_edu's scans are unavailable."""
    cases = [_chunk_case((), 12, 4), _chunk_case((3,), 13, 5), _chunk_case((2, 2), 7, 1),
             _chunk_case((2,), 6, 16)]
    return run_check("chunked_states", fn, cases, quiet=quiet,
                     success="correct: local scans plus a carried state give every state of the sequence.")


# ---- step 4: the backward, recomputing from checkpoints -----------------------------------------


def _backward_case(shape: tuple, L: int, K: int):
    name = f"a, b of shape {(*shape, L)}, a checkpoint every K = {K} steps"

    def test(fn):
        g = gen(L * 17 + K)
        a = torch.rand(*shape, L, generator=g, dtype=torch.float64) * 0.6 + 0.4  # (..., L)
        b = torch.randn(*shape, L, generator=g, dtype=torch.float64)  # (..., L)
        gh = torch.randn(*shape, L, generator=g, dtype=torch.float64)  # (..., L): ∂loss/∂h_t
        h = _loop_states(a, b)  # (..., L)
        ckpt = h[..., K - 1::K].clone() if K <= L else h[..., :0].clone()  # (..., ⌊L/K⌋): h at t = K−1, 2K−1, …
        ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        hr = []
        state = torch.zeros(shape, dtype=torch.float64)
        for t in range(L):
            state = ar[..., t] * state + br[..., t]
            hr.append(state)
        torch.autograd.backward(torch.stack(hr, -1), gh)
        got = _run_blocked(fn, a.clone(), b.clone(), ckpt, gh.clone(), K)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise Mismatch(f"expected a pair (grad_a, grad_b), got {type(got).__name__}")
        ga, gb = got
        compare(gb, br.grad, "grad_b = ∂loss/∂b_t (the reverse recurrence g_t = ∂loss/∂h_t + a_{t+1}·g_{t+1})",
                rtol=1e-9, atol=1e-9)
        if isinstance(ga, torch.Tensor) and ga.shape == ar.grad.shape and L > 1:
            if bool(torch.allclose(ga, gb * h)):
                raise Mismatch("grad_a used h_t: the derivative of a_t·h_{t−1} + b_t by a_t is g_t·h_{t−1}, the "
                               "state BEFORE step t (h_{−1} = 0)")
        compare(ga, ar.grad, "grad_a = ∂loss/∂a_t = g_t·h_{t−1} (h recomputed from the checkpoints)",
                rtol=1e-9, atol=1e-9)
    return name, test


def check_scan_backward(fn, quiet: bool = False) -> Verdict:
    """fn(a, b, checkpoints, grad_h, K) -> (grad_a, grad_b) of h_t = a_t·h_{t−1} + b_t (h_{−1} = 0), given only
    the states at t = K−1, 2K−1, … (checkpoints, shape (..., ⌊L/K⌋)) and ∂loss/∂h (grad_h): recompute each chunk's
    states from its checkpoint, run g_t = grad_h_t + a_{t+1}·g_{t+1} backwards, grad_b = g, grad_a_t = g_t·h_{t−1}.
    Compared with autograd through a plain loop; mamba_edu's scans are unavailable while it runs."""
    cases = [_backward_case((), 8, 4), _backward_case((3,), 11, 4), _backward_case((2,), 5, 1),
             _backward_case((2, 2), 6, 8)]
    return run_check("scan_backward", fn, cases, quiet=quiet,
                     success="correct: the states recomputed from checkpoints give the exact gradients.")
