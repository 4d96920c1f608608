"""`mamba-edu course grade SUBMISSIONS`: run every student's notebooks and grade each exercise.

Glossary
    SUBMISSIONS   a folder with one folder per student (its name is the student's), holding that student's
                  notebooks NN_name.ipynb (found anywhere below it by the chapter number they start with)
    expected      the chapters to grade: `--lab N` (from the syllabus), `--chapters 2 6`, or by default
                  every chapter any student handed in
    record cell   a cell of the grader's that takes the place of the student's `check` cell of an exercise
                  (or is appended when that cell is gone): it runs the exercise's check on the student's
                  function and writes down what the function returned on the check's inputs (a record, see
                  mamba_edu.course.replay); nothing it prints or shows is read
    verdict       computed in the grader's own process by replaying the same check against the record: the
                  student's code never runs there, so it can neither produce nor alter a verdict
    status        passed · wrong · not attempted · error · timeout · missing · malformed (one per exercise)

Isolation (docs/course/threat-model.md): each notebook runs in a Jupyter kernel started through
mamba_edu.course.sandbox, in a folder of its own holding a copy of that notebook only. Run as root, the
grader gives each notebook a user of its own (its folder belongs to that user, mode 0700), hides the
submissions, the output folder and the reference solutions from it (a private mount namespace) and kills
every process of that user when the notebook is done; always, the kernel has CPU-time, memory, file-size
limits and no new privileges, and runs in a session of its own. The grader collects records, kills whatever a
student left behind (it is the subreaper of everything it starts), and only then writes its reports.

Time limits: the student's cells share `timeout` seconds per notebook (a cell still running when it is spent
is interrupted, and later cells are not run); each record cell has `check_timeout` seconds. A kernel that
does not recover from an interrupt is shut down and the exercises left are marked `timeout`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import catalog
from .syllabus import POINTS_PER_EXERCISE, STATUS_MEANINGS

VERDICT_MIME = "application/vnd.mamba-edu.verdict+json"
STATUSES = tuple(STATUS_MEANINGS)
RECORDS = "records"  # the folder, inside a notebook's sandbox, where record cells write
_RECORD_SOURCE = '''\
# grader: runs the check of `{name}` ({module}.{check}) on your function and records its answers;
# the grader judges them in its own process
__import__("mamba_edu.course.replay", fromlist=["record"]).record(
    {name!r}, {module!r}, {check!r}, globals().get({name!r}), {path!r}, {salt!r})
'''


@dataclass
class Sandbox:
    """How a student's kernel is confined (see mamba_edu.course.sandbox)."""

    uid: int | None = None            # a user of its own (root only), else None: the grader's user
    hide: list[str] = field(default_factory=list)  # paths covered by an empty tmpfs (root only)
    keep: list[str] = field(default_factory=list)  # paths the kernel needs below closed folders (root only)
    stage: str | None = None          # a root-only folder for the mounts' staging
    cpu: int | None = None            # CPU seconds
    memory: int | None = None         # bytes of address space
    nproc: int = 512                  # processes and threads of the student's user (own user only)

    def args(self) -> list[str]:
        out = []
        if self.uid is not None:
            out += ["--uid", str(self.uid), "--nproc", str(self.nproc)]
            out += [a for h in self.hide for a in ("--hide", h)] + [a for k in self.keep for a in ("--keep", k)]
            if self.stage:
                out += ["--stage", self.stage]
        if self.cpu:
            out += ["--cpu", str(self.cpu)]
        if self.memory:
            out += ["--memory", str(self.memory)]
        return out


@dataclass
class Result:
    """The grade of one exercise of one student."""

    student: str
    notebook: str
    exercise: str
    status: str
    points: int
    message: str


# ----------------------------------------------------------------------------------------------
# Finding and reading submissions
# ----------------------------------------------------------------------------------------------


def students(submissions: Path) -> list[Path]:
    """One folder per student, sorted by name; hidden folders and those starting with `_` are skipped."""
    return sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def find_notebook(student: Path, stem: str) -> tuple[Path | None, str]:
    """The student's file for chapter `stem`: (path, "") or (None, why)."""
    chapter = int(stem[:2])
    found = sorted(p for p in student.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                   and catalog.chapter_of(p.name) == chapter)
    exact = [p for p in found if p.stem == stem]
    if len(exact) == 1:
        return exact[0], ""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no notebook for chapter {chapter:02d} (expected {stem}.ipynb)"
    return None, f"several notebooks for chapter {chapter:02d}: {', '.join(p.name for p in found)}"


