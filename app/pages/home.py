"""Home: what the app is, the map of its pages and of the notebooks, the device and what runs where."""

import streamlit as st
import torch
from _common import PAGES, device, error_boundary, notebook_chapters, page_header, present_pages

import mamba_edu

page_header(
    "home.py",
    "An interactive course on **Mamba**, the selective state space model: why a fixed-size state can "
    "replace attention's growing cache, how HiPPO, discretisation and the convolution view lead to S4, "
    "why *selection* (Δ, B, C computed from the input) fixes what time-invariant models cannot do, and "
    "how a parallel scan and a fused GPU kernel make it fast. Every number and figure here is computed by "
    "the project's tested library, `mamba_edu`; the notebooks call the same functions.",
)

with error_boundary("the home page"):
    dev = device()
    st.subheader("This machine")
    c1, c2, c3, c4, c5 = st.columns(5)
    if dev.kind == "cuda":
        c1.metric("Device", dev.name)
        c2.metric("Streaming multiprocessors", f"{dev.multiprocessors}")
        c3.metric("GPU memory", f"{(dev.memory_bytes or 0) / 2**30:.0f} GiB")
        c4.metric("Compute capability", dev.capability or "?")
    else:
        c1.metric("Device", "CPU only")
        c2.metric("Processor", dev.name)
        c3.metric("GPU memory", "none")
        c4.metric("CUDA", "not available")
    c5.metric("torch · Triton", f"{torch.__version__.split('+')[0]} · {dev.triton or 'none'}")
    st.caption(f"{dev.summary()}. Triton kernels: {dev.triton_mode}.")

    st.subheader("Pages")
    present = {p.file for p in present_pages()}
    chapters = notebook_chapters()

    def chapter_names(nums):
        return ", ".join(f"{n:02d} {chapters[n][1].split('·')[-1].strip()}" if n in chapters else f"{n:02d} (planned)"
                         for n in nums) or "–"

    st.dataframe(
        [{"page": p.title, "what it shows": p.summary, "notebook chapters": chapter_names(p.chapters),
          "runs on": p.runs, "status": "ready" if p.file in present else "coming"} for p in PAGES],
        hide_index=True, column_config={"what it shows": st.column_config.TextColumn(width="large")})

    st.subheader("Notebooks")
    shown_in = {n: [p.title for p in PAGES if n in p.chapters and p.file in present] for n in chapters}
    st.dataframe(
        [{"chapter": f"{n:02d}", "title": title.split("·")[-1].strip(), "file": f"notebooks/{name}",
          "app pages": ", ".join(shown_in[n]) or "–"} for n, (name, title) in chapters.items()],
        hide_index=True)
    st.caption("Open them with `mamba-edu lab` (or `make lab`); they run top to bottom on a laptop CPU.")

    st.subheader("Selective-scan implementations: what runs here")
    target = "cuda" if dev.kind == "cuda" else "cpu"
    rows = []
    for name, entry in mamba_edu.implementations().items():
        ok, why = entry.available(target)
        rows.append({"implementation": name, "what it is": entry.description,
                     "runs here": "yes" if ok else f"no: {why}"})
    st.dataframe(rows, hide_index=True)
