"""Record a learner's answers where their notebook runs; judge them where their code cannot reach.

Glossary
    record      what the grader's recording cell writes in the student's sandbox after running an exercise's
                check there: whether the function exists, its source, and for each call the check made, a digest
                of the inputs, what the function returned (or raised), how it changed its tensor arguments and
                the state of the grader's instruments it was given (a counted `combine`, a counted `model.step`).
                Written with torch.save from plain containers, tensors and numbers; read with
                torch.load(weights_only=True) — never pickle, never code.
    replay      the grader's own process runs the same check with a Replayer in place of the learner's function:
                each call checks that its inputs are the ones recorded and answers with the recorded output. The
                verdict is computed here, by the grader's code, from the learner's outputs only.

A record is untrusted data: the student controls the process that wrote it. It can lie only about what the
learner's function returned, which is exactly what the check judges; the inputs are the grader's (their
digest must match), and a claim of failure ("not found", "a stub", "raised") only costs the student.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import textwrap
import traceback
from typing import Any

MAX_RECORD_BYTES = 64 * 2**20  # a record larger than this is not read
_MAX_ITEMS = 100_000  # containers in one output (a deep or huge structure is cut off)
FORMAT = 1


# ----------------------------------------------------------------------------------------------
# Values <-> plain data (tensors, numbers, strings, lists and dicts of them)
# ----------------------------------------------------------------------------------------------


def encode(x, depth: int = 0, budget: list | None = None):
    """A learner's value as plain data: tensors (plain, on the CPU), numbers, strings, tagged containers."""
    import torch

    budget = budget if budget is not None else [_MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > 20:
        return {"opaque": "a structure too large or too deep"}
    if x is None or isinstance(x, (bool, str)):
        return x if not isinstance(x, str) else x[:10_000]
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, complex):
        return {"complex": [x.real, x.imag]}
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.device.type == "meta":
            return {"opaque": "a meta tensor"}
        return {"tensor": t.as_subclass(torch.Tensor).to("cpu").clone().contiguous(), "device": str(t.device)}
    if isinstance(x, (tuple, list)):
        kind = "tuple" if isinstance(x, tuple) else "list"
        return {kind: [encode(v, depth + 1, budget) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[str(k), encode(v, depth + 1, budget)] for k, v in list(x.items())]}
    return {"opaque": type(x).__name__[:100]}


def _opaque_class(name: str):
    return type(name or "object", (), {"__module__": "builtins", "__repr__": lambda self: f"<{name}>"})


def decode(x):
    """The value `encode` described (an object it could not encode becomes an empty object of that type's name)."""
    import torch

    if not isinstance(x, dict):
        return x
    if "tensor" in x:
        t = x["tensor"]
        dev = str(x.get("device", "cpu"))
        if dev.startswith("cuda") and torch.cuda.is_available():
            t = t.to(dev)
        return t
    if "complex" in x:
        return complex(*x["complex"])
    if "tuple" in x:
        return tuple(decode(v) for v in x["tuple"])
    if "list" in x:
        return [decode(v) for v in x["list"]]
    if "dict" in x:
        return {k: decode(v) for k, v in x["dict"]}
    return _opaque_class(str(x.get("opaque", "object")))()


# ----------------------------------------------------------------------------------------------
# What a call received: its digest, its tensors, the grader's instruments
# ----------------------------------------------------------------------------------------------


def _walk(x, out: list, depth: int = 0):
    """Every leaf of arguments in order (containers opened)."""
    if depth > 10:
        return
    if isinstance(x, (tuple, list)):
        for v in x:
            _walk(v, out, depth + 1)
    elif isinstance(x, dict):
        for k in sorted(x, key=str):
            _walk(x[k], out, depth + 1)
    else:
        out.append(x)


def _leaves(args, kwargs) -> list:
    out: list = []
    _walk(list(args), out)
    _walk(dict(kwargs), out)
    return out


def _bytes(t) -> bytes:
    """A tensor's values as bytes (copied into fresh, contiguous memory: any strides, any dtype)."""
    import torch

    x = torch.empty(t.shape, dtype=t.dtype)
    x.copy_(t.detach().to("cpu"))
    return x.reshape(-1).view(torch.uint8).numpy().tobytes() if x.numel() else b""


