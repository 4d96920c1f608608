"""Kernel timing: the selective-scan implementations timed by `mamba_edu.bench` (every result checked
against a float64 reference before it is timed): the recorded GPU results, JSON files uploaded from other
GPUs, and a run on this machine (a CPU runs small sizes only)."""

import json
import re

import streamlit as st
from _common import device, device_caption, error_boundary, on_gpu, page_header, refuse_if, show

import mamba_edu
from mamba_edu import bench
from mamba_edu.viz import bench as vb
from mamba_edu.viz.memory import human_rate

page_header(
    "kernel_timing.py",
    "The benchmark of `mamba-edu bench` checks every implementation against a float64 reference and only then "
    "times it, beside two floors measured in the same run: the copy bandwidth and the exp2 throughput. Below: the "
    "recorded results (and any you upload from other GPUs) as time against L, speed-ups, how close each run gets to "
    "the floors and where attention becomes slower than the fused scan; at the bottom, a run on this machine.",
)

PASSES = {"forward": "forward", "forward_backward": "forward + backward"}
DTYPES = ["bfloat16", "float16", "float32"]
LENGTHS = [2**k for k in range(4, 18)]
BATCHES = [1, 2, 4, 8, 16, 32]
DIMS = [8, 16, 32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 4096]
STATES = [4, 8, 16, 32, 64]
# A CPU stays responsive up to these sizes; the Triton kernels run in the interpreter (every program emulated
# in Python, about a second per case at b·d·L·N = 2048), so they get a much smaller budget.
CPU_MAX = dict(L=1024, batch=2, dim=64, N=16)
TRITON_CPU_MAX_ELEMENTS = 2048
UPLOADS, RUNS, SELECT_NEXT, SEEN = "kt_uploads", "kt_runs", "kt_select_next", "kt_seen_files"


def label_of(results: dict, origin: str) -> str:
    """How a result set is named on the page: device, date and where it came from."""
    return f"{results['device']['name']} · {results['date']} ({origin})"


@st.cache_resource(show_spinner=False)
def shipped(folder: str) -> dict:
    """The results shipped in `folder` (results/bench/) that pass validation, {label: results}."""
    out = {}
    for r in bench.load_bench_results(folder):
        try:
            out[label_of(bench.validate_results(r), f"recorded: {r['file']}")] = r
        except ValueError:
            continue
    return out


MAX_UPLOAD_BYTES = 20 * 2**20  # a result of 100,000 cases is about 40 MB; those we ship are ~100 kB


