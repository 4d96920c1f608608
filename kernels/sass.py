"""What an H100 would execute, on a machine without one: the fused kernels compiled for sm_90.

    analyse((8, 1536, 2048, 16), kind="lscan")  ->  one row per kernel: registers, instructions and
                                                    exp2 per (time step, state entry) element
    python benchmarks/sass_fused.py [--shape B,D,L,N]   the same as a table (notebook 09 shows it)

The fused forward at 8 × 1536 is issue-bound (results/bench/NOTES.md: ~0.02 ms per instruction per
(b, d, l, n) element at the measured IPC), so the number of instructions its hot loop executes per
element predicts its time, and it can be counted without a GPU. For each kernel (both forwards and
the backward) this module

1. runs `fused_op` on CPU tensors of the given shape with the kernels replaced by recorders, so it
   gets the exact arguments, block sizes and flags of a real launch (the GPU defaults of
   `fused_op.config` for that shape; FAST_EXP2 on, as on a GPU);
2. specialises and compiles them as Triton's launcher would (integer 1s become constants, pointers
   and multiples of 16 get divisibility hints) for an H100 (`GPUTarget("cuda", 90, 32)`), with
   the ptxas and nvdisasm that ship with Triton;
3. finds the innermost loop in the SASS (a backward branch) and reports its length per element:
   the loop's instructions are issued once per warp, and each lane handles a known number of
   (time step, state entry) elements per iteration.

No number here is a time: timing needs the GPU (`benchmarks/tune_fused.py`, `mamba-edu bench`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.compiler import compile as triton_compile
from triton.runtime.jit import create_function_from_signature

from mamba_edu.kernels import fused_op, selective_scan_fused

H100 = GPUTarget("cuda", 90, 32)
TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
KERNELS = ("_fwd_seq_kernel", "_fwd_lscan_kernel", "_bwd_seq_kernel", "_bwd_lscan_kernel")


class Recorder:
    """Stands in for a @triton.jit kernel inside fused_op: `kernel[grid](*args, **kw)` is recorded, not run."""

    def __init__(self):
        self.launches = []

    def __getitem__(self, grid):
        return lambda *args, **kw: self.launches.append((grid, args, kw))


def record_launches(shape, training: bool, dtype=torch.bfloat16, kind: str | None = None, sms: int = 132,
                    override: dict | None = None) -> dict:
    """{kernel name: (grid, args, kwargs)} of one forward (and, when training, one backward) at `shape`
    with bf16 u, Δ, z, B, C (the issue's setting), D, delta_bias and softplus on, as `fused_op` would
    launch them on a GPU with `sms` multiprocessors (`kind` forces "seq" or "lscan"; `override` is a
    forward configuration to try, as `fused_op.OVERRIDE`)."""
    b, d, l, n = shape
    gen = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    u, delta, z = (r(b, d, l).to(dtype) for _ in range(3))
    A, D, bias = -torch.rand(d, n), r(d), r(d)
    B, C = r(b, 1, n, l).to(dtype), r(b, 1, n, l).to(dtype)  # (b, g, n, l)
    recorders = {name: Recorder() for name in KERNELS}
    gpu_config = fused_op.config

    def config(b, d, l, n, g, device, itemsize=2, training=False, backward=False):  # the GPU branch
        return gpu_config(b, d, l, n, g, torch.device("cuda"), itemsize, training, backward)

    with contextlib.ExitStack() as stack:
        for name, rec in recorders.items():
            stack.enter_context(mock.patch.object(fused_op, name, rec))
        stack.enter_context(mock.patch.object(fused_op, "config", config))
        if kind:
            stack.enter_context(mock.patch.object(fused_op, "forward_kind", lambda *a, **k: kind))
        stack.enter_context(mock.patch.dict(fused_op.OVERRIDE, override or {}))
        stack.enter_context(mock.patch("torch.cuda.get_device_properties",
                                       lambda _device: SimpleNamespace(multi_processor_count=sms)))
        # the kernels do not run: the outputs are only allocated, which is all the backward's launch needs
        out, _, ckpt, pre = fused_op.selective_scan_fwd(u, delta, A, B, C, D, z, bias, True, training, False)
        if training:
            fused_op.selective_scan_bwd(u, delta, A, B, C, D, z, bias, True, ckpt, pre, torch.ones_like(u), None)
    return {name: rec.launches[0] for name, rec in recorders.items() if rec.launches}


def compile_for_h100(kernel, args, kw):
    """The kernel compiled as Triton's launcher would compile this launch on an H100."""
    if "FAST_EXP2" in kernel.arg_names:  # the hardware exp2, as on a GPU
        kw = {**kw, "FAST_EXP2": True}
    backend = make_backend(H100)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **kw)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kw, bound, specialization, options)
    return triton_compile(ASTSource(kernel, signature, constexprs, attrs), target=H100, options=options.__dict__)


