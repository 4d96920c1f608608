"""Home: what the app is, the map of its pages and of the notebooks, the device and what runs where."""

import os

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

def chapter_names(nums, chapters) -> str:
    return ", ".join(f"{n:02d} {chapters[n][1].split('·')[-1].strip()}" if n in chapters else f"{n:02d} (planned)"
                     for n in nums) or "–"


with error_boundary("the home page"):
    dev = device()
    st.subheader("This machine")
    st.markdown(f"**{dev.summary()}**")
    if dev.kind == "cuda":
        cells = [("Device", "GPU"), ("Streaming multiprocessors", f"{dev.multiprocessors}"),
                 ("GPU memory", f"{(dev.memory_bytes or 0) / 2**30:.0f} GiB"),
                 ("Compute capability", dev.capability or "?")]
    else:
        cells = [("Device", "CPU only"), ("CPU cores", f"{os.cpu_count()}"), ("GPU memory", "none")]
    cells += [("torch", torch.__version__.split("+")[0]), ("Triton", dev.triton or "none")]
    for c, (label, value) in zip(st.columns(len(cells)), cells):
        c.metric(label, value)
    st.caption(f"Triton kernels here: {dev.triton_mode}. The explorer pages run on any CPU; kernel timing needs a GPU.")

    st.subheader("Pages")
    present = {p.file for p in present_pages()}
    chapters = notebook_chapters()
    rows = ["| page | what it shows | notebook chapters | runs on |", "|---|---|---|---|"]
    for p in PAGES:
        name = f"[{p.title}]({p.file[:-3]})" if p.file in present and p.file != "home.py" else p.title
        if p.file not in present:
            name += " *(coming)*"
        rows.append(f"| {name} | {p.summary} | {chapter_names(p.chapters, chapters)} | {p.runs} |")
    st.markdown("\n".join(rows))

    st.subheader("Notebooks")
    shown_in = {n: [p.title for p in PAGES if n in p.chapters and p.file in present] for n in chapters}
    rows = ["| chapter | title | file | shown on the pages |", "|---|---|---|---|"]
    for n, (name, title) in chapters.items():
        rows.append(f"| {n:02d} | {title.split('·')[-1].strip()} | `notebooks/{name}` | {', '.join(shown_in[n]) or '–'} |")
    st.markdown("\n".join(rows))
    st.caption("Open them with `mamba-edu lab` (or `make lab`); they run top to bottom on a laptop CPU.")

    st.subheader("Selective-scan implementations: what runs here")
    target = "cuda" if dev.kind == "cuda" else "cpu"
    rows = []
    for name, entry in mamba_edu.implementations().items():
        ok, why = entry.available(target)
        rows.append({"implementation": name, "what it is": entry.description,
                     "runs here": "yes" if ok else f"no: {why}"})
    st.dataframe(rows, hide_index=True)
