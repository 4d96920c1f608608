"""Inside Mamba: a real byte-level language model reads your text; watch one block work, stage by stage.

The model is the shipped checkpoint of results/textlm (`mamba-edu train --preset textlm`: 2 Mamba
blocks trained on the Python standard library's source). Every number comes from `mamba_edu.block_reading.read`
(the model's own computation, stage by stage) and the figures from `mamba_edu.viz.inside`.
"""

import json

import streamlit as st
import torch
from _common import ROOT, error_boundary, page_header, show

from mamba_edu import block_reading, probe, textlm
from mamba_edu.tokenizer import byte_labels, utf8_tokens
from mamba_edu.train import load_checkpoint
from mamba_edu.viz import inside

RESULTS = ROOT / "results" / "textlm"
MAX_BYTES = 1024  # the model reads at most this many bytes (an emoji is 4): a rerun stays well under a second
PLAY_CHANNELS = 8  # the play-through shows the state of this many channels (the most selective ones)
PRESETS = {
    "Python code": "def greet(name):\n    \"\"\"Return a greeting for name.\"\"\"\n    return 'Hello, ' + name\n",
    "A loop": "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n",
    "A docstring": '"""Return the number of items in the list, or raise ValueError if it is empty."""\n',
    "English prose": "The quick brown fox jumps over the lazy dog. The dog sleeps.",
    "Emoji and accents": "café 🐍 naïve → résumé 🎉",
    "Repetition": "abcabcabcabcabcabcabc",
}

page_header(
    "inside_mamba.py",
    "A small but real language model reads your text one byte at a time: two Mamba blocks trained on the "
    "source code of Python's standard library. Pick a byte (click it in the strip, or move the slider) and "
    "follow it through a block: the projections, the convolution, the step size **Δ** that decides how much the "
    "state forgets and how much of this byte it takes in, the **scan** $h_t = \\bar A_t \\odot h_{t-1} + "
    "\\Delta_t B_t u_t$, the gated read-out, and the model's guess for the next byte. The state has the same "
    "size after one byte and after a million; an attention model's key-value cache grows with every byte.",
)


@st.cache_resource(show_spinner="Loading the model…")
def model_and_meta():
    model, meta = load_checkpoint(RESULTS / textlm.SHIPPED)
    results = json.loads((RESULTS / "results.json").read_text())
    return model, meta, results


@st.cache_resource(show_spinner=False, max_entries=16)  # read-only results: shared, never copied
def reading_of(data: bytes):
    model, _, _ = model_and_meta()
    reading = block_reading.read(model, torch.tensor(list(data), dtype=torch.int64))
    return reading, byte_labels(reading.tokens), block_reading.surprise_bits(reading)


@st.cache_resource(show_spinner=False, max_entries=32)
def player_of(data: bytes, layer: int):
    reading, _, _ = reading_of(data)
    tr = reading.blocks[layer].trace
    chans = probe.most_selective(tr, min(PLAY_CHANNELS, tr.h.shape[1]))  # (c,)
    h = tr.h[0, chans].permute(2, 0, 1).reshape(tr.h.shape[-1], -1)  # (T, c·n)
    entries = [f"ch{int(c)}·{k}" for c in chans for k in range(tr.h.shape[2])]
    _, labels, _ = reading_of(data)
    return inside.reading_player(h, labels, entries, title=f"Play through the text (▶): the state of block {layer + 1} "
                                                          f"after each byte, its {len(chans)} most selective channels")