def read_submission(path: Path):
    """The notebook at `path` as nbformat 4, or raise ValueError with a reason it is malformed."""
    import nbformat

    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"not valid JSON ({e.__class__.__name__}: {str(e)[:120]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("valid JSON but not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # nbformat's errors: NBFormatError, ValidationError, KeyError on odd documents
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"not a valid nbformat 4 notebook: {first[:160]}") from None
    return nb


def expected_chapters(submissions: Path, lab: int | None = None, chapters: list[int] | None = None) -> list[str]:
    """The notebook stems to grade: the lab's chapters, the given chapters, or every chapter handed in."""
    known = catalog.chapters()
    if lab is not None:
        from .syllabus import load

        numbers = [c for c in load().lab(lab).chapters if c in known]
    elif chapters:
        bad = [c for c in chapters if c not in known]
        if bad:
            raise ValueError(f"course grade: no notebook for chapters {bad}; the course has {sorted(known)}")
        numbers = list(chapters)
    else:
        numbers = sorted({catalog.chapter_of(p.name) for s in students(submissions) for p in s.rglob("*.ipynb")}
                         & set(known))
    return [known[c].stem for c in numbers]


# ----------------------------------------------------------------------------------------------
# Running one notebook
# ----------------------------------------------------------------------------------------------


def _record_cell(exercise: catalog.Exercise, records: Path, salt: int):
    import nbformat

    src = _RECORD_SOURCE.format(name=exercise.name, module=exercise.module, check=exercise.check,
                                path=str(records / f"{exercise.name}.pt"), salt=salt)
    return nbformat.v4.new_code_cell(src, metadata={"tags": ["grader"]})


def _cell_error(cell) -> str:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {str(o.get('evalue', ''))[:200]}"
    return ""


def _check_positions(nb, exercises) -> dict[str, int]:
    """{exercise name: index of the student's `check` cell that calls its check} (first one only)."""
    found = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "check" in catalog.tags(cell):
            for e in exercises:
                if e.name not in found and re.search(rf"\b{re.escape(e.check)}\s*\(", cell.source):
                    found[e.name] = i
    return found


