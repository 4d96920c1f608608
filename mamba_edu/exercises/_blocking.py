"""Integrity for checks: while a check runs, the library's own scans are unavailable to the learner's code.

    with library_blocked(fn): ...     every selective scan and scan of mamba_edu (module attributes, the Triton
                                      kernels' wrappers if loaded, and any name in fn's globals that refers to one)
                                      raises LibraryUnavailable; all is restored afterwards, whatever happens
    run_blocked(fn, *args)            fn(*args) inside library_blocked; a blocked call becomes a Mismatch

A check that uses this must compute its own answer first (e.g. with a plain loop), before entering the block.
"""

from __future__ import annotations

from ._core import Mismatch


class LibraryUnavailable(RuntimeError):
    """Raised by a library scan called while a check runs: the exercise is to write it yourself."""


def _blocked_objects():
    """The library's selective scans and scans, {(module, name): object}: what the learner re-implements."""
    import importlib  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from .. import registry, scan, selective  # noqa: PLC0415

    objs = {}
    for mod in (scan, selective, registry):
        for name in dir(mod):
            obj = getattr(mod, name)
            if callable(obj) and (name.startswith("scan") or name.startswith("selective_scan")) \
                    and getattr(obj, "__module__", "").startswith("mamba_edu"):
                objs[(mod, name)] = obj
    top = importlib.import_module("mamba_edu")
    objs[(top, "selective_scan")] = top.selective_scan
    for mod_name, mod in list(sys.modules.items()):  # the Triton kernels and their wrappers, if loaded
        if mod_name.startswith("mamba_edu.kernels") and mod is not None:
            for name in dir(mod):
                obj = getattr(mod, name)
                if callable(obj) and getattr(obj, "__module__", "") == mod_name and "scan" in name:
                    objs[(mod, name)] = obj
    return objs


class library_blocked:
    """While active, every library scan (module attributes, and any name in `fn`'s globals that refers to one)
    raises LibraryUnavailable; everything is restored afterwards, whatever happens."""

    def __init__(self, fn):
        self.fn = fn
        self.saved = []

    def __enter__(self):
        objs = _blocked_objects()
        ids = {id(o) for o in objs.values()}

        def blocker(name):
            def blocked(*args, **kwargs):
                raise LibraryUnavailable(f"mamba_edu's {name} is not available during this check: the exercise "
                                         "is to compute it yourself")
            return blocked

        for (mod, name), obj in objs.items():
            self.saved.append((mod.__dict__, name, obj))
            setattr(mod, name, blocker(name))
        g = getattr(getattr(self.fn, "fn", self.fn), "__globals__", {})
        for name, obj in list(g.items()):
            if id(obj) in ids:
                self.saved.append((g, name, obj))
                g[name] = blocker(name)
        return self

    def __exit__(self, *exc):
        for where, name, obj in reversed(self.saved):
            where[name] = obj
        return False


def run_blocked(fn, *args):
    with library_blocked(fn):
        try:
            return fn(*args)
        except LibraryUnavailable as e:
            raise Mismatch(str(e)) from None



__all__ = ["LibraryUnavailable", "library_blocked", "run_blocked"]
