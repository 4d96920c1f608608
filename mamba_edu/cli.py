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

Every argument is checked before any work starts (types in mamba_edu.cliargs, then each
subcommand's `check_*`): a bad one is one line on stderr naming it and what was expected, exit
status 2; no value is replaced by another behind the user's back. `app` and `lab` exec the server,
so stopping the command stops it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import sys
import time
from pathlib import Path

from .cliargs import BadArgument, Parser, float_in, int_in, int_list, out_dir, out_file, torch_device

ROOT = Path(__file__).resolve().parents[1]  # the repository (an editable install points here)


def _repo_path(rel: str) -> Path:
    path = ROOT / rel
    if not path.exists():
        sys.exit(f"mamba-edu: {rel} not found next to the package ({ROOT}). "
                 "The app and notebooks ship with the repository: run this from a clone "
                 "installed with `pip install -e .` (the Makefile does that).")
    return path


def _exec(cmd: list[str]) -> int:
    """Become `cmd` (exec): the server IS this process, so a signal sent to `mamba-edu app`
    (terminate() of a test, Ctrl-C, a process manager) reaches it and nothing is left running."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


PORT_ENV = "MAMBA_EDU_PORT"


def check_app(args: argparse.Namespace) -> None:
    if args.port is None:
        text = os.environ.get(PORT_ENV, "8501")
        try:
            args.port = int_in(1, 65535)(text)
        except argparse.ArgumentTypeError as e:
            raise BadArgument(f"environment variable {PORT_ENV}: {e}") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # Streamlit would fail later, less clearly
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", args.port))
        except OSError as e:
            raise BadArgument(f"argument --port: expected a port this process can listen on; port {args.port}: "
                              f"{e.strerror or e}") from None


def cmd_app(args: argparse.Namespace) -> int:
    home = _repo_path("app/Home.py")
    cmd = [sys.executable, "-m", "streamlit", "run", str(home), "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    return _exec(cmd)


def cmd_lab(args: argparse.Namespace) -> int:
    notebooks = _repo_path("notebooks")
    return _exec([sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks}"])


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


# The training options are TrainConfig's fields; each gets a parser with its range (the upper
# bounds keep a typo such as --d-model 1000000 from filling the memory: the tiny models of the
# course use a few hundred at most). TrainConfig.validate and the model itself check the rest.
TRAIN_RANGES = {"seq_len": (1, 2**16), "n_data": (1, 2**12), "vocab_size": (2, 2**16), "d_model": (1, 8192),
                "n_layers": (1, 64), "d_state": (1, 1024), "expand": (1, 16), "dt_rank": (0, 8192),
                "n_heads": (1, 8192), "steps": (1, 10**8), "batch_size": (1, 2**16), "warmup": (0, 10**8),
                "eval_every": (1, 10**8), "eval_size": (1, 2**16), "seed": (0, 2**63 - 1), "headdim": (1, 1024),
                "mimo_rank": (1, 64)}
TRAIN_FLOATS = {"lr": float_in(0, 10, lo_open=True), "clip": float_in(0, 1e6, lo_open=True),
                "weight_decay": float_in(0, 1e3), "rope_fraction": float_in(0, 1)}
TRAIN_MAX_LEN = 2**20
TRAIN_BYTES_PER_STATE = 4 * 6  # fp32; the parallel scan keeps ~6 (b, D, T, N) tensors per layer for backward


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _train_message(e: ValueError) -> str:
    """The library's "Func: argument 'name' must ..." with the name spelled as the option."""
    return re.sub(r"^\w+: argument '(\w+)'", lambda m: f"argument {_flag(m[1])}:", str(e))


def _memory_bytes(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def train_bytes(cfg) -> int:
    """A rough lower bound on the memory one training step needs: the parameters with their
    gradients and AdamW moments (4 copies), the (batch, T, V) logits, and per layer what it keeps
    for the backward: a Mamba layer's (batch, T, D, N) tensors of the parallel scan, an S4D layer's
    FFT convolution (batch, D, 2T), attention's (batch, heads, T, T) scores. Measured on a CPU at
    batch 64, T 256, d_model 64, N 16, one layer: peak RSS grew 1.6x (Mamba), 4.6x (S4D: most of
    it the first step's fixed cost, some 200 MiB) and 2.5x (attention) this estimate."""
    import torch

    from . import train as T

    with torch.device("meta"):
        n_params = T.count_parameters(T.TinyLM(**T.model_kwargs(cfg)))
    b, t = cfg.batch_size, cfg.total_len  # evaluation runs in batches of at most 256, without a backward
    if cfg.model == "attention":
        per_layer = b * cfg.n_heads * t * t * 4 * 3
    elif cfg.model == "s4d":
        per_layer = b * t * cfg.d_model * 4 * 16  # the FFT's complex (b, d, 2T) spectra and their copies
    else:
        per_layer = b * t * cfg.d_model * cfg.expand * cfg.d_state * TRAIN_BYTES_PER_STATE
    return 16 * n_params + 3 * b * t * cfg.vocab_size * 4 + cfg.n_layers * per_layer


def check_train(args: argparse.Namespace) -> None:
    import dataclasses

    from . import train as T

    fields = [f.name for f in dataclasses.fields(T.TrainConfig)]
    if args.preset is not None:
        given = [_flag(f) for f in fields if getattr(args, f) != getattr(T.TrainConfig, f)]
        given += [o for o, v in (("--out", args.out), ("--device", args.device != "cpu"), ("--max-len", args.max_len))
                  if v]
        if given:
            raise BadArgument(f"argument --preset: trains the preset's fixed runs and takes none of the training "
                              f"options; got {', '.join(given)}")
        return
    if args.only is not None and args.reproduce is None:
        raise BadArgument("argument --only: applies with --reproduce DIR only")
    try:
        T.parse_only(args.only) if args.only is not None else None
    except ValueError as e:
        raise BadArgument(_train_message(e)) from None
    if args.reproduce is not None:
        given = [_flag(f) for f in fields if getattr(args, f) != getattr(T.TrainConfig, f)]
        given += [o for o, v in (("--out", args.out), ("--device", args.device != "cpu")) if v]
        if given:
            raise BadArgument(f"argument --reproduce: trains the fixed runs of the results table and takes none "
                              f"of the training options; got {', '.join(given)}")
        return
    cfg = T.TrainConfig(**{f: getattr(args, f) for f in fields})
    try:
        cfg.validate()
        need = train_bytes(cfg)  # builds the model on the meta device: its own checks (--n-heads | --d-model)
    except ValueError as e:
        raise BadArgument(_train_message(e)) from None
    have = _memory_bytes(args.device)
    if need > have:
        raise BadArgument(f"argument --d-model/--batch-size/--seq-len/--d-state: these settings need at least "
                          f"{need / 2**30:.1f} GiB for one training step; {args.device} has {have / 2**30:.1f} GiB")
    applies = {"n_data": ("task", ("selective-copy", "mqar")), "d_state": ("model", ("mamba", "s4d", "mamba3")),
               "expand": ("model", ("mamba", "mamba3")), "dt_rank": ("model", ("mamba",)),
               "headdim": ("model", ("mamba3",)), "rope_fraction": ("model", ("mamba3",)),
               "mimo_rank": ("model", ("mamba3",)),
               "n_heads": ("model", ("attention",)), "positions": ("model", ("attention",))}
    for name, (on, values) in applies.items():
        if getattr(cfg, name) != getattr(T.TrainConfig, name) and getattr(cfg, on) not in values:
            raise BadArgument(f"argument {_flag(name)}: applies to --{on} {' or '.join(values)} only; "
                              f"got --{on} {getattr(cfg, on)}")
    if args.max_len and args.max_len < cfg.seq_len:
        raise BadArgument(f"argument --max-len: expected 0 (no extrapolation) or a length >= --seq-len "
                          f"({cfg.seq_len}); got {args.max_len}")


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from . import train as T

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset == "textlm":
        from . import textlm

        out = args.reproduce or "results/textlm"
        res = textlm.reproduce(out, progress=not args.quiet)
        print(f"wrote {out}/results.json, README.md and the checkpoints in {res['total_seconds'] / 60:.1f} min")
        return 0
    if args.reproduce is not None:
        t0, only = time.perf_counter(), None if args.only is None else T.parse_only(args.only)
        T.reproduce(args.reproduce, max_len=args.max_len or T.REPRODUCE_MAX_LEN, progress=not args.quiet, only=only)
        print(f"wrote {args.reproduce}/results.json, README.md and checkpoints/ in {(time.perf_counter() - t0) / 60:.1f} min")
        return 0
    cfg = T.TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(T.TrainConfig)})
    res = T.train(cfg, progress=not args.quiet, device=args.device)
    final = res.final
    diverged = [h["step"] for h in res.history if not math.isfinite(h["loss"])]
    if diverged or not all(bool(torch.isfinite(p).all()) for p in res.model.parameters()):
        where = f" (the loss is not finite from step {diverged[0]} on)" if diverged else ""
        sys.exit(f"mamba-edu train: the training diverged{where}; nothing was saved. Try a smaller --lr or --clip.")
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
        if f.name in choices:
            kind = {"choices": choices[f.name]}
        elif f.name in TRAIN_FLOATS:
            kind = {"type": TRAIN_FLOATS[f.name]}
        else:
            kind = {"type": int_in(*TRAIN_RANGES[f.name])}
        t.add_argument(_flag(f.name), dest=f.name, default=f.default, help="default: %(default)s", **kind)
    t.add_argument("--out", type=out_file(), help="save the checkpoint as OUT.pt (state dict) and OUT.json (config)")
    t.add_argument("--max-len", type=int_in(0, TRAIN_MAX_LEN), default=0,
                   help="after training, evaluate at 2x, 4x, ... the training length up to this length")
    t.add_argument("--device", type=torch_device, default="cpu", help="torch device to train on (cpu, cuda, cuda:1)")
    t.add_argument("--threads", type=int_in(0, 4 * (os.cpu_count() or 1)), default=0,
                   help="torch CPU threads (0: torch's default)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--reproduce", metavar="DIR", type=out_dir,
                   help="train and evaluate every run of the results table and write DIR/results.json, "
                        "DIR/README.md and DIR/checkpoints/ (takes no training options; --max-len, --threads, --only apply)")
    t.add_argument("--only", metavar="PATTERNS", help="with --reproduce: retrain only the runs matching these "
                   "comma-separated patterns ('parity-*,modsum-*'), keeping the other runs of DIR/results.json")
    t.add_argument("--preset", choices=["textlm"],
                   help="textlm: train the byte-level language model on the Python standard library's source and "
                        "its same-size attention baseline, and write results/textlm (or --reproduce DIR); takes no "
                        "training options (--threads, --quiet apply)")
    t.set_defaults(func=cmd_train, check=check_train, parser=t)