def _read_private(workdir: Path, rel: str, limit: int) -> bytes | None:
    """The bytes of workdir/rel, written by the student's user: opened without following any link the
    student may have planted (a record must come from this sandbox), or None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fds = [os.open(workdir, flags | os.O_DIRECTORY)]
    try:
        parts = rel.split("/")
        for part in parts[:-1]:
            fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fd = os.open(parts[-1], flags | getattr(os, "O_NONBLOCK", 0), dir_fd=fds[-1])
        fds.append(fd)
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > limit:  # a regular file, not too large
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _run(nb, exercises, workdir: Path, timeout: float, check_timeout: float,
         sandbox: Sandbox, salt: int = 0) -> tuple[dict, dict, str, dict]:
    """Run the student's cells in a sandboxed kernel, with the grader's record cells in place of their checks.

    Each exercise is recorded where the notebook checks it (its `check` cell is replaced by a record cell):
    a later cell may rebind the name (chapter 07 puts the library's `combine` back). An exercise whose check
    cell is gone, or whose function was not defined there yet, is recorded again at the end. The student's
    cells share `timeout` seconds; each record cell has `check_timeout`.

    Returns ({cell index: "ok" | "error: …" | "timeout" | "not run"}, {exercise name: record bytes or
    "timeout…" | "error: …"}, a note on the kernel ("" when all went well), {exercise name: record cell index}).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .kernel import notebook_client, sandboxed_kernel_manager
    from .replay import MAX_RECORD_BYTES

    by_name = {e.name: e for e in exercises}
    records = workdir / RECORDS
    in_place = _check_positions(nb, exercises)
    for name, i in in_place.items():
        nb.cells[i] = _record_cell(by_name[name], records, salt)
    placed = {i: name for name, i in in_place.items()}
    cells_of: dict[str, int] = {}
    outcome, got, note = {}, {}, ""
    km = sandboxed_kernel_manager(workdir, sandbox.args(), sandbox.uid)
    client = notebook_client(nb, workdir / "notebooks", workdir, timeout=None, km=km, allow_errors=True)
    pgid = None
    try:
        with client.setup_kernel(cleanup_kc=True, env=_kernel_env(workdir)):
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            pgid = proc.pid if proc is not None else None  # the kernel leads a session (and group) of its own
            spent, hung, last_timed_out = 0.0, False, False

            def run_cell(index: int, limit: float) -> str:
                nonlocal hung, last_timed_out, note
                client.timeout = max(1, math.ceil(limit))
                try:
                    client.execute_cell(nb.cells[index], index)
                except CellTimeoutError:
                    if last_timed_out:  # the interrupt after the last timeout did not bring the kernel back
                        hung, note = True, "the kernel did not respond after an interrupt and was shut down"
                        return "timeout: " + note
                    client.km.interrupt_kernel()
                    last_timed_out = True
                    return "timeout"
                except DeadKernelError:
                    hung, note = True, "the kernel died (the notebook crashed it, ended it or used up its memory)"
                    return "error: the kernel died"
                last_timed_out = False
                err = _cell_error(nb.cells[index])
                return f"error: {err}" if err else "ok"

            def record(index: int, name: str):
                cells_of[name] = index
                if hung:  # not checked: the kernel is gone
                    return ("timeout: " if "respond" in note else "error: ") + note
                target = records / f"{name}.pt"
                try:
                    target.unlink()  # a record left from an earlier run of this check, or planted
                except OSError:
                    pass
                status = run_cell(index, check_timeout)
                data = _read_private(workdir, f"{RECORDS}/{name}.pt", MAX_RECORD_BYTES)
                if status == "ok":
                    return data if data is not None else "error: the check left no record (did your code end it?)"
                return status

            for i, cell in enumerate(list(nb.cells)):
                if cell.cell_type != "code" or ("check" in catalog.tags(cell) and i not in placed):
                    continue
                if i in placed:
                    if "not run" not in outcome.values():  # else it runs at the end, if time allows
                        got[placed[i]] = record(i, placed[i])
                    continue
                left = timeout - spent
                if hung or left <= 0:
                    outcome[i] = "not run"
                    continue
                t0 = time.monotonic()
                outcome[i] = run_cell(i, left)
                spent += time.monotonic() - t0
            if any(v == "not run" for v in outcome.values()) and not note:
                note = f"the notebook ran past its time limit of {timeout:g} s; the cells after that were not run"
            for e in exercises:  # checks that did not run in place, or found no function there
                r = got.get(e.name)
                if r is None or (isinstance(r, bytes) and not _found(r)):
                    nb.cells.append(_record_cell(e, records, salt))
                    got[e.name] = record(len(nb.cells) - 1, e.name)
            if hung:
                try:
                    client.km.shutdown_kernel(now=True)
                except Exception:  # already dead
                    pass
    finally:
        _end_sandbox(sandbox, pgid)
    return outcome, got, note, cells_of


def _found(data: bytes) -> bool:
    from .replay import RecordError, load

    try:
        return bool(load(data).get("found"))
    except RecordError:
        return True  # unreadable: judged (as an error) where it is replayed


def _kernel_env(workdir: Path) -> dict[str, str]:
    """The kernel's environment: only what Python, torch and Triton need (none of the grader's secrets),
    a home and a temporary folder inside the sandbox, one thread (notebooks are graded side by side)."""
    from .kernel import kernel_env

    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "VIRTUAL_ENV", "TRITON_INTERPRET",
            "CUDA_VISIBLE_DEVICES", "MAMBA_EDU_RESULTS")
    env = {k: v for k, v in kernel_env().items() if k in keep}
    home = str(workdir / "home")
    env.update(HOME=home, TMPDIR=str(workdir / "tmp"), IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.mpl",
               TRITON_CACHE_DIR=f"{home}/.triton", XDG_CACHE_HOME=f"{home}/.cache", PYTHONDONTWRITEBYTECODE="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def _kill_user(uid: int) -> None:
    """(root) SIGKILL every process of user `uid`: a child becomes that user and signals them all."""
    for _ in range(5):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # every process this user may signal, not the caller
                os._exit(0)
            except ProcessLookupError:
                os._exit(3)  # none left
            except BaseException:
                os._exit(1)
        status = os.waitpid(pid, 0)[1]
        if os.waitstatus_to_exitcode(status) != 0:
            return


def _end_sandbox(sandbox: Sandbox, pgid: int | None) -> None:
    """Kill what a notebook's kernel left behind: its process group and, as its own user, all its processes."""
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if sandbox.uid is not None and os.geteuid() == 0:
        _kill_user(sandbox.uid)


def _descendants(root: int) -> list[int]:
    """The processes below `root` (read from /proc; [] where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _become_subreaper(on: bool = True) -> bool:
    """Processes a student detaches (double fork, setsid) are re-parented to us, not to init (Linux)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _status(exercise: catalog.Exercise, nb, outcome: dict, verdict) -> tuple[str, str]:
    """The status and message of one exercise from the run's cell outcomes and its verdict cell."""
    if isinstance(verdict, dict) and verdict.get("found"):
        message = verdict.get("message", "")
        if verdict.get("passed"):
            return "passed", message
        if not verdict.get("attempted"):
            return "not attempted", message
        return ("error" if "your code raised" in message else "wrong"), message
    if verdict == "timeout":
        return "timeout", f"the check of `{exercise.name}` ran past its time limit (an endless loop?)"
    if isinstance(verdict, str) and verdict.startswith(("timeout: ", "error: ")):
        kind, reason = verdict.split(": ", 1)
        return kind, f"`{exercise.name}` was not checked: {reason}"
    definers = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "grader" not in catalog.tags(c)
                and catalog.defines(c.source, exercise.name)]
    if not definers:
        return "missing", f"no cell defines `{exercise.name}` (was it renamed or deleted?)"
    results = [outcome.get(i, "ok") for i in definers]
    errors = [r for r in results if r.startswith("error")]
    if errors:
        return "error", f"the cell defining `{exercise.name}` raised {errors[-1].removeprefix('error: ')}"
    if any(r.startswith("timeout") or r == "not run" for r in results):
        return "timeout", f"the cell defining `{exercise.name}` ran past the time limit or was not reached"
    return "error", f"`{exercise.name}` is not a function after running the notebook"


