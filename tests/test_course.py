"""The course kit: syllabus and handouts, the student build, the instructor pack, the slides, the grader.

The grader runs on a planted class (chapters 02 and 06, the two quickest notebooks): the reference
solutions (the instructor pack), wrong answers and a crashing one, a syntax error, a deleted exercise cell,
an endless loop, a missing notebook, a truncated file, a JSON file that is not a notebook, and the student
build itself (every exercise still a stub). Each exercise must get exactly the status and points planted.
"""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mamba_edu.course import build, catalog, grade, syllabus

ROOT = Path(__file__).resolve().parents[1]
FAST = ["02_discretization", "06_selection"]


# ----------------------------------------------------------------------------------------------
# Syllabus and documents
# ----------------------------------------------------------------------------------------------


def test_syllabus_covers_every_chapter_once_and_its_timings_add_up():
    s = syllabus.load()
    assert len(s.lectures) == 4 and len(s.labs) == 3
    present = set(catalog.chapters())
    for sessions in (s.lectures, s.labs):
        named = [c for x in sessions for c in x.chapters]
        assert len(named) == len(set(named)), "a chapter is in two lectures (or two labs)"
        assert present <= set(named), f"chapters in no session: {present - set(named)}"
    for lec in s.lectures:
        assert sum(m for m, _ in lec.plan) == s.lecture_minutes == 75
        assert lec.objectives and all(o.chapters for o in lec.objectives)
    for lab in s.labs:
        assert sum(m for m, _ in lab.plan) == s.lab_minutes
        assert syllabus.lab_exercises(lab), f"lab {lab.number} grades nothing"
    pages = syllabus.app_pages()
    assert "state_explorer.py" in pages and pages["hippo.py"] == "HiPPO memory"


def test_syllabus_rejects_a_plan_that_does_not_add_up(tmp_path):
    text = (catalog.COURSE_DOCS / "syllabus.yml").read_text().replace("- [5, \"Recap of lecture 1", "- [6, \"Recap of lecture 1", 1)
    bad = tmp_path / "syllabus.yml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"lecture 2's plan must add up to 75 minutes; got 76"):
        syllabus.load(bad)
    bad.write_text(text.replace("- [6, \"Recap", "- [5, \"Recap").replace("pages: [hippo.py, state_explorer.py]", "pages: [nope.py]", 1))
    with pytest.raises(ValueError, match=r"nope.py"):
        syllabus.load(bad)


def test_generated_course_documents_are_current():
    for rel, text in syllabus.documents().items():
        path = catalog.COURSE_DOCS / rel
        assert path.exists() and path.read_text() == text, (
            f"docs/course/{rel} is out of date: run `python -m mamba_edu.course.syllabus`")


def test_handouts_list_every_exercise_and_the_files_to_submit():
    s = syllabus.load()
    for lab in s.labs:
        text = syllabus.render_lab(s, lab.number)
        exercises = syllabus.lab_exercises(lab)
        for e in exercises:
            assert f"`{e.name}`" in text and f"`{e.check}`" in text
        assert f"{len(exercises)} in all for this lab" in text
        for c in lab.chapters:
            if c in catalog.chapters():
                assert f"<your name>/{catalog.chapters()[c].name}" in text
        assert all(status in text for status in grade.STATUSES)


def test_chapter_info_reads_the_notebooks_objectives():
    info = syllabus.chapter_info(2)
    assert info.title == "Continuous-time SSMs and discretisation"
    assert len(info.objectives) == 5 and info.objectives[-1].startswith("read $\\Delta$ as a gate")
    assert info.prerequisites.startswith("Chapter 01")
    assert syllabus.chapter_info(99) is None


def test_course_docs_link_only_to_files_that_exist():
    for md in sorted(catalog.COURSE_DOCS.rglob("*.md")):
        for target in re.findall(r"\]\(([^)#]+)\)", md.read_text()):
            if not target.startswith("http"):
                assert (md.parent / target).exists(), f"{md.relative_to(ROOT)} links to missing {target}"


# ----------------------------------------------------------------------------------------------
# Student build and instructor pack
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit")
    build.build(out, parts=("student", "instructor"), progress=lambda _: None)
    return out


