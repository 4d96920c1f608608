"""Memory hierarchy & roofline: this machine's memory levels (queried, with measured bandwidth) beside
the recorded H100 and A100, an IO calculator per selective-scan implementation, and the roofline."""

import streamlit as st
import torch
from _common import error_boundary, on_gpu, page_header, show

from mamba_edu import bench, iomodel, machine, measure
from mamba_edu.machine import DATASHEETS
from mamba_edu.iomodel import IO_MODELS, ScanShape
from mamba_edu.viz.cost import human_bytes
from mamba_edu.viz.memory import hierarchy_bars, human_rate, io_bars, roofline_plot

page_header(
    "memory.py",
    "A selective scan does about one exponential per state element, so on a GPU its speed is set by the bytes "
    "it moves through HBM. Below: the memory levels of this machine beside the recorded H100 and A100, the bytes "
    "each implementation moves for a shape you choose, and the roofline that turns bytes into a time.",
)

H100, A100 = DATASHEETS["H100 SXM5 80GB"], DATASHEETS["A100 SXM4 40GB"]
POW2 = [2**k for k in range(18)]


@st.cache_resource(show_spinner="Measuring this machine's copy bandwidth and exp throughput…")
def this_machine():
    """Levels, measured copy bandwidth and the exp peak of this machine (measured once per server)."""
    if on_gpu():
        bw = measure.measure_copy_bandwidth("cuda", nbytes=2**30)
        return "this GPU", machine.memory_hierarchy("cuda", bandwidth=bw), bw, measure.measure_exp_throughput("cuda"), \
            "measured copy and exp2"
    bw = measure.measure_copy_bandwidth("cpu")
    return "this CPU", machine.memory_hierarchy("cpu", bandwidth=bw), bw, measure.measure_exp_throughput("cpu"), \
        "measured copy and exp"


@st.cache_resource(show_spinner="Timing the scans that run on this CPU…")
def cpu_points():
    small = ScanShape(batch=1, dim=16, L=256, N=16, bytes_per_element=4)
    return [measure.measure_point(impl, small, "cpu") for impl in ("naive", "parallel")]