# ----------------------------------------------------------------------------------------------
# One notebook: its sandbox, its run (here or in a runner process), its verdicts
# ----------------------------------------------------------------------------------------------


@dataclass
class Task:
    """One student's notebook for one chapter, with where it runs."""

    student: str
    stem: str
    path: str | None
    why: str
    index: int


def _prepare(work: Path, task: Task, base: Sandbox) -> tuple[Path, Sandbox]:
    """The notebook's own folder work/tN (notebooks/, records/, home/, tmp/, results -> the shipped copy),
    belonging to the notebook's own user when we are root, and its sandbox settings."""
    workdir = work / f"t{task.index}"
    for sub in ("notebooks", RECORDS, "home", "tmp"):
        (workdir / sub).mkdir(parents=True)
    if (work / "results").exists():
        (workdir / "results").symlink_to(work / "results", target_is_directory=True)
    sandbox = Sandbox(**{**asdict(base)})
    if base.uid is not None:
        sandbox.uid = base.uid + task.index
        stage = work / f"s{task.index}"
        stage.mkdir(mode=0o700)
        sandbox.stage = str(stage)
        for p in [workdir, *workdir.rglob("*")]:
            os.lchown(p, sandbox.uid, sandbox.uid)
    workdir.chmod(0o700)
    return workdir, sandbox


