"""Bad invocations of every `mamba-edu` subcommand: one line on stderr naming the argument, exit
status 2, no traceback, and no work started (a silent substitute would start it).

The table keeps every repro ever found (issue: 20 tracebacks and 9 silent substitutions among 77
bad invocations). It runs the command in-process (`cli.main`) with every subcommand's work
replaced by a sentinel, so a bad argument that slips through fails the test at once instead of
training or benchmarking; a few subprocess runs prove the installed entry point behaves the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mamba_edu import cli
from mamba_edu.course import cli as course_cli

ROOT = Path(__file__).resolve().parents[1]


class Started(Exception):
    """Raised instead of the subcommand's work: the arguments were accepted."""


@pytest.fixture
def no_work(monkeypatch):
    def started(args):
        raise Started(args)

    for mod, name in ((cli, "cmd_app"), (cli, "cmd_lab"), (cli, "cmd_info"), (cli, "cmd_train"), (cli, "cmd_bench"),
                      (course_cli, "cmd_build"), (course_cli, "cmd_grade")):
        monkeypatch.setattr(mod, name, started)


@pytest.fixture
def paths(tmp_path):
    """{file}: an existing file; {dir}: an existing empty folder; {subs}: a submissions folder;
    {loop}: a symbolic link to itself; {long}: a name longer than any file system allows."""
    (tmp_path / "a_file.txt").write_text("not a folder")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a symbolic link to itself
    return {"file": str(tmp_path / "a_file.txt"), "dir": str(tmp_path / "a_dir"), "subs": str(tmp_path / "subs"),
            "loop": str(tmp_path / "loop"), "long": str(tmp_path / ("x" * 300))}


NO_GPU = not torch.cuda.is_available()

