"""State explorer: an SSM and an input; the hidden state over time, output, kernel and eigenvalues of Ab.

Time-invariant systems (HiPPO, S4D, a random stable one) run through `mamba_edu.explore`; a trained
selective model from the shipped checkpoints through `mamba_edu.probe.trace_layer`.
"""

import json

import streamlit as st
import torch
from _common import ROOT, error_boundary, on_gpu, page_header, refuse_if, show

from mamba_edu import explore, mamba3, probe, tasks
from mamba_edu.tokenizer import MARKER_CHAR, NOISE_CHARS, SPECIAL_CHAR, text_targets, text_to_tokens
from mamba_edu.train import load_checkpoint
from mamba_edu.viz.lti import conv_kernel
from mamba_edu.viz.mamba3 import rotating_pair
from mamba_edu.viz.selection import token_series
from mamba_edu.viz.ssm import eigenvalues_vs_unit_circle, input_output, state_player
from mamba_edu.viz.tasks import token_roles

CHECKPOINTS = ROOT / "results" / "tasks" / "checkpoints"
DELTAS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
METHODS = {"zoh": "zero-order hold", "bilinear": "bilinear", "euler": "Euler"}
MAX_N, MAX_L = 64, 4096
# Typed text becomes one token per character, one per UTF-8 byte beyond ASCII (an emoji is 4): the limit
# counts tokens, what is computed and drawn. A trained model's page at this length reruns in well under 3 s.
MAX_TOKENS = 512
# The states of a dense system cost L·N³ multiply-adds (explore.lti_cost); beyond this a CPU rerun
# takes more than about half a second, so larger settings are refused (a GPU machine allows 8× more).
CPU_BUDGET = 2**26
DEFAULT_TEXT = {"selective-copy": "..m....a...m.....b...????", "induction": "the#cat sat on the mat and the#"}

page_header(
    "state_explorer.py",
    "A state space model keeps a fixed-size state and updates it with every input: "
    "$x_k = \\bar A x_{k-1} + \\bar B u_k$, $y_k = C x_k$. Pick a system and an input and watch the state "
    "evolve (scrub or play the time under the heatmap). A time-invariant system is also a convolution with "
    "one kernel $K_l = C \\bar A^l \\bar B$ and is stable when every eigenvalue of $\\bar A$ lies inside the "
    "unit circle; a trained selective model (Mamba) computes a new $\\bar A_t = e^{\\Delta_t A}$ for every token.",
)


@st.cache_data(show_spinner=False)
def selective_checkpoints() -> dict[str, str]:
    """{checkpoint name: its task} for the shipped checkpoints with Mamba (selective) blocks."""
    out = {}
    for js in sorted(CHECKPOINTS.glob("*.json")):
        cfg = json.loads(js.read_text())["config"]
        # the tasks this page can type and score (chapter 12's parity models are shown by chapter 12)
        if cfg["model"] == "mamba" and cfg["task"] in DEFAULT_TEXT and js.with_suffix(".pt").exists():
            out[js.stem] = cfg["task"]
    return out


@st.cache_resource(show_spinner=False)
def checkpoint(name: str):
    return load_checkpoint(CHECKPOINTS / name)


@st.cache_data(show_spinner=False, max_entries=32)
def lti_run(system: str, N: int, seed: int, dt: float, method: str, kind: str, L: int, text: str):
    sys_ = explore.make_system(system, N, seed)
    u, tokens = explore.make_input(kind, L, seed=seed, text=text)
    return sys_.state_size, u, tokens, explore.run_lti(sys_, u, dt, method)


@st.cache_resource(show_spinner=False, max_entries=32)  # figures are never changed after building: no copies
def lti_figures(system, N, seed, dt, method, kind, L, text):
    n_state, u, tokens, run = lti_run(system, N, seed, dt, method, kind, L, text)
    name = explore.SYSTEMS[system]
    complex_pairs = run.Ab.is_complex()
    n = run.finite_steps  # an unstable system may overflow float64: draw the steps before that
    states, u, y, K = run.states[:n], u[:n], run.y[:n], run.K[:n]
    player = state_player(states, x_title="time step k", y_title="state entry n",
                          colorbar_title="2·Re x" if complex_pairs else "x", start=int(states.norm(dim=1).argmax()),
                          title=f"{name}, N = {n_state}: the state x<sub>k</sub> over time")
    u_title = "input u (token / (V − 1))" if tokens is not None else "input u"
    io = input_output(u, y, x_title="time step k", u_title=u_title, y_title="output y = C x",
                      title="Input and output")
    kernel = conv_kernel({f"K ({METHODS[method]})": K}, dt=dt, title="Kernel K<sub>l</sub> = C Ā<sup>l</sup> B̄")
    kernel.update_xaxes(title_text="time lag l·Δ (s)")
    rho = run.spectral_radius
    eig = eigenvalues_vs_unit_circle({"eigenvalues of Ā": run.eigenvalues}, limit=max(1.15, min(1.05 * rho, 4.0)),
                                     title="Eigenvalues of Ā")
    return player, io, kernel, eig, rho, n


