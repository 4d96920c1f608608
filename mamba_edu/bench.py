"""The benchmark behind `mamba-edu bench`: cases, check-then-time, floors, JSON results and report.

The implementations it times come from the registry (`mamba_edu.registry`), their bytes from the
IO model (`mamba_edu.iomodel`), the floors and timers from `mamba_edu.measure`.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ._checks import fail
from .machine import describe_device, triton_version
from .iomodel import ScanShape, backward_min_bytes, exp_count
from .measure import measure_copy_bandwidth, measure_exp_throughput, median_seconds
from .registry import implementations


# ----------------------------------------------------------------------------------------------
# The benchmark: `mamba-edu bench`
#
# Every case is first checked against a float64 reference computed in the same run (on a slice
# of one sequence × up to 64 channels: every channel is an independent SSM, so a slice tests the
# same arithmetic); a wrong result is recorded as "wrong" and never timed. Then it is timed
# (triton.testing.do_bench median on a GPU, median wall time on a CPU) and placed against the
# floors measured in the same run: copy bandwidth (bytes read + written) and exp2 throughput.
#
#     floor_bandwidth = bytes / copy bandwidth        bytes: the registry's IO model (forward),
#                                                     + backward_min_bytes for forward+backward
#     floor_exp       = exps / exp2 throughput        exps: b·d·l·n per pass (forward and the
#                                                     backward's recomputation)
#     fraction_*      = floor / measured time         1.0 would be at the floor
# ----------------------------------------------------------------------------------------------

SCHEMA = "mamba-edu-bench/1"
BENCH_DIR = Path(__file__).resolve().parents[1] / "results" / "bench"  # the committed results
PASSES = ("forward", "forward_backward")
STATUSES = ("ok", "wrong", "oom", "skipped", "error")
ATTENTION = "attention"  # causal scaled_dot_product_attention at the same width, for the quadratic comparison
TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2, "float16": 5e-3}  # relative error against float64
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Case:
    """One measurement: an implementation, a pass and a shape."""

    impl: str
    pass_: str
    batch: int
    dim: int
    L: int
    N: int
    dtype: str = "bfloat16"


@dataclass
class BenchConfig:
    """What to sweep. `cases()` expands it; the presets are `preset(name, device)`."""

    lengths: tuple = (256, 1024, 4096)
    batch: int = 1
    dim: int = 1536
    N: int = 16
    dtype: str = "bfloat16"
    impls: tuple | None = None  # None: every registered implementation that runs here
    passes: tuple = PASSES
    attention: bool = True
    heads: int = 24  # attention heads (head dim = dim / heads)
    extra: list = field(default_factory=list)  # extra (batch, dim, L, N) shapes, all impls
    naive_max_L: int = 4096  # the Python loop: one launch per step
    max_elements_cpu: int = 2**22  # b·d·l·n above which a CPU case is skipped (too slow)

    def cases(self) -> list[Case]:
        impls = list(self.impls) if self.impls else list(implementations())
        if self.attention and ATTENTION not in impls:
            impls.append(ATTENTION)
        shapes = [(self.batch, self.dim, L, self.N) for L in self.lengths] + [tuple(s) for s in self.extra]
        return [Case(i, p, *shape, dtype=self.dtype) for shape in shapes for i in impls for p in self.passes]


def preset(name: str, device: str = "cuda") -> BenchConfig:
    """`full`: the sweep whose results are committed; `targets`: the issue's three shapes;
    `quick`: a minute on a GPU; `cpu`: what a CPU can run."""
    if name == "full":
        return BenchConfig(lengths=tuple(2**k for k in range(8, 18)), batch=1, dim=1536, naive_max_L=2048,
                           extra=[(8, 1536, 2048, 16), (8, 4096, 2048, 16), (8, 1536, 2048, 32),
                                  (8, 1536, 2048, 64), (2, 1536, 2048, 16), (32, 1536, 2048, 16)])
    if name == "targets":
        return BenchConfig(lengths=(), extra=[(8, 1536, 2048, 16), (1, 1536, 8192, 16), (8, 4096, 2048, 16)])
    if name == "quick":
        return BenchConfig(lengths=(512, 2048, 8192), batch=2, dim=768)
    if name == "cpu":
        return BenchConfig(lengths=(16, 64, 256, 1024), batch=1, dim=32, heads=4, naive_max_L=1024)
    fail("preset", "name", "one of 'full', 'targets', 'quick', 'cpu'", repr(name))


def _inputs(c: Case, device, seed: int):
    """Fresh random inputs of the contract: bf16/fp16/fp32 u, Δ, z, B, C; fp32 A, D, delta_bias."""
    g = torch.Generator(device=device).manual_seed(seed)
    dt = _DTYPES[c.dtype]

    def r(*s):
        return torch.randn(*s, device=device, generator=g)

    return dict(u=r(c.batch, c.dim, c.L).to(dt), delta=(0.5 * r(c.batch, c.dim, c.L) - 1.0).to(dt),
                A=-torch.exp(0.5 * r(c.dim, c.N)), B=r(c.batch, c.N, c.L).to(dt), C=r(c.batch, c.N, c.L).to(dt),
                D=r(c.dim), z=r(c.batch, c.dim, c.L).to(dt), delta_bias=0.1 * r(c.dim))


def _slice(x: dict, channels: int) -> dict:
    """The first sequence and the first `channels` channels, in float64."""
    out = {}
    for k, v in x.items():
        if k in ("u", "delta", "z"):
            v = v[:1, :channels]
        elif k in ("B", "C"):
            v = v[:1]
        else:
            v = v[:channels]
        out[k] = v.double()
    return out


def _rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def _scan_case(c: Case, device):
    """(run, check) for a selective-scan case: run() does the pass; check() returns the relative
    error against the float64 reference on a slice (forward output, and input gradients)."""
    fn = implementations()[c.impl].load()
    x = _inputs(c, device, seed=hash((c.impl, c.pass_, c.batch, c.dim, c.L, c.N)) % 2**31)
    kw = dict(delta_softplus=True)
    k = min(c.dim, 64)
    ref_slice = _slice(x, k)
    if c.pass_ == "forward":
        def run():
            with torch.no_grad():
                return fn(**x, **kw)

        def check():
            with torch.no_grad():
                ref = selective_scan_parallel_f64(ref_slice, kw)
                return _rel(run()[:1, :k], ref)
        return run, check

    xs = {n: v.requires_grad_() for n, v in x.items()}
    grad_out = torch.randn(c.batch, c.dim, c.L, device=device, dtype=_DTYPES[c.dtype])

    def run():
        out = fn(**xs, **kw)
        return torch.autograd.grad(out, [xs["u"], xs["delta"]], grad_out)

    def check():
        du, ddelta = run()
        rs = {n: v.detach().requires_grad_(n in ("u", "delta")) for n, v in ref_slice.items()}
        ref = selective_scan_parallel_f64(rs, kw, grad=True)
        rdu, rdd = torch.autograd.grad(ref, [rs["u"], rs["delta"]], grad_out[:1, :k].double())
        return max(_rel(du[:1, :k], rdu), _rel(ddelta[:1, :k], rdd))
    return run, check


def selective_scan_parallel_f64(x: dict, kw: dict, grad: bool = False):
    """The float64 reference used by the benchmark (the `parallel` scan, which the unit tests hold
    equal to `selective_scan_ref`, in float64: Python-loop references are too slow at L = 128K)."""
    from .selective import selective_scan_parallel

    with torch.enable_grad() if grad else torch.no_grad():
        return selective_scan_parallel(**x, **kw)


def _attention_case(c: Case, device, heads: int):
    """Causal SDPA with heads × head_dim = dim: q, k, v (b, heads, L, dim/heads)."""
    h = heads if c.dim % heads == 0 else 1
    g = torch.Generator(device=device).manual_seed(c.L)
    q, k, v = (torch.randn(c.batch, h, c.L, c.dim // h, device=device, generator=g).to(_DTYPES[c.dtype])
               for _ in range(3))
    F = torch.nn.functional
    if c.pass_ == "forward_backward":
        q, k, v = (t.requires_grad_() for t in (q, k, v))

    def run():
        with torch.set_grad_enabled(c.pass_ == "forward_backward"):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            if c.pass_ == "forward_backward":
                return torch.autograd.grad(out, [q, k, v], torch.ones_like(out))
            return out

    def check():
        with torch.no_grad():
            m = min(c.L, 128)  # the last m queries of head 0, against float64 softmax attention
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)[:1, :1, -m:]
            qs, ks, vs = (t[:1, :1].double() for t in (q, k, v))
            s = qs[..., -m:, :] @ ks.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (1, 1, m, L)
            pos = torch.arange(c.L, device=device)
            s = s.masked_fill(pos[None, :] > pos[-m:, None], float("-inf"))
            return _rel(out, torch.softmax(s, -1) @ vs)
    return run, check


def _shape(c: Case) -> ScanShape:
    return ScanShape(c.batch, c.dim, c.L, c.N, bytes_per_element=2 if c.dtype != "float32" else 4)


def case_bytes(c: Case) -> int:
    """The IO model's bytes for a case (attention: read q, k, v and write out once, as FlashAttention)."""
    s = _shape(c)
    if c.impl == ATTENTION:
        fwd = 4 * c.batch * c.L * c.dim * s.bytes_per_element
        return fwd if c.pass_ == "forward" else fwd + 7 * c.batch * c.L * c.dim * s.bytes_per_element
    fwd = implementations()[c.impl].bytes_moved(s)
    return fwd if c.pass_ == "forward" else fwd + backward_min_bytes(s)


