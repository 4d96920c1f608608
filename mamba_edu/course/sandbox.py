"""Start a student's kernel with least privilege: `python -m mamba_edu.course.sandbox [options] -- CMD ...`.

What it does before it runs CMD (the Jupyter kernel), in this order:
    as root     a private mount namespace in which the paths given with --hide are covered by an empty,
                unreadable tmpfs (the submissions, the grader's output folder, the reference solutions), and
                directories that other users cannot enter (e.g. /root, when Python lives below it) are
                replaced by an empty tmpfs that holds only what the kernel needs (--keep); then it drops to
                the user and group --uid (a user of its own for each notebook: it owns the notebook's folder
                and nothing else, and the grader kills every process of that user when the notebook is done)
    always      no new privileges (setuid programs stop working), and resource limits: CPU seconds (--cpu),
                address space (--memory), file size, no core files, and as an own user a cap on its processes
                (--nproc: a fork bomb stops there)
It then replaces itself with CMD, which therefore runs in the session the grader started it in (the
kernel is started in a session of its own, so the grader can kill its process group).

`--probe` prints what this machine allows (one JSON line) instead of running a command.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import stat
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _closed_ancestors(paths: list[str]) -> dict[str, list[str]]:
    """{directory that other users cannot enter: [kept paths below it]} for every kept path."""
    out: dict[str, list[str]] = {}
    for p in paths:
        path = Path(p).resolve()
        for parent in reversed(path.parents):
            try:
                mode = os.stat(parent).st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                out.setdefault(str(parent), []).append(str(path))
                break
    return out


def isolate_files(hide: list[str], keep: list[str], stage: str) -> None:
    """(root) A private mount namespace: `hide` covered, closed ancestors of `keep` opened to `keep` only."""
    _check(_libc().unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for i, (closed, kept) in enumerate(sorted(_closed_ancestors(keep).items())):
        staged = []
        for j, path in enumerate(sorted(set(kept))):  # bind each kept path aside, cover the closed folder,
            s = Path(stage) / f"{i}-{j}"                # and bind the kept paths back below it
            s.mkdir(parents=True, exist_ok=True)
            _mount(path, str(s), None, MS_BIND | MS_REC)
            staged.append((path, s))
        _mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for path, s in staged:
            Path(path).mkdir(parents=True, exist_ok=True)
            _mount(str(s), path, None, MS_BIND | MS_REC)
    for path in hide:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")


def drop_to(uid: int) -> None:
    """(root) Become user and group `uid`, with no supplementary groups."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def limit(cpu: int | None, memory: int | None, nproc: int | None, fsize: int = 2**30) -> None:
    """Resource limits for this process and what it starts."""
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def probe() -> dict:
    """What isolation this machine allows: own user (root), own mount namespace (tested in a child)."""
    root = os.geteuid() == 0
    namespace = False
    if root:
        pid = os.fork()
        if pid == 0:  # the child tries, and exits 0 if it could
            try:
                _check(_libc().unshare(CLONE_NEWNS), "unshare")
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                os._exit(0)
            except Exception:
                os._exit(1)
        namespace = os.waitpid(pid, 0)[1] == 0
    return {"own_user": root, "mount_namespace": namespace}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--probe"]:
        print(json.dumps(probe()))
        return
    if "--" not in argv:
        sys.exit("sandbox: usage: python -m mamba_edu.course.sandbox [options] -- CMD ...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="sandbox")
    p.add_argument("--uid", type=int)
    p.add_argument("--cpu", type=int)
    p.add_argument("--memory", type=int)
    p.add_argument("--nproc", type=int)
    p.add_argument("--hide", action="append", default=[])
    p.add_argument("--keep", action="append", default=[])
    p.add_argument("--stage")
    args = p.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if args.uid is not None and os.geteuid() == 0:
        if args.hide or args.keep:
            isolate_files(args.hide, args.keep, args.stage or "/tmp")
        drop_to(args.uid)
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
    limit(args.cpu, args.memory, args.nproc if args.uid is not None and os.getuid() == args.uid else None)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
