"""`mamba-edu course build OUT` and `mamba-edu course grade SUBMISSIONS` (added to the `mamba-edu` command).

    mamba-edu course build OUT [--parts student instructor slides] [--lectures 1 2] [--no-execute]
    mamba-edu course grade SUBMISSIONS [--out grades] [--lab N | --chapters 2 6] [--timeout 300] [--check-timeout 60] [--jobs N]

The work is done in mamba_edu.course.build and .grade, imported only when a subcommand runs.
Arguments are checked here first (mamba_edu.cliargs): a bad one is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..cliargs import BadArgument, float_in, in_dir, int_in, nonempty, out_dir

MAX_SECONDS = 86400.0  # a day: longer is a typo, and nbclient's and the grader's clocks need a finite limit


def check_build(args: argparse.Namespace) -> None:
    if args.lectures is None:
        return
    if "slides" not in args.parts:
        raise BadArgument("argument --lectures: chooses which slides to build; not allowed without 'slides' in --parts")
    from .syllabus import load

    have = [lec.number for lec in load().lectures]
    bad = [n for n in args.lectures if n not in have]
    if bad:
        raise BadArgument(f"argument --lectures: expected lecture numbers among {have}; got {bad}")


def cmd_build(args: argparse.Namespace) -> int:
    from . import build

    t0 = time.perf_counter()
    try:
        report = build.build(Path(args.out), parts=tuple(args.parts), lectures=args.lectures, execute=not args.no_execute,
                             timeout=args.timeout, reveal_prefix=args.reveal_prefix, mathjax_url=args.mathjax_url)
    except ValueError as e:
        sys.exit(f"mamba-edu course build: {e}")
    print(f"built {len(report.written)} files into {report.out} in {time.perf_counter() - t0:.0f} s")
    return 0


def check_grade(args: argparse.Namespace) -> None:
    subs, out = args.submissions.resolve(), args.out.resolve()
    if out == subs or subs in out.parents:
        raise BadArgument(f"argument --out: expected a folder outside SUBMISSIONS (it would be graded as a student "
                          f"next time); got {str(args.out)!r}")
    if args.lab is not None:
        from .syllabus import load

        labs = [lab.number for lab in load().labs]
        if args.lab not in labs:
            raise BadArgument(f"argument --lab: expected a lab of the syllabus, one of {labs}; got {args.lab}")
    if args.chapters:
        from .catalog import chapters

        have = sorted(chapters())
        bad = [c for c in args.chapters if c not in have]
        if bad:
            raise BadArgument(f"argument --chapters: expected chapters with an exercise notebook, among {have}; "
                              f"got {bad}")


def cmd_grade(args: argparse.Namespace) -> int:
    from . import grade

    try:
        grade.grade(Path(args.submissions), Path(args.out), lab=args.lab, chapters=args.chapters, timeout=args.timeout,
                    check_timeout=args.check_timeout, keep_executed=not args.no_executed, jobs=args.jobs)
    except ValueError as e:  # what the grader finds in SUBMISSIONS (no student folders, no notebooks) before it runs any
        args.parser.error(f"argument SUBMISSIONS: {str(e).removeprefix('course grade: ')}")
    return 0


def add_course_parser(sub) -> None:
    """Add `course build` and `course grade` to the `mamba-edu` command's subparsers."""
    c = sub.add_parser("course", help="build the course kit (student notebooks, instructor pack, slides) or grade a lab",
                       description="The course module kit: see docs/course/README.md.")
    csub = c.add_subparsers(dest="course_command", required=True)
    b = csub.add_parser("build", help="student notebooks, instructor pack and lecture slides into OUT",
                        description="Build OUT/student (notebooks with stubs, no outputs), OUT/instructor (reference "
                                    "solutions in the exercise cells, notes) and OUT/slides (reveal.js, one deck per lecture, "
                                    "from the notebooks' slide cells after running them). Works offline.")
    b.add_argument("out", metavar="OUT", type=out_dir, help="output folder")
    b.add_argument("--parts", nargs="+", default=["student", "instructor", "slides"],
                   choices=["student", "instructor", "slides"], help="what to build (default: all)")
    b.add_argument("--lectures", nargs="+", type=int_in(1), help="only these lectures' slides (default: all)")
    b.add_argument("--no-execute", action="store_true",
                   help="do not run the notebooks for the slides: decks show code instead of figures (fast)")
    b.add_argument("--timeout", type=int_in(1, int(MAX_SECONDS)), default=600,
                   help="seconds per cell when running notebooks for the slides")
    b.add_argument("--reveal-prefix", type=nonempty, help="where the decks load reveal.js from (default: nbconvert's CDN URL)")
    b.add_argument("--mathjax-url", type=nonempty, help="where the decks load MathJax from (default: nbconvert's CDN URL)")
    b.set_defaults(func=cmd_build, check=check_build, parser=b)
    g = csub.add_parser("grade", help="run and grade every student's notebooks",
                        description="SUBMISSIONS holds one folder per student with their notebooks. Each notebook runs "
                                    "in a kernel of its own with a time limit; each exercise is checked by name. Writes "
                                    "grades.csv, totals.csv, summary.md and executed/ into --out.")
    g.add_argument("submissions", metavar="SUBMISSIONS", type=in_dir, help="folder of student folders")
    g.add_argument("--out", type=out_dir, default="grades", help="where the reports go (default: ./grades)")
    which = g.add_mutually_exclusive_group()
    which.add_argument("--lab", type=int_in(1), help="grade the chapters of this lab (syllabus.yml)")
    which.add_argument("--chapters", nargs="+", type=int_in(0), help="grade these chapters (default: every chapter handed in)")
    seconds = float_in(0, MAX_SECONDS, lo_open=True)
    g.add_argument("--timeout", type=seconds, default=300.0, help="seconds for a student's notebook (default: 300)")
    g.add_argument("--check-timeout", type=seconds, default=60.0, help="seconds for each exercise's check (default: 60)")
    g.add_argument("--no-executed", action="store_true", help="do not keep the executed notebooks in OUT/executed/")
    g.add_argument("--jobs", type=int_in(1, 256), default=1,
                   help="notebooks graded at the same time, each in its own sandbox (default: 1; use the CPU count)")
    g.set_defaults(func=cmd_grade, check=check_grade, parser=g)