def case_exps(c: Case) -> int:
    """Exponentials the case must compute (attention: its L²/2·heads softmax exponentials per pass)."""
    if c.impl == ATTENTION:
        return c.batch * c.L * (c.L + 1) // 2 * (2 if c.pass_ == "forward_backward" else 1)
    return exp_count(_shape(c)) * (2 if c.pass_ == "forward_backward" else 1)


def _skip_reason(c: Case, cfg: BenchConfig, device: torch.device) -> str | None:
    if c.impl != ATTENTION:
        entry = implementations()[c.impl]
        ok, why = entry.available(device)
        if not ok:
            return why
        if c.pass_ == "forward_backward" and not entry.has_backward:
            return "forward only (no backward)"
        if c.impl == "naive" and c.L > cfg.naive_max_L:
            return f"a Python loop of {c.L} steps: too slow (limit L <= {cfg.naive_max_L})"
    if device.type == "cpu":
        if c.batch * c.dim * c.L * c.N > cfg.max_elements_cpu:
            return f"too large for a CPU (b·d·l·n > {cfg.max_elements_cpu})"
        if c.impl in ("triton_simple", "triton_scan", "fused") and c.batch * c.dim * c.L * c.N > 2**14:
            return "the Triton interpreter on a CPU is for tiny shapes only (b·d·l·n <= 16384)"
    return None


