"""HiPPO memory: reconstruct a signal's past at a chosen time from N coefficients kept online.

Signals are preset formulas or one the learner types (parsed by `mamba_edu.formula`, never eval'd);
the projection, reconstruction and errors come from `mamba_edu.hippo` through `mamba_edu.explore`.
"""

import streamlit as st
import torch
from _common import error_boundary, page_header, show

from mamba_edu import explore
from mamba_edu.formula import MAX_CHARS, PRESETS, parse_formula
from mamba_edu.viz.hippo import MEASURE_NAMES, error_vs_N, hippo_reconstruction, matrix_heatmap

T, L = 3.0, 300  # the signal runs over [0, T] seconds, sampled L times (100 per second)
N_MAX = 64
N_GRID = tuple(range(2, N_MAX + 1, 2))  # every N the slider offers
N_ERRORS = (2, 4, 8, 16, 32, 64)  # the points of the error curves
CUSTOM = "your formula"

page_header(
    "hippo.py",
    "HiPPO keeps $N$ numbers $c(t)$ that are the best approximation of the signal's past by $N$ basis functions "
    "over a memory window, and updates them online with one linear step per sample. Choose a signal (or type a "
    "formula in $t$), a measure and $N$, and move the time $t$: the page rebuilds the window from $c(t)$ alone. "
    "LegS remembers everything since $0$, stretched; LegT and FouT a sliding window of length $\\theta$.",
)


@st.cache_resource(show_spinner=False, max_entries=16)
def memories(formula: str, measure: str, theta: float) -> dict:
    """{N: c (L, N)} for every N of the slider. LegS: one projection (its first n coefficients are the
    n-coefficient memory); LegT and FouT: filled per N on demand by `memory`."""
    signal = parse_formula(formula)
    if measure == "legs":
        return explore.hippo_memories(signal, "legs", N_GRID, T, L)
    return {}


def memory(formula: str, measure: str, theta: float, N: int) -> torch.Tensor:
    mems = memories(formula, measure, theta)
    if N not in mems:  # LegT / FouT: one projection per N, kept in the cached dict
        mems[N] = explore.hippo_memories(parse_formula(formula), measure, [N], T, L, theta)[N]
    return mems[N]


@st.cache_resource(show_spinner=False, max_entries=64)
def errors(formula: str, t: float, theta: float) -> dict:
    """{measure: {N: relative error of the window at time t}} for the error curves."""
    signal = parse_formula(formula)
    return {m: explore.hippo_errors_vs_N(signal, {n: memory(formula, m, theta, n) for n in N_ERRORS}, m, t, T, theta)
            for m in MEASURE_NAMES}


@st.cache_resource(show_spinner=False, max_entries=64)
def figures(formula: str, measure: str, N: int, t: float, theta: float):
    signal = parse_formula(formula)
    c = memory(formula, measure, theta, N)  # (L, N)
    k = explore.step_at(t, T, L)
    tk = (k + 1) * T / L  # the time of the memory c_k (t rounded down to a sample)
    s_win, f_win, f_hat, window = explore.hippo_window(signal, c[k], measure, tk, theta)
    err = explore.relative_error(f_hat, f_win)  # (the same number as window_error, from the pieces drawn)
    s = torch.linspace(min(0.0, window[0]), T, 600, dtype=torch.float64)  # (600,)
    name = MEASURE_NAMES[measure]
    recon = hippo_reconstruction(s, explore.history(signal, s), f_hat, window=window, s_hat=s_win,
                                 label="rebuilt from c(t)",
                                 title=f"{name}, N = {N}, t = {tk:.2f} s: error {err:.1%}")
    errs = errors(formula, tk, theta)
    curve = error_vs_N({m: (list(e), list(e.values())) for m, e in errs.items()},
                       title="Error against N")
    times = explore.sample_times(T, L) + T / (2 * L)  # (L,) t_k = (k + 1)·dt
    heat = matrix_heatmap(c.T, title=f"{name} memory c_n(t)", x="time t (s)",
                          y="coefficient n", x_values=times, colorbar="c_n(t)")
    return recon, curve, heat, {m: window_error(signal, memory(formula, m, theta, N)[k], m, tk, theta)
                                for m in MEASURE_NAMES}


def window_error(signal, c_k, measure, t, theta) -> float:
    _, f, f_hat, _ = explore.hippo_window(signal, c_k, measure, t, theta)
    return explore.relative_error(f_hat, f)


# Every time at which the page evaluates the signal lies in [0, T] (before 0 the history is 0): the
# projection's sample times, the reconstruction windows and the drawn curve. A formula is accepted once it
# is finite and of moderate size on this grid (the ends 0 and T included, plus the sample times), so that
# `log(t)`, `1/t` or `1/(t-3)` are refused with a message instead of breaking the charts.
GRID = torch.cat([torch.linspace(0.0, T, 1201, dtype=torch.float64), explore.sample_times(T, L)])
MAX_ABS = 1e6  # larger values overflow nothing but make every chart a flat line next to one spike


def check_signal(text: str) -> None:
    """ValueError naming the problem when the formula cannot be drawn on this page."""
    y = parse_formula(text)(GRID)  # a ValueError for syntax or a NaN / infinite value, with the time
    peak = float(y.abs().max())
    if peak > MAX_ABS:
        raise ValueError(f"The formula reaches |f| = {peak:.3g} on [0, {T:g}] s; this page draws signals up to "
                         f"{MAX_ABS:.0e}. Scale it down.")


def choose_signal(col) -> str:
    """The formula to show: a preset, or the learner's own (the last valid one while the text is wrong)."""
    choice = col.selectbox("Signal", list(PRESETS) + [CUSTOM], key="hp_signal")
    if choice != CUSTOM:
        col.caption(f"f(t) = `{PRESETS[choice]}`")
        return PRESETS[choice]
    last = st.session_state.setdefault("hp_last_formula", PRESETS["two tones"])
    text = col.text_input("f(t) =", last, max_chars=MAX_CHARS, key="hp_formula",
                          help="Arithmetic in t with + - * / ** (or ^), the constants pi and e, and the functions "
                               "sin cos tan exp log sqrt abs tanh sinh cosh atan sign floor step min max.")
    try:
        check_signal(text)
    except ValueError as e:
        col.error(f"{e} Still showing `{last}`.", icon=":material/function:")
        return last
    st.session_state["hp_last_formula"] = text
    return text


with error_boundary("the HiPPO page"):
    col, main = st.columns([1, 3], gap="large")
    formula = choose_signal(col)
    measure = col.radio("Measure", list(MEASURE_NAMES), format_func=MEASURE_NAMES.get, horizontal=True, key="hp_measure")
    N = col.slider("Coefficients N", 2, N_MAX, 24, step=2, key="hp_N")
    t = col.slider("Time t (s)", 0.05, T, 2.0, step=0.05, key="hp_t")
    theta = col.slider("Window θ of LegT and FouT (s)", 0.25, T, 1.0, step=0.25, key="hp_theta",
                       help="LegS has no window length: it always covers [0, t].")
    recon, curve, heat, errs = figures(formula, measure, N, float(t), float(theta))
    with main:
        show(recon, key="hp_recon")
        cols = st.columns(3)
        for c, (m, e) in zip(cols, errs.items()):
            c.metric(f"{MEASURE_NAMES[m]} error, N = {N}", f"{e:.2%}")
        c1, c2 = st.columns(2)
        with c1:
            show(curve, key="hp_errors")
        with c2:
            show(heat, key="hp_memory")