def disassemble(cubin: bytes) -> tuple[str, dict]:
    """(SASS text, {"registers", "stack", "local"}) from nvdisasm and cuobjdump."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.cubin")
        Path(path).write_bytes(cubin)
        sass = subprocess.run([str(TOOLS / "nvdisasm"), "-c", path], capture_output=True, text=True, check=True).stdout
        res = subprocess.run([str(TOOLS / "cuobjdump"), "-res-usage", path], capture_output=True, text=True,
                             check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", res)
    return sass, dict(registers=int(m[1]), stack=int(m[2]), local=int(m[3]))


def loops(sass: str) -> tuple[list[str], list[tuple[int, int]]]:
    """(instructions, [(first, last) index of every loop]): a loop runs from a label to a branch back to it."""
    labels, ins = {}, []
    for line in sass.splitlines():
        if m := re.match(r"^(\.L_x_\d+):", line.strip()):
            labels[m[1]] = len(ins)
        elif m := re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;?\s*$", line):
            ins.append(m[1])
    spans = []
    for i, text in enumerate(ins):
        if (m := re.search(r"BRA `?\(?(\.L_x_\d+)", text)) and labels.get(m[1], i + 1) < i:
            spans.append((labels[m[1]], i))
    return ins, spans


def opcode(instruction: str) -> str:
    words = instruction.split()
    return words[1] if words[0].startswith("@") else words[0]


def hot_loop(name: str, kw: dict, n: int, sass: str) -> dict:
    """The instructions each lane issues per (time step, state entry) element, from the loop structure.

    seq (forward and backward): one loop over time, K steps per iteration, each lane a channel's
         n/LANES entries: per element = loop / (K·n/LANES).
    lscan and backward: a loop over chunks around a loop over the n state entries, each iteration
         of which covers a (BLOCK_D, BLOCK_L) tile shared by 32·num_warps lanes:
         per element = (inner·n + (outer − inner)) / (n·BLOCK_D·BLOCK_L / lanes).
    """
    ins, spans = loops(sass)
    spans = [s for s in spans if s[1] > s[0]]  # not the one-instruction `BRA` to itself after EXIT
    inner = min(spans, key=lambda s: s[1] - s[0])
    inner_len = inner[1] - inner[0] + 1
    body = ins[inner[0]:inner[1] + 1]
    exp2_in = sum(opcode(i) == "MUFU.EX2" for i in body)
    if name in ("_fwd_seq_kernel", "_bwd_seq_kernel"):
        per_lane = kw["K"] * n / kw.get("LANES", 1)  # (steps, entries) per iteration
        issued, exp2, hot = inner_len, exp2_in, body
    else:  # the inner loop runs n times per iteration of the outer one
        outer = min((s for s in spans if s[0] < inner[0] and s[1] > inner[1]), key=lambda s: s[1] - s[0])
        outer_body = ins[outer[0]:outer[1] + 1]
        per_lane = n * kw["BLOCK_D"] * kw["BLOCK_L"] // (32 * kw.get("num_warps", 1))
        issued = inner_len * (n - 1) + len(outer_body)
        exp2 = exp2_in * (n - 1) + sum(opcode(i) == "MUFU.EX2" for i in outer_body)
        hot = outer_body
    return dict(loop_instructions=inner_len, instructions_per_element=round(issued / per_lane, 2),
                exp2_per_element=round(exp2 / per_lane, 2),
                spill_instructions_in_loop=sum(opcode(i).split(".")[0] in ("STL", "LDL") for i in hot),
                top_opcodes=dict(collections.Counter(opcode(i) for i in body).most_common(12)))


def analyse(shape, training=False, kind=None, out: Path | None = None, override: dict | None = None) -> list[dict]:
    """One row per kernel launched at `shape` = (B, D, L, N) (the forward `kind` forced when given; the
    backward too when `training`): grid, config, registers, stack, local memory, the inner loop's length,
    instructions and exp2 per element, local-memory loads and stores (spills) in the loops and the inner
    loop's most frequent opcodes. `out`: keep TTGIR and SASS there; `override`: a forward configuration.

    Under TRITON_INTERPRET=1 the kernels (and Triton's own @jit helpers such as `tl.zeros`) are
    interpreter functions, which the compiler cannot use: the work is then done by a fresh Python
    process with the interpreter off."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        return _analyse_elsewhere(shape, training, kind, out, override)
    rows = []
    for name, (grid, args, kw) in record_launches(shape, training, kind=kind, override=override).items():
        compiled = compile_for_h100(getattr(selective_scan_fused, name), args, kw)
        sass, res = disassemble(compiled.asm["cubin"])
        rows.append(dict(kernel=name, shape=list(shape), training=training, grid=list(grid),
                         config={k: v for k, v in kw.items() if k.isupper() or k == "num_warps"}, **res,
                         **hot_loop(name, kw, shape[3], sass)))
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.sass").write_text(sass)
            (out / f"{name}.ttgir").write_text(compiled.asm["ttgir"])
    return rows


def _analyse_elsewhere(shape, training, kind, out, override) -> list[dict]:
    """`analyse` in a child process without TRITON_INTERPRET (its rows come back as JSON)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    request = json.dumps(dict(shape=list(shape), training=training, kind=kind, out=str(out) if out else None,
                              override=override))
    code = ("import json, sys; from pathlib import Path; from mamba_edu.kernels.sass import analyse; "
            "r = json.loads(sys.argv[1]); r['out'] = Path(r['out']) if r['out'] else None; "
            "print(json.dumps(analyse(**r)))")
    done = subprocess.run([sys.executable, "-c", code, request], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"compiling the kernels for sm_90 failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