BENCH_MAX = {"L": 2**24, "batch": 2**12, "dim": 2**16, "N": 2**10}  # far above any GPU's memory at the others' size


def check_bench(args: argparse.Namespace) -> None:
    from . import bench
    from .registry import implementations

    if args.impls is None:
        return
    known = [*implementations(), bench.ATTENTION]
    unknown = [i for i in args.impls if i not in known]
    if unknown:
        raise BadArgument(f"argument --impls: expected names among {', '.join(known)}; got unknown {', '.join(unknown)}")
    if args.no_attention and bench.ATTENTION in args.impls:
        raise BadArgument(f"argument --no-attention: not allowed with --impls naming {bench.ATTENTION}")


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    import torch

    from . import bench
    from .viz import bench as vb

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = bench.preset(args.preset or ("full" if device.startswith("cuda") else "cpu"), device)
    if args.L is not None:
        cfg.lengths = args.L
    for name in ("batch", "dim", "N"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.impls is not None:
        cfg.impls = args.impls
    if args.forward_only:
        cfg.passes = ("forward",)
    if args.no_attention:
        cfg.attention = False
    if args.dtype:
        cfg.dtype = args.dtype
    if not device.startswith("cuda"):
        print("mamba-edu bench: no CUDA GPU here: running what a CPU can run, at small sizes "
              "(the Triton kernels only at tiny sizes under TRITON_INTERPRET=1).")
    out = args.out or Path(f"build/bench/{bench.environment(torch.device(device))['device']['name'].replace(' ', '_')}.json")
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


def impl_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated implementation names, each once (checked against the registry later)."""
    names = tuple(i.strip() for i in text.split(","))
    if not text.strip() or not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated implementation names such as parallel,fused; "
                                         f"got {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected each implementation once; got {text!r}")
    return names


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="time the selective-scan implementations (each checked first)",
                       description="Check every implementation against a float64 reference, then time it "
                                   "(forward, forward+backward) against the copy-bandwidth and exp2 floors "
                                   "measured in the same run. Writes JSON and an HTML report.")
    b.add_argument("--preset", choices=["full", "targets", "quick", "cpu"],
                   help="default: full on a GPU, cpu otherwise")
    b.add_argument("--L", type=int_list(1, BENCH_MAX["L"]), help="comma-separated sequence lengths, e.g. 256,1024,4096")
    for name in ("batch", "dim", "N"):
        b.add_argument("--" + name, type=int_in(1, BENCH_MAX[name]), help="default: the preset's")
    b.add_argument("--dtype", choices=["bfloat16", "float16", "float32"])
    b.add_argument("--impls", type=impl_list, help="comma-separated implementations (default: all that run here)")
    b.add_argument("--forward-only", action="store_true")
    b.add_argument("--no-attention", action="store_true", help="leave out causal SDPA")
    b.add_argument("--device", type=torch_device, help="cpu, cuda or cuda:INDEX (default: cuda when available)")
    b.add_argument("--out", type=out_file(".json"),
                   help="JSON path (default build/bench/DEVICE.json); the HTML report goes beside it")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_bench, check=check_bench, parser=b)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="mamba-edu", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("app", help="launch the Streamlit app")
    a.add_argument("--port", type=int_in(1, 65535), help=f"default: ${PORT_ENV}, else 8501")
    a.add_argument("--headless", action="store_true", help="do not open a browser")
    a.set_defaults(func=cmd_app, check=check_app, parser=a)
    for name, func, text in (("lab", cmd_lab, "open the notebooks in JupyterLab"),
                             ("info", cmd_info, "the device and the implementations that run on it")):
        sp = sub.add_parser(name, help=text)
        sp.set_defaults(func=func, parser=sp)
    _add_train(sub)
    _add_bench(sub)
    from .course.cli import add_course_parser  # argparse only; the course's work is imported when it runs

    add_course_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        try:
            check(args)
        except BadArgument as e:
            args.parser.error(str(e))
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback (bench keeps its cases in OUT.partial.jsonl)
        sys.exit(f"{args.parser.prog}: interrupted")
    except OSError as e:  # the file system during the work (disk full, a folder removed meanwhile): one line
        sys.exit(f"{args.parser.prog}: {e}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