def _time_ms(run, device: torch.device) -> float:
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(run, warmup=25, rep=100, return_mode="median"))
    return median_seconds(run, repeat=3, warmup=1) * 1e3


def _peak_bytes(run, device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated() - base)


def measure_case(c: Case, cfg: BenchConfig, device: torch.device, floors: dict, dry: bool = False) -> dict:
    """Check, then time one case; never raises (errors and out-of-memory are recorded).
    `dry`: only the record's fixed fields (shape, bytes, exps)."""
    rec = dict(impl=c.impl, **{"pass": c.pass_}, batch=c.batch, dim=c.dim, L=c.L, N=c.N, dtype=c.dtype,
               status="ok", reason=None, rel_error=None, ms=None, bytes=case_bytes(c), exps=case_exps(c),
               bytes_per_s=None, fraction_bandwidth=None, fraction_exp=None, peak_bytes=None)
    why = _skip_reason(c, cfg, device)
    if dry:
        return rec
    if why:
        return {**rec, "status": "skipped", "reason": why}
    try:
        run, check = _attention_case(c, device, cfg.heads) if c.impl == ATTENTION else _scan_case(c, device)
        err = check()
        rec["rel_error"] = err
        tol = TOLERANCE[c.dtype] * (5 if c.impl == ATTENTION else 1)
        if not (err <= tol):  # NaN is wrong too
            return {**rec, "status": "wrong", "reason": f"relative error {err:.3g} > {tol:g}: not timed"}
        ms = _time_ms(run, device)
        rec["peak_bytes"] = _peak_bytes(run, device)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**rec, "status": "oom", "reason": "out of GPU memory"}
    except Exception as e:  # recorded, and the sweep goes on
        if "out of memory" in str(e).lower():
            torch.cuda.empty_cache()
            return {**rec, "status": "oom", "reason": "out of GPU memory"}
        return {**rec, "status": "error", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
    s = ms * 1e-3
    rec.update(ms=ms, bytes_per_s=rec["bytes"] / s)
    if floors.get("copy_bytes_per_s"):
        rec["fraction_bandwidth"] = rec["bytes"] / floors["copy_bytes_per_s"] / s
    if floors.get("exp_per_s"):
        rec["fraction_exp"] = rec["exps"] / floors["exp_per_s"] / s
    return rec


def measure_floors(device: torch.device) -> dict:
    """Copy bandwidth (bytes read + written) and exp2 throughput, measured now on `device`."""
    nbytes = 2**30 if device.type == "cuda" else 2**26
    return dict(copy_bytes_per_s=measure_copy_bandwidth(device, nbytes=nbytes),
                exp_per_s=measure_exp_throughput(device))


def environment(device: torch.device) -> dict:
    info = describe_device(device.index or 0) if device.type == "cuda" else describe_device()
    dev = dict(kind=info.kind, name=info.name, multiprocessors=info.multiprocessors, memory_bytes=info.memory_bytes,
               capability=info.capability)
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        dev["sm_clock_khz"] = getattr(p, "clock_rate", None)
        dev["memory_clock_khz"] = getattr(p, "memory_clock_rate", None)
        dev["l2_cache_bytes"] = getattr(p, "L2_cache_size", None)
    from . import __version__

    versions = dict(mamba_edu=__version__, torch=torch.__version__, triton=triton_version(),
                    cuda=torch.version.cuda, python=platform.python_version())
    return dict(device=dev, versions=versions)


def run_bench(cfg: BenchConfig, device: str | torch.device = "cuda", progress: bool = True,
              on_case=None) -> dict:
    """Run the sweep and return the results (schema "mamba-edu-bench/1"); `on_case(i, n, record)` is
    called after each case (the app's progress bar)."""
    device = torch.device(device)
    cases = cfg.cases()
    t0 = time.time()
    floors = measure_floors(device)
    records = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cases), desc="mamba-edu bench", unit="case")
    lost = None  # after an illegal memory access the CUDA context is unusable: stop measuring
    for i, c in enumerate(cases):
        if lost:
            rec = {**measure_case(c, cfg, device, floors, dry=True), "status": "error",
                   "reason": f"not run: the CUDA context was lost at an earlier case ({lost})"}
        else:
            rec = measure_case(c, cfg, device, floors)
            if rec["status"] == "error" and "illegal memory access" in (rec["reason"] or ""):
                lost = f"{c.impl} {c.pass_} b={c.batch} d={c.dim} L={c.L} N={c.N}"
        records.append(rec)
        if bar is not None:
            bar.set_postfix_str(f"{c.impl} {c.pass_} L={c.L}: {rec['status']}")
            bar.update()
        if on_case is not None:
            on_case(i, len(cases), rec)
    if bar is not None:
        bar.close()
    settings = {k: v for k, v in asdict(cfg).items()}
    return dict(schema=SCHEMA, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                **environment(device), settings=settings, floors=floors, seconds=round(time.time() - t0, 1),
                cases=records)