def test_student_build_has_no_solution_code(kit):
    for chapter, path in catalog.chapters().items():
        nb = nbformat.read(kit / "student" / "notebooks" / path.name, as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
        assert build.solution_leaks(nb, path.stem) == []
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for e in catalog.exercises(path.stem):
            stub = [fn for c in nb.cells if "exercise" in catalog.tags(c) for fn in catalog.defined_functions(c.source)
                    if fn.name == e.name]
            assert len(stub) == 1 and build._is_stub(stub[0]), f"{path.name}: {e.name} is not one stub"
            # nor the solution's lines under another name (a worked example may share a line or two)
            body = catalog.solution_source(path.stem, e.name).split(f"def {e.name}(", 1)[1]
            lines = [ln.split("#")[0].strip() for ln in body.splitlines()[1:]]
            lines = [ln for ln in lines if len(ln) > 20 and not ln.startswith(('"""', "return"))]
            shared = [ln for ln in lines if ln in code]
            assert len(shared) <= len(lines) // 2, f"{path.name}: the solution of {e.name} is in the notebook: {shared}"
    assert (kit / "student" / "results" / "tasks" / "results.json").exists()
    assert {"syllabus.md", "setup.md", "prerequisites.md"} <= {p.name for p in (kit / "student").iterdir()}
    assert not (kit / "student" / "instructor-notes.md").exists()


def test_tampering_scan_passes_the_shipped_notebooks_and_the_instructor_pack(kit):
    for chapter, path in catalog.chapters().items():
        for part in ("student", "instructor"):
            nb = nbformat.read(kit / part / "notebooks" / path.name, as_version=4)
            assert grade.tampering(nb, path.stem) is None, (part, path.name, grade.tampering(nb, path.stem))


def test_guard_refuses_a_notebook_with_a_solution():
    path = catalog.chapters()[2]
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "exercise" in catalog.tags(c) and "zoh_diagonal" in c.source)
    cell.source = catalog.solution_source(path.stem, "zoh_diagonal")
    leaks = build.solution_leaks(nb, path.stem)
    assert len(leaks) == 1 and "zoh_diagonal" in leaks[0]
    cell.source = "def zoh_diagonal(A, B, dt):\n    return A, B\n"
    assert "not a stub" in build.solution_leaks(nb, path.stem)[0]


def test_instructor_pack_holds_every_solution_in_its_exercise_cell(kit):
    for chapter, path in catalog.chapters().items():
        nb = nbformat.read(kit / "instructor" / "notebooks" / path.name, as_version=4)
        cells = [c for c in nb.cells if "exercise" in catalog.tags(c)]
        assert all("solution" in catalog.tags(c) for c in cells)
        names = {fn.name: fn for c in cells for fn in catalog.defined_functions(c.source)}
        for e in catalog.exercises(path.stem):
            assert e.name in names and not build._is_stub(names[e.name])
            assert build._body_dump(names[e.name]) in {
                build._body_dump(fn) for fn in catalog.defined_functions(catalog.solution_source(path.stem, e.name))}
        assert (kit / "instructor" / "solutions" / f"{path.stem}.py").exists()
    text = (kit / "instructor" / "exercises.md").read_text()
    assert "`zoh_diagonal_euler`" in text and "Wrong: forgets the softplus" in text
    assert (kit / "instructor" / "instructor-notes.md").exists()


def test_solution_source_brings_its_imports_and_helpers_only():
    src = catalog.solution_source("11_mamba2_ssd", "semiseparable_matrix")
    assert "def segsum(" in src and "import torch" in src and "import math" in src  # segsum's own import
    assert "def segsum(" not in catalog.solution_source("11_mamba2_ssd", "semiseparable_matrix", {"segsum"})
    src = catalog.solution_source("06_selection", "s6_params", docstring="ignored: it has its own")
    assert src.startswith("import torch.nn.functional as F\n") and "check_" not in src and "ignored" not in src
    src = catalog.solution_source("02_discretization", "zoh_diagonal", docstring="A, B: (..., N)")
    assert '"""A, B: (..., N)"""' in src
    compile(src, "<solution>", "exec")