def run_task(task: Task, work: Path, base: Sandbox, timeout: float, check_timeout: float) -> dict:
    """Run one notebook in its sandbox; a dict of plain data (JSON-able but for the record bytes):
    {"kind": "missing" | "malformed" | "error" | "ran", "message", "outcome", "records", "note", "cells", "nb"}."""
    if task.path is None:
        return {"kind": "malformed" if task.why.startswith("several") else "missing", "message": task.why}
    try:
        nb = read_submission(Path(task.path))
    except ValueError as e:
        return {"kind": "malformed", "message": f"{Path(task.path).name}: {e}"}
    import resource

    exercises = catalog.exercises(task.stem)
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    workdir, sandbox = _prepare(work, task, base)
    sandbox.cpu = sandbox.cpu or int(timeout + 2 * check_timeout * (len(exercises) + 1) + 120)
    salt = secrets.randbelow(2**30)
    try:
        outcome, got, note, cells = _run(nb, exercises, workdir, timeout, check_timeout, sandbox, salt)
    except Exception as e:  # the kernel would not start, or nbclient failed: record it, grade the others
        return {"kind": "error", "message": f"the notebook could not be run: {type(e).__name__}: {str(e)[:200]}"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(work / f"s{task.index}", ignore_errors=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel's CPU time (it was waited for)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return {"kind": "ran", "outcome": outcome, "records": got, "note": note, "cells": cells, "nb": nb, "salt": salt,
            "seconds": time.perf_counter() - t0, "cpu": cpu}


# What a student's own cells (those not shipped in the chapter) may not touch: the grading machinery and
# the ways to hide code. A hit grades the notebook 0 ("error"); the executed notebook shows the cell.
_TAMPERING = [
    (r"mamba_edu\s*\.\s*course|from\s+mamba_edu\s+import\s+course", "the grader's modules"),
    (r"\b_core\b|\b(?:switched_off|library_allowed|_ORIGINAL|_ACTIVE|_LIFTED|_Guarded|Recorder|Replayer|"
     r"_replay_state|_replay_restore|_mamba_edu\w*)\b", "the checks' internals"),
    (r"\bcheck_\w+\s*(?:=(?!=)|\()|\bVerdict\s*\(", "the checks (rebinding or calling one outside its check cell, "
     "or making a verdict)"),
    (r"vnd\.mamba-edu|VERDICT_MIME", "the grader's verdicts"),
    (r"__code__|__globals__|__closure__|__builtins__|\bbuiltins\b|\bsys\s*\.\s*modules\b|\bimportlib\b|"
     r"\b__import__\b", "Python's import and function machinery"),
    (r"\.events\s*\.\s*register|\b(?:pre|post)_run_cell\b|\bregister_post_execute\b|\bset_custom_exc\b",
     "IPython's hooks"),
    (r"\bdisplay\s*=(?!=)|\btorch(?:\s*\.\s*\w+)+\s*=(?!=)", "a library function (monkeypatching)"),
    (r"^\s*(?:def\s+(?:globals|callable|isinstance|getattr|type|print)\s*\(|"
     r"(?:globals|callable|isinstance|getattr|type)\s*=(?!=))", "a builtin (rebinding it)"),
    (r"(?<![\w.])(?:exec|eval|compile)\s*\(|\b(?:base64|codecs|marshal|pickle|ctypes)\b", "hidden code"),
]


def tampering(nb, stem: str) -> str | None:
    """Why the notebook's own cells reach into the grading (None if they do not); shipped cells are not read."""
    import nbformat

    shipped_path = catalog.chapters().get(int(stem[:2]))
    shipped = set()
    if shipped_path is not None:
        shipped = {c.source for c in nbformat.read(shipped_path, as_version=4).cells if c.cell_type == "code"}
    for i, cell in enumerate(nb.cells):
        if (cell.cell_type != "code" or {"grader", "check"} & set(catalog.tags(cell))  # never run as written
                or cell.source in shipped):
            continue
        for pattern, what in _TAMPERING:
            m = re.search(pattern, cell.source, re.M)
            if m:
                line = cell.source.count("\n", 0, m.start()) + 1
                return (f"cell {i + 1}, line {line} reaches into {what} ({m.group(0).strip()!r}): a notebook that "
                        "tampers with the grading is not graded; your instructor can read the executed notebook")
    return None


def judge(task: Task, ran: dict, executed_dir: Path | None = None) -> list[Result]:
    """The grades of one notebook from its run: every verdict computed here, by replaying the checks."""
    from . import replay

    exercises = catalog.exercises(task.stem)
    if ran["kind"] != "ran":
        status = "error" if ran["kind"] == "error" else ran["kind"]
        return [Result(task.student, task.stem, e.name, status, 0, ran["message"]) for e in exercises]
    nb, outcome, note = ran["nb"], ran["outcome"], ran["note"]
    tampered = tampering(nb, task.stem)
    out = []
    for e in exercises:
        got = ran["records"].get(e.name)
        verdict = got
        if isinstance(got, bytes):
            try:
                verdict = replay.verdict(e, replay.load(got), ran.get("salt", 0))
            except replay.RecordError as err:
                verdict = {"exercise": e.name, "found": True, "passed": False, "attempted": True,
                           "message": f"your answers could not be checked: {err}"}
        status, message = _status(e, nb, outcome, verdict)
        if tampered:
            status, message = "error", tampered
        elif note and status in ("timeout", "error") and note not in message:
            message = f"{message} ({note})"
        out.append(Result(task.student, task.stem, e.name, status, POINTS_PER_EXERCISE if status == "passed" else 0,
                          message))
        if isinstance(verdict, dict) and e.name in ran["cells"]:
            _show_verdict(nb.cells[ran["cells"][e.name]], verdict)
    if executed_dir is not None:
        import nbformat

        for cell in nb.cells:  # verdict-shaped outputs a student's own code displayed are not the grader's
            if "grader" not in catalog.tags(cell) and cell.get("outputs"):
                cell.outputs = [o for o in cell.outputs if VERDICT_MIME not in o.get("data", {})]
        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed_dir / f"{task.stem}.ipynb")
    return out


def _show_verdict(cell, verdict: dict) -> None:
    """The grader's verdict as the record cell's last output in the executed notebook (what the student's
    function printed during the check stays above it; any verdict-shaped output it displayed does not)."""
    import nbformat

    text = ("✅" if verdict.get("passed") else "⏳" if not verdict.get("attempted", True) else "❌")
    text += f" {verdict['exercise']}: {verdict.get('message', 'not found')}"
    kept = [o for o in cell.get("outputs", []) if VERDICT_MIME not in o.get("data", {})]
    cell.outputs = kept + [nbformat.v4.new_output("display_data", data={VERDICT_MIME: verdict, "text/plain": text})]


