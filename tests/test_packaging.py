"""Packaging: the conda environment matches pyproject, kernels ship as mamba_edu.kernels, the CLI runs."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name_spec(req: str) -> tuple[str, str]:
    req = req.split(";")[0].strip()
    m = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_name_spec(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_name_spec(r) for r in extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    pip_lines = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep.get("pip", [])
            continue
        name, spec = _name_spec(dep)
        if name in ("python", "pip"):
            continue
        conda[CONDA_NAMES.get(name, name)] = spec
    assert conda == wanted, f"environment.yml and pyproject.toml differ: {set(conda.items()) ^ set(wanted.items())}"
    assert "conda-forge" in env["channels"]
    assert "-e ." in pip_lines


def test_kernels_ship_as_a_subpackage_never_top_level():
    import mamba_edu.kernels

    assert Path(mamba_edu.kernels.__file__).resolve().parent == ROOT / "kernels"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "kernels" not in project["tool"]["setuptools"]["packages"]
    assert project["tool"]["setuptools"]["package-dir"]["mamba_edu.kernels"] == "kernels"


def test_importing_the_library_does_not_import_triton_or_ui_packages():
    code = ("import sys, mamba_edu, mamba_edu.models, mamba_edu.hippo, mamba_edu.lti; "
            "bad = [m for m in ('triton', 'streamlit', 'jupyter', 'IPython') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_info_and_help():
    r = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "info"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "device:" in r.stdout and "parallel" in r.stdout and "naive" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "app" in r.stdout and "lab" in r.stdout


def test_makefile_pins_the_cpu_torch_and_triton():
    pins = (ROOT / "requirements" / "cpu.txt").read_text().split()
    assert "torch==2.13.0" in pins and any(p.startswith("triton==") for p in pins)
    make = (ROOT / "Makefile").read_text()
    assert "requirements/cpu.txt" in make and "TRITON_INTERPRET=1" in make