@st.cache_data(show_spinner=False, max_entries=32)
def selective_run(name: str, source: str, seed: int, text: str, layer: int):
    model, meta = checkpoint(name)
    cfg = meta["config"]
    if source == "task":
        kw = {"n_data": cfg["n_data"]} if cfg["task"] == "selective-copy" else {}
        batch = tasks.make_batch(cfg["task"], 1, cfg["seq_len"], cfg["vocab_size"], seed=seed, **kw)
        tokens, targets = batch.tokens[0], batch.targets[0]  # (T,), (T,)
    else:
        tokens = text_to_tokens(text, cfg["vocab_size"], cfg["task"])  # (T,)
        if tokens.numel() == 0:
            raise ValueError("the text is empty: type at least one character")
        targets = text_targets(tokens, cfg["task"])  # (T,)
    trace = probe.trace_layer(model, tokens[None], layer)
    with torch.no_grad():
        predictions = model(tokens[None])[0].argmax(-1)  # (T,)
    selectivity = probe.channel_selectivity(trace)  # (e,)
    return cfg, tokens, targets, trace, predictions, selectivity


@st.cache_resource(show_spinner=False, max_entries=32)
def selective_figures(name: str, source: str, seed: int, text: str, layer: int, channel: int):
    cfg, tokens, _, trace, _, _ = selective_run(name, source, seed, text, layer)
    roles = token_roles(cfg["task"], tokens)
    ids = [str(int(t)) for t in tokens]
    h = trace.h[0, channel].T  # (T, n)
    y = probe.ssm_output(trace)[0, channel]  # (T,)
    a = trace.a[0, channel]  # (n, T): exp(Δ_t·A), one column per token
    player = state_player(h, x_title="token position t", y_title="state entry n", colorbar_title="h",
                          start=int(h.norm(dim=1).argmax()), title=f"{name}, layer {layer}, channel {channel}: the state h<sub>t</sub> after each token")
    io = input_output(trace.u[0, channel], y, x_title="token position t", u_title="S6 input x<sub>t</sub>",
                      y_title="y<sub>t</sub> = C<sub>t</sub> h<sub>t</sub>", title="Input and output")
    data = [i for i, r in enumerate(roles) if r in ("data", "key")]
    delta = token_series({"Δ<sub>t</sub>": trace.delta[0, channel]}, ids, y_title="step Δ<sub>t</sub> (log scale)", highlight=data,
                         log_y=True, title="Δ<sub>t</sub> changes with every token: no fixed kernel")
    groups = {f"{role} tokens": a[:, [i for i, r in enumerate(roles) if r == role]].flatten()
              for role in dict.fromkeys(roles)}
    eig = eigenvalues_vs_unit_circle(groups, limit=1.15, title="Eigenvalues of Ā<sub>t</sub> = exp(Δ<sub>t</sub> A)")
    return player, io, delta, eig


def lti_controls(col):
    N = col.slider("State size N", 2, MAX_N, 16, step=2, key="se_N",
                   help="The real state size; S4D-Lin/Inv store N/2 complex entries (conjugate pairs).")
    dt = col.select_slider("Step Δ (s)", DELTAS, value=0.02, key="se_dt")
    method = col.radio("Discretisation", list(METHODS), format_func=METHODS.get, horizontal=True, key="se_method")
    kind = col.selectbox("Input", list(explore.INPUTS), format_func=explore.INPUTS.get, key="se_input")
    text = ""
    if kind == "text":
        text = col.text_input("Text (one token per character)", DEFAULT_TEXT["selective-copy"], key="se_text",
                              max_chars=MAX_TOKENS,
                              help=f"Mapped as for selective copying: '{NOISE_CHARS.strip()}' and spaces are noise, "
                                   f"'{MARKER_CHAR}' a marker, every other character a data token.")
        L = len(text)
    else:
        L = int(col.number_input("Length L (steps)", 16, MAX_L, 256, step=16, key="se_L"))
    seed = int(col.number_input("Seed (random system, noise, sequence)", 0, 9999, 0, key="se_seed"))
    return N, dt, method, kind, text, L, seed


def text_tokens(text: str) -> int:
    """How many tokens the text becomes: one per UTF-8 byte (a character outside ASCII has 2 to 4)."""
    return len(text.encode("utf-8", "surrogatepass"))