with error_boundary("the memory hierarchy"):
    label, levels, bw, exp_peak, how = this_machine()
    st.subheader("Memory levels")
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Copy bandwidth, {label} (measured)", human_rate(bw))
    c2.metric(f"HBM bandwidth, {H100.name} (datasheet)", human_rate(H100.hbm_bandwidth))
    c3.metric(f"{H100.name} HBM ÷ {label}", f"{H100.hbm_bandwidth / bw:.3g}×")
    show(hierarchy_bars({label: levels, H100.name: H100.levels(), A100.name: A100.levels()},
                        title="Size and bandwidth per level (hover a bar for where the number comes from)"),
         key="hierarchy")
    gap = {s.name: machine.orders_of_magnitude(s.hbm_bytes, machine.on_chip_sram_bytes(s)) for s in (H100, A100)}
    st.caption(
        f"Registers and shared memory are per SM: an {A100.name} has {A100.sms} SMs × "
        f"{human_bytes(A100.shared_per_sm)} of shared memory (+ {human_bytes(A100.registers_per_sm)} of registers), "
        f"{human_bytes(machine.on_chip_sram_bytes(A100))} of SRAM in all: {gap[A100.name]:.1f} orders of magnitude "
        f"below its {human_bytes(A100.hbm_bytes)} of HBM ({gap[H100.name]:.1f} on the {H100.name}). "
        "Datasheet sizes are NVIDIA's published figures; register and shared-memory bandwidths are derived from the "
        "per-clock rates; this machine's numbers are queried and measured here.")

    st.subheader("IO calculator")
    c1, c2, c3, c4, c5 = st.columns(5)
    batch = c1.select_slider("batch B", [2**k for k in range(8)], value=8, key="batch")
    L = c2.select_slider("length L", [2**k for k in range(6, 18)], value=2048, key="L")
    dim = c3.select_slider("channels D", [2**k for k in range(4, 14)] + [1536, 5120], value=1536, key="dim")
    N = c4.select_slider("state N", [1, 2, 4, 8, 16, 32, 64, 128], value=16, key="N")
    dtype = c5.radio("inputs", ["bf16", "fp32"], key="dtype")
    shape = ScanShape(batch, dim, L, N, bytes_per_element=2 if dtype == "bf16" else 4)

    targets = {f"{H100.name} (datasheet)": (H100.peak_exp_per_s, H100.hbm_bandwidth),
               f"{A100.name} (datasheet)": (A100.peak_exp_per_s, A100.hbm_bandwidth)}
    if on_gpu() and exp_peak:
        targets = {f"{label} ({how})": (exp_peak, bw), **targets}
    results = bench.load_bench_results()
    for r in results:
        fl = r.get("floors", {})
        if fl.get("exp_per_s") and fl.get("copy_bytes_per_s"):
            targets[f"{r['device'].get('name', 'GPU')} (measured floors, {r['file']})"] = (fl["exp_per_s"],
                                                                                          fl["copy_bytes_per_s"])
    target = st.selectbox("Time it on", list(targets), key="target")
    peak, roof_bw = targets[target]

    io = {impl: model(shape) for impl, model in IO_MODELS.items()}
    floor = iomodel.min_bytes(shape)
    ops = iomodel.exp_count(shape)
    times = {impl: iomodel.time_floor(ops, nbytes, peak, roof_bw) for impl, nbytes in io.items()}
    st.dataframe([{"implementation": impl, "bytes through HBM": human_bytes(nbytes),
                   "× the floor": round(nbytes / floor, 2),
                   "exp per byte": f"{iomodel.arithmetic_intensity(impl, shape):.3g}",
                   "time at least (ms)": f"{times[impl] * 1e3:.4g}"} for impl, nbytes in io.items()],
                 hide_index=True)
    show(io_bars(io, floor=floor, times=times, time_label="(roofline)",
                 title=f"B = {batch}, D = {dim}, L = {L}, N = {N}, {dtype} inputs: "
                       f"one (B, D, L, N) fp32 tensor = {human_bytes(shape.state_elements * 4)}"), key="io")
    st.caption("Only the unfused implementations move the (B, D, L, N) intermediates: the fused kernel computes "
               "discretisation, scan and projection in one kernel, so only the floor (inputs read once, output "
               "written once) travels.")

    st.subheader("Roofline")
    model = {impl: iomodel.arithmetic_intensity(impl, shape) for impl in IO_MODELS}
    roofs = {target: (peak, roof_bw)}
    measured = {}
    for r in results:
        pts = iomodel.bench_points(r)
        if pts:
            measured[f"{r['device'].get('name', 'GPU')}: {r['file']}"] = (
                [p.intensity for p in pts], [p.achieved for p in pts],
                [f"{p.impl}, B={p.shape.batch} D={p.shape.dim} L={p.shape.L} N={p.shape.N}: {p.seconds * 1e3:.3g} ms"
                 for p in pts])
    if not on_gpu():
        roofs[f"{label} ({how})"] = (exp_peak, bw)
        pts = cpu_points()
        measured[f"measured on {label}"] = ([p.intensity for p in pts], [p.achieved for p in pts],
                                            [f"{p.impl}: {p.seconds * 1e3:.2f} ms" for p in pts])
    show(roofline_plot(roofs, model=model, measured=measured,
                       title="Attainable exponentials per second against exp per byte of HBM traffic"), key="roofline")
    if not results:
        st.info("No recorded GPU benchmark results in `results/bench/` yet: the H100 and A100 roofs use datasheet "
                "figures and the implementations' points are their IO models, not measurements.")
    st.caption(f"Open circles: each implementation's IO model at this shape, on the first roof (the best it can "
               f"reach). Diamonds: measured runs. Ridge of the first roof at "
               f"{iomodel.ridge_intensity(peak, roof_bw):.3g} exp/byte: left of it memory-bound, right of it "
               f"compute-bound. torch {torch.__version__.split('+')[0]}.")
