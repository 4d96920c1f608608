"""`mamba-edu course build OUT`: the student notebooks, the instructor pack and the lecture slides.

Glossary
    OUT/student/     the notebooks as they ship (stubs and checks), outputs stripped, with results/ (the
                     shipped checkpoints they read), the syllabus, lab handouts, prerequisites and setup
    OUT/instructor/  the same notebooks with each reference solution written into its exercise cell
                     (tagged `solution`), the solutions files, the instructor notes and the same documents
    OUT/slides/      lecture-N.slides.html: reveal.js decks of the `slide`-tagged cells of each lecture's
                     chapters (syllabus.yml), taken from the notebooks after running them, so every figure
                     and number on a slide is computed by the notebook; an interactive figure appears at its
                     default setting
    guard            the student build refuses to write a notebook that contains a reference solution

Nothing is a second copy: every cell comes from notebooks/, every solution from notebooks/solutions/,
the schedule from docs/course/syllabus.yml. Building works offline; the decks load reveal.js, require.js
and MathJax from their CDNs when opened (nbconvert's defaults; `--reveal-prefix`, `--mathjax-url` point
elsewhere) and embed plotly.js, so their figures draw without a network.
"""

from __future__ import annotations

import ast
import copy
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import catalog, syllabus

PARTS = ("student", "instructor", "slides")
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
STUDENT_DOCS = ("prerequisites.md", "setup.md")
INSTRUCTOR_DOCS = ("README.md", "prerequisites.md", "setup.md", "instructor-notes.md")


@dataclass
class BuildReport:
    out: Path
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _write(nb, path: Path, report: BuildReport) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    report.written.append(path)


def _copy_results(dest: Path) -> None:
    if catalog.RESULTS.exists():
        shutil.copytree(catalog.RESULTS, dest / "results", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))


# ----------------------------------------------------------------------------------------------
# Student notebooks
# ----------------------------------------------------------------------------------------------


def _body_dump(fn: ast.FunctionDef) -> str:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring is not the solution
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def solution_leaks(nb, stem: str) -> list[str]:
    """Where a notebook contains reference-solution code of chapter `stem`: a function whose body is a solution's,
    or an exercise function that is not a stub (body other than a docstring and `...`). [] when clean."""
    src, tree = catalog._solutions_tree(stem)
    solutions = {f.name: _body_dump(f) for f in tree.body if isinstance(f, ast.FunctionDef)
                 and f.name in {e.name for e in catalog.exercises(stem)}}
    bodies = {dump: name for name, dump in solutions.items()}
    leaks = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for fn in catalog.defined_functions(cell.source):
            if _body_dump(fn) in bodies:
                leaks.append(f"cell {i}: `{fn.name}` has the body of the solution `{bodies[_body_dump(fn)]}`")
            elif fn.name in solutions and not _is_stub(fn):
                leaks.append(f"cell {i}: the exercise `{fn.name}` is not a stub (its body must be a docstring and `...`)")
    return leaks


def _is_stub(fn: ast.FunctionDef) -> bool:
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                       and isinstance(s.value.value, str))]
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                           and s.value.value is Ellipsis) for s in body)


def student_notebook(path: Path):
    """Chapter `path` as students get it: the shipped stubs and checks, no outputs; refuses solution code."""
    nb = _read(path)
    catalog.strip_outputs(nb)
    leaks = solution_leaks(nb, path.stem)
    if leaks:
        raise ValueError(f"{path.name} contains solution code, refusing to build the student version: " + "; ".join(leaks))
    return nb


# ----------------------------------------------------------------------------------------------
# Instructor notebooks
# ----------------------------------------------------------------------------------------------


def _top_level_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {name for node in tree.body for name in catalog._bound_names(node)}


def instructor_notebook(path: Path):
    """Chapter `path` with each exercise stub replaced by its reference solution (the cell also gets the tag
    `solution`); the solution keeps the stub's docstring when it has none of its own."""
    nb = _read(path)
    catalog.strip_outputs(nb)
    wanted = {e.name: e for e in catalog.exercises(path.stem)}
    done, defined = set(), set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if "exercise" in catalog.tags(cell):
            stubs = catalog.defined_functions(cell.source)
            names = [fn.name for fn in stubs if fn.name in wanted]
            if not names:
                raise ValueError(f"{path.name}, cell {i}: tagged `exercise` but defines none of {sorted(wanted)}")
            parts = []
            for fn in stubs:
                if fn.name in wanted:
                    parts.append(catalog.solution_source(path.stem, fn.name, defined | done, ast.get_docstring(fn)))
                    done.add(fn.name)
                else:
                    parts.append(catalog.source_of(cell.source, fn))
            cell.source = f"# Reference solution (notebooks/solutions/{path.stem}.py)\n" + "\n\n".join(parts).rstrip() + "\n"
            cell.metadata["tags"] = catalog.tags(cell) + ["solution"]
        defined |= _top_level_names(cell.source)
    missing = sorted(set(wanted) - done)
    if missing:
        raise ValueError(f"{path.name}: no cell tagged `exercise` defines {missing}")
    return nb