def refuse_long_text(text: str) -> None:
    n = text_tokens(text)
    refuse_if(n > MAX_TOKENS, f"The text makes {n} tokens ({len(text)} characters; one token per byte, so a "
                              f"character outside ASCII counts 2 to 4); this page reads at most {MAX_TOKENS}.")


def show_lti(system, ctrl, main):
    N, dt, method, kind, text, L, seed = ctrl
    refuse_long_text(text)
    L = text_tokens(text) if kind == "text" else L
    dense = not system.startswith("s4d-")
    cost, budget = explore.lti_cost(N, L, dense), CPU_BUDGET * (8 if on_gpu() else 1)
    refuse_if(cost > budget, f"N = {N} and L = {L} need {cost:.2g} multiply-adds for the states of a dense system, "
                             f"more than this machine answers in half a second ({budget:.2g}). Reduce N or L.")
    player, io, kernel, eig, rho, n_finite = lti_figures(system, N, seed, dt, method, kind, L, text)
    if n_finite < L:
        st.warning(f"The state overflowed after {n_finite} of {L} steps (ρ = {rho:.3g} > 1: it grows like ρ^k); "
                   f"the figures show the first {n_finite}.", icon=":material/trending_up:")
    with main:
        show(player, key="se_player")
        c1, c2 = st.columns(2)
        with c1:
            show(io, key="se_io")
            show(kernel, key="se_kernel")
        with c2:
            show(eig, key="se_eig")
            verdict = "stable: the state decays" if rho < 1 else "unstable: the state blows up" if rho > 1 else "on the edge"
            st.metric("Spectral radius ρ(Ab)", f"{rho:.4f}", help="The largest |eigenvalue| of the discrete Ab.")
            st.caption(f"{verdict}. The kernel K and the recurrence give the same output y (chapter 04); with Euler "
                       "and a large Δ the eigenvalues leave the unit circle (chapter 02).")


def show_selective(name, task, col, main):
    model, meta = checkpoint(name)
    labels = {"task": "a sequence of its task", "text": "text (typed)"}
    source = col.radio("Input", list(labels), format_func=labels.get, key="se_source")
    seed, text = 0, ""
    if source == "task":
        seed = int(col.number_input("Seed (which sequence)", 0, 9999, 0, key="se_seq_seed"))
    else:
        special = (f"'{NOISE_CHARS.strip()}' and spaces are noise, '{MARKER_CHAR}' a marker"
                   if task == "selective-copy" else f"'{SPECIAL_CHAR}' is the trigger token")
        text = col.text_input("Text (one token per character)", DEFAULT_TEXT[task], key=f"se_text_{task}", max_chars=MAX_TOKENS,
                              help=f"{special}; every other character becomes a token (its byte modulo the vocabulary).")
        refuse_long_text(text)
    layer = col.slider("Layer", 0, len(model.layers) - 1, 0, key=f"se_layer_{name}") if len(model.layers) > 1 else 0
    cfg, tokens, targets, trace, predictions, selectivity = selective_run(name, source, seed, text, layer)
    e = trace.h.shape[1]
    channel = col.slider("Channel", 0, e - 1, int(selectivity.argmax()), key=f"se_channel_{name}_{layer}",
                         help="Starts at the channel whose Δ changes most from token to token.")
    figs = selective_figures(name, source, seed, text, layer, channel)
    with main:
        show(figs[0], key="se_player")
        c1, c2 = st.columns(2)
        with c1:
            show(figs[1], key="se_io")
            show(figs[2], key="se_delta")
        with c2:
            show(figs[3], key="se_eig")
            answers = targets != tasks.IGNORE  # (T,)
            if bool(answers.any()):
                right = int((predictions[answers] == targets[answers]).sum())
                st.metric("Answers right on this sequence", f"{right} / {int(answers.sum())}")
                st.caption(f"expected {targets[answers].tolist()}, the model said {predictions[answers].tolist()}")
            else:
                st.caption("Nothing to answer in this text (selective copying: data characters, then one "
                           f"'{MARKER_CHAR}' per answer; induction heads: a '{SPECIAL_CHAR}', a character, more text, "
                           f"and '{SPECIAL_CHAR}' at the end). The model's last predictions: {predictions[-8:].tolist()}")
            st.caption("Δ_t changes with every token, so Ab_t does too: one convolution kernel cannot describe the layer. "
                       "Near 0: the state forgets and takes the token in (large Δ); near 1: the token is ignored.")


# ----------------------------------------------------------------------------------------------
# Mamba-3 (chapter 12): the trained parity models side by side, and the rotating state's phase
# ----------------------------------------------------------------------------------------------