# -- results files ------------------------------------------------------------------------------

_CASE_FIELDS = {"impl": str, "pass": str, "batch": int, "dim": int, "L": int, "N": int, "dtype": str, "status": str}
# The largest values a result can hold (beyond them a file is not a measurement: it is refused).
_MAX_CASES = 100_000
_MAX_TEXT = 200  # characters of any string field (a device name, an implementation, a reason gets 2,000)
_MAX_SIZE = {"batch": 2**20, "dim": 2**20, "L": 2**31, "N": 2**16}
_OPTIONAL_NUMBERS = {  # case field: must it be > 0 (True) or ≥ 0 (False); None or absent is allowed
    "rel_error": False, "ms": True, "bytes": False, "exps": False, "bytes_per_s": True,
    "fraction_bandwidth": False, "fraction_exp": False, "peak_bytes": False}
_TIMED = ("ms", "bytes_per_s", "fraction_bandwidth", "fraction_exp")  # only a timed ('ok') case has these


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(where: str, v, positive: bool, optional: bool = True):
    """None (if optional) or a finite number, > 0 or ≥ 0; ValueError naming `where` otherwise."""
    if v is None and optional:
        return
    if not _is_number(v) or not (v > 0 if positive else v >= 0):
        want = "a positive finite number" if positive else "a finite number ≥ 0"
        raise ValueError(f"{where} must be {want}{' or null' if optional else ''}; got {_short(v)}.")


