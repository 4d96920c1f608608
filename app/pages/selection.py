"""Selection: an LTI (S4D) and a selective (Mamba) model, trained on selective copying, on the same input.

Per-token Δ, the Δ heatmap of the most selective channels, what the state holds at a chosen step
(token by token), the state's norm over time and both checkpoints' predictions. The traces come
from `mamba_edu.probe`, the figures from `mamba_edu.viz.selection` and `mamba_edu.viz.tasks`.
"""

from pathlib import Path

import streamlit as st
import torch
from _common import error_boundary, page_header, refuse_if, show

from mamba_edu import probe, tasks
from mamba_edu.train import TrainConfig, load_checkpoint, predict_forward
from mamba_edu.viz.selection import delta_heatmap, kept_bars, token_series
from mamba_edu.viz.tasks import task_sequence, token_roles

CHECKPOINTS = Path(__file__).resolve().parents[2] / "results" / "tasks" / "checkpoints"
SELECTIVE = "copy-mamba"
LTI_MODELS = ("copy-s4d", "copy-s4d-wide")
LENGTHS = (16, 32, 64, 128, 256, 512, 1024)
MAX_L = 256  # longer noisy regions take seconds per rerun on a CPU: refused

page_header(
    "selection.py",
    "Two models trained on selective copying read **the same input**: an LTI model (S4D), whose step size $\\Delta$ "
    "is one constant per channel, and a selective one (Mamba), which computes $\\Delta$, $B$ and $C$ from every token. "
    "A large $\\Delta$ resets the state and takes the token in; a tiny one ignores the token and keeps the state. "
    "Change the input, the layer and the step $t$ at which you look at the state: the bars show how much of each "
    "token is still in it.",
)


@st.cache_resource(show_spinner=False)
def model(name: str):
    """A shipped checkpoint (TinyLM in eval mode) and its training config."""
    m, meta = load_checkpoint(CHECKPOINTS / name)
    return m, TrainConfig.from_dict(meta["config"])


@st.cache_resource(show_spinner=False, max_entries=32)
def traces(seed: int, L: int, lti: str, layer: int):
    """The input, both models' traced layer and their predictions at the markers."""
    cfg = model(SELECTIVE)[1]
    seq = tasks.selective_copying(1, seq_len=L, n_data=cfg.n_data, vocab_size=cfg.vocab_size, seed=seed)
    out = {"seq": seq}
    for role, name in (("selective", SELECTIVE), ("lti", lti)):
        m = model(name)[0]
        out[role] = probe.trace_layer(m, seq.tokens, layer)
        out[f"{role}_pred"] = predict_forward(m, seq.tokens, seq.answer_mask)[0]  # (T,)
    return out


