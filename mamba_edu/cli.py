"""The `mamba-edu` command.

    mamba-edu app     launch the Streamlit app (app/Home.py)
    mamba-edu lab     open the notebooks in JupyterLab
    mamba-edu info    the device found here and which implementations can run on it
    mamba-edu train   train a tiny model on a synthetic task (selective copying, induction heads),
                      or regenerate every result of results/tasks with `--reproduce results/tasks`

More subcommands (bench, course) arrive with the kernels and course work.
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
    cmd = [sys.executable, "-m", "streamlit", "run", str(home), "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
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


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from . import train as T

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.reproduce:
        res = T.reproduce(args.reproduce, max_len=args.max_len or T.REPRODUCE_MAX_LEN, progress=not args.quiet)
        print(f"wrote {args.reproduce}/results.json, README.md and checkpoints/ in {res['total_seconds'] / 60:.1f} min")
        return 0
    fields = {f.name for f in dataclasses.fields(T.TrainConfig)}
    cfg = T.TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    try:
        cfg.validate()
    except ValueError as e:
        sys.exit(f"mamba-edu train: {e}")
    res = T.train(cfg, progress=not args.quiet, device=args.device)
    final = res.final
    print(f"{cfg.task}/{cfg.model}: token accuracy {final['accuracy']:.4f}, sequences all right "
          f"{final['sequence_accuracy']:.4f} (chance {T.tasks.chance_accuracy(cfg.task, cfg.vocab_size):.3f}), "
          f"{res.seconds:.1f} s")
    model = res.model.cpu()
    if args.out:
        pt, js = T.save_checkpoint(args.out, model, cfg, accuracy=final["accuracy"],
                                   sequence_accuracy=final["sequence_accuracy"], train_seconds=res.seconds)
        print(f"saved {pt} and {js}")
    if args.max_len:
        path = "forward" if cfg.model == "attention" else "recurrent"
        lengths = T.extrapolation_lengths(cfg.seq_len, args.max_len)
        T.extrapolate(model, cfg, lengths, path=path, progress=True)
    return 0


def _add_train(sub) -> None:
    import dataclasses

    from .models import MIXERS, POSITIONS
    from .tasks import TASKS
    from .train import TrainConfig

    t = sub.add_parser("train", help="train a tiny model on a synthetic task (or --reproduce the results)",
                       description="Train TinyLM on selective copying or induction heads on a CPU, or regenerate "
                                   "every number of results/tasks with --reproduce results/tasks.")
    choices = {"task": list(TASKS), "model": list(MIXERS), "positions": list(POSITIONS)}
    for f in dataclasses.fields(TrainConfig):
        t.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=type(f.default), default=f.default,
                       choices=choices.get(f.name), help="default: %(default)s")
    t.add_argument("--out", help="save the checkpoint as OUT.pt (state dict) and OUT.json (config)")
    t.add_argument("--max-len", type=int, default=0,
                   help="after training, evaluate at 2x, 4x, ... the training length up to this length")
    t.add_argument("--device", default="cpu", help="torch device to train on")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--reproduce", metavar="DIR",
                   help="train and evaluate every run of the results table and write DIR/results.json, "
                        "DIR/README.md and DIR/checkpoints/ (ignores the other options but --max-len, --threads)")
    t.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mamba-edu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("app", help="launch the Streamlit app")
    a.add_argument("--port", type=int, default=int(os.environ.get("MAMBA_EDU_PORT", 8501)))
    a.add_argument("--headless", action="store_true", help="do not open a browser")
    a.set_defaults(func=cmd_app)
    sub.add_parser("lab", help="open the notebooks in JupyterLab").set_defaults(func=cmd_lab)
    sub.add_parser("info", help="the device and the implementations that run on it").set_defaults(func=cmd_info)
    _add_train(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