PARITY_MODELS = {"parity-mamba3": "Mamba-3, rotating state", "parity-mamba3-real": "Mamba-3 without rotation (real state)",
                 "parity-mamba": "Mamba-1 (real state)"}


def parity_available() -> bool:
    return all((CHECKPOINTS / f"{n}.pt").exists() and (CHECKPOINTS / f"{n}.json").exists() for n in PARITY_MODELS)


@st.cache_data(show_spinner=False, max_entries=32)
def parity_run(bits: str):
    """The bits as tokens, the running parity, every model's answers, and the rotating model's angles."""
    tokens = torch.tensor([int(c) for c in bits], dtype=torch.int64)  # (T,)
    parity = tokens.cumsum(0) % 2  # (T,)
    answers = {}
    for name in PARITY_MODELS:
        model, _ = checkpoint(name)
        with torch.no_grad():
            answers[name] = model(tokens[None])[0].argmax(-1)  # (T,)
    model, _ = checkpoint("parity-mamba3")
    with torch.no_grad():
        u = model.layers[0].norm(model.embedding(tokens[None]))  # (1, T, d): what the mixer reads
        theta = model.layers[0].mixer.trace(u)["theta"][0]  # (T, h, s)
    return tokens, parity, answers, theta


def show_parity(col, main):
    source = col.radio("Bits", ["random", "typed"], horizontal=True, key="se_parity_source")
    if source == "random":
        L = int(col.number_input("Length L (bits)", 2, MAX_TOKENS, 64, step=8, key="se_parity_L"))
        seed = int(col.number_input("Seed (which bits)", 0, 9999, 0, key="se_parity_seed"))
        bits = "".join(str(int(b)) for b in tasks.parity(1, seq_len=L, seed=seed).tokens[0])
    else:
        bits = col.text_input("Bits (0s and 1s)", "0110100110010110", key="se_parity_bits").replace(" ", "")
        refuse_if(not bits or set(bits) - {"0", "1"}, "Type only 0s and 1s (spaces are ignored), at least one bit.")
        refuse_if(len(bits) > MAX_TOKENS, f"The bits are {len(bits)} long; this page reads at most {MAX_TOKENS}.")
    tokens, parity, answers, theta = parity_run(bits)
    with main:
        st.markdown("Three models trained on the running parity of random bits (chapter 12; `results/tasks`), "
                    f"reading the same {len(bits)} bits. A real state with decays in (0, 1] can only shrink and add; "
                    "a rotation by π per 1-bit flips it: the rotating state's **angle is the parity**.")
        cols = st.columns(len(PARITY_MODELS))
        for c, (name, label) in zip(cols, PARITY_MODELS.items()):
            right = int((answers[name] == parity).sum())
            c.metric(label, f"{100 * right / len(bits):.1f} %", help=f"{name}: positions whose running parity it "
                     f"predicts right on these bits ({right} of {len(bits)}); chance is 50 %.")
        if bool(parity.any()) and not bool(parity.all()):
            head, k, gap = mamba3.angle_that_tracks(theta, parity)
            th = theta[:, head, k]  # (T,)
            show(rotating_pair(torch.stack([torch.cos(th), torch.sin(th)], 1), parity,
                               title=f"parity-mamba3: the phase θ_t of head {head}, angle {k}, after each bit"),
                 key="se_parity_phase")
            st.caption(f"Each point is (cos θ_t, sin θ_t) after bit t, coloured by the parity so far; the mean points "
                       f"of odd and even prefixes are {gap:.2f} apart (at most 2). The learned turn per 1-bit is close "
                       "to π, not exactly π: over many more bits than its training length (64) the phase drifts.")
        else:
            st.caption("The parity is the same after every bit here: type both an odd and an even prefix to see "
                       "the phase separate them.")


with error_boundary("the state explorer"):
    col, main = st.columns([1, 3], gap="large")
    trained = {f"trained Mamba: {n}": (n, t) for n, t in selective_checkpoints().items()}
    parity = ["trained Mamba-3 vs real states: parity"] if parity_available() else []
    options = list(explore.SYSTEMS) + list(trained) + parity

    def label(s: str) -> str:  # short enough for the select box of the narrow control column
        if s in explore.SYSTEMS:
            return explore.SYSTEMS[s]
        return f"{trained[s][0]} (trained)" if s in trained else "parity (trained Mamba-3)"

    system = col.selectbox("System", options, format_func=label, key="se_system",
                           help="The trained ones are the shipped checkpoints (results/tasks/checkpoints).")
    if system in parity:
        show_parity(col, main)
    elif system in trained:
        show_selective(*trained[system], col, main)
    else:
        show_lti(system, lti_controls(col), main)