def grade_notebook(student: str, path: Path | None, why: str, stem: str, work: Path, timeout: float,
                   check_timeout: float, executed_dir: Path | None = None, sandbox: Sandbox | None = None,
                   index: int = 0) -> list[Result]:
    """Grade one student's notebook for chapter `stem` (path None: missing, with the reason `why`)."""
    task = Task(student, stem, str(path) if path is not None else None, why, index)
    return judge(task, run_task(task, work, sandbox or Sandbox(), timeout, check_timeout), executed_dir)


# ----------------------------------------------------------------------------------------------
# Runner processes (--jobs N): each runs one notebook and hands back plain data
# ----------------------------------------------------------------------------------------------


def _save_ran(ran: dict, folder: Path) -> None:
    """A run as files: ran.json (plain data), executed.ipynb, one record-NAME.pt per record."""
    import nbformat

    plain = {k: v for k, v in ran.items() if k not in ("nb", "records")}
    if ran["kind"] == "ran":
        plain["outcome"] = {str(i): v for i, v in ran["outcome"].items()}
        plain["records"] = {}
        for name, got in ran["records"].items():
            if isinstance(got, bytes):
                (folder / f"record-{name}.pt").write_bytes(got)
                plain["records"][name] = {"file": f"record-{name}.pt"}
            else:
                plain["records"][name] = got
        nbformat.write(ran["nb"], folder / "executed.ipynb")
    (folder / "ran.json").write_text(json.dumps(plain))


def _load_ran(folder: Path) -> dict:
    import nbformat

    ran = json.loads((folder / "ran.json").read_text())
    if ran["kind"] == "ran":
        ran["outcome"] = {int(i): v for i, v in ran["outcome"].items()}
        ran["records"] = {name: (folder / got["file"]).read_bytes() if isinstance(got, dict) else got
                          for name, got in ran["records"].items()}
        ran["nb"] = nbformat.read(folder / "executed.ipynb", as_version=4)
    return ran


def _serve() -> None:
    """`python -m mamba_edu.course.grade --serve`: a runner that stays up. For each line FOLDER on stdin it
    runs FOLDER/task.json, writes FOLDER/ran.json and answers with the line FOLDER (started once, it saves
    the seconds that importing torch and Jupyter's packages costs, for every notebook)."""
    _preload()
    for line in sys.stdin:
        folder = Path(line.strip())
        try:
            spec = json.loads((folder / "task.json").read_text())
            ran = run_task(Task(**spec["task"]), Path(spec["work"]), Sandbox(**spec["sandbox"]), spec["timeout"],
                           spec["check_timeout"])
        except Exception as e:  # a bug of ours: this notebook is an error, the runner goes on
            ran = {"kind": "error", "message": f"the grader's runner failed: {type(e).__name__}: {str(e)[:200]}"}
        _save_ran(ran, folder)
        print(folder, flush=True)


class _Runner:
    """A `--serve` runner process and the task it is running."""

    def __init__(self, log: Path):
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "mamba_edu.course.grade", "--serve"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         bufsize=1)
        self.task: tuple[Task, Path] | None = None

    def start(self, task: Task, folder: Path) -> None:
        self.task = (task, folder)
        self.proc.stdin.write(f"{folder}\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def _run_all(tasks: list[Task], work: Path, sandbox: Sandbox, timeout: float, check_timeout: float, jobs: int,
             done: Callable[[Task, dict], None]) -> None:
    """Run every task, `jobs` at a time (in `jobs` runner processes when jobs > 1); done(task, ran) in order of
    completion."""
    import selectors

    if jobs <= 1:
        for t in tasks:
            done(t, run_task(t, work, sandbox, timeout, check_timeout))
        return
    control = work / "control"
    control.mkdir(mode=0o700)
    todo = list(tasks)
    runners = [_Runner(control / "runners.log") for _ in range(min(jobs, len(tasks)))]
    sel = selectors.DefaultSelector()
    for r in runners:
        sel.register(r.proc.stdout, selectors.EVENT_READ, r)

    def give(r: _Runner) -> None:
        t = todo.pop(0)
        folder = control / f"t{t.index}"
        folder.mkdir()
        (folder / "task.json").write_text(json.dumps({
            "task": asdict(t), "work": str(work), "sandbox": asdict(sandbox), "timeout": timeout,
            "check_timeout": check_timeout}))
        r.start(t, folder)

    for r in runners:
        if todo:
            give(r)
    while any(r.task for r in runners):
        for key, _ in sel.select(timeout=1.0):
            r = key.data
            line = r.proc.stdout.readline()
            if r.task is None:
                continue
            t, folder = r.task
            r.task = None
            if line:
                try:
                    ran = _load_ran(folder)
                except (OSError, ValueError, KeyError) as e:
                    ran = {"kind": "error", "message": f"the grader's runner failed to hand back ({type(e).__name__})"}
            else:  # the runner died (killed by a notebook, when the grader is not root): start another
                sel.unregister(r.proc.stdout)
                r.proc.wait()
                ran = {"kind": "error", "message": "the grader's runner was killed while it ran this notebook"}
                runners.remove(r)
                r = _Runner(control / "runners.log")
                runners.append(r)
                sel.register(r.proc.stdout, selectors.EVENT_READ, r)
            done(t, ran)
            if todo:
                give(r)
    for r in runners:
        r.close()