def accept_upload(name: str, raw: bytes, store: dict) -> str:
    """Parse and validate one uploaded file and add it to `store` {label: results}; return its label.
    A malformed file (not UTF-8, not JSON, nested too deep, too large, any field of the wrong type or
    range) raises ValueError with the reason, and `store` is left as it was."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} has {len(raw) / 2**20:.0f} MiB; a benchmark result has at most "
                         f"{MAX_UPLOAD_BYTES // 2**20} MiB. Nothing was added.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{name} is not a JSON file ({e}). Nothing was added.") from None
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to be a benchmark result. Nothing was added.") from None
    try:
        bench.validate_results(data)
    except ValueError as e:
        raise ValueError(f"{name} is not a benchmark result of schema '{bench.SCHEMA}': {e} Nothing was added.") \
            from None
    except RecursionError:  # validation never recurses, but a file must never break the page
        raise ValueError(f"{name} is nested too deeply to be a benchmark result. Nothing was added.") from None
    label = label_of(data, f"uploaded: {name}")
    store[label] = data
    return label


def md_escape(text: str) -> str:
    """`text` shown literally in Streamlit Markdown: every Markdown (and HTML) special character escaped."""
    return re.sub(r"([\\`*_\[\]<>#|~$:])", r"\\\1", str(text))


def versions_text(versions: dict) -> str:
    """'mamba_edu 0.1.0, torch 2.11.0, …' (entries without a version left out)."""
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "not recorded"


def impls_in(results: dict) -> list[str]:
    found = {c["impl"] for c in results["cases"] if c["status"] == "ok"}
    return [i for i in vb.ORDER if i in found] + sorted(found - set(vb.ORDER))


def case_rows(results: dict) -> list[dict]:
    def pct(v):
        return f"{v:.2%}" if v else ""

    return [{"implementation": c["impl"], "pass": PASSES.get(c["pass"], c["pass"]), "batch": c["batch"],
             "dim": c["dim"], "L": c["L"], "N": c["N"], "dtype": c["dtype"], "status": c["status"],
             "relative error": f"{c['rel_error']:.1e}" if c.get("rel_error") is not None else "",
             "ms": round(c["ms"], 4) if c.get("ms") else None,
             "GB/s": round(c["bytes_per_s"] / 1e9, 1) if c.get("bytes_per_s") else None,
             "of bandwidth floor": pct(c.get("fraction_bandwidth")), "of exp2 floor": pct(c.get("fraction_exp")),
             "reason": c.get("reason") or ""} for c in results["cases"]]


def official_caption(rows: list[dict]) -> str:
    """What the same-run ratios say, the slower cases by name (every number from the results file)."""
    slower = [r for r in rows if r["ratio"] < 1]
    lo, hi = min(r["ratio"] for r in rows), max(r["ratio"] for r in rows)
    text = (f"Against the official mamba-ssm kernel timed in the same run: fused is faster in "
            f"{len(rows) - len(slower)} of {len(rows)} cases (official time / fused time from {lo:.2f} to {hi:.2f}; "
            f"the target is 2).")
    if slower:
        names = ", ".join(f"{'training' if r['pass'] == 'forward_backward' else 'forward'} "
                          f"{r['batch']}×{r['dim']}×{r['L']}×{r['N']} ({r['ratio']:.2f})" for r in slower)
        text += f" **Slower** in {len(slower)}: {names}."
    return text


def fingerprint(results: dict, label: str) -> tuple:
    """A cache key for a result set held in memory (the dict itself is not hashed: it can be large)."""
    return id(results), label, results["date"], len(results["cases"])


@st.cache_resource(show_spinner=False, max_entries=64)  # figures are never changed after building: no copies
def figures(_res: dict, key: tuple, pass_: str, baseline: str, versus: str | None) -> dict:
    figs = {"time": vb.time_vs_length(_res, pass_), "speedup": vb.speedup_vs_length(_res, baseline, pass_),
            "floors": vb.floor_fractions(_res, pass_), "rows": case_rows(_res),
            "official": vb.official_ratios(_res), "ratios": bench.same_run_ratios(_res)}
    if versus:
        figs["attention"] = vb.attention_crossover(_res, versus)
        figs["crossover"] = {p: vb.crossover_length(_res, versus, bench.ATTENTION, p) for p in PASSES}
    return figs


@st.cache_resource(show_spinner=False, max_entries=64)
def comparison(_available: dict, keys: tuple, impl: str, pass_: str):
    return vb.compare_runs(_available, impl, pass_)


def attention_heads(dim: int) -> int:
    """Attention heads of 64 channels where 64 divides the width (as in GPT-style models), else one head."""
    return dim // 64 if dim % 64 == 0 else 1


st.session_state.setdefault(UPLOADS, {})
st.session_state.setdefault(RUNS, {})
if SELECT_NEXT in st.session_state:  # a run just finished: show it (set before the select box exists)
    st.session_state["kt_choice"] = st.session_state.pop(SELECT_NEXT)

with error_boundary("the recorded results"):
    st.subheader("Results")
    uploaded = st.file_uploader("Add results from another GPU: JSON files written by `mamba-edu bench --out FILE`",
                                type=["json"], accept_multiple_files=True, key="kt_upload")
    seen = st.session_state.setdefault(SEEN, {})  # {file id: the message shown for it}: each upload read once
    for f in uploaded or []:
        if f.file_id not in seen:
            try:
                seen[f.file_id] = ("ok", accept_upload(f.name, f.getvalue(), st.session_state[UPLOADS]))
            except ValueError as e:
                seen[f.file_id] = ("error", str(e))
            except Exception as e:  # noqa: BLE001 - whatever a file makes the parser raise, the page goes on
                seen[f.file_id] = ("error", f"{f.name} could not be read ({type(e).__name__}). Nothing was added.")
        if seen[f.file_id][0] == "error":
            st.error(seen[f.file_id][1], icon=":material/error:")
    if st.session_state[UPLOADS]:
        r1, r2 = st.columns([4, 1], vertical_alignment="bottom")
        gone = r1.selectbox("Uploaded results", list(st.session_state[UPLOADS]), key="kt_remove_choice")
        if r2.button("Remove this upload", icon=":material/delete:", key="kt_remove"):
            st.session_state[UPLOADS].pop(gone, None)
            st.rerun()
    available = {**shipped(str(bench.BENCH_DIR)), **st.session_state[UPLOADS], **st.session_state[RUNS]}
    if not available:
        st.info("No benchmark results yet: none are recorded in `results/bench/`; upload a JSON file or run the "
                "benchmark below.")
    else:
        c1, c2, c3 = st.columns([1, 3, 1])
        pass_ = c1.selectbox("Pass", list(PASSES), format_func=PASSES.get, key="kt_pass")
        if st.session_state.get("kt_choice") not in available:
            st.session_state.pop("kt_choice", None)
        choice = c2.selectbox("Results", list(available), key="kt_choice")
        res = available[choice]
        impls = impls_in(res)
        scans = [i for i in impls if i != bench.ATTENTION]
        base_options = scans or impls
        baseline = c3.selectbox("Speed-up over", base_options,
                                index=base_options.index("parallel") if "parallel" in base_options else 0,
                                key="kt_baseline")
        dev, fl = res["device"], res["floors"]
        b, d, n = vb.sweep_shape(res)
        sms = f" ({dev['multiprocessors']} SMs)" if dev.get("multiprocessors") else ""
        st.markdown(f"**{md_escape(dev['name'])}**{sms}, measured **{md_escape(res['date'])}**")
        counts = {s: sum(c["status"] == s for c in res["cases"]) for s in bench.STATUSES}
        m = st.columns(4)
        m[0].metric("Copy bandwidth (measured)", human_rate(fl["copy_bytes_per_s"]) if fl.get("copy_bytes_per_s") else "–")
        m[1].metric("exp throughput (measured)", human_rate(fl["exp_per_s"], "exp/s") if fl.get("exp_per_s") else "–")
        m[2].metric("Cases checked and timed", counts["ok"])
        m[3].metric("Cases wrong (not timed)", counts["wrong"])
        st.caption(f"Sweep over L at batch {b}, dim {d}, N {n}; software: {md_escape(versions_text(res['versions']))}. Cases: "
                   + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                   + ". Every 'ok' case was checked against float64 before it was timed; 'wrong' ones are never timed.")

        # attention against the fused kernel where it ran, else the PyTorch scan, else any scan
        versus = next((i for i in ("fused", "parallel", *scans) if i in scans), None)
        versus = versus if bench.ATTENTION in impls else None
        figs = figures(res, fingerprint(res, choice), pass_, baseline, versus)
        show(figs["time"], key="kt_time")
        show(figs["speedup"], key="kt_speedup")
        if versus:
            show(figs["attention"], key="kt_attention")
            found = figs["crossover"]
            st.caption(f"Causal attention (`scaled_dot_product_attention`, same width) against `{versus}`: "
                       + "; ".join(f"{PASSES[p]}: " + (f"attention becomes slower at L ≈ {v:,.0f}" if v else
                                                       "no crossover in the measured lengths")
                                   for p, v in found.items()) + " (interpolated between the measured lengths).")
        show(figs["floors"], key="kt_floors")
        if figs["official"] is not None:
            show(figs["official"], key="kt_official")
            st.caption(official_caption(figs["ratios"]))
        elif "fused" in impls:
            st.caption("The official mamba-ssm kernel was not installed where these results were recorded: no "
                       "same-run comparison with it (`mamba-edu bench` times it where `mamba_ssm` imports).")
        st.download_button("Download these results (JSON)", json.dumps(res, indent=1), mime="application/json",
                           file_name=f"mamba-edu-bench-{dev['name'].replace(' ', '_')}.json", key="kt_download",
                           icon=":material/download:")
        with st.expander("Every case, as recorded"):
            st.dataframe(figs["rows"], hide_index=True)

        st.subheader("Machines side by side")
        found = {i for r in available.values() for i in impls_in(r)}
        every = [i for i in vb.ORDER if i in found] + sorted(found - set(vb.ORDER))
        impl = st.selectbox("Implementation", every, index=every.index("fused") if "fused" in every else 0,
                            key="kt_compare_impl")
        keys = tuple(fingerprint(r, k) for k, r in available.items())
        show(comparison(available, keys, impl, pass_), key="kt_compare")
        st.caption("Each result set at its own sweep shape (in the legend). Upload the JSON of another GPU above to "
                   "add it; uploads last for this browser session.")

st.subheader("Run the benchmark here")
with error_boundary("the benchmark run"):
    gpu = on_gpu()
    target = "cuda" if gpu else "cpu"
    st.caption(f"This machine: {device_caption()}.")
    registry = mamba_edu.implementations()
    runnable = [k for k, e in registry.items() if e.available(target)[0]]
    missing = {k: e.available(target)[1] for k, e in registry.items() if k not in runnable}
    if gpu:
        defaults = dict(lengths=[512, 2048, 8192], batch=2, dim=768, N=16, dtype="bfloat16", impls=runnable)
    else:
        defaults = dict(lengths=[16, 64, 256], batch=1, dim=16, N=16, dtype="float32",
                        impls=[i for i in runnable if not registry[i].needs_triton])
    with st.form("kt_run"):
        lengths = st.multiselect("Sequence lengths L", LENGTHS, default=defaults["lengths"], key="kt_lengths")
        c1, c2, c3, c4 = st.columns(4)
        batch = c1.selectbox("batch", BATCHES, index=BATCHES.index(defaults["batch"]), key="kt_batch")
        dim = c2.selectbox("dim (channels)", DIMS, index=DIMS.index(defaults["dim"]), key="kt_dim")
        N = c3.selectbox("N (state)", STATES, index=STATES.index(defaults["N"]), key="kt_N")
        dtype = c4.selectbox("inputs", DTYPES, index=DTYPES.index(defaults["dtype"]), key="kt_dtype")
        impls_run = st.multiselect("Implementations", runnable, default=defaults["impls"], key="kt_impls")
        passes = st.multiselect("Passes", list(PASSES), default=list(PASSES), format_func=PASSES.get, key="kt_passes")
        attention = st.checkbox("Also time causal attention at the same width", value=True, key="kt_attention_on")
        submitted = st.form_submit_button("Run the benchmark", icon=":material/timer:", key="kt_go")
    if missing:
        st.caption("Not available here: " + "; ".join(f"`{k}` ({why})" for k, why in missing.items()) + ".")
    if not gpu:
        st.caption(f"On a CPU this page runs at most L = {CPU_MAX['L']}, batch {CPU_MAX['batch']}, dim "
                   f"{CPU_MAX['dim']}, N {CPU_MAX['N']}; the Triton kernels (in the interpreter) only while "
                   f"batch·dim·L·N ≤ {TRITON_CPU_MAX_ELEMENTS}. Their interpreter times measure Python, not a GPU.")
    if submitted:
        if not lengths or not impls_run or not passes:
            raise ValueError("choose at least one length, one implementation and one pass")
        if not gpu:
            refuse_if(max(lengths) > CPU_MAX["L"] or batch > CPU_MAX["batch"] or dim > CPU_MAX["dim"]
                      or N > CPU_MAX["N"],
                      f"Too large for a CPU: this page runs at most L = {CPU_MAX['L']}, batch {CPU_MAX['batch']}, "
                      f"dim {CPU_MAX['dim']} and N {CPU_MAX['N']} here (you asked for L up to {max(lengths)}, batch "
                      f"{batch}, dim {dim}, N {N}). On a GPU, or with `mamba-edu bench`, there is no such limit.")
            elements = batch * dim * max(lengths) * N
            triton_impls = [i for i in impls_run if registry[i].needs_triton]
            refuse_if(bool(triton_impls) and elements > TRITON_CPU_MAX_ELEMENTS,
                      f"The Triton kernels ({', '.join(triton_impls)}) run in Triton's interpreter on a CPU, which "
                      f"emulates every program in Python: keep batch·dim·L·N ≤ {TRITON_CPU_MAX_ELEMENTS} (you asked "
                      f"for {elements:,}) or leave them out.")
        cfg = bench.BenchConfig(lengths=tuple(sorted(lengths)), batch=batch, dim=dim, N=N, dtype=dtype,
                                impls=tuple(impls_run), passes=tuple(p for p in PASSES if p in passes),
                                attention=attention, heads=attention_heads(dim))
        bar = st.progress(0.0, text=f"{len(cfg.cases())} cases: measuring the floors first…")

        def on_case(i, total, rec):
            bar.progress((i + 1) / total, text=f"case {i + 1}/{total}: {rec['impl']} {PASSES[rec['pass']]} "
                                               f"L = {rec['L']}: {rec['status']}")

        results = bench.validate_results(bench.run_bench(cfg, target, progress=False, on_case=on_case))
        label = label_of(results, f"run {len(st.session_state[RUNS]) + 1} here")
        st.session_state[RUNS][label] = results
        st.session_state[SELECT_NEXT] = label
        st.rerun()
    if st.session_state[RUNS]:
        st.caption(f"Runs of this session (selectable under Results above, and downloadable there): "
                   f"{', '.join(st.session_state[RUNS])}. Device: {device().summary()}.")
