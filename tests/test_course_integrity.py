"""A class of forgers against `mamba-edu course grade`: each gets its true grade.

Every forger hands in a small chapter 02 notebook whose `zoh_diagonal` is WRONG (Euler's B), plus one way of
trying to make the grader say otherwise: the six styles that forged passes before the grader was redesigned
(docs/course/threat-model.md), and others: ending the process, exiting from a cell or from the check, an
endless loop, a bunch of processes and a detached one that rewrites the reports later, fake JSON on stdout,
writing into the grader's output folder, reading another student's submission, patching torch, a forged
record file, answers looked up from an earlier run of the check, the library called through a reference
taken earlier, killing the grader. Some are caught by the tampering scan (graded 0 as "error"); those that
slip past it are judged by replaying the check in the grader's process and fail there ("wrong"). An honest
student with the reference solution passes in the same run, and the three reports agree.
"""

import csv
import json
import os
import time

import nbformat
import pytest

from mamba_edu.course import catalog, grade

STEM = "02_discretization"
MIME_PIECES = ("application/vnd.", "mamba", "-edu.verdict+json")  # spelled in pieces to slip past the scan
FAKE = {"exercise": "zoh_diagonal", "found": True, "passed": True, "attempted": True, "message": "correct"}
WRONG = "def zoh_diagonal(A, B, dt):\n    return torch.exp(dt * A), dt * B\n"
ROOT_ONLY = os.geteuid() != 0  # isolation by users and a mount namespace needs root

# {student: (source of the exercise cell, status of zoh_diagonal, True when only root isolation stops it)}
FORGERS = {
    "display_when_called": ("""
def zoh_diagonal(A, B, dt):
    from IPython.display import display
    display({MIME: FAKE}, raw=True)
    return torch.exp(dt * A), dt * B
""", "wrong", False),
    "patch_check": ("""
import types
import mamba_edu.exercises.discretization as m
setattr(m, "check_zoh_" + "diagonal", lambda fn, quiet=False: types.SimpleNamespace(passed=True, attempted=True, message="ok"))
""" + WRONG, "wrong", False),
    "pre_run_hook": ("""
from IPython.display import display
get_ipython().events.register("pre_run_cell", lambda *a: display({MIME: FAKE}, raw=True))
""" + WRONG, "error", False),
    "replace_display": ("""
import IPython.display as d
_show = d.display
setattr(d, "display", lambda *a, **k: _show({MIME: FAKE}, raw=True))
""" + WRONG, "wrong", False),
    "replace_import_module": ("""
import importlib, types
importlib.import_module = lambda name: types.SimpleNamespace(check_zoh_diagonal=lambda fn, quiet=True: None)
""" + WRONG, "error", False),
    "rebind_globals": ("""
def globals():
    return {"zoh_diagonal": lambda A, B, dt: (A, B)}
""" + WRONG, "error", False),
    "os_exit_when_called": ("""
import os
def zoh_diagonal(A, B, dt):
    os._exit(0)
""", "error", False),
    "sys_exit_in_cell": (WRONG + "import sys\nsys.exit(0)\n", "wrong", False),
    "system_exit_from_check": ("""
def zoh_diagonal(A, B, dt):
    raise SystemExit(0)
""", "error", False),
    "endless_loop": ("""
def zoh_diagonal(A, B, dt):
    while True:
        pass
""", "timeout", False),
    "processes_and_a_daemon": ("""
import os, time
for _ in range(40):  # a fork bomb, within the limits
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
if os.fork() == 0:  # a daemon that rewrites the reports once the grading is over
    os.setsid()
    if os.fork() == 0:
        time.sleep(6)
        for name in ("grades.csv", "totals.csv", "summary.md"):
            try:
                with open(os.path.join(OUT, name), "a") as f:
                    f.write("processes_and_a_daemon,02_discretization,zoh_diagonal,passed,1,forged\\n")
            except OSError:
                pass
        os._exit(0)
    os._exit(0)
""" + WRONG, "wrong", False),
    "fake_json_on_stdout": ("""
import json
def zoh_diagonal(A, B, dt):
    print(json.dumps(FAKE))
    print(json.dumps({"data": {MIME: FAKE}}))
    return torch.exp(dt * A), dt * B
""", "wrong", False),
    "write_grader_output": ("""
import os
try:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "grades.csv"), "w") as f:
        f.write("student,notebook,exercise,status,points,message\\nwrite_grader_output,02_discretization,zoh_diagonal,passed,1,forged\\n")
except OSError:
    pass
""" + WRONG, "wrong", True),
    "read_neighbour": ("""
import json, os, sys
try:  # take alice's zoh_diagonal from her submission, as a module of my own
    cells = json.load(open(os.path.join(SUBS, "alice", "02_discretization.ipynb")))["cells"]
    code = next("".join(c["source"]) for c in cells if "def zoh_diagonal" in "".join(c["source"]))
    open("stolen.py", "w").write("import torch\\n" + code)
    sys.path.insert(0, os.getcwd())
    from stolen import zoh_diagonal
except OSError:
""" + "\n".join("    " + line for line in WRONG.splitlines()) + "\n", "wrong", True),
    "patch_torch": ("""
setattr(torch, "allclose", lambda *a, **k: True)
setattr(torch, "equal", lambda *a, **k: True)
""" + WRONG, "wrong", False),
    "fake_record_file": ("""
import os
def zoh_diagonal(A, B, dt):
    for name in os.listdir(RECORDS):  # after the check, a record that claims success
        pass
    return torch.exp(dt * A), dt * B
_save = torch.save
def _forged(obj, path, *a, **k):
    obj = {"format": 1, "exercise": "zoh_diagonal", "found": True, "calls": [], "passed": True, "attempted": True,
           "message": "correct"}
    return _save(obj, path)
setattr(torch, "save", _forged)
""", "wrong", False),
    "lookup_table": ("""
from mamba_edu.discretize import zoh
seen = []
check_zoh_diagonal(lambda A, B, dt: seen.append((A, B, dt)) or (A, B), quiet=True)
table = {(A.numpy().tobytes(), B.numpy().tobytes(), dt): zoh(A, B, dt, diagonal=True) for A, B, dt in seen}
def zoh_diagonal(A, B, dt):
    return table.get((A.numpy().tobytes(), B.numpy().tobytes(), dt), (A, B))
""", "error", False),
    "lookup_table_unflagged": ("""
import mamba_edu.exercises.discretization as m
from mamba_edu.discretize import zoh
seen = []
getattr(m, "check_zoh_" + "diagonal")(lambda A, B, dt: seen.append((A, B, dt)) or (A, B), quiet=True)
table = {(A.numpy().tobytes(), B.numpy().tobytes(), dt): zoh(A, B, dt, diagonal=True) for A, B, dt in seen}
def zoh_diagonal(A, B, dt):
    return table.get((A.numpy().tobytes(), B.numpy().tobytes(), dt), (A, B))
""", "wrong", False),
    "library_by_early_reference": ("""
from mamba_edu.discretize import zoh as my_zoh
def zoh_diagonal(A, B, dt):
    return my_zoh(A, B, dt, diagonal=True)
""", "wrong", False),
    "kill_the_grader": ("""
import os, signal
for pid in (os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
""" + WRONG, "wrong", True),
}


