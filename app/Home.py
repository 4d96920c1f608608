"""mamba-edu home page: what exists so far, and the device this app runs on.

The interactive pages (state explorer, HiPPO, selection, scans, memory hierarchy, kernel timing)
are built on the same library; this page lists what the library already offers.
"""

import streamlit as st
import torch

import mamba_edu
from mamba_edu.hardware import describe_device

st.set_page_config(page_title="mamba-edu", page_icon="🐍", layout="wide")

st.title("mamba-edu: selective state space models, from first principles to GPU kernels")
st.markdown(
    "An interactive course on **Mamba**: why a fixed-size state can replace attention's growing "
    "cache, how HiPPO, discretisation and the LTI convolution view lead to S4, why *selection* "
    "(input-dependent Δ, B, C) fixes what LTI models cannot do, and how a parallel scan and a fused "
    "GPU kernel make it fast. Every number here is computed by the project's tested library, `mamba_edu`."
)


@st.cache_resource
def _device():
    return describe_device()


dev = _device()
st.subheader("This machine")
c1, c2, c3 = st.columns(3)
c1.metric("Device", "GPU" if dev.kind == "cuda" else "CPU only")
c2.metric("torch", torch.__version__.split("+")[0])
c3.metric("Triton", dev.triton or "not importable")
st.caption(dev.summary() + f" · Triton mode: {dev.triton_mode}")

st.subheader("Selective-scan implementations")
target = "cuda" if dev.kind == "cuda" else "cpu"
rows = []
for name, entry in mamba_edu.implementations().items():
    ok, why = entry.available(target)
    rows.append({"implementation": name, "what it is": entry.description,
                 "runs here": "yes" if ok else f"no: {why}"})
st.dataframe(rows, hide_index=True, use_container_width=True)

st.subheader("The library, one module per concept")
st.markdown(
    """
| module | what it holds |
|---|---|
| `mamba_edu.hippo` | HiPPO operators (LegS, LegT, FouT), online projection of a signal, reconstruction |
| `mamba_edu.discretize` | zero-order hold, bilinear and Euler discretisation |
| `mamba_edu.lti` | LTI SSMs: recurrence, convolution kernels (dense and S4D Vandermonde), FFT convolution |
| `mamba_edu.scan` | the associative operator and sequential, Hillis–Steele, Blelloch and chunked scans |
| `mamba_edu.selective` | S6 and the selective scan: reference, naive and parallel implementations |
| `mamba_edu.models` | S4D layer, Mamba block, a tiny language model with recurrent decoding |
| `mamba_edu.hardware` | this device, and how many bytes each implementation moves |
"""
)
st.info("Notebooks: run `mamba-edu lab` (or `jupyter lab notebooks/`) from the repository.")