# ----------------------------------------------------------------------------------------------
# All students, and the reports
# ----------------------------------------------------------------------------------------------


def _preload() -> None:
    """Import every check (and torch) now, before any student code runs: the verdicts are computed by this
    code as it was when grading began."""
    import importlib

    from . import replay  # noqa: F401

    for stem in (p.stem for p in catalog.chapters().values()):
        try:
            for e in catalog.exercises(stem):
                importlib.import_module(e.module)
        except (FileNotFoundError, ValueError):
            continue


def isolation(submissions: Path, out: Path, memory_gb: float = 8) -> tuple[Sandbox, str]:
    """The sandbox this machine allows, and one line that says what it is."""
    import random

    base = Sandbox(memory=int(memory_gb * 2**30))
    if os.geteuid() != 0:
        return base, ("isolation: CPU, memory and file-size limits only (not root: student code runs as your user "
                      "and could read or write what you can; grade as root or in a container)")
    from .sandbox import probe

    from .sandbox import _closed_ancestors

    keep = sorted({str(Path(p).resolve()) for p in [sys.prefix, sys.base_prefix, catalog.ROOT, *sys.path]
                   if p and Path(p).is_dir()})
    if not probe()["mount_namespace"]:
        if _closed_ancestors(keep):  # another user could not even start Python here
            return base, ("isolation: CPU, memory and file-size limits only (no mount namespace here, and Python "
                          f"is below {sorted(_closed_ancestors(keep))[0]}, which other users cannot enter)")
        base.uid = 200_000 + random.randrange(10_000) * 1_000
        return base, ("isolation: a user of its own per notebook and resource limits (no mount namespace here: "
                      "the submissions folder is protected only by its permissions)")
    base.uid = 200_000 + random.randrange(10_000) * 1_000  # a fresh range of users for this run
    base.hide = [str(Path(p).resolve()) for p in (submissions, out, catalog.SOLUTIONS) if Path(p).exists()]
    base.keep = keep
    return base, ("isolation: a user of its own per notebook, the submissions, reports and solutions hidden, "
                  "resource limits")