def digest(args, kwargs, key: str = "") -> str:
    """A fingerprint of the inputs a check passes (tensors by value, modules by their weights)."""
    import torch

    h = hashlib.sha256(key.encode())
    for v in _leaves(args, kwargs):
        if isinstance(v, torch.Tensor):
            t = v.detach()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            if t.device.type != "meta":
                h.update(_bytes(t))
        elif isinstance(v, torch.nn.Module):
            h.update(type(v).__name__.encode())
            for name, p in sorted(v.state_dict().items()):
                h.update(name.encode())
                h.update(_bytes(p) if p.device.type != "meta" else b"")
        elif v is None or isinstance(v, (bool, int, float, complex, str)):
            h.update(repr(v).encode())
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            h.update(repr(v).encode())
        else:
            h.update(type(v).__name__.encode())
    return h.hexdigest()


def _storage_bytes(t):
    import torch

    return torch.empty(0, dtype=torch.uint8, device=t.device).set_(t.untyped_storage())


def _tensors(args, kwargs) -> list:
    import torch

    return [v for v in _leaves(args, kwargs) if isinstance(v, torch.Tensor) and v.device.type != "meta"]


def _instruments(args, kwargs) -> list:
    return [v for v in _leaves(args, kwargs) if callable(getattr(v, "_replay_state", None))]


# ----------------------------------------------------------------------------------------------
# In the student's sandbox: run the check with a recorder
# ----------------------------------------------------------------------------------------------


class Recorder:
    """The learner's function as the recording check calls it: each call is passed through and written down."""

    _mamba_edu_wraps = True

    def __init__(self, fn, calls: list, key: str = ""):
        self._fn, self._calls, self._key = fn, calls, key

    def __getitem__(self, grid):  # a Triton launch: kernel[grid](...)
        return Recorder(self._fn[grid], self._calls, f"{self._key}[{grid!r}]")

    def __call__(self, *args, **kwargs):
        import torch

        entry: dict[str, Any] = {"digest": digest(args, kwargs, self._key)}
        self._calls.append(entry)
        tensors = _tensors(args, kwargs)
        before = [_storage_bytes(t).clone() for t in tensors]
        try:
            out = self._fn(*args, **kwargs)
        except BaseException as e:
            entry["raised"] = [type(e).__module__, type(e).__qualname__, str(e)[:2000],
                               traceback.format_exception_only(type(e), e)[-1].strip()[:2000]]
            raise
        finally:
            entry["changed"] = [[i, _storage_bytes(t).to("cpu").clone()] for i, (t, b) in enumerate(zip(tensors, before))
                                if not torch.equal(_storage_bytes(t), b)]
            entry["instruments"] = [encode(v._replay_state()) for v in _instruments(args, kwargs)]
        entry["out"] = encode(out)
        return out


def _source(fn) -> str | None:
    from mamba_edu.exercises._core import source_of

    try:
        return source_of(fn)
    except Exception:
        return None


def record(name: str, module: str, check: str, fn, path: str, salt: int = 0) -> None:
    """Run `module.check` on `fn` with a Recorder and write the record to `path` (in the sandbox). The check
    draws its inputs salted by `salt` (chosen by the grader now: answers looked up from an earlier run of
    the check would be for other inputs)."""
    import importlib

    import torch

    from mamba_edu.exercises import _core

    rec: dict[str, Any] = {"format": FORMAT, "exercise": name, "found": callable(fn), "calls": []}
    try:
        _core.SALT = salt
        if callable(fn):
            rec["source"] = _source(fn)
            v = getattr(importlib.import_module(module), check)(Recorder(fn, rec["calls"]), quiet=True)
            rec.update(passed=bool(v.passed), attempted=bool(v.attempted), message=str(v.message))
    except BaseException as e:  # SystemExit, KeyboardInterrupt from the learner's code: recorded, not raised
        rec["aborted"] = traceback.format_exception_only(type(e), e)[-1].strip()[:2000]
    finally:
        _core.SALT = 0
        torch.save(rec, path)


# ----------------------------------------------------------------------------------------------
# In the grader's process: read a record, replay the check
# ----------------------------------------------------------------------------------------------


