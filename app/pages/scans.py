"""Parallel scans: the sequential, Hillis–Steele, Blelloch and chunked scans step by step on a small L,
with the (a, b) pairs after every step, the work and depth each counted, and the check against the loop."""

import streamlit as st
import torch
from _common import error_boundary, page_header, show

from mamba_edu.scan import SCANS, scan, scan_sequential
from mamba_edu.viz.scan import scan_animation, scan_steps, step_ranges

MAX_L = 32  # the slider's end: beyond this the cells are too small to read

page_header(
    "scans.py",
    "One step of the recurrence $h_t = a_t h_{t-1} + b_t$ is the pair $(a_t, b_t)$, and two steps compose to "
    "$(a_1, b_1) \\oplus (a_2, b_2) = (a_1 a_2,\\ a_2 b_1 + b_2)$. Because $\\oplus$ is associative, the prefixes "
    "$x_0 \\oplus \\dots \\oplus x_t$ can be bracketed in many ways: pick a method and a length, and follow the "
    "$(a, b)$ pairs step by step.",
)

NAMES = {"blelloch": "Blelloch", "hillis_steele": "Hillis–Steele", "sequential": "sequential (the loop)",
         "chunked": "chunked (GPU-style)"}
INPUTS = {"random": "random a in (0.5, 1), b normal", "ones": "a = 1, b = 1 (b counts the inputs summed)"}


@st.cache_data(show_spinner=False, max_entries=64)
def run(method: str, L: int, chunk: int, inputs: str, seed: int):
    """The scan with its recording, the sequential reference, and the ranges for the picture."""
    if inputs == "ones":
        a = torch.ones(L, dtype=torch.float64)  # (L,)
        b = torch.ones(L, dtype=torch.float64)  # (L,)
    else:
        g = torch.Generator().manual_seed(seed)
        a = torch.rand(L, generator=g, dtype=torch.float64) * 0.5 + 0.5  # (L,)
        b = torch.randn(L, generator=g, dtype=torch.float64)  # (L,)
    kw = {"chunk": chunk} if method == "chunked" else {}
    h, stats = scan(a, b, method=method, stats=True, record=True, **kw)  # (L,)
    ref = scan_sequential(a, b)  # (L,)
    costs = {m: scan(a, b, method=m, stats=True, **({"chunk": chunk} if m == "chunked" else {}))[1] for m in SCANS}
    return a, b, h, ref, stats, step_ranges(method, L, **kw), {m: (s.work, s.depth) for m, s in costs.items()}


@st.cache_data(show_spinner=False, max_entries=64)
def figures(method: str, L: int, chunk: int, inputs: str, seed: int):
    a, b, _, _, stats, ranges, _ = run(method, L, chunk, inputs, seed)
    title = f"{NAMES[method]}, L = {L}: {stats.depth} parallel steps, {stats.work} ⊕"
    return scan_steps(a, b, stats, ranges, title=title), scan_animation(a, b, stats, ranges, title=NAMES[method])


with error_boundary("the scan"):
    c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
    method = c1.selectbox("Method", list(NAMES), format_func=NAMES.get, key="method")
    L = c2.slider("Length L", 1, MAX_L, 8, key="L")
    chunk = c3.slider("Chunk C (chunked only)", 1, 16, 4, key="chunk", disabled=method != "chunked")
    inputs = c4.radio("Inputs", list(INPUTS), format_func=INPUTS.get, key="inputs")
    seed = 0
    if inputs == "random":
        seed = int(st.number_input("Random seed", 0, 10_000, 0, key="seed"))

    a, b, h, ref, stats, ranges, costs = run(method, L, chunk, inputs, seed)
    err = (h - ref).abs().max().item()
    m1, m2, m3 = st.columns(3)
    m1.metric("Work (⊕ performed)", stats.work)
    m2.metric("Depth (parallel steps)", stats.depth)
    m3.metric("Equals the sequential scan", "yes" if err <= 1e-12 * max(1.0, ref.abs().max().item()) else "NO",
              help=f"max |h − h_sequential| = {err:.2e}")

    steps_fig, anim_fig = figures(method, L, chunk, inputs, seed)
    tab1, tab2 = st.tabs(["All steps", "Animation"])
    with tab1:
        show(steps_fig, key="steps")
        st.caption("One row per parallel step (the input on top). Each cell shows its pair, a above b "
                   "(b only for L > 16); coloured cells were written at that step, the lines join the two "
                   "operands of each ⊕. Hover a cell for the inputs it holds. The last row's b is the scan.")
    with tab2:
        show(anim_fig, key="animation")
        st.caption("Press ▶ or drag the slider: the row before each step, the row after it, and the running "
                   "count of ⊕ (work) and steps (depth).")

    st.subheader(f"Work and depth of every method at L = {L}")
    st.dataframe([{"method": NAMES[m], "work (⊕)": w, "depth (steps)": d} for m, (w, d) in costs.items()],
                 hide_index=True)
    st.caption("Counted by the library's scans as they run (the chunked scan also counts its padded positions). "
               "With p processors the time is at most work/p + depth (Brent): few processors favour little "
               "work, many favour little depth.")