# ----------------------------------------------------------------------------------------------
# Slides
# ----------------------------------------------------------------------------------------------


def test_lecture_deck_takes_the_slide_cells_and_their_figures(tmp_path):
    s = syllabus.load()
    path = catalog.chapters()[2]
    nb = nbformat.read(path, as_version=4)
    from mamba_edu.course.kernel import execute

    execute(nb, cwd=catalog.NOTEBOOKS, timeout=300)
    deck = build.lecture_notebook(s, 1, {2: nb})
    slide_cells = [c for c in nb.cells if "slide" in catalog.tags(c)]
    assert len(deck.cells) == 1 + len(slide_cells)
    assert deck.cells[0].source.startswith("# Lecture 1 · ") and s.lecture(1).objectives[0].text in deck.cells[0].source
    assert [c.source for c in deck.cells[1:]] == [c.source for c in slide_cells]
    html_outputs = [o["data"]["text/html"] for c in deck.cells if c.cell_type == "code" for o in c.outputs
                    if "text/html" in o.get("data", {})]
    # every figure of the slide cells, the interactive ones included (drawn at their default setting)
    n_figures = sum(1 for c in slide_cells for o in c.get("outputs", []) if build.WIDGET_VIEW in o.get("data", {})
                    or build.PLOTLY_MIME in o.get("data", {}))
    assert len(html_outputs) == n_figures >= 5
    assert sum("Plotly.newPlot" in h for h in html_outputs) == n_figures
    assert sum(len(h) > 1_000_000 for h in html_outputs) == 1  # plotly.js embedded once
    # the first figure's data is the notebook's own: decode it from the HTML and compare a trace
    first = next(o["data"][build.PLOTLY_MIME] for c in slide_cells for o in c.get("outputs", [])
                 if build.PLOTLY_MIME in o.get("data", {}))
    names = [t.get("name") for t in first["data"]]
    assert any(all(f'"name":"{n}"' in h for n in names if n) for h in html_outputs)
    html = build.slides_html(deck, show_code=False)
    assert "reveal" in html and "show_trajectories" not in html  # figures, not the code that draws them
    assert "show_trajectories</span>" in build.slides_html(deck, show_code=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:  # the figures draw in a browser without a network (plotly.js is embedded)
        from playwright.sync_api import sync_playwright

        (tmp_path / "deck.html").write_text(html)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto((tmp_path / "deck.html").as_uri())
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_figures}",
                                   timeout=30_000)
            assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == n_figures
            browser.close()
    assert "Lecture 1" in html and "zero-order hold" in html


def test_course_build_cli_builds_slides_without_executing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "course", "build", str(tmp_path), "--parts", "slides",
                        "--lectures", "2", "--no-execute"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "slides" / "lecture-2.slides.html").read_text()
    assert "Lecture 2 · Memory as projection" in html and "legs" in html.lower()
    assert not (tmp_path / "slides" / "lecture-1.slides.html").exists()


# ----------------------------------------------------------------------------------------------
# The grader
# ----------------------------------------------------------------------------------------------


def _set_exercise(nb, name, source):
    cell = next(c for c in nb.cells if "exercise" in catalog.tags(c) and catalog.defines(c.source, name))
    cell.source = source
    return cell


def _wrong(stem, wrong, name):
    return catalog.solution_source(stem, wrong).replace(f"def {wrong}(", f"def {name}(")


def _write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


# what each planted student must get: {(student, stem): [status of each exercise, in EXERCISES order]}
PLANTED = {
    ("alice", FAST[0]): ["passed"] * 3, ("alice", FAST[1]): ["passed"] * 3,
    ("bob", FAST[0]): ["wrong", "not attempted", "passed"], ("bob", FAST[1]): ["error", "wrong", "passed"],
    ("carol", FAST[0]): ["error", "missing", "passed"], ("carol", FAST[1]): ["missing"] * 3,
    ("dave", FAST[0]): ["timeout", "passed", "passed"], ("dave", FAST[1]): ["malformed"] * 3,
    ("erin", FAST[0]): ["malformed"] * 3, ("erin", FAST[1]): ["not attempted"] * 3,
}


