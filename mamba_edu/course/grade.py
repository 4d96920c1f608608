"""`mamba-edu course grade SUBMISSIONS`: run every student's notebooks and grade each exercise.

Glossary
    SUBMISSIONS   a folder with one folder per student (its name is the student's), holding that student's
                  notebooks NN_name.ipynb (found anywhere below it by the chapter number they start with)
    expected      the chapters to grade: `--lab N` (from the syllabus), `--chapters 2 6`, or by default
                  every chapter any student handed in
    verdict cell  a cell of the grader's that takes the place of the student's `check` cell of an exercise
                  (or is appended when that cell is gone): it looks the function up by name in the kernel,
                  calls the exercise's check on it, and shows the verdict as display data of the type
                  VERDICT_MIME; the grader reads those outputs (plain JSON), nothing else
    status        passed · wrong · not attempted · error · timeout · missing · malformed (one per exercise)

Isolation: each notebook runs in a kernel of its own (a separate process, over IPC sockets in a temporary
directory), in a fresh working folder `notebooks/` beside a copy of the shipped `results/`. The grader reads
the notebook's JSON and the kernel's messages; it never imports, unpickles or evaluates anything from a
submission. This is isolation from the grader, not a sandbox: student code runs with the grader's user
rights, so grade untrusted submissions in a container or as an unprivileged user (docs/course/README.md).

Time limits: the student's cells share `timeout` seconds per notebook (a cell still running when it is spent
is interrupted, and later cells are not run); each verdict cell has `check_timeout` seconds. A kernel that
does not recover from an interrupt is shut down and the exercises left are marked `timeout`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import catalog
from .syllabus import POINTS_PER_EXERCISE, STATUS_MEANINGS

VERDICT_MIME = "application/vnd.mamba-edu.verdict+json"
STATUSES = tuple(STATUS_MEANINGS)
_VERDICT_SOURCE = '''\
# grader: the check of `{name}` ({module}.{check})
def _mamba_edu_verdict():
    import importlib
    from IPython.display import display
    fn = globals().get({name!r})
    report = {{"exercise": {name!r}, "found": callable(fn)}}
    if callable(fn):
        v = getattr(importlib.import_module({module!r}), {check!r})(fn, quiet=True)
        report.update(passed=bool(v.passed), attempted=bool(v.attempted), message=str(v.message))
        print(v)
    display({{{mime!r}: report}}, raw=True)
_mamba_edu_verdict()
'''


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


def _verdict_cell(exercise: catalog.Exercise):
    import nbformat

    src = _VERDICT_SOURCE.format(name=exercise.name, module=exercise.module, check=exercise.check, mime=VERDICT_MIME)
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


def _run(nb, exercises, workdir: Path, timeout: float, check_timeout: float) -> tuple[dict, dict, str]:
    """Run the student's cells in a fresh kernel, with the grader's verdict cells in place of their checks.

    Each exercise is checked where the notebook checks it (its `check` cell is replaced by a verdict cell):
    a later cell may rebind the name (chapter 07 puts the library's `combine` back). An exercise whose check
    cell is gone, or whose function was not defined there yet, is checked again at the end. The student's
    cells share `timeout` seconds; each verdict cell has `check_timeout`.

    Returns ({cell index: "ok" | "error: …" | "timeout" | "not run"}, {exercise name: verdict dict or
    "timeout" | "error: …"}, a note on the kernel ("" when all went well)).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .kernel import kernel_env, notebook_client

    by_name = {e.name: e for e in exercises}
    in_place = _check_positions(nb, exercises)
    for name, i in in_place.items():
        nb.cells[i] = _verdict_cell(by_name[name])
    placed = {i: name for name, i in in_place.items()}
    outcome, verdicts, note = {}, {}, ""
    client = notebook_client(nb, workdir / "notebooks", workdir, timeout=None, allow_errors=True)
    with client.setup_kernel(cleanup_kc=True, env=kernel_env()):
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
                hung, note = True, "the kernel died (the notebook crashed it or used up the memory)"
                return "error: the kernel died"
            last_timed_out = False
            err = _cell_error(nb.cells[index])
            return f"error: {err}" if err else "ok"

        def verdict(index: int):
            if hung:  # not checked: the kernel is gone
                return ("timeout: " if "respond" in note else "error: ") + note
            status = run_cell(index, check_timeout)
            data = [o["data"][VERDICT_MIME] for o in nb.cells[index].get("outputs", [])
                    if VERDICT_MIME in o.get("data", {})]
            if status == "ok":
                return data[0] if data else "error: the check reported no verdict"
            return status

        for i, cell in enumerate(list(nb.cells)):
            if cell.cell_type != "code" or ("check" in catalog.tags(cell) and i not in placed):
                continue
            if i in placed:
                if "not run" not in outcome.values():  # else it runs at the end, if time allows
                    verdicts[placed[i]] = verdict(i)
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
            v = verdicts.get(e.name)
            if v is None or (isinstance(v, dict) and not v.get("found")):
                nb.cells.append(_verdict_cell(e))
                verdicts[e.name] = verdict(len(nb.cells) - 1)
        if hung:
            try:
                client.km.shutdown_kernel(now=True)
            except Exception:  # already dead
                pass
    return outcome, verdicts, note


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


def grade_notebook(student: str, path: Path | None, why: str, stem: str, work: Path,
                   timeout: float, check_timeout: float, executed_dir: Path | None = None) -> list[Result]:
    """Grade one student's notebook for chapter `stem` (path None: missing, with the reason `why`)."""
    exercises = catalog.exercises(stem)

    def every(status: str, message: str) -> list[Result]:
        return [Result(student, stem, e.name, status, 0, message) for e in exercises]

    if path is None:
        return every("malformed" if why.startswith("several") else "missing", why)
    try:
        nb = read_submission(path)
    except ValueError as e:
        return every("malformed", f"{path.name}: {e}")
    workdir = Path(tempfile.mkdtemp(prefix="g-", dir=work))
    (workdir / "notebooks").mkdir()
    if catalog.RESULTS.exists():
        (workdir / "results").symlink_to(work / "results", target_is_directory=True)
    try:
        outcome, verdicts, note = _run(nb, exercises, workdir, timeout, check_timeout)
    except Exception as e:  # the kernel would not start, or nbclient failed: record it, grade the others
        return every("error", f"the notebook could not be run: {type(e).__name__}: {str(e)[:200]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if executed_dir is not None:
        import nbformat

        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed_dir / f"{stem}.ipynb")
    out = []
    for e in exercises:
        status, message = _status(e, nb, outcome, verdicts.get(e.name))
        if note and status in ("timeout", "error") and note not in message:
            message = f"{message} ({note})"
        out.append(Result(student, stem, e.name, status, POINTS_PER_EXERCISE if status == "passed" else 0, message))
    return out


# ----------------------------------------------------------------------------------------------
# All students, and the reports
# ----------------------------------------------------------------------------------------------


def grade(submissions: Path, out: Path, lab: int | None = None, chapters: list[int] | None = None,
          timeout: float = 300, check_timeout: float = 60, keep_executed: bool = True,
          progress: Callable[[str], None] = print) -> list[Result]:
    """Grade every student of `submissions`; write grades.csv, totals.csv and summary.md into `out`."""
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"course grade: {submissions} is not a folder of student folders")
    people = students(submissions)
    if not people:
        raise ValueError(f"course grade: {submissions} has no student folders (one folder per student, named after them)")
    stems = expected_chapters(submissions, lab, chapters)
    if not stems:
        raise ValueError("course grade: no course notebooks found in the submissions; name the chapters with --chapters or --lab")
    loose = sorted(p.name for p in submissions.glob("*.ipynb"))
    if loose:
        progress(f"ignored (not in a student folder): {', '.join(loose)}")
    out.mkdir(parents=True, exist_ok=True)
    results, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mamba-edu-grade-") as tmp:
        work = Path(tmp)
        if catalog.RESULTS.exists():
            shutil.copytree(catalog.RESULTS, work / "results")
        for person in people:
            for stem in stems:
                t1 = time.perf_counter()
                path, why = find_notebook(person, stem)
                rows = grade_notebook(person.name, path, why, stem, work, timeout, check_timeout,
                                      out / "executed" / person.name if keep_executed else None)
                results += rows
                marks = sum(r.points for r in rows)
                progress(f"{person.name} · {stem}: {marks}/{len(rows) * POINTS_PER_EXERCISE} "
                         f"({', '.join(r.status for r in rows)}) in {time.perf_counter() - t1:.1f} s")
    write_reports(results, out, seconds=time.perf_counter() - t0)
    progress(f"wrote {out / 'grades.csv'}, {out / 'totals.csv'} and {out / 'summary.md'}")
    return results


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
