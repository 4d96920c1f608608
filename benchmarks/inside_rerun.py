"""How long a rerun of the Inside Mamba page takes on this machine, for a text of 256 characters.

    python benchmarks/inside_rerun.py [--out results/textlm/page_rerun.json] [--repeat 5]

Runs the page headless through Streamlit's AppTest (the whole script: widgets, library calls,
figures, serialisation) and times `AppTest.run()` for three kinds of rerun, the median of --repeat:

    new text        a text the page has not read yet: the model reads it, every figure is built
    another byte    the same text, another chosen byte (a click): the reading comes from the cache,
                    the figures of that byte are built
    unchanged       nothing changed (e.g. the window was resized): everything from the cache

and, for the breakdown, the library alone: `block_reading.read` of the 256 bytes. Prints a table and writes
the JSON (with the machine, versions and the threads). The budget on a CPU is 0.5 s per rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 0.5
WORDS = "def read(path):\n    with open(path) as f:\n        return f.read()  # the whole file\n"


def text_of(n: int, salt: int) -> str:
    """n characters of code-like text; `salt` makes each one new to the page's cache."""
    base = f"# text {salt}\n" + WORDS * (n // len(WORDS) + 1)
    return base[:n]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    from streamlit.testing.v1 import AppTest

    from mamba_edu import block_reading, textlm
    from mamba_edu.tokenizer import utf8_tokens
    from mamba_edu.train import environment, load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "textlm" / "page_rerun.json"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chars", type=int, default=256)
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.chars < 2:
        ap.error("--repeat must be >= 1 and --chars >= 2")

    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("pages/inside_mamba.py").run()
    at.text_area(key="im_text").set_value(text_of(args.chars, -1)).run()  # warm: model loaded, code paths hot
    new, byte, same = [], [], []
    for i in range(args.repeat):
        new.append(timed(lambda: at.text_area(key="im_text").set_value(text_of(args.chars, i)).run()))
        byte.append(timed(lambda: at.slider(key="im_pos").set_value(7 + 13 * i).run()))
        same.append(timed(lambda: at.run()))
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    model, _ = load_checkpoint(ROOT / "results" / "textlm" / textlm.SHIPPED)
    tokens, _ = utf8_tokens(text_of(args.chars, 0), 4096)
    read = [timed(lambda: block_reading.read(model, tokens)) for _ in range(args.repeat)]
    rows = {"new text": new, "another byte": byte, "unchanged": same, "block_reading.read alone": read}
    out = {"environment": environment(), "platform": platform.platform(),
           "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count(), "chars": args.chars,
           "bytes": int(tokens.numel()), "repeat": args.repeat, "budget_s": BUDGET_S,
           "median_s": {k: statistics.median(v) for k, v in rows.items()}, "all_s": rows}
    print(f"Inside Mamba page, {args.chars} characters ({tokens.numel()} bytes), median of {args.repeat}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {out['load_average_1min']:.1f} "
          f"on {os.cpu_count()} cores:")
    for k, v in out["median_s"].items():
        print(f"  {k:18s} {v * 1000:7.0f} ms")
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
