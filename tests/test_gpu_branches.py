"""benchmarks/gpu_branches.py, the script that runs every notebook and page on its GPU branch: where there is
no GPU it refuses (exit 2, one line), and with --allow-cpu it runs and reports (here: one page)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("gpu_branches", ROOT / "benchmarks" / "gpu_branches.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_without_a_gpu_it_refuses_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        _script().main(["--only", "scans"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA GPU" in err


def test_it_runs_a_page_and_writes_its_report(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_EDU_TESTING", "1")  # the script sets it for its notebooks: undone after the test
    out = tmp_path / "report.json"
    assert _script().main(["--allow-cpu", "--only", "scans", "--no-notebooks", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (rec,) = report["records"]
    assert (rec["kind"], rec["name"], rec["status"], rec["error"]) == ("page", "scans", "ok", None)
    assert rec["charts"] >= 1 and rec["seconds"] > 0