def grade(submissions: Path, out: Path, lab: int | None = None, chapters: list[int] | None = None,
          timeout: float = 300, check_timeout: float = 60, keep_executed: bool = True, jobs: int = 1,
          progress: Callable[[str], None] = print) -> list[Result]:
    """Grade every student of `submissions` (`jobs` notebooks at a time); then write grades.csv, totals.csv and
    summary.md into `out`, once every run is over and whatever a student left running is killed."""
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"course grade: {submissions} is not a folder of student folders")
    people = students(submissions)
    if not people:
        raise ValueError(f"course grade: {submissions} has no student folders (one folder per student, named after them)")
    stems = expected_chapters(submissions, lab, chapters)
    if not stems:
        raise ValueError("course grade: no course notebooks found in the submissions; name the chapters with --chapters or --lab")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"course grade: --jobs must be a whole number >= 1, got {jobs!r}")
    loose = sorted(p.name for p in submissions.glob("*.ipynb"))
    if loose:
        progress(f"ignored (not in a student folder): {', '.join(loose)}")
    out.mkdir(parents=True, exist_ok=True)
    _preload()
    sandbox, how = isolation(submissions, out)
    progress(how)
    subreaper = _become_subreaper()
    before = set(_descendants(os.getpid()))
    tasks = []
    for person in people:
        for stem in stems:
            path, why = find_notebook(person, stem)
            tasks.append(Task(person.name, stem, str(path) if path is not None else None, why, len(tasks)))
    results: dict[int, list[Result]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mamba-edu-grade-") as tmp:
        work = Path(tmp)
        work.chmod(0o711)  # each notebook's user may pass through to its own folder, not list the others
        if catalog.RESULTS.exists():
            shutil.copytree(catalog.RESULTS, work / "results")
            for p in [work / "results", *(work / "results").rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)

        def done(task: Task, ran: dict) -> None:
            rows = judge(task, ran, out / "executed" / task.student if keep_executed else None)
            results[task.index] = rows
            marks = sum(r.points for r in rows)
            took = f" in {ran['seconds']:.0f} s ({ran['cpu']:.0f} CPU-s in the kernel)" if "seconds" in ran else ""
            progress(f"{task.student} · {task.stem}: {marks}/{len(rows) * POINTS_PER_EXERCISE} "
                     f"({', '.join(r.status for r in rows)}){took}")

        _run_all(tasks, work, sandbox, timeout, check_timeout, jobs, done)
        if sandbox.uid is not None:
            for t in tasks:
                _kill_user(sandbox.uid + t.index)
    killed = _sweep_new(before)
    if subreaper:
        _become_subreaper(False)
    if killed:
        progress(f"killed {killed} process(es) that students' notebooks left running")
    if not subreaper:
        progress("note: processes a student detached may have outlived the run (no subreaper on this system)")
    ordered = [r for i in sorted(results) for r in results[i]]
    write_reports(ordered, out, seconds=time.perf_counter() - t0)
    progress(f"wrote {out / 'grades.csv'}, {out / 'totals.csv'} and {out / 'summary.md'}")
    return ordered


def _sweep_new(before: set[int]) -> int:
    """SIGKILL every process below the grader that was not there when grading began."""
    killed = 0
    for _ in range(20):
        left = [p for p in _descendants(os.getpid()) if p not in before]
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
        _reap()
    return killed


def _reap() -> None:
    """Collect the exit status of re-parented processes (zombies) that are not ours to wait for otherwise."""
    for pid in [p for p in _descendants(os.getpid())]:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def totals(results: list[Result]) -> dict[str, tuple[int, int]]:
    """{student: (points, maximum)}."""
    out: dict[str, tuple[int, int]] = {}
    for r in results:
        got, most = out.get(r.student, (0, 0))
        out[r.student] = (got + r.points, most + POINTS_PER_EXERCISE)
    return out


def write_reports(results: list[Result], out: Path, seconds: float | None = None) -> None:
    """grades.csv (one row per student and exercise), totals.csv (one row per student), summary.md."""
    fields = list(Result.__dataclass_fields__)
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(asdict(r) for r in results)
    columns = list(dict.fromkeys(f"{r.notebook}:{r.exercise}" for r in results))
    by_student: dict[str, dict[str, str]] = {}
    for r in results:
        by_student.setdefault(r.student, {})[f"{r.notebook}:{r.exercise}"] = r.status
    tot = totals(results)
    with open(out / "totals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "points", "max_points", "percent"] + columns)
        for student, (got, most) in tot.items():
            w.writerow([student, got, most, f"{100 * got / most:.1f}" if most else "0.0"]
                       + [by_student[student].get(c, "") for c in columns])
    lines = ["# Grades", ""]
    if seconds is not None:
        lines += [f"{len(tot)} students, {len(columns)} exercises, graded in {seconds:.0f} s.", ""]
    lines += ["| student | points | " + " | ".join(sorted({r.notebook for r in results})) + " |",
              "|---|---|" + "---|" * len({r.notebook for r in results})]
    for student, (got, most) in tot.items():
        per = []
        for stem in sorted({r.notebook for r in results}):
            rows = [r for r in results if r.student == student and r.notebook == stem]
            per.append(f"{sum(r.points for r in rows)}/{len(rows) * POINTS_PER_EXERCISE}")
        lines.append(f"| {student} | {got}/{most} | " + " | ".join(per) + " |")
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines += ["", "Statuses: " + ", ".join(f"{s} {n}" for s, n in counts.items() if n) + ".", ""]
    for student in tot:
        lines += [f"## {student}", ""]
        for r in (r for r in results if r.student == student):
            text = r.message.replace("\n", " ")
            lines.append(f"- {r.notebook} · `{r.exercise}`: **{r.status}**" + (f": {text}" if r.status != "passed" else ""))
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        sys.exit("usage: python -m mamba_edu.course.grade --serve (the grader's runner; use `mamba-edu course grade`)")
