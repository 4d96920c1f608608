"""The syllabus (docs/course/syllabus.yml) and the Markdown made from it: the syllabus page and one handout per lab.

Glossary
    Syllabus    the lectures and labs of the module, read from docs/course/syllabus.yml and validated
    Session     one lecture or lab: its chapters (notebook numbers), app pages, plan or schedule (minutes)
    Objective   a course objective of a lecture, mapped to the chapters and app pages that teach it
    chapter info  what a notebook says about itself: its title, learning objectives and prerequisites,
                read from its first cell (so the syllabus never holds a second copy of them)

The Markdown in docs/course/ (syllabus.md, labs/lab-N.md) is generated: edit syllabus.yml and run
`python -m mamba_edu.course.syllabus` (add `--check` to only report whether the files are current).
Exercise lists and points come from notebooks/solutions/ (catalog.exercises), page titles from the
app's PAGES list, chapter titles and objectives from the notebooks.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import catalog

SYLLABUS = catalog.COURSE_DOCS / "syllabus.yml"
APP_COMMON = catalog.ROOT / "app" / "_common.py"
POINTS_PER_EXERCISE = 1

STATUS_MEANINGS = {  # the grader's statuses (mamba_edu.course.grade), as the handouts explain them
    "passed": "the check accepted the function (1 point)",
    "wrong": "the function ran and returned a wrong answer; the check's message says where",
    "not attempted": "the stub is still `...`",
    "error": "the function's cell or the function itself raised an exception (a syntax error, a crash)",
    "timeout": "the notebook or the check ran past its time limit (an infinite loop, a far too slow answer)",
    "missing": "no such notebook in the submission, or no cell defines the function (renamed or deleted)",
    "malformed": "the file is not a readable notebook (broken JSON, not nbformat 4)",
}


@dataclass(frozen=True)
class Objective:
    text: str
    chapters: tuple[int, ...]
    pages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Session:
    kind: str  # "lecture" or "lab"
    number: int
    title: str
    week: int
    chapters: tuple[int, ...]
    pages: tuple[str, ...]
    plan: tuple[tuple[int, str], ...]  # (minutes, activity): a lecture's plan or a lab's schedule
    objectives: tuple[Objective, ...] = ()
    focus: tuple[int, ...] = ()
    before: str = ""
    due: str = ""
    after_lecture: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind.capitalize()} {self.number}"


@dataclass(frozen=True)
class Syllabus:
    title: str
    length: str
    lecture_minutes: int
    lab_minutes: int
    lectures: tuple[Session, ...]
    labs: tuple[Session, ...]
    notes: list[str] = field(default_factory=list, compare=False)  # chapters named but not (yet) in notebooks/

    def lab(self, number: int) -> Session:
        for lab in self.labs:
            if lab.number == number:
                return lab
        raise ValueError(f"syllabus: no lab {number}; the labs are {[lab.number for lab in self.labs]}")

    def lecture(self, number: int) -> Session:
        for lecture in self.lectures:
            if lecture.number == number:
                return lecture
        raise ValueError(f"syllabus: no lecture {number}; the lectures are {[lec.number for lec in self.lectures]}")


# ----------------------------------------------------------------------------------------------
# Reading and validating
# ----------------------------------------------------------------------------------------------


def app_pages() -> dict[str, str]:
    """{page file: title} from the app's PAGES list (app/_common.py, read with ast: no streamlit import)."""
    tree = ast.parse(APP_COMMON.read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if getattr(target, "id", None) == "PAGES":
            return {call.args[0].value: call.args[1].value for call in node.value.elts}
    raise ValueError(f"no PAGES list in {APP_COMMON}")


def _ints(value, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"syllabus: {where} must be a list of chapter numbers; got {value!r}")
    return tuple(value)


def _plan(value, where: str, minutes: int) -> tuple[tuple[int, str], ...]:
    rows = []
    for row in value or []:
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], int) and isinstance(row[1], str)):
            raise ValueError(f"syllabus: each row of {where} must be [minutes, activity]; got {row!r}")
        rows.append((row[0], row[1]))
    total = sum(m for m, _ in rows)
    if total != minutes:
        raise ValueError(f"syllabus: {where} must add up to {minutes} minutes; got {total}")
    return tuple(rows)


