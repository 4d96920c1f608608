"""The argument types of the `mamba-edu` command (mamba_edu.cli and mamba_edu.course.cli).

Every bad argument gets one line naming it and what was expected, and exit status 2 (argparse's
convention), never a traceback and never a silent substitute. Each option's `type=` parses and
range-checks its own value (argparse turns an ArgumentTypeError into "argument --X: <message>");
what depends on several options or on the machine (a GPU, a free port, the syllabus) is checked
by the subcommand's `check` before any work starts, which raises BadArgument.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import tempfile
from pathlib import Path


class BadArgument(ValueError):
    """A bad combination of arguments, found after parsing: becomes the one-line usage error."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str):
        line = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {line} (see {self.prog} --help)\n")


def int_in(lo: int, hi: int | None = None):
    """An argparse type: an integer in [lo, hi]."""
    span = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"

    def parse(text: str) -> int:
        try:
            n = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {span}; got {text!r}") from None
        if n < lo or (hi is not None and n > hi):
            raise argparse.ArgumentTypeError(f"expected an integer {span}; got {n}")
        return n

    return parse


def float_in(lo: float, hi: float, *, lo_open: bool = False):
    """An argparse type: a finite number in [lo, hi] (or (lo, hi] with lo_open)."""
    span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {span}; got {text!r}") from None
        if not math.isfinite(v) or v < lo or (lo_open and v == lo) or v > hi:
            raise argparse.ArgumentTypeError(f"expected a finite number in {span}; got {text!r}")
        return v

    return parse


def int_list(lo: int, hi: int):
    """An argparse type: comma-separated distinct integers in [lo, hi], e.g. 256,1024,4096."""
    one = int_in(lo, hi)

    def parse(text: str) -> tuple[int, ...]:
        items = text.split(",")
        if not text.strip() or any(not i.strip() for i in items):
            raise argparse.ArgumentTypeError(f"expected comma-separated integers in [{lo}, {hi}] "
                                             f"such as 256,1024; got {text!r}")
        values = tuple(one(i) for i in items)
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"expected each value once; got {text!r}")
        return values

    return parse


def nonempty(text: str) -> str:
    """An argparse type: any text but the empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value; got ''")
    return text


def torch_device(text: str) -> str:
    """An argparse type: 'cpu', or 'cuda' / 'cuda:I' when that GPU is here."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:INDEX; got {text!r}") from None
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:INDEX; got {text!r}")
        return "cpu"
    if dev.type != "cuda":
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:INDEX; got {text!r} "
                                         f"(the {dev.type} device is not supported)")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"expected a device that is here; got {text!r}, but torch finds no CUDA GPU "
                                         "on this machine (use cpu)")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"expected a GPU index below {torch.cuda.device_count()}; got {text!r}")
    return str(dev)


def _path_type(check):
    """Wrap a path check: the text must be a non-empty path without NUL, and whatever the file
    system says while looking at it (a name too long, a symlink loop) becomes the one-line error."""

    @functools.wraps(check)
    def parse(text: str) -> Path:
        nonempty(text)
        if "\0" in text:
            raise argparse.ArgumentTypeError(f"expected a path; got {text!r}, which holds a NUL character")
        try:
            return check(text, Path(text))
        except (OSError, RuntimeError) as e:  # RuntimeError: pathlib's symlink loop
            why = getattr(e, "strerror", None) or e
            raise argparse.ArgumentTypeError(f"expected a usable path; {text!r}: {why}") from None

    return parse


def _exists(path: Path) -> bool:
    """Whether `path` exists; a symbolic link that leads nowhere (or to itself) is an error."""
    if path.exists():
        return True
    if os.path.lexists(path):
        raise argparse.ArgumentTypeError(f"expected a usable path; {str(path)!r} is a broken symbolic link (or a loop)")
    return False


def _writable_parent(path: Path) -> None:
    """Raise ArgumentTypeError unless `path` could be created: its nearest existing ancestor is a
    folder we may write into."""
    anc = path.absolute().parent
    while not _exists(anc):
        anc = anc.parent
    if not anc.is_dir():
        raise argparse.ArgumentTypeError(f"expected a path inside a folder; {str(anc)!r} is a file")
    _can_write(anc)


def _can_write(folder: Path) -> None:
    """Raise ArgumentTypeError unless a file can be made in `folder` (tried: permission bits say
    nothing to root, nor about a read-only file system)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"expected a folder we can write into; cannot write into {str(folder)!r}: "
                                         f"{e.strerror or e}") from None


def out_file(suffix: str | None = None):
    """An argparse type: a file to write (not a folder, inside a writable folder), ending in `suffix`."""

    @_path_type
    def out_file(text: str, path: Path) -> Path:
        if suffix and path.suffix != suffix:
            raise argparse.ArgumentTypeError(f"expected a file name ending in {suffix}; got {text!r}")
        if _exists(path):
            if path.is_dir():
                raise argparse.ArgumentTypeError(f"expected a file path; {text!r} is a folder")
            if not os.access(path, os.W_OK):
                raise argparse.ArgumentTypeError(f"expected a file we can write; {text!r} is read-only")
        _writable_parent(path)
        return path

    return out_file


@_path_type
def out_dir(text: str, path: Path) -> Path:
    """An argparse type: a folder to write into (existing or to be made), not a file."""
    if _exists(path):
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"expected a folder; {text!r} is a file")
        _can_write(path)
    else:
        _writable_parent(path)
    return path


@_path_type
def in_dir(text: str, path: Path) -> Path:
    """An argparse type: an existing folder."""
    if not _exists(path):
        raise argparse.ArgumentTypeError(f"expected an existing folder; {text!r} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder; {text!r} is a file")
    return path