def _short(v) -> str:
    text = repr(v) if not isinstance(v, (dict, list)) else f"a JSON {'object' if isinstance(v, dict) else 'list'}"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(where: str, v, limit: int = _MAX_TEXT, optional: bool = False) -> None:
    if v is None and optional:
        return
    if not isinstance(v, str) or len(v) > limit:
        raise ValueError(f"{where} must be a string of at most {limit} characters; got {_short(v)}.")


def _validate_case(i: int, c) -> None:
    if not isinstance(c, dict):
        raise ValueError(f"case {i} must be an object; got {type(c).__name__}.")
    for key, typ in _CASE_FIELDS.items():
        if not isinstance(c.get(key), typ) or isinstance(c.get(key), bool):
            raise ValueError(f"case {i}: field {key!r} must be a {typ.__name__}; got {_short(c.get(key))}.")
        if typ is str:
            _text(f"case {i}: field {key!r}", c[key])
    for key, most in _MAX_SIZE.items():
        if not 1 <= c[key] <= most:
            raise ValueError(f"case {i}: field {key!r} must be between 1 and {most:,}; got {c[key]}.")
    if c["status"] not in STATUSES:
        raise ValueError(f"case {i}: field 'status' must be one of {', '.join(STATUSES)}; got {_short(c['status'])}.")
    if c["pass"] not in PASSES:
        raise ValueError(f"case {i}: field 'pass' must be one of {', '.join(PASSES)}; got {_short(c['pass'])}.")
    if c["dtype"] not in _DTYPES:
        raise ValueError(f"case {i}: field 'dtype' must be one of {', '.join(_DTYPES)}; got {_short(c['dtype'])}.")
    _text(f"case {i}: field 'reason'", c.get("reason"), limit=2000, optional=True)
    for key, positive in _OPTIONAL_NUMBERS.items():
        _number(f"case {i}: field {key!r}", c.get(key), positive)
    if c["status"] == "ok":
        _number(f"case {i}: an 'ok' case's field 'ms'", c.get("ms"), positive=True, optional=False)
    else:
        timed = [k for k in _TIMED if c.get(k) is not None]
        if timed:
            raise ValueError(f"case {i}: a case with status {c['status']!r} was not timed, so {', '.join(timed)} "
                             "must be null.")