@st.cache_resource(show_spinner=False, max_entries=64)
def token_figures(data: bytes, layer: int, t: int, narrow: bool):
    model, _, results = model_and_meta()
    reading, labels, bits = reading_of(data)
    tr = reading.blocks[layer].trace
    T = len(labels)
    flow = inside.block_flow(block_reading.flow_stages(reading, layer, t), per_row=2 if narrow else 7,
                             height=1500 if narrow else 620,
                             title=f"Block {layer + 1} at byte #{t} {labels[t]!r}: the data flow, stage by stage "
                                   "(rows: channels; colour: the value)")
    before, after = block_reading.states_around(tr, t)
    update = inside.state_update(before, tr.a[0, :, :, t], block_reading.token_write(tr, t), after,
                                 title=f"State update at byte #{t}: h = Ā ⊙ h₋₁ + Δ·B·u")
    typical = tr.delta[0].median(dim=-1).values  # (e,)
    delta = inside.delta_by_channel(tr.delta[0, :, t], typical, title=f"Δ per channel at byte #{t} {labels[t]!r}")
    kept = {f"block {i + 1}": (torch.arange(t, T), block_reading.kept_fraction(b.trace, t)) for i, b in enumerate(reading.blocks)}
    keep = inside.kept_over_time(kept, title=f"What is left of byte #{t}'s write (Π Ā)")
    ids, p = block_reading.top_next(reading, t, 8)
    nxt = byte_labels(ids)
    actual = labels[t + 1] if t + 1 < T else None
    bars = inside.next_token_bars(nxt, p, actual, title=f"Next byte after #{t}: top 8")
    baseline = results["runs"]["textlm-attention"]["model_kwargs"]
    positions = sorted({0, *range(0, max(T, 2) + 1, max(1, T // 64)), T})
    mem = {k: [] for k in ("mamba state", "attention KV cache")}
    for pos in positions:
        for k, v in block_reading.memory_by_now(model, pos, baseline).items():
            mem[k].append(v)
    memory = inside.memory_by_position(positions, {"Mamba's fixed state": mem["mamba state"],
                                                   f"KV cache of attention ({baseline['n_layers']} layers, same size)":
                                                       mem["attention KV cache"]}, t + 1,
                                       title="Memory held for decoding (fp32)")
    return flow, update, delta, keep, bars, memory


def strip_figure(data: bytes, t: int, narrow: bool):
    _, labels, bits = reading_of(data)
    return inside.token_strip(labels, bits, t, color_title="bits", per_row=12 if narrow else 32,
                              hover=[f"#{i} {lab!r}: next byte cost {b:.2f} bits" for i, (lab, b) in
                                     enumerate(zip(labels, bits.tolist()))],
                              title="Click a byte · colour: how surprised the model was by the next byte")


def apply_click(text: str) -> None:
    """A click on the token strip (its selection event) moves the position slider, once per click."""
    event = st.session_state.get("im_strip")
    points = event.get("selection", {}).get("points", []) if event else []
    points = [p for p in points if p.get("curve_number", 0) == 0 and "point_index" in p]
    if points:
        click = (text, int(points[0]["point_index"]))
        if click != st.session_state.get("im_last_click"):
            st.session_state["im_last_click"] = click
            st.session_state["im_pos"] = click[1]


def set_preset() -> None:
    st.session_state["im_text"] = PRESETS[st.session_state["im_preset"]]


with error_boundary("the Inside Mamba page"):
    if not (RESULTS / f"{textlm.SHIPPED}.pt").exists():
        st.error("The language model's checkpoint is missing: run `mamba-edu train --preset textlm` (about 12 minutes "
                 "on a CPU) to make results/textlm.")
        st.stop()
    model, meta, results = model_and_meta()
    ev = meta["held_out"]
    c1, c2 = st.columns([1, 3])
    c1.selectbox("Example", list(PRESETS), key="im_preset", on_change=set_preset)
    if "im_text" not in st.session_state:
        st.session_state["im_text"] = PRESETS[st.session_state["im_preset"]]
    text = c2.text_area(f"Text (the model reads at most {MAX_BYTES} bytes of it)", key="im_text", height=110)
    tokens, n_chars = utf8_tokens(text, MAX_BYTES)
    if n_chars < len(text):
        st.warning(f"The text has {len(text)} characters ({len(text.encode('utf-8', 'replace')):,} bytes); the model "
                   f"reads the first {n_chars} characters ({tokens.numel()} bytes).", icon=":material/content_cut:")
    if tokens.numel() == 0:
        st.info("Type some text (or pick an example): the model needs at least one byte to read.")
        st.stop()
    data = bytes(tokens.tolist())
    T = tokens.numel()
    apply_click(text)
    # opens at the last byte whose next byte is in the text (so its cost and the right answer show)
    st.session_state["im_pos"] = min(int(st.session_state.get("im_pos", max(0, T - 2))), T - 1)
    c1, c2 = st.columns([1, 3])
    layer = c1.radio("Block", list(range(len(model.layers))), format_func=lambda i: f"block {i + 1}", horizontal=True,
                     key="im_layer")
    t = c2.slider("Byte position (or click a byte below)", 0, T - 1, key="im_pos") if T > 1 else 0
    narrow = c1.toggle("Phone layout", key="im_narrow", help="Fewer bytes per row and two stages per row.")
    reading, labels, bits = reading_of(data)
    st.plotly_chart(strip_figure(data, t, narrow), theme=None, key="im_strip", on_select="rerun", selection_mode="points",
        config={"displaylogo": False, "displayModeBar": False})
    figs = token_figures(data, layer, t, narrow)
    show(figs[0], key="im_flow")
    finite = bits[:-1]
    m = st.columns(4)
    m[0].metric("Chosen byte", f"#{t} {labels[t]}")
    m[1].metric("Next byte cost", f"{float(bits[t]):.2f} bits" if t + 1 < T else "–",
                help="−log₂ p(the byte that actually came next): 8 bits is a uniform guess among 256.")
    m[2].metric("This text: bits per byte", f"{float(finite.mean()):.2f}" if finite.numel() else "–",
                help=f"On held-out standard-library code the model averages {ev['bits_per_byte']:.2f} bits per byte.")
    m[3].metric("Bytes read", f"{T}")
    c1, c2 = st.columns([3, 2])
    with c1:
        show(figs[1], key="im_update")
    with c2:
        show(figs[4], key="im_next")
    c1, c2 = st.columns(2)
    with c1:
        show(figs[2], key="im_delta")
        show(figs[5], key="im_memory")
    with c2:
        show(figs[3], key="im_keep")
        st.caption("Each block's state is a fixed grid of channels × state entries; what a byte wrote fades by the "
                   "product of the decays Ā = exp(ΔA) of the bytes after it. A large Δ means 'take this byte in and "
                   "forget the past'; a small one 'let this byte pass, keep what you have'.")
    show(player_of(data, layer), key="im_player")
    r = results["runs"]
    st.caption(f"The model: {meta['parameters']:,} parameters, {ev['bits_per_byte']:.2f} bits per byte on held-out "
               f"standard-library files (an attention model of the same size: "
               f"{r['textlm-attention']['held_out']['bits_per_byte']:.2f}); see results/textlm/README.md.")