# (argv, a word the one line must contain: the argument's name)
BAD = [
    # the command itself
    ([], "command"),
    (["nope"], "command"),
    (["--nope"], "command"),
    (["info", "extra"], "extra"),
    (["info", "--verbose"], "--verbose"),
    (["lab", "--port", "8888"], "--port"),
    # app
    (["app", "--port", "abc"], "--port"),
    (["app", "--port", "0"], "--port"),
    (["app", "--port", "-1"], "--port"),
    (["app", "--port", "65536"], "--port"),
    (["app", "--port", "1.5"], "--port"),
    (["app", "--port", ""], "--port"),
    (["app", "--port"], "--port"),
    (["app", "--headless=yes"], "--headless"),
    (["app", "Home.py"], "Home.py"),
    # bench: lengths
    (["bench", "--L", "abc"], "--L"),
    (["bench", "--L", "0"], "--L"),
    (["bench", "--L", "-5"], "--L"),
    (["bench", "--L", ""], "--L"),
    (["bench", "--L", "64,,256"], "--L"),
    (["bench", "--L", "64,"], "--L"),
    (["bench", "--L", "1.5"], "--L"),
    (["bench", "--L", "64,abc"], "--L"),
    (["bench", "--L", "64,64"], "--L"),
    (["bench", "--L", "nan"], "--L"),
    (["bench", "--L", str(10**12)], "--L"),
    # bench: sizes (0 was silently replaced by the preset's value)
    (["bench", "--batch", "0"], "--batch"),
    (["bench", "--batch", "-1"], "--batch"),
    (["bench", "--batch", "two"], "--batch"),
    (["bench", "--dim", "0"], "--dim"),
    (["bench", "--dim", str(10**9)], "--dim"),
    (["bench", "--N", "0"], "--N"),
    (["bench", "--N", "-16"], "--N"),
    (["bench", "--N", "inf"], "--N"),
    (["bench", "--dtype", "float64"], "--dtype"),
    (["bench", "--preset", "huge"], "--preset"),
    # bench: implementations
    (["bench", "--impls", ""], "--impls"),
    (["bench", "--impls", "nope"], "--impls"),
    (["bench", "--impls", "parallel,,naive"], "--impls"),
    (["bench", "--impls", "parallel,parallel"], "--impls"),
    (["bench", "--impls", "attention", "--no-attention"], "--no-attention"),
    # bench: device (meta ran every case as an error and exited 0)
    (["bench", "--device", "meta"], "--device"),
    (["bench", "--device", "gpu"], "--device"),
    (["bench", "--device", ""], "--device"),
    (["bench", "--device", "cpu:3"], "--device"),
    (["bench", "--device", "cuda:99"], "--device"),
    pytest.param(["bench", "--device", "cuda"], "--device", marks=pytest.mark.skipif(not NO_GPU, reason="a GPU is here")),
    # bench: output file
    (["bench", "--out", "{dir}"], "--out"),
    (["bench", "--out", "{file}/x.json"], "--out"),
    (["bench", "--out", ""], "--out"),
    (["bench", "--out", "{dir}/report.html"], "--out"),
    (["bench", "--out", "{dir}/results"], "--out"),
    (["bench", "--out", "a\0b.json"], "--out"),
    (["bench", "--out", "{long}.json"], "--out"),
    (["bench", "--out", "{loop}/x.json"], "--out"),
    pytest.param(["bench", "--out", "/proc/x.json"], "--out",
                 marks=pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc")),
    # train: every field's type and range
    (["train", "--d-model", "0"], "--d-model"),
    (["train", "--d-model", "-4"], "--d-model"),
    (["train", "--d-model", "abc"], "--d-model"),
    (["train", "--d-model", "1.5"], "--d-model"),
    (["train", "--d-model", "1000000"], "--d-model"),
    (["train", "--n-layers", "0"], "--n-layers"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--seq-len", "-1"], "--seq-len"),
    (["train", "--vocab-size", "1"], "--vocab-size"),
    (["train", "--vocab-size", "2"], "--vocab-size"),  # the task's own check: copying needs >= 3
    (["train", "--n-data", "100", "--seq-len", "10"], "--seq-len"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--eval-size", "-3"], "--eval-size"),
    (["train", "--warmup", "-1"], "--warmup"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "-1e-3"], "--lr"),
    (["train", "--lr", "fast"], "--lr"),
    (["train", "--clip", "nan"], "--clip"),
    (["train", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "--task", "sorting"], "--task"),
    (["train", "--model", "rnn"], "--model"),
    (["train", "--positions", "rotary"], "--positions"),
    (["train", "--model", "attention", "--d-model", "5", "--n-heads", "2"], "--n-heads"),
    (["train", "--max-len", "5"], "--max-len"),
    (["train", "--max-len", "-1"], "--max-len"),
    (["train", "--max-len", "abc"], "--max-len"),
    (["train", "--threads", "-1"], "--threads"),
    (["train", "--threads", "100000"], "--threads"),
    (["train", "--device", "meta"], "--device"),
    pytest.param(["train", "--device", "cuda"], "--device", marks=pytest.mark.skipif(not NO_GPU, reason="a GPU is here")),
    (["train", "--d-model", "8192", "--d-state", "1024", "--batch-size", "4096"], "--d-model"),  # memory
    (["train", "--out", "{dir}"], "--out"),
    (["train", "--out", "{file}/ckpt"], "--out"),
    (["train", "--out", ""], "--out"),
    (["train", "--reproduce", "{file}"], "--reproduce"),
    (["train", "--reproduce", "{loop}"], "--reproduce"),
    (["train", "--out", "{long}"], "--out"),
    (["train", "--reproduce", "{dir}", "--steps", "5"], "--reproduce"),
    (["train", "--reproduce", "{dir}", "--out", "{dir}/ckpt"], "--reproduce"),
    (["train", "--preset", "textlm", "--steps", "5"], "--preset"),
    (["train", "--preset", "textlm", "--out", "{dir}/ckpt"], "--preset"),
    (["train", "--preset", "gpt"], "--preset"),
    # course build
    (["course"], "course_command"),
    (["course", "teach"], "course_command"),
    (["course", "build"], "OUT"),
    (["course", "build", "{file}"], "OUT"),
    (["course", "build", "{file}/kit"], "OUT"),
    (["course", "build", ""], "OUT"),
    (["course", "build", "{loop}"], "OUT"),
    (["course", "build", "{long}"], "OUT"),
    (["course", "build", "{dir}", "--parts", "answers"], "--parts"),
    (["course", "build", "{dir}", "--parts"], "--parts"),
    (["course", "build", "{dir}", "--lectures", "0"], "--lectures"),
    (["course", "build", "{dir}", "--lectures", "99"], "--lectures"),
    (["course", "build", "{dir}", "--lectures", "one"], "--lectures"),
    (["course", "build", "{dir}", "--parts", "student", "--lectures", "1"], "--lectures"),
    (["course", "build", "{dir}", "--timeout", "0"], "--timeout"),
    (["course", "build", "{dir}", "--timeout", "nan"], "--timeout"),
    (["course", "build", "{dir}", "--reveal-prefix", ""], "--reveal-prefix"),
    (["course", "build", "{dir}", "--mathjax-url", " "], "--mathjax-url"),
    # course grade (bad timeouts graded every exercise "error" or "timeout" and exited 0)
    (["course", "grade"], "SUBMISSIONS"),
    (["course", "grade", "{dir}/missing"], "SUBMISSIONS"),
    (["course", "grade", "{file}"], "SUBMISSIONS"),
    (["course", "grade", ""], "SUBMISSIONS"),
    (["course", "grade", "{loop}"], "SUBMISSIONS"),
    (["course", "grade", "{subs}", "--out", "{loop}"], "--out"),
    (["course", "grade", "{subs}", "--timeout", "nan"], "--timeout"),
    (["course", "grade", "{subs}", "--timeout", "inf"], "--timeout"),
    (["course", "grade", "{subs}", "--timeout", "-5"], "--timeout"),
    (["course", "grade", "{subs}", "--timeout", "0"], "--timeout"),
    (["course", "grade", "{subs}", "--timeout", "1e9"], "--timeout"),
    (["course", "grade", "{subs}", "--check-timeout", "nan"], "--check-timeout"),
    (["course", "grade", "{subs}", "--check-timeout", "0"], "--check-timeout"),
    (["course", "grade", "{subs}", "--lab", "0"], "--lab"),
    (["course", "grade", "{subs}", "--lab", "99"], "--lab"),
    (["course", "grade", "{subs}", "--lab", "x"], "--lab"),
    (["course", "grade", "{subs}", "--chapters", "99"], "--chapters"),
    (["course", "grade", "{subs}", "--chapters", "-1"], "--chapters"),
    (["course", "grade", "{subs}", "--chapters"], "--chapters"),
    (["course", "grade", "{subs}", "--lab", "1", "--chapters", "2"], "--chapters"),
    (["course", "grade", "{subs}", "--out", "{file}"], "--out"),
    (["course", "grade", "{subs}", "--out", "{subs}"], "--out"),
    (["course", "grade", "{subs}", "--out", "{subs}/grades"], "--out"),
    (["course", "grade", "{subs}", "--out", ""], "--out"),
]


def _run_in_process(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


@pytest.mark.parametrize("argv, name", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_invocation_is_one_line_exit_2(argv, name, paths, no_work, capsys):
    argv = [a.format(**paths) for a in argv]
    code, out, err = _run_in_process(argv, capsys)
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and name in lines[0], lines[0]
    assert lines[0].startswith("mamba-edu") and "error:" in lines[0]
    assert out == ""


def test_bad_port_from_the_environment(monkeypatch, no_work, capsys):
    monkeypatch.setenv("MAMBA_EDU_PORT", "eighty")
    code, _, err = _run_in_process(["app"], capsys)
    assert code == 2 and "MAMBA_EDU_PORT" in err and len(err.strip().splitlines()) == 1


def test_port_in_use_is_refused(no_work, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        code, _, err = _run_in_process(["app", "--port", str(s.getsockname()[1])], capsys)
    assert code == 2 and "--port" in err and len(err.strip().splitlines()) == 1


def test_empty_submissions_folder_is_a_bad_argument(paths, tmp_path, capsys):
    """The grader's own finding (no student folders), before any notebook runs: exit 2, one line."""
    code, _, err = _run_in_process(["course", "grade", paths["dir"], "--out", str(tmp_path / "g")], capsys)
    assert code == 2 and "SUBMISSIONS" in err and "student" in err and len(err.strip().splitlines()) == 1


GOOD = [
    ["info"],
    ["app", "--headless", "--port", "{port}"],
    ["lab"],
    ["bench", "--L", "16,64", "--batch", "1", "--dim", "8", "--N", "4", "--impls", "naive,parallel", "--device", "cpu",
     "--no-attention", "--out", "{dir}/r.json", "--quiet"],
    ["train", "--task", "induction", "--model", "attention", "--d-model", "8", "--n-heads", "2", "--max-len", "256",
     "--threads", "1", "--out", "{dir}/ckpt", "--lr", "1e-3", "--weight-decay", "0"],
    ["train", "--reproduce", "{dir}/rep", "--max-len", "128"],
    ["course", "build", "{dir}/kit", "--parts", "slides", "--lectures", "1", "2", "--timeout", "30"],
    ["course", "grade", "{subs}", "--out", "{dir}/grades", "--lab", "1", "--timeout", "10", "--check-timeout", "2.5"],
    ["course", "grade", "{subs}", "--out", "{dir}/grades", "--chapters", "2", "6"],
]


@pytest.mark.parametrize("argv", GOOD, ids=" ".join)
def test_good_invocation_reaches_the_work(argv, paths, no_work):
    """The checks refuse what is wrong, not what is right: each good call gets to its work."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [a.format(port=port, **paths) for a in argv]
    with pytest.raises(Started) as e:
        cli.main(argv)
    args = e.value.args[0]
    if argv[0] == "bench":  # given values are kept, never replaced by the preset's
        assert (args.L, args.batch, args.dim, args.N, args.impls) == ((16, 64), 1, 8, 4, ("naive", "parallel"))


def test_bench_keeps_every_given_value(tmp_path, monkeypatch, capsys):
    """`--batch 1 --N 1` used to be replaced by the preset's values when falsy-looking; run the real
    cmd_bench up to the sweep and look at the config it built."""
    from mamba_edu import bench

    seen = {}

    def fake_run(cfg, **kw):
        seen["cfg"] = cfg
        raise Started(cfg)

    monkeypatch.setattr(bench, "run_bench", fake_run)
    with pytest.raises(Started):
        cli.main(["bench", "--L", "3,5", "--batch", "1", "--dim", "2", "--N", "1", "--device", "cpu",
                  "--impls", "parallel", "--out", str(tmp_path / "r.json"), "--quiet"])
    cfg = seen["cfg"]
    assert (cfg.lengths, cfg.batch, cfg.dim, cfg.N, cfg.impls) == ((3, 5), 1, 2, 1, ("parallel",))


@pytest.mark.parametrize("argv, name", [
    (["bench", "--L", "abc"], "--L"),
    (["train", "--model", "attention", "--d-model", "5", "--n-heads", "2"], "--n-heads"),
    (["course", "grade", "{dir}", "--timeout", "nan"], "--timeout"),
])
def test_the_installed_command_exits_2_with_one_line(argv, name, paths):
    exe = Path(sys.executable).with_name("mamba-edu")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mamba_edu.cli"]
    r = subprocess.run(cmd + [a.format(**paths) for a in argv], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and name in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_an_interruption_or_a_file_system_error_during_the_work_is_one_line(error, monkeypatch, capsys):
    def work(args):
        raise error

    monkeypatch.setattr(cli, "cmd_info", work)
    with pytest.raises(SystemExit) as e:
        cli.main(["info"])
    message = str(e.value.code)
    assert message.startswith("mamba-edu info: ") and "\n" not in message and e.value.code != 0