def validate_results(data) -> dict:
    """Check that `data` (parsed JSON) is a benchmark result of this schema; return it, or raise
    ValueError saying what is wrong (the app shows the message and changes nothing).

    Every field the app, the CLI or `viz.bench` reads is checked for its type and range: strings of
    bounded length, sizes between 1 and a bound, times and rates positive and finite, rates and
    times only on timed ('ok') cases, and at most 100,000 cases."""
    if not isinstance(data, dict):
        raise ValueError(f"a benchmark result must be a JSON object; got {type(data).__name__}.")
    if data.get("schema") != SCHEMA:
        raise ValueError(f"field 'schema' must be {SCHEMA!r}; got {_short(data.get('schema'))}.")
    for key in ("device", "date", "versions", "floors", "cases"):
        if key not in data:
            raise ValueError(f"field {key!r} is missing.")
    dev = data["device"]
    if not isinstance(dev, dict):
        raise ValueError("field 'device' must be an object with a string 'name'.")
    _text("field 'device.name'", dev.get("name"))
    if not dev["name"].strip():
        raise ValueError("field 'device.name' must not be empty.")
    for key in ("multiprocessors", "memory_bytes", "sm_clock_khz", "memory_clock_khz", "l2_cache_bytes"):
        _number(f"field 'device.{key}'", dev.get(key), positive=True)
    if dev.get("multiprocessors") is not None and not isinstance(dev["multiprocessors"], int):
        raise ValueError(f"field 'device.multiprocessors' must be an integer; got {_short(dev['multiprocessors'])}.")
    for key in ("kind", "capability"):
        _text(f"field 'device.{key}'", dev.get(key), optional=True)
    _text("field 'date'", data["date"], limit=64)
    versions = data["versions"]
    if not isinstance(versions, dict) or len(versions) > 32:
        raise ValueError(f"field 'versions' must be an object of at most 32 entries; got {_short(versions)}.")
    for k, v in versions.items():
        _text(f"field 'versions' key", k, limit=64)
        _text(f"field 'versions.{k}'", v, limit=64, optional=True)
    floors = data["floors"]
    if not isinstance(floors, dict):
        raise ValueError(f"field 'floors' must be an object; got {_short(floors)}.")
    for key in ("copy_bytes_per_s", "exp_per_s"):
        _number(f"field 'floors.{key}'", floors.get(key), positive=True)
    settings = data.get("settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise ValueError(f"field 'settings' must be an object; got {_short(settings)}.")
        for key, most in _MAX_SIZE.items():
            if key != "L" and key in settings:
                v = settings[key]
                if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= most:
                    raise ValueError(f"field 'settings.{key}' must be an integer between 1 and {most:,}; got {_short(v)}.")
    _number("field 'seconds'", data.get("seconds"), positive=False)
    cases = data["cases"]
    if not isinstance(cases, list) or not cases or len(cases) > _MAX_CASES:
        raise ValueError(f"field 'cases' must be a non-empty list of at most {_MAX_CASES:,} cases.")
    for i, c in enumerate(cases):
        _validate_case(i, c)
    return data


def load_results(path) -> dict:
    """Read and validate a results file."""
    try:
        data = json.loads(Path(path).read_text())
    except ValueError as e:
        raise ValueError(f"{Path(path).name} is not valid JSON: {e}") from None
    return validate_results(data)


def save_results(results: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(validate_results(results), indent=1) + "\n")


def ok_cases(results: dict, pass_: str = "forward", **where) -> list[dict]:
    """The timed cases of one pass, filtered by equal fields (e.g. batch=1, dim=1536, N=16)."""
    return [c for c in results["cases"] if c["status"] == "ok" and c["pass"] == pass_
            and all(c.get(k) == v for k, v in where.items())]


def sweep_shape(results: dict) -> tuple[int, int, int]:
    """(batch, dim, N) of the length sweep: the settings' own, else the most common among cases."""
    s = results.get("settings", {})
    if all(k in s for k in ("batch", "dim", "N")):
        return int(s["batch"]), int(s["dim"]), int(s["N"])
    counts: dict[tuple, int] = {}
    for c in results["cases"]:
        key = (c["batch"], c["dim"], c["N"])
        counts[key] = counts.get(key, 0) + 1
    return max(counts, key=counts.get)


def crossover_length(results: dict, impl: str = "fused", other: str = "attention", pass_: str = "forward",
                     shape: tuple | None = None) -> float | None:
    """The sequence length where `other` (attention) becomes slower than `impl`, from measured times.

    At the lengths where both ran, r(L) = log(t_other(L) / t_impl(L)). The first consecutive pair
    L1 < L2 with r(L1) <= 0 < r(L2) brackets the crossover, interpolated linearly in (log L, r):

        L* = exp(log L1 + (log L2 − log L1) · (−r1) / (r2 − r1))

    None when there is no such pair (one of them is faster at every measured length).
    """
    if not isinstance(results, dict) or not isinstance(results.get("cases"), list):
        fail("crossover_length", "results", "benchmark results (a dict with a list of 'cases')", type(results).__name__)
    if shape is None and not results["cases"] and not all(k in results.get("settings", {}) for k in ("batch", "dim", "N")):
        fail("crossover_length", "results", "results with at least one case (or pass shape=(batch, dim, N))", "no cases")
    b, d, n = shape or sweep_shape(results)
    where = dict(batch=b, dim=d, N=n)
    t_impl = {c["L"]: c["ms"] for c in ok_cases(results, pass_, impl=impl, **where)}
    t_other = {c["L"]: c["ms"] for c in ok_cases(results, pass_, impl=other, **where)}
    common = sorted(set(t_impl) & set(t_other))
    r = [math.log(t_other[L] / t_impl[L]) for L in common]
    for (L1, r1), (L2, r2) in zip(zip(common, r), zip(common[1:], r[1:])):
        if r1 <= 0 < r2:
            return math.exp(math.log(L1) + (math.log(L2) - math.log(L1)) * (-r1) / (r2 - r1))
    return None


def load_bench_results(folder=None) -> list[dict]:
    """Every benchmark result of schema "mamba-edu-bench/1" in `folder` (results/bench/ of the
    repository by default), sorted by file name; [] when there is none. Other JSON files are skipped."""
    folder = BENCH_DIR if folder is None else Path(folder)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            out.append({**data, "file": path.name})
    return out


def same_run_ratios(results: dict, impl: str = "fused", peer: str = "official") -> list[dict]:
    """For every (pass, shape) where both `impl` and `peer` ran correctly in this one result:
    ratio = peer's time / impl's time (> 1: impl is faster) and memory = impl's peak / peer's peak.

    A claim against a peer is a ratio from one run (DESIGN.md): never mix results files here."""
    def key(c):
        return (c["pass"], c["batch"], c["dim"], c["L"], c["N"], c["dtype"])

    ours = {key(c): c for c in results["cases"] if c["impl"] == impl and c["status"] == "ok"}
    theirs = {key(c): c for c in results["cases"] if c["impl"] == peer and c["status"] == "ok"}
    rows = []
    for k in sorted(set(ours) & set(theirs), key=lambda k: (PASSES.index(k[0]) if k[0] in PASSES else 9, *k[1:])):
        a, b = ours[k], theirs[k]
        pa, pb = a.get("peak_bytes"), b.get("peak_bytes")
        rows.append(dict(zip(("pass", "batch", "dim", "L", "N", "dtype"), k), ms=a["ms"], peer_ms=b["ms"],
                         ratio=b["ms"] / a["ms"], memory=pa / pb if pa and pb else None))
    return rows