class RecordError(BaseException):
    """The record cannot be replayed: unreadable, or its calls do not match the check's inputs. (A
    BaseException, so that the check's own `except Exception` does not take it for the learner's error.)"""


def load(data: bytes) -> dict:
    """A record from its bytes, read with weights_only=True (plain data and tensors only)."""
    import torch

    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"the record is too large ({len(data)} bytes)")
    try:
        rec = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:
        raise RecordError(f"the record could not be read ({type(e).__name__})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("calls", []), list):
        raise RecordError("the record is not in the grader's format")
    return rec


def _raised(module: str, qualname: str, message: str) -> BaseException:
    from mamba_edu.exercises._core import Blocked

    if (module, qualname) == ("mamba_edu.exercises._core", "Blocked"):
        return Blocked(message)
    cls = type(str(qualname).rsplit(".", 1)[-1] or "Exception", (Exception,), {})
    cls.__module__ = module if module not in ("mamba_edu.exercises._core",) else "builtins"
    cls.__qualname__ = str(qualname)
    return cls(message)


class Replayer:
    """The learner's function as the grader's check sees it: it answers each call from the record."""

    _mamba_edu_replayed = True

    def __init__(self, rec: dict, calls: list | None = None, key: str = ""):
        self._rec, self._calls, self._key = rec, calls if calls is not None else list(rec.get("calls", [])), key
        src = rec.get("source")
        self._mamba_edu_source = src if isinstance(src, str) else None

    def __getitem__(self, grid):
        return Replayer(self._rec, self._calls, f"{self._key}[{grid!r}]")

    def __call__(self, *args, **kwargs):
        if not self._calls:
            raise RecordError("the record ends before the check does")
        entry = self._calls.pop(0)
        if not isinstance(entry, dict) or entry.get("digest") != digest(args, kwargs, self._key):
            raise RecordError("the inputs recorded are not the check's inputs")
        tensors = _tensors(args, kwargs)
        for item in entry.get("changed", []):
            i, data = item
            if not (isinstance(i, int) and 0 <= i < len(tensors)):
                raise RecordError("the record changes an argument that does not exist")
            target = _storage_bytes(tensors[i])
            if data.dtype != target.dtype or data.shape != target.shape:
                raise RecordError("the record changes an argument to another size")
            target.copy_(data.to(target.device))
        instruments = _instruments(args, kwargs)
        states = entry.get("instruments", [])
        if len(states) != len(instruments):
            raise RecordError("the record's instruments are not the check's")
        for inst, state in zip(instruments, states):
            inst._replay_restore(decode(state))
        if "raised" in entry:
            module, qualname, message, _ = (list(entry["raised"]) + ["", "", "", ""])[:4]
            raise _raised(str(module), str(qualname), str(message))
        return decode(entry.get("out"))


def verdict(exercise, rec: dict, salt: int = 0) -> dict:
    """The grader's verdict on one exercise from its record (made with `salt`):
    {exercise, found, passed, attempted, message}."""
    import importlib

    from mamba_edu.exercises import _core

    report = {"exercise": exercise.name, "found": bool(rec.get("found"))}
    if not report["found"]:
        return report
    if rec.get("aborted"):
        return {**report, "passed": False, "attempted": True,
                "message": f"your code raised {str(rec['aborted'])[:300]} (it ended the check)"}
    check = getattr(importlib.import_module(exercise.module), exercise.check)
    try:
        _core.SALT = salt
        v = check(Replayer(rec), quiet=True)
    except RecordError as e:
        return {**report, "passed": False, "attempted": True, "message": _record_problem(rec, str(e))}
    finally:
        _core.SALT = 0
    return {**report, "passed": bool(v.passed), "attempted": bool(v.attempted), "message": str(v.message)}


def _record_problem(rec: dict, why: str) -> str:
    """A failure the record itself reported is believed (it only costs the student); else the record is bad."""
    if rec.get("passed") is False and isinstance(rec.get("message"), str):
        return rec["message"][:2000]
    return (f"your answers could not be checked: {textwrap.shorten(why, 200)} (did a cell change torch's global "
            "settings, such as the default dtype, or tamper with the grader's recording?)")
