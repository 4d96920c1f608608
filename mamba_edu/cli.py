"""The `mamba-edu` command.

    mamba-edu app     launch the Streamlit app (app/Home.py)
    mamba-edu lab     open the notebooks in JupyterLab
    mamba-edu info    the device found here and which implementations can run on it

More subcommands (bench, train, course) arrive with the kernels, training and course work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (an editable install points here)


def _repo_path(rel: str) -> Path:
    path = ROOT / rel
    if not path.exists():
        sys.exit(f"mamba-edu: {rel} not found next to the package ({ROOT}). "
                 "The app and notebooks ship with the repository: run this from a clone "
                 "installed with `pip install -e .` (the Makefile does that).")
    return path


def cmd_app(args: argparse.Namespace) -> int:
    home = _repo_path("app/Home.py")
    cmd = [sys.executable, "-m", "streamlit", "run", str(home), "--server.port", str(args.port)]
    if args.headless:
        cmd += ["--server.headless", "true"]
    return subprocess.call(cmd)


def cmd_lab(args: argparse.Namespace) -> int:
    notebooks = _repo_path("notebooks")
    return subprocess.call([sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks}"])


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from .bench import implementations
    from .hardware import describe_device

    dev = describe_device()
    print(f"device:  {dev.summary()}")
    print(f"torch:   {torch.__version__}")
    print(f"triton:  {dev.triton or 'not importable'} ({dev.triton_mode})")
    target = "cuda" if dev.kind == "cuda" else "cpu"
    print("selective-scan implementations:")
    for name, entry in implementations().items():
        ok, why = entry.available(target)
        print(f"  {name:12s} {'runs here' if ok else 'not here: ' + why:45s} {entry.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mamba-edu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("app", help="launch the Streamlit app")
    a.add_argument("--port", type=int, default=int(os.environ.get("MAMBA_EDU_PORT", 8501)))
    a.add_argument("--headless", action="store_true", help="do not open a browser")
    a.set_defaults(func=cmd_app)
    sub.add_parser("lab", help="open the notebooks in JupyterLab").set_defaults(func=cmd_lab)
    sub.add_parser("info", help="the device and the implementations that run on it").set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
