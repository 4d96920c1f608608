"""`mamba-edu course build OUT` and `mamba-edu course grade SUBMISSIONS` (added to the `mamba-edu` command).

    mamba-edu course build OUT [--parts student instructor slides] [--lectures 1 2] [--no-execute]
    mamba-edu course grade SUBMISSIONS [--out grades] [--lab N | --chapters 2 6] [--timeout 300] [--check-timeout 60] [--jobs N]

The work is done in mamba_edu.course.build and .grade, imported only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


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


def cmd_grade(args: argparse.Namespace) -> int:
    from . import grade

    if args.lab is not None and args.chapters:
        sys.exit("mamba-edu course grade: give --lab or --chapters, not both")
    try:
        grade.grade(Path(args.submissions), Path(args.out), lab=args.lab, chapters=args.chapters, timeout=args.timeout,
                    check_timeout=args.check_timeout, keep_executed=not args.no_executed,
                    jobs=args.jobs)
    except ValueError as e:
        sys.exit(f"mamba-edu course grade: {e}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def add_course_parser(sub) -> None:
    """Add `course build` and `course grade` to the `mamba-edu` command's subparsers."""
    c = sub.add_parser("course", help="build the course kit (student notebooks, instructor pack, slides) or grade a lab",
                       description="The course module kit: see docs/course/README.md.")
    csub = c.add_subparsers(dest="course_command", required=True)
    b = csub.add_parser("build", help="student notebooks, instructor pack and lecture slides into OUT",
                        description="Build OUT/student (notebooks with stubs, no outputs), OUT/instructor (reference "
                                    "solutions in the exercise cells, notes) and OUT/slides (reveal.js, one deck per lecture, "
                                    "from the notebooks' slide cells after running them). Works offline.")
    b.add_argument("out", metavar="OUT", help="output folder")
    b.add_argument("--parts", nargs="+", default=["student", "instructor", "slides"],
                   choices=["student", "instructor", "slides"], help="what to build (default: all)")
    b.add_argument("--lectures", nargs="+", type=int, help="only these lectures' slides (default: all)")
    b.add_argument("--no-execute", action="store_true",
                   help="do not run the notebooks for the slides: decks show code instead of figures (fast)")
    b.add_argument("--timeout", type=int, default=600, help="seconds per cell when running notebooks for the slides")
    b.add_argument("--reveal-prefix", help="where the decks load reveal.js from (default: nbconvert's CDN URL)")
    b.add_argument("--mathjax-url", help="where the decks load MathJax from (default: nbconvert's CDN URL)")
    b.set_defaults(func=cmd_build)
    g = csub.add_parser("grade", help="run and grade every student's notebooks",
                        description="SUBMISSIONS holds one folder per student with their notebooks. Each notebook runs "
                                    "in a kernel of its own with a time limit; each exercise is checked by name. Writes "
                                    "grades.csv, totals.csv, summary.md and executed/ into --out.")
    g.add_argument("submissions", metavar="SUBMISSIONS", help="folder of student folders")
    g.add_argument("--out", default="grades", help="where the reports go (default: ./grades)")
    g.add_argument("--lab", type=int, help="grade the chapters of this lab (syllabus.yml)")
    g.add_argument("--chapters", nargs="+", type=int, help="grade these chapters (default: every chapter handed in)")
    g.add_argument("--timeout", type=float, default=300, help="seconds for a student's notebook (default: 300)")
    g.add_argument("--check-timeout", type=float, default=60, help="seconds for each exercise's check (default: 60)")
    g.add_argument("--no-executed", action="store_true", help="do not keep the executed notebooks in OUT/executed/")
    g.add_argument("--jobs", type=_positive_int, default=1,
                   help="notebooks graded at the same time, each in its own sandbox (default: 1; use the CPU count)")
    g.set_defaults(func=cmd_grade)