def _pages(value, where: str, known: dict[str, str]) -> tuple[str, ...]:
    pages = tuple(value or [])
    unknown = [p for p in pages if p not in known]
    if unknown:
        raise ValueError(f"syllabus: {where} names app pages {unknown} that are not in app/_common.py's PAGES "
                         f"({sorted(known)})")
    return pages


def load(path: Path = SYLLABUS) -> Syllabus:
    """Read and validate the syllabus; ValueError says what is wrong and where."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    known = app_pages()
    lec_min, lab_min = int(data["lecture_minutes"]), int(data["lab_minutes"])
    lectures, labs = [], []
    for i, raw in enumerate(data["lectures"], 1):
        where = f"lecture {i}"
        objectives = tuple(Objective(o["text"], _ints(o.get("chapters", []), f"{where}'s objective chapters"),
                                     _pages(o.get("pages"), f"{where}'s objective", known))
                           for o in raw.get("objectives", []))
        lecture = Session("lecture", i, raw["title"], int(raw["week"]), _ints(raw["chapters"], f"{where}'s chapters"),
                          _pages(raw.get("pages"), where, known), _plan(raw.get("plan"), f"{where}'s plan", lec_min),
                          objectives=objectives)
        for o in objectives:
            if not set(o.chapters) <= set(lecture.chapters):
                raise ValueError(f"syllabus: {where} has an objective on chapters {list(o.chapters)}, "
                                 f"not all among its chapters {list(lecture.chapters)}")
        lectures.append(lecture)
    for i, raw in enumerate(data["labs"], 1):
        where = f"lab {i}"
        lab = Session("lab", i, raw["title"], int(raw["week"]), _ints(raw["chapters"], f"{where}'s chapters"),
                      _pages(raw.get("pages"), where, known), _plan(raw.get("schedule"), f"{where}'s schedule", lab_min),
                      focus=_ints(raw.get("focus", []), f"{where}'s focus"), before=raw.get("before", ""),
                      due=raw.get("due", ""), after_lecture=raw.get("after_lecture"))
        if not set(lab.focus) <= set(lab.chapters):
            raise ValueError(f"syllabus: {where}'s focus {list(lab.focus)} must be among its chapters {list(lab.chapters)}")
        if lab.after_lecture is not None and not 1 <= lab.after_lecture <= len(lectures):
            raise ValueError(f"syllabus: {where} comes after lecture {lab.after_lecture}, which does not exist")
        labs.append(lab)
    present = catalog.chapters()
    named = sorted({c for s in lectures + labs for c in s.chapters})
    notes = [f"chapter {c:02d} is in the syllabus but not in notebooks/ yet: it is left out until it exists"
             for c in named if c not in present]
    return Syllabus(data["title"], data["length"], lec_min, lab_min, tuple(lectures), tuple(labs), notes)


# ----------------------------------------------------------------------------------------------
# What each notebook says about itself
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChapterInfo:
    chapter: int
    file: str
    title: str
    objectives: tuple[str, ...]
    prerequisites: str


def chapter_info(chapter: int) -> ChapterInfo | None:
    """Title, learning objectives and prerequisites from the first cell of notebooks/NN_*.ipynb (None if absent)."""
    path = catalog.chapters().get(chapter)
    if path is None:
        return None
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    title = first.strip().splitlines()[0].lstrip("#").strip()
    title = re.sub(r"^\d\d\s*·\s*", "", title)
    block = re.search(r"\*\*Learning objectives\.\*\*(.*?)(?=\n\*\*|\Z)", first, re.S)
    bullets = []
    for line in (block.group(1) if block else "").splitlines():
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif line.startswith(" ") and bullets:
            bullets[-1] += " " + line.strip()
    pre = re.search(r"\*\*Prerequisites\.\*\*(.*?)(?=\n\n|\n\*\*|\Z)", first, re.S)
    prerequisites = " ".join(pre.group(1).split()) if pre else ""
    return ChapterInfo(chapter, path.name, title, tuple(bullets), prerequisites)


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def _chapter_link(chapter: int, notebooks_href: str) -> str:
    info = chapter_info(chapter)
    if info is None:
        return f"chapter {chapter:02d} (in preparation)"
    return f"[{chapter:02d} · {info.title}]({notebooks_href}{info.file})"


def _pages_text(pages, titles) -> str:
    return ", ".join(f"{titles[p]} (`app/pages/{p}`)" for p in pages) or "none"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def lab_exercises(lab: Session) -> list[catalog.Exercise]:
    """The graded exercises of a lab: every exercise of every chapter it names that exists."""
    present = catalog.chapters()
    return [e for c in lab.chapters if c in present for e in catalog.exercises(present[c].stem)]


def _when(x: Session) -> tuple:
    """Sort key of the schedule: by week; a lab right after the lecture it follows."""
    return (x.week, x.number, 0) if x.kind == "lecture" else (x.week, x.after_lecture or 0, 1)


def render_syllabus(s: Syllabus, notebooks_href: str = "../../notebooks/", labs_href: str = "labs/") -> str:
    titles = app_pages()
    lines = [f"# {s.title}", "",
             "<!-- Generated from docs/course/syllabus.yml by `python -m mamba_edu.course.syllabus`: edit the YAML. -->", "",
             f"A {s.length} module: {len(s.lectures)} lectures of {s.lecture_minutes} minutes and {len(s.labs)} labs of "
             f"{s.lab_minutes} minutes. Every lecture has slides built from its notebooks (`mamba-edu course build`); "
             "every lab is graded from the students' notebooks (`mamba-edu course grade`). Prerequisites and setup: "
             "[prerequisites.md](prerequisites.md), [setup.md](setup.md).", "", "## Schedule", ""]
    rows = []
    for sess in sorted(s.lectures + s.labs, key=_when):
        what = f"[{sess.name}]({labs_href}lab-{sess.number}.md)" if sess.kind == "lab" else sess.name
        rows.append([str(sess.week), what, sess.title, ", ".join(f"{c:02d}" for c in sess.chapters),
                     _pages_text(sess.pages, titles)])
    lines += _table(["week", "session", "topic", "chapters", "app pages"], rows)
    for lec in s.lectures:
        lines += ["", f"## {lec.name} · {lec.title}", "",
                  f"Week {lec.week}. Chapters: {', '.join(_chapter_link(c, notebooks_href) for c in lec.chapters)}. "
                  f"Slides: `slides/lecture-{lec.number}.slides.html`.", "", "**Objectives.** After this lecture, students can", ""]
        lines += _table(["objective", "notebook", "app page"],
                        [[o.text, ", ".join(_chapter_link(c, notebooks_href) for c in o.chapters),
                          _pages_text(o.pages, titles) if o.pages else "—"] for o in lec.objectives])
        lines += ["", f"**Plan ({s.lecture_minutes} minutes).**", ""]
        lines += _table(["minutes", "activity"], [[str(m), a] for m, a in lec.plan])
        lines += ["", "**The notebooks' own objectives** (from their first cells):", ""]
        for c in lec.chapters:
            info = chapter_info(c)
            if info is None:
                lines.append(f"- chapter {c:02d}: in preparation")
                continue
            lines.append(f"- {_chapter_link(c, notebooks_href)}")
            lines += [f"  - {b}" for b in info.objectives]
    lines += ["", "## Labs and grading", ""]
    rows = [[f"[{lab.name}]({labs_href}lab-{lab.number}.md)", lab.title, ", ".join(f"{c:02d}" for c in lab.chapters),
             str(len(lab_exercises(lab)) * POINTS_PER_EXERCISE), lab.due] for lab in s.labs]
    lines += _table(["lab", "topic", "graded chapters", "points", "due"], rows)
    lines += ["", f"Each exercise that passes its check earns {POINTS_PER_EXERCISE} point; a lab's grade is its points over "
              "the maximum. The handouts say what students submit and how the grader treats broken submissions."]
    if s.notes:
        lines += ["", "**Not yet available:** " + "; ".join(s.notes) + "."]
    return "\n".join(lines) + "\n"


def render_lab(s: Syllabus, number: int, notebooks_href: str = "../../../notebooks/") -> str:
    lab, titles = s.lab(number), app_pages()
    exercises = lab_exercises(lab)
    present = catalog.chapters()
    lines = [f"# Lab {lab.number} · {lab.title}", "",
             "<!-- Generated from docs/course/syllabus.yml by `python -m mamba_edu.course.syllabus`: edit the YAML. -->", "",
             f"Week {lab.week}" + (f", after lecture {lab.after_lecture}" if lab.after_lecture else "") +
             f". {s.lab_minutes} minutes in the lab; due {lab.due}.", "",
             "**Chapters:** " + ", ".join(_chapter_link(c, notebooks_href) for c in lab.chapters) + ".  ",
             "**In the session:** " + ", ".join(f"chapter {c:02d}" for c in lab.focus) + "; the other chapters' exercises "
             "are done before or after it.  ", f"**App pages to keep open:** {_pages_text(lab.pages, titles)}.", "",
             "## Before the lab", "", lab.before, "", f"## Timings ({s.lab_minutes} minutes)", ""]
    lines += _table(["minutes", "activity"], [[str(m), a] for m, a in lab.plan])
    lines += ["", "## Exercises", "",
              "Each exercise is a function you write in the cell tagged `exercise` of its notebook (the stub's body is `...`); "
              "the cell below it runs its check, which tells you precisely what is wrong or that it is right. Keep the "
              "function's name: the grader finds your answer by that name.", ""]
    lines += _table(["chapter", "function you write", "check", "points"],
                    [[f"{e.chapter:02d}", f"`{e.name}`", f"`{e.check}`", str(POINTS_PER_EXERCISE)] for e in exercises])
    missing = [c for c in lab.chapters if c not in present]
    if missing:
        lines += ["", "Not graded yet (in preparation): " + ", ".join(f"chapter {c:02d}" for c in missing) + "."]
    lines += ["", "## What you submit", "",
              "Your notebooks, saved from JupyterLab after a last *Restart Kernel and Run All Cells*, one file per chapter, "
              "with the names they came with, in one folder named after you:", "", "```"]
    lines += [f"<your name>/{present[c].name}" for c in lab.chapters if c in present]
    lines += ["```", "", "Do not rename the exercise functions or delete their cells. Outputs may stay in the files; "
              "the grader runs your notebooks again and ignores them.", "",
              "## How it is graded", "",
              f"`mamba-edu course grade SUBMISSIONS --lab {lab.number}` runs each notebook of each student in a fresh "
              "Python kernel of its own, with a time limit per notebook and per check, then calls every exercise's check "
              "on your function (found by its name) inside that kernel. Each exercise gets one status:", ""]
    lines += _table(["status", "meaning"], [[k, v] for k, v in STATUS_MEANINGS.items()])
    lines += ["", f"Points: {POINTS_PER_EXERCISE} per passed exercise, {len(exercises) * POINTS_PER_EXERCISE} in all for this lab. "
              "A broken cell costs only the exercises that depend on it: the grader runs every other cell and checks "
              "every other exercise. The grader puts its own check cells in the place of yours: they run the same checks at the same point of the notebook."]
    return "\n".join(lines) + "\n"


def documents(s: Syllabus | None = None) -> dict[str, str]:
    """{path under docs/course/: text} of the generated Markdown."""
    s = s or load()
    docs = {"syllabus.md": render_syllabus(s)}
    for lab in s.labs:
        docs[f"labs/lab-{lab.number}.md"] = render_lab(s, lab.number)
    return docs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mamba_edu.course.syllabus",
                                description="Regenerate docs/course/syllabus.md and labs/lab-N.md from syllabus.yml.")
    p.add_argument("--check", action="store_true", help="only report whether the files are current (exit 1 if not)")
    args = p.parse_args(argv)
    s = load()
    for note in s.notes:
        print(f"note: {note}", file=sys.stderr)
    stale = []
    for rel, text in documents(s).items():
        path = catalog.COURSE_DOCS / rel
        if path.exists() and path.read_text() == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "out of date" if args.check else "written"
    print(f"docs/course: {', '.join(stale) or 'nothing'} {verb}" if stale else "docs/course: all current")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
