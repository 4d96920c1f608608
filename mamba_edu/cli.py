"""The `mamba-edu` command.

    mamba-edu app     launch the Streamlit app (app/Home.py)
    mamba-edu lab     open the notebooks in JupyterLab
    mamba-edu info    the device found here and which implementations can run on it
    mamba-edu train   train a tiny model on a synthetic task (selective copying, induction heads),
                      or regenerate every result of results/tasks with `--reproduce results/tasks`,
                      or the byte-level language model of results/textlm with `--preset textlm`

    mamba-edu bench   time every selective-scan implementation (checked first) against the
                      measured floors; writes JSON results and an HTML report
    mamba-edu course  `course build OUT`: student notebooks, instructor pack, lecture slides;
                      `course grade SUBMISSIONS`: run and grade every student's notebooks
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

    from .registry import implementations
    from .machine import describe_device

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
    if args.ablation:
        steps = None if args.steps == T.TrainConfig().steps else args.steps
        try:
            seeds = tuple(int(v) for v in args.ablation_seeds.split(","))
        except ValueError:
            sys.exit(f"mamba-edu train: argument '--ablation-seeds' must be comma-separated integers; got {args.ablation_seeds!r}")
        res = T.selectivity_ablation(args.ablation, steps=steps, seeds=seeds, workers=args.workers,
                                     threads=args.threads or 1)
        print(f"wrote {args.ablation}: {len(res['runs'])} runs in {res['total_seconds'] / 60:.1f} min")
        return 0
    if args.preset == "textlm":
        from . import textlm

        out = args.out or "results/textlm"
        res = textlm.reproduce(out, progress=not args.quiet)
        print(f"wrote {out}/results.json, README.md and the checkpoints in {res['total_seconds'] / 60:.1f} min")
        return 0
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
    t.add_argument("--ablation", metavar="FILE",
                   help="chapter 06's ablation: train copy-mamba with each choice of which of Δ, B, C are selective "
                        "(two seeds) and write FILE (JSON); --steps overrides the steps, --workers runs in parallel")
    t.add_argument("--workers", type=int, default=1, help="--ablation: trainings run side by side (processes)")
    t.add_argument("--ablation-seeds", default="0,1", help="--ablation: the seeds, comma-separated (default: %(default)s)")
    t.add_argument("--preset", choices=["textlm"],
                   help="textlm: train the byte-level language model on the Python standard library's source and "
                        "its same-size attention baseline, and write results/textlm (or --out DIR); ignores the "
                        "other options but --threads, --quiet")
    t.set_defaults(func=cmd_train)


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    import torch

    from . import bench
    from .registry import implementations
    from .viz import bench as vb

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = bench.preset(args.preset or ("full" if device.startswith("cuda") else "cpu"), device)
    if args.L:
        cfg.lengths = tuple(int(x) for x in args.L.split(","))
    for name in ("batch", "dim", "N"):
        if getattr(args, name):
            setattr(cfg, name, getattr(args, name))
    if args.impls:
        cfg.impls = tuple(args.impls.split(","))
        unknown = [i for i in cfg.impls if i not in implementations() and i != bench.ATTENTION]
        if unknown:
            sys.exit(f"mamba-edu bench: unknown implementation(s) {unknown}; known: "
                     f"{', '.join(implementations())}, {bench.ATTENTION}")
    if args.forward_only:
        cfg.passes = ("forward",)
    if args.no_attention:
        cfg.attention = False
    if args.dtype:
        cfg.dtype = args.dtype
    if not device.startswith("cuda"):
        print("mamba-edu bench: no CUDA GPU here: running what a CPU can run, at small sizes "
              "(the Triton kernels only at tiny sizes under TRITON_INTERPRET=1).")
    out = Path(args.out or f"build/bench/{bench.environment(torch.device(device))['device']['name'].replace(' ', '_')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.jsonl")
    partial.write_text("")

    def keep(i, n, rec):  # a record per line as the sweep goes, so an interrupted run keeps its cases
        with partial.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    results = bench.run_bench(cfg, device=device, progress=not args.quiet, on_case=keep)
    partial.unlink()
    bench.save_results(results, out)
    html = out.with_suffix(".html")
    vb.write_report(results, html)
    skipped = [c for c in results["cases"] if c["status"] == "skipped"]
    reasons = sorted({f"{c['impl']}: {c['reason']}" for c in skipped})
    print(vb.summary_table(results))
    if reasons:
        print(f"skipped {len(skipped)} cases:\n  " + "\n  ".join(reasons))
    print(f"wrote {out} and {html}")
    return 0


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="time the selective-scan implementations (each checked first)",
                       description="Check every implementation against a float64 reference, then time it "
                                   "(forward, forward+backward) against the copy-bandwidth and exp2 floors "
                                   "measured in the same run. Writes JSON and an HTML report.")
    b.add_argument("--preset", choices=["full", "targets", "quick", "cpu"],
                   help="default: full on a GPU, cpu otherwise")
    b.add_argument("--L", help="comma-separated sequence lengths, e.g. 256,1024,4096")
    b.add_argument("--batch", type=int)
    b.add_argument("--dim", type=int)
    b.add_argument("--N", type=int)
    b.add_argument("--dtype", choices=["bfloat16", "float16", "float32"])
    b.add_argument("--impls", help="comma-separated implementations (default: all that run here)")
    b.add_argument("--forward-only", action="store_true")
    b.add_argument("--no-attention", action="store_true", help="leave out causal SDPA")
    b.add_argument("--device", help="default: cuda when available")
    b.add_argument("--out", help="JSON path (default build/bench/DEVICE.json); the HTML report goes beside it")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_bench)


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
    _add_bench(sub)
    from .course.cli import add_course_parser  # argparse only; the course's work is imported when it runs

    add_course_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