def exercise_catalogue(chapters: dict[int, Path]) -> str:
    """Markdown: every exercise with its check and the wrong answers its check is tested against."""
    lines = ["# Exercises and the mistakes their checks catch", "",
             "Generated by `mamba-edu course build` from notebooks/solutions/. Every check is tested (tests/test_exercises.py)",
             "to accept the reference solution and to reject each wrong answer below with a precise message; the wrong",
             "answers are the mistakes students make, so they are worth reading before a lab.", ""]
    for chapter, path in chapters.items():
        lines += [f"## {path.stem}", ""]
        wrongs = catalog.wrong_answers(path.stem)
        for e in catalog.exercises(path.stem):
            lines.append(f"- `{e.name}` (checked by `{e.module}.{e.check}`); wrong answers it rejects:")
            lines += [f"  - `{name}`" + (f": {doc.splitlines()[0]}" if doc else "") for name, doc in wrongs.get(e.name, [])]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Slides
# ----------------------------------------------------------------------------------------------


def _plotly_html(figure: dict, first: bool) -> str:
    import plotly.io as pio

    return pio.to_html(figure, include_plotlyjs=first, full_html=False, validate=False,
                       config={"displaylogo": False, "responsive": True})


def _widget_outputs(model_id: str, state: dict) -> list[dict]:
    """The outputs an interactive widget (e.g. ipywidgets.interact) showed, found in the saved widget state."""
    model = state.get(model_id)
    if model is None:
        return []
    s = model.get("state", {})
    if model.get("model_name") == "OutputModel":
        return list(s.get("outputs", []))
    out = []
    for child in s.get("children", []):
        out += _widget_outputs(str(child).removeprefix("IPY_MODEL_"), state)
    return out


def slide_outputs(cell, widget_state: dict, plotly_loaded: list[bool]) -> list:
    """A cell's outputs as a static deck can show them: plotly figures as HTML (plotly.js embedded once per deck,
    `plotly_loaded` remembers), interactive widgets replaced by what they displayed at their default setting."""
    import nbformat

    out = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if WIDGET_VIEW in data:
            inner = [nbformat.from_dict(x) for x in _widget_outputs(data[WIDGET_VIEW]["model_id"], widget_state)]
            out += slide_outputs({"outputs": inner}, widget_state, plotly_loaded)
        elif PLOTLY_MIME in data:
            html = _plotly_html(data[PLOTLY_MIME], first=not plotly_loaded[0])
            plotly_loaded[0] = True
            out.append(nbformat.v4.new_output("display_data", data={"text/html": html}))
        elif o.get("output_type") != "error":
            out.append(o)
    return out


def lecture_notebook(s: syllabus.Syllabus, number: int, executed: dict[int, object]):
    """The deck of lecture `number`: a title slide from the syllabus, then each chapter's `slide` cells in order."""
    import nbformat

    lec = s.lecture(number)
    titles = syllabus.app_pages()
    present = catalog.chapters()
    intro = [f"# Lecture {lec.number} · {lec.title}", "", f"*{s.title}*", "", "**Objectives**", ""]
    intro += [f"- {o.text}" for o in lec.objectives]
    intro += ["", "**Notebooks:** " + ", ".join(f"`{present[c].name}`" if c in present else f"chapter {c:02d} (in preparation)"
                                               for c in lec.chapters),
              "", "**App pages:** " + (", ".join(titles[p] for p in lec.pages) or "none") + " (`mamba-edu app`)"]
    cells = [nbformat.v4.new_markdown_cell("\n".join(intro), metadata={"slideshow": {"slide_type": "slide"}})]
    loaded = [False]
    for chapter in lec.chapters:
        nb = executed.get(chapter)
        if nb is None:
            continue
        state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        for cell in nb.cells:
            if "slide" not in catalog.tags(cell):
                continue
            new = copy.deepcopy(cell)
            new.metadata = {"slideshow": {"slide_type": "slide"}, "tags": catalog.tags(cell)}
            if "id" in new:  # cell ids are unique per notebook only: prefix the chapter
                new.id = f"c{chapter:02d}-{new.id}"[:64]
            if new.cell_type == "code":
                new.outputs = slide_outputs(cell, state, loaded)
                new.execution_count = None
            cells.append(new)
    deck = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                          "language": "python"}})
    nbformat.validate(deck)
    return deck