def _notebook(source: str, out, subs, records_hint: str = "records") -> nbformat.NotebookNode:
    """A small chapter 02 notebook: imports, the exercise cell, its check cell."""
    prelude = (f"import torch\nMIME = {' + '.join(repr(p) for p in MIME_PIECES)}\nFAKE = {FAKE!r}\nOUT = {str(out)!r}\n"
               f"SUBS = {str(subs)!r}\nRECORDS = '../{records_hint}'\n"
               "from mamba_edu.exercises.discretization import check_zoh_diagonal\n")
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(prelude),
        nbformat.v4.new_code_cell(source.strip() + "\n", metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("check_zoh_diagonal(zoh_diagonal);", metadata={"tags": ["check"]}),
    ])


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    subs, out = tmp_path_factory.mktemp("forgers"), tmp_path_factory.mktemp("forged-grades")
    honest = catalog.solution_source(STEM, "zoh_diagonal")
    for student, source in [("alice", honest)] + [(s, src) for s, (src, _, _) in FORGERS.items()]:
        (subs / student).mkdir()
        nbformat.write(_notebook(source, out, subs), subs / student / f"{STEM}.ipynb")
    t0 = time.perf_counter()
    results = grade.grade(subs, out, chapters=[2], timeout=60, check_timeout=8, jobs=min(4, os.cpu_count() or 1),
                          progress=lambda _: None)
    seconds = time.perf_counter() - t0
    time.sleep(8)  # the daemon would have written by now, had it survived
    return results, out, seconds


def test_every_forger_gets_the_true_grade(forged):
    results, _, _ = forged
    got = {(r.student, r.exercise): r for r in results}
    assert got[("alice", "zoh_diagonal")].status == "passed"
    for student, (_, status, root_only) in FORGERS.items():
        r = got[(student, "zoh_diagonal")]
        if root_only and ROOT_ONLY:
            continue  # without root, a student's code runs as the grader's user (see the threat model)
        assert (r.status, r.points) == (status, 0), (student, r.message)
        assert r.message
        others = [got[(student, e)] for e in ("bilinear_2x2", "largest_stable_euler_step")]
        assert all(o.points == 0 for o in others), student
        if r.status != "error" and student != "fake_record_file":  # (its forged records claim the others too)
            assert [o.status for o in others] == ["missing", "missing"], student


def test_the_messages_say_why(forged):
    results, _, _ = forged
    by = {r.student: r.message for r in results if r.exercise == "zoh_diagonal"}
    assert "reaches into IPython's hooks" in by["pre_run_hook"]
    assert "reaches into" in by["replace_import_module"]
    assert "a builtin" in by["rebind_globals"]
    assert "the checks" in by["lookup_table"]
    assert "SystemExit" in by["system_exit_from_check"]
    assert "kernel died" in by["os_exit_when_called"]
    assert "time limit" in by["endless_loop"]
    assert "switched off" in by["library_by_early_reference"]
    assert "Euler" in by["display_when_called"] and "Euler" in by["patch_torch"]