@pytest.fixture(scope="module")
def graded(kit, tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    solved = {stem: nbformat.read(kit / "instructor" / "notebooks" / f"{stem}.ipynb", as_version=4) for stem in FAST}
    stubs = {stem: kit / "student" / "notebooks" / f"{stem}.ipynb" for stem in FAST}
    d02, d06 = FAST
    for stem in FAST:  # alice: the reference solutions
        _write(solved[stem], subs / "alice" / f"{stem}.ipynb")
    nb = nbformat.read(stubs[d02], as_version=4)  # bob: a wrong answer, a stub left, a right answer
    _set_exercise(nb, "zoh_diagonal", _wrong(d02, "zoh_diagonal_euler", "zoh_diagonal"))
    _set_exercise(nb, "largest_stable_euler_step", catalog.solution_source(d02, "largest_stable_euler_step"))
    _write(nb, subs / "bob" / "work" / "02_discretization-Copy1.ipynb")  # renamed and in a subfolder: still found
    nb = nbformat.read(stubs[d06], as_version=4)  # bob: code that raises, a wrong answer, a right one
    _set_exercise(nb, "s6_params", "def s6_params(s6, x):\n    raise RuntimeError('oops')\n")
    _set_exercise(nb, "gated_rnn", _wrong(d06, "gated_rnn_swapped", "gated_rnn"))
    _set_exercise(nb, "states_without_a_loop", catalog.solution_source(d06, "states_without_a_loop"))
    _write(nb, subs / "bob" / f"{d06}.ipynb")
    nb = nbformat.read(kit / "instructor" / "notebooks" / f"{d02}.ipynb", as_version=4)  # carol: syntax error, cell deleted
    _set_exercise(nb, "zoh_diagonal", "def zoh_diagonal(A, B, dt)\n    return A, B\n")
    nb.cells.remove(next(c for c in nb.cells if "exercise" in catalog.tags(c) and "bilinear_2x2" in c.source))
    _write(nb, subs / "carol" / f"{d02}.ipynb")  # and no chapter 06 at all
    nb = nbformat.read(kit / "instructor" / "notebooks" / f"{d02}.ipynb", as_version=4)  # dave: an endless loop
    _set_exercise(nb, "zoh_diagonal", "def zoh_diagonal(A, B, dt):\n    while True:\n        pass\n")
    _write(nb, subs / "dave" / f"{d02}.ipynb")
    (subs / "dave" / f"{d06}.ipynb").write_text((kit / "instructor" / "notebooks" / f"{d06}.ipynb").read_text()[:5000])
    (subs / "erin").mkdir()  # erin: JSON that is not a notebook, and the student build untouched
    (subs / "erin" / f"{d02}.ipynb").write_text(json.dumps({"hello": "world"}))
    (subs / "erin" / f"{d06}.ipynb").write_text(stubs[d06].read_text())
    out = tmp_path_factory.mktemp("grades")
    # the CLI, as an instructor runs it: a separate process, short limits for the endless loop
    r = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "course", "grade", str(subs), "--out", str(out),
                        "--chapters", "2", "6", "--timeout", "240", "--check-timeout", "4"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def test_grader_gives_each_planted_submission_its_status(graded):
    out, _ = graded
    rows = list(csv.DictReader(open(out / "grades.csv")))
    got = {}
    for row in rows:
        got.setdefault((row["student"], row["notebook"]), []).append(row["status"])
    assert got == PLANTED
    for row in rows:
        assert int(row["points"]) == (1 if row["status"] == "passed" else 0)
        assert row["message"] or row["status"] == "passed"
    by = {(r["student"], r["exercise"]): r["message"] for r in rows}
    assert "your code raised RuntimeError: oops" in by[("bob", "s6_params")]
    assert "SyntaxError" in by[("carol", "zoh_diagonal")]
    assert "no cell defines `bilinear_2x2`" in by[("carol", "bilinear_2x2")]
    assert "time limit" in by[("dave", "zoh_diagonal")]
    assert "not valid JSON" in by[("dave", "s6_params")] and "no list of cells" in by[("erin", "zoh_diagonal")]
    assert "no notebook for chapter 06" in by[("carol", "gated_rnn")]


def test_grader_totals_and_summary(graded):
    out, stdout = graded
    totals = {r["student"]: (int(r["points"]), int(r["max_points"])) for r in csv.DictReader(open(out / "totals.csv"))}
    want = {}
    for (student, _), statuses in PLANTED.items():
        got, most = want.get(student, (0, 0))
        want[student] = (got + statuses.count("passed"), most + len(statuses))
    assert totals == want == {"alice": (6, 6), "bob": (2, 6), "carol": (1, 6), "dave": (2, 6), "erin": (0, 6)}
    summary = (out / "summary.md").read_text()
    assert "| alice | 6/6 | 3/3 | 3/3 |" in summary and "| erin | 0/6 | 0/3 | 0/3 |" in summary
    assert "alice · 02_discretization: 3/3" in stdout


def test_student_build_runs_to_the_end_under_the_grader(graded):
    out, _ = graded
    nb = nbformat.read(out / "executed" / "erin" / "06_selection.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[:1]
    ran = [c for c in nb.cells if c.cell_type == "code" and "check" not in catalog.tags(c)]
    assert all(c.execution_count for c in ran), "every cell up to and past the exercises ran"
    verdicts = [o["data"][grade.VERDICT_MIME] for c in nb.cells for o in c.get("outputs", [])
                if grade.VERDICT_MIME in o.get("data", {})]
    assert [v["exercise"] for v in verdicts] == [e.name for e in catalog.exercises("06_selection")]
    assert all(v["found"] and not v["attempted"] for v in verdicts)


def test_grader_stops_a_notebook_at_its_time_limit(tmp_path):
    stem = FAST[0]
    cells = [nbformat.v4.new_markdown_cell("# a short submission"),
             nbformat.v4.new_code_cell(catalog.solution_source(stem, "zoh_diagonal")),
             nbformat.v4.new_code_cell("while True:\n    pass\n"),
             nbformat.v4.new_code_cell(catalog.solution_source(stem, "bilinear_2x2"))]
    _write(nbformat.v4.new_notebook(cells=cells), tmp_path / "subs" / "frank" / f"{stem}.ipynb")
    results = grade.grade(tmp_path / "subs", tmp_path / "out", chapters=[2], timeout=3, check_timeout=20,
                          progress=lambda _: None)
    assert [(r.exercise, r.status) for r in results] == [
        ("zoh_diagonal", "passed"), ("bilinear_2x2", "timeout"), ("largest_stable_euler_step", "missing")]
    assert "time limit of 3 s" in results[1].message


def test_grader_checks_each_exercise_where_the_notebook_checks_it(tmp_path):
    # chapter 07 puts the library's `combine` back after its check: checked at the end, a stub would pass
    stub = next(c for c in nbformat.read(catalog.chapters()[7], as_version=4).cells
                if "exercise" in catalog.tags(c) and catalog.defines(c.source, "combine"))
    cells = [stub, nbformat.v4.new_code_cell("check_combine(combine);", metadata={"tags": ["check"]}),
             nbformat.v4.new_code_cell("from mamba_edu.scan import combine")]
    _write(nbformat.v4.new_notebook(cells=cells), tmp_path / "subs" / "gina" / "07_scans.ipynb")
    results = grade.grade(tmp_path / "subs", tmp_path / "out", timeout=60, check_timeout=20, progress=lambda _: None)
    assert [(r.exercise, r.status) for r in results] == [
        ("combine", "not attempted"), ("hillis_steele_cost", "missing"), ("blelloch_scan", "missing")]
    executed = nbformat.read(tmp_path / "out" / "executed" / "gina" / "07_scans.ipynb", as_version=4)
    assert "grader" in catalog.tags(executed.cells[1])  # the verdict cell took the check cell's place


def test_grader_rejects_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no student folders"):
        grade.grade(tmp_path, tmp_path / "out", progress=lambda _: None)