def slides_html(deck, show_code: bool, reveal_prefix: str | None = None, mathjax_url: str | None = None) -> str:
    """The reveal.js HTML of a deck (nbconvert's SlidesExporter). Code is shown only where there are no outputs."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True,
                              reveal_scroll=True)
    if reveal_prefix:
        exporter.reveal_url_prefix = reveal_prefix
    if mathjax_url:
        exporter.mathjax_url = mathjax_url
    body, _ = exporter.from_notebook_node(deck)
    return body


# ----------------------------------------------------------------------------------------------
# The build
# ----------------------------------------------------------------------------------------------


def _docs(dest: Path, s: syllabus.Syllabus, extra: tuple[str, ...], report: BuildReport) -> None:
    texts = {"syllabus.md": syllabus.render_syllabus(s, notebooks_href="notebooks/", labs_href="labs/")}
    for lab in s.labs:
        texts[f"labs/lab-{lab.number}.md"] = syllabus.render_lab(s, lab.number, notebooks_href="../notebooks/")
    for name in extra:
        src = catalog.COURSE_DOCS / name
        if src.exists():
            texts["course-guide.md" if name == "README.md" else name] = src.read_text()
    for rel, text in texts.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        report.written.append(path)


def _readme(kind: str, s: syllabus.Syllabus, chapters: dict[int, Path]) -> str:
    rows = "\n".join(f"- `notebooks/{p.name}`" for p in chapters.values())
    if kind == "student":
        return (f"# Student notebooks · {s.title}\n\n"
                "Install the course package once (see `setup.md`), then open the notebooks from this folder:\n\n"
                "```bash\nexport TRITON_INTERPRET=1    # only on a machine without an NVIDIA GPU (chapter 09's kernels)\n"
                "jupyter lab notebooks/\nmamba-edu app                # the interactive app\n```\n\n"
                f"Chapters:\n\n{rows}\n\nThe schedule is in `syllabus.md`; each lab's handout in `labs/` says what to submit. "
                "Exercises are the cells tagged `exercise` (a function whose body is `...`); the cell below each runs its check. "
                "`results/` holds the trained models the notebooks read: keep it beside `notebooks/`.\n")
    return (f"# Instructor pack · {s.title}\n\n"
            "- `notebooks/`: every chapter with the reference solutions written into its exercise cells (tagged `solution`); "
            "run them top to bottom and every check passes\n"
            "- `solutions/`: the reference solutions and the wrong answers each check is tested against\n"
            "- `exercises.md`: every exercise, its check, and the mistakes the check catches\n"
            "- `instructor-notes.md`: common misconceptions and where the notebooks address them\n"
            "- `syllabus.md`, `labs/`, `prerequisites.md`, `setup.md`, `course-guide.md`: the schedule, the lab handouts, "
            "what students need, how to set up a computer lab (with or without GPUs), the commands\n"
            "- `results/`: the trained checkpoints the notebooks read\n\n"
            "Slides are in `../slides/` when they were built. Grade a lab with "
            "`mamba-edu course grade SUBMISSIONS --lab N --out grades/`.\n\n"
            f"Chapters:\n\n{rows}\n")


def build(out: Path, parts=PARTS, lectures: list[int] | None = None, execute: bool = True, timeout: int = 600,
          reveal_prefix: str | None = None, mathjax_url: str | None = None,
          progress: Callable[[str], None] = print) -> BuildReport:
    """Build the requested `parts` of the kit into `out` (see the module docstring)."""
    out = Path(out)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"course build: unknown parts {sorted(unknown)}; choose from {PARTS}")
    s = syllabus.load()
    chapters = catalog.chapters()
    report = BuildReport(out, notes=list(s.notes))
    if "student" in parts:
        t0 = time.perf_counter()
        dest = out / "student"
        for path in chapters.values():
            _write(student_notebook(path), dest / "notebooks" / path.name, report)
        _copy_results(dest)
        _docs(dest, s, STUDENT_DOCS, report)
        (dest / "README.md").write_text(_readme("student", s, chapters))
        report.seconds["student"] = time.perf_counter() - t0
        progress(f"student notebooks: {dest}")
    if "instructor" in parts:
        t0 = time.perf_counter()
        dest = out / "instructor"
        for path in chapters.values():
            _write(instructor_notebook(path), dest / "notebooks" / path.name, report)
            (dest / "solutions").mkdir(parents=True, exist_ok=True)
            shutil.copy2(catalog.SOLUTIONS / f"{path.stem}.py", dest / "solutions" / f"{path.stem}.py")
        _copy_results(dest)
        _docs(dest, s, INSTRUCTOR_DOCS, report)
        (dest / "exercises.md").write_text(exercise_catalogue(chapters))
        (dest / "README.md").write_text(_readme("instructor", s, chapters))
        report.seconds["instructor"] = time.perf_counter() - t0
        progress(f"instructor pack: {dest}")
    if "slides" in parts:
        t0 = time.perf_counter()
        numbers = lectures or [lec.number for lec in s.lectures]
        needed = sorted({c for n in numbers for c in s.lecture(n).chapters if c in chapters})
        executed = {}
        for c in needed:
            nb = _read(chapters[c])
            if execute:
                from .kernel import execute as run

                t1 = time.perf_counter()
                run(nb, cwd=catalog.NOTEBOOKS, timeout=timeout)
                progress(f"  ran {chapters[c].name} for the slides ({time.perf_counter() - t1:.0f} s)")
            executed[c] = nb
        for n in numbers:
            deck = lecture_notebook(s, n, executed)
            path = out / "slides" / f"lecture-{n}.slides.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(slides_html(deck, show_code=not execute, reveal_prefix=reveal_prefix, mathjax_url=mathjax_url))
            report.written.append(path)
            progress(f"slides: {path}")
        report.seconds["slides"] = time.perf_counter() - t0
    for note in report.notes:
        progress(f"note: {note}")
    return report