@st.cache_resource(show_spinner=False, max_entries=64)
def figures(seed: int, L: int, lti: str, layer: int, n_channels: int, t: int):
    tr = traces(seed, L, lti, layer)
    seq, sel, lin = tr["seq"], tr["selective"], tr["lti"]
    tokens = seq.tokens[0]
    labels = [str(v) for v in tokens.tolist()]
    data_pos = (tokens >= 2).nonzero()[:, 0].tolist()
    names = {"selective": f"{SELECTIVE} (selective)", "lti": f"{lti} (LTI)"}
    memory = probe.most_selective(sel, n_channels)  # (n_channels,)

    answers = seq.answers[0]
    right = {r: int((tr[f"{r}_pred"][seq.answer_mask[0]] == answers).sum()) for r in ("selective", "lti")}
    predictions = task_sequence("selective-copy", tokens, seq.targets[0],
                                {names["selective"]: tr["selective_pred"], names["lti"]: tr["lti_pred"]},
                                title="Input, targets and both models' answers")

    d_sel, d_lti = probe.typical_delta(sel, memory)[0], probe.typical_delta(lin)[0]  # (T,) each
    per_token = token_series({names["selective"]: d_sel, names["lti"]: d_lti}, labels, highlight=data_pos,
                             log_y=True, y_title="Δ (geometric mean over channels)",
                             title=f"Per-token Δ, layer {layer + 1}")
    heat = delta_heatmap(sel.delta[0, memory], token_labels=labels,
                         channel_labels=[f"ch {c}" for c in memory.tolist()],
                         title=f"Mamba, layer {layer + 1}: its {n_channels} most selective channels")

    kept = {f"{names['selective']}, those channels": probe.kept_norm(sel, t, channels=memory)[0],
            f"{names['lti']}, all channels": probe.kept_norm(lin, t)[0]}
    bars = kept_bars(kept, token_roles("selective-copy", tokens), token_labels=labels, t=t,
                     title=f"What the state holds at t = {t}")
    d_conv = model(SELECTIVE)[0].layers[0].mixer.d_conv
    near = torch.zeros(t + 1, dtype=torch.bool)  # the data tokens and the few after them the conv mixes in
    for p in data_pos:
        near[p:p + d_conv] = True
    share = {name: float(kn[near].sum() / kn.sum()) if kn.sum() > 0 else 0.0 for name, kn in kept.items()}

    norm_sel = sel.h[:, memory].abs().pow(2).sum((1, 2)).sqrt()[0]  # (T,) ‖h_t‖ over those channels
    norms = token_series({f"{names['selective']}, those channels": norm_sel,
                          f"{names['lti']}, all channels": probe.state_norm(lin)[0]}, labels, highlight=data_pos,
                         normalize=True, y_title="‖h<sub>t</sub>‖", title="‖h<sub>t</sub>‖ over time (each scaled to its maximum)")
    noise = tokens == tasks.NOISE
    ratio = float(d_sel[data_pos].median() / d_sel[noise].median()) if data_pos and bool(noise.any()) else float("nan")
    stats = {"right": right, "k": len(answers), "share": share, "data_fraction": float(near.float().mean()),
             "ratio": ratio, "lti_spread": float(probe.channel_selectivity(lin).max())}
    return predictions, per_token, heat, bars, norms, stats


with error_boundary("the Selection page"):
    col, main = st.columns([1, 3], gap="large")
    seed = int(col.number_input("Input sequence (seed)", 0, 9999, 0, step=1, key="sel_seed"))
    L = int(col.select_slider("Noisy region L (trained at 64)", LENGTHS, value=64, key="sel_L"))
    lti = col.radio("LTI model", LTI_MODELS, key="sel_lti",
                    help="copy-s4d: the same widths as copy-mamba; copy-s4d-wide: about as many parameters.")
    layer = col.radio("Layer", (1, 2), horizontal=True, key="sel_layer") - 1
    n_channels = col.slider("Mamba channels shown (most selective first)", 4, 64, 16, step=4, key="sel_channels")
    refuse_if(L > MAX_L, f"A noisy region of L = {L} tokens takes too long to trace on a CPU for this page to stay "
                         f"responsive: choose L ≤ {MAX_L} (the notebook's chapter 05 evaluates longer ones).")
    T = L + model(SELECTIVE)[1].n_data
    t = col.slider("Look at the state at step t", 0, T - 1, L - 1, key=f"sel_t_{L}",
                   help="Default: the last noise token, just before the markers ask for the data.")
    predictions, per_token, heat, bars, norms, stats = figures(seed, L, lti, layer, n_channels, t)
    with main:
        (n_sel, share_sel), (n_lti, share_lti) = stats["share"].items()
        c1, c2, c3 = st.columns(3)
        c1.metric("Answers right (Mamba | LTI)",
                  f"{stats['right']['selective']}/{stats['k']} | {stats['right']['lti']}/{stats['k']}")
        c2.metric("Data in the state at t (Mamba | LTI)", f"{share_sel:.0%} | {share_lti:.0%}",
                  help=f"The share of the state's norm written by data tokens. Data tokens and the {model(SELECTIVE)[0].layers[0].mixer.d_conv - 1} after each are "
                       f"{stats['data_fraction']:.0%} of the tokens up to t.")
        c3.metric("Mamba's Δ, data ÷ noise", f"× {stats['ratio']:,.0f}",
                  help=f"The median Δ on data tokens over the median on noise tokens. The LTI model's Δ does not change over the tokens at all (largest spread of log Δ over "
                       f"its channels: {stats['lti_spread']:.1e}).")
        show(predictions, key="sel_predictions")
        show(per_token, key="sel_delta")
        show(bars, key="sel_kept")
        c4, c5 = st.columns(2)
        with c4:
            show(heat, key="sel_heatmap")
        with c5:
            show(norms, key="sel_norm")