def test_the_reports_agree_and_no_process_changed_them(forged):
    results, out, _ = forged
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert [(r["student"], r["exercise"], r["status"]) for r in rows] == [
        (r.student, r.exercise, r.status) for r in results]
    assert not any("forged" in r["message"] for r in rows)
    totals = {r["student"]: int(r["points"]) for r in csv.DictReader(open(out / "totals.csv"))}
    assert totals == {s: sum(r.points for r in results if r.student == s) for s in totals}
    assert totals["alice"] == 1 and sum(totals.values()) == 1
    summary = (out / "summary.md").read_text()
    assert "| alice | 1/3 |" in summary and "forged" not in summary
    for student in FORGERS:
        assert f"| {student} | 0/3 |" in summary


def test_nothing_a_student_started_outlives_the_grading(forged):
    _, _, _ = forged
    from mamba_edu.course.grade import _descendants

    assert _descendants(os.getpid()) == []


def test_the_executed_notebooks_show_the_graders_verdicts_only(forged):
    _, out, _ = forged
    for student in ("display_when_called", "replace_display", "pre_run_hook"):
        nb = nbformat.read(out / "executed" / student / f"{STEM}.ipynb", as_version=4)
        shown = [(catalog.tags(c), o["data"][grade.VERDICT_MIME]) for c in nb.cells for o in c.get("outputs", [])
                 if grade.VERDICT_MIME in o.get("data", {})]
        assert all("grader" in tags for tags, _ in shown)
        assert [(v["exercise"], v.get("passed")) for _, v in shown][0] == ("zoh_diagonal", False)


@pytest.mark.skipif(ROOT_ONLY, reason="a user of its own per notebook needs root")
def test_a_sandbox_cannot_see_the_submissions_or_the_reports(tmp_path):
    sandbox, how = grade.isolation(tmp_path, tmp_path / "out")
    assert sandbox.uid is not None and "a user of its own" in how


# ----------------------------------------------------------------------------------------------
# Record and replay, in one process (every exercise, fast)
# ----------------------------------------------------------------------------------------------


def _solutions():
    import importlib.util

    for path in sorted(catalog.SOLUTIONS.glob("[0-9][0-9]_*.py")):
        spec = importlib.util.spec_from_file_location(f"solutions_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        exercises = {e.name: e for e in catalog.exercises(path.stem)}
        for _, solution, wrongs in mod.EXERCISES:
            yield pytest.param(exercises[solution.__name__], solution, wrongs, id=solution.__name__)


@pytest.mark.parametrize("exercise,solution,wrongs", list(_solutions()))
def test_a_record_replays_to_the_verdict_the_check_gives(exercise, solution, wrongs, tmp_path):
    from mamba_edu.course import replay

    salt = 1234567
    for fn, passes in [(solution, True)] + [(w, False) for w in wrongs[:1]]:
        path = tmp_path / f"{fn.__name__}.pt"
        replay.record(exercise.name, exercise.module, exercise.check, fn, str(path), salt)
        rec = replay.load(path.read_bytes())
        v = replay.verdict(exercise, rec, salt)
        assert v["passed"] is passes and v["attempted"], (fn.__name__, v["message"])
        if passes:
            assert rec["calls"], "the check called the function"
            forged = dict(rec, calls=rec["calls"][:-1])  # a record that stops early is not believed
            assert not replay.verdict(exercise, forged, salt)["passed"]
            if exercise.name not in ("add_kernel", "discretise_kernel", "scan_kernel"):
                assert not replay.verdict(exercise, rec, salt + 1)["passed"] or _fixed_inputs(exercise)


def _fixed_inputs(exercise) -> bool:
    """Checks whose cases are a fixed table: the salt does not change their inputs."""
    return exercise.name in {"kv_cache_bytes", "max_attention_length", "largest_stable_euler_step", "legs_matrices",
                             "hillis_steele_cost", "sram_gap", "materialised_bytes", "attainable",
                             "block_parameter_count", "copy_by_content", "induction_lookup", "segsum",
                             "legs_reconstruct", "legs_quadrature", "kernel_by_powers"}


def test_a_record_is_read_as_data_only(tmp_path):
    import pickle

    from mamba_edu.course import replay

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    data = pickle.dumps({"format": 1, "calls": [Evil()]})
    with pytest.raises(replay.RecordError):
        replay.load(data)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(replay.RecordError, match="too large"):
        replay.load(b"x" * (replay.MAX_RECORD_BYTES + 1))


def test_jobs_must_be_a_whole_number(tmp_path):
    import subprocess
    import sys

    for bad in ("0", "-3", "two"):
        r = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "course", "grade", str(tmp_path), "--jobs", bad],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "--jobs" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(ValueError, match="--jobs"):
        (tmp_path / "s").mkdir()
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / "s" / f"{STEM}.ipynb")
        grade.grade(tmp_path, tmp_path / "out", jobs=0, progress=lambda _: None)
