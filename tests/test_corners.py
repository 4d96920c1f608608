"""Library corners a hostile but fair user reaches: each gives the right answer or a clear error
(a ValueError that names the function and the argument), never an obscure one, a hang or a
silently wrong result. One test per repro; the NaN/Inf policy of docs/design.md at the end.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

import mamba_edu
from mamba_edu import bench, cli, discretize, lti, models, registry, scan, tokenizer
from mamba_edu import train as T
from mamba_edu.selective import selective_scan_ref


def _scan_inputs(b=1, d=4, L=8, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g)

    return dict(u=r(b, d, L), delta=0.5 * torch.rand(b, d, L, generator=g), A=-torch.rand(d, n, generator=g) - 0.1,
                B=r(b, n, L), C=r(b, n, L), D=r(d), z=r(b, d, L))


# ----------------------------------------------------------------------------------------------
# Clear errors instead of obscure ones
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", [["parallel"], {"parallel": 1}, None, 3, ("parallel",)])
def test_selective_scan_impl_of_the_wrong_type(impl):
    x = _scan_inputs()
    with pytest.raises(ValueError, match="selective_scan: argument 'impl' must be 'auto' or one of"):
        mamba_edu.selective_scan(**x, impl=impl)


def test_mamba_block_with_an_unhashable_impl_names_it():
    block = models.MambaBlock(4, 4, impl=["parallel"])
    with pytest.raises(ValueError, match="argument 'impl'"):
        block(torch.randn(1, 3, 4))


def test_mamba_block_with_an_empty_sequence():
    with pytest.raises(ValueError, match=r"MambaBlock: argument 'x' must be a sequence of length L >= 1"):
        models.MambaBlock(4, 4)(torch.randn(1, 0, 4))


@pytest.mark.parametrize("mixer", list(models.MIXERS))
def test_tiny_lm_with_an_empty_sequence(mixer):
    lm = models.TinyLM(10, 8, 1, mixer=mixer)
    for call in (lm, lm.decode):
        with pytest.raises(ValueError, match=r"TinyLM: argument 'tokens' must be a sequence of length L >= 1"):
            call(torch.zeros(2, 0, dtype=torch.long))


@pytest.mark.parametrize("mixer", ["s4d", "attention"])
def test_mixers_with_an_empty_sequence(mixer):
    block = models.MIXERS[mixer](4)
    with pytest.raises(ValueError, match="argument 'x' must be a sequence of length L >= 1"):
        block(torch.randn(1, 0, 4))


@pytest.mark.parametrize("bad", [torch.zeros(5, 5), torch.zeros(3, 4, 2), torch.zeros(2, 4, 3), torch.zeros(2, 4)])
def test_s4d_step_with_a_wrongly_shaped_state(bad):
    layer = models.S4DLayer(4, 4)
    layer.init_state(2)  # (2, 4, 2)
    with pytest.raises(ValueError, match=r"S4DLayer.step: argument 'h' must be of shape \(batch, d_model, N\)"):
        layer.step(torch.randn(2, 4), bad)


def test_s4d_step_with_a_state_of_another_batch_would_broadcast():
    """A (1, d, n) state with a batch of 2 broadcasts without an error: a silently wrong answer."""
    layer = models.S4DLayer(4, 4)
    with pytest.raises(ValueError, match="argument 'h'"):
        layer.step(torch.randn(2, 4), layer.init_state(1))


def test_mamba_and_attention_step_check_their_state():
    m = models.MambaBlock(4, 4)
    with pytest.raises(ValueError, match=r"MambaBlock.step: argument 'state\[0\]'"):
        m.step(torch.randn(2, 4), m.init_state(2)[::-1])  # the two parts swapped
    with pytest.raises(ValueError, match="MambaBlock.step: argument 'state'"):
        m.step(torch.randn(2, 4), torch.zeros(2, 8, 4))
    a = models.AttentionBlock(4, 2)
    with pytest.raises(ValueError, match=r"AttentionBlock.step: argument 'state\[0\]'"):
        a.step(torch.randn(2, 4), (torch.zeros(2, 2, 0, 3), torch.zeros(2, 2, 0, 3)))
    y, state = m.step(torch.randn(2, 4), m.init_state(2))  # the good path still runs, twice
    m.step(torch.randn(2, 4), state)


@pytest.mark.parametrize("d_model", [-4, 0, 2.5, "8"])
def test_tiny_lm_with_a_bad_width(d_model):
    with pytest.raises(ValueError, match="TinyLM: argument 'd_model' must be an integer"):
        models.TinyLM(10, d_model, 1)


def test_s4d_layer_odd_state_names_its_own_argument():
    with pytest.raises(ValueError, match="S4DLayer: argument 'd_state' must be an even state size"):
        models.S4DLayer(4, 3)
    assert models.S4DLayer(4, 3, init="real")(torch.randn(1, 5, 4)).shape == (1, 5, 4)


def test_dense_bilinear_with_a_singular_matrix():
    A = torch.tensor([[2.0, 0.0], [0.0, -1.0]], dtype=torch.float64)  # I − (1/2)·A is singular at dt = 1
    B = torch.ones(2, 1, dtype=torch.float64)
    for call in (lambda: discretize.bilinear(A, B, 1.0), lambda: discretize.discretize(A, B, 1.0, "bilinear")):
        with pytest.raises(ValueError, match=r"bilinear: argument 'dt' must be a step where I − \(dt/2\)·A is invertible"):
            call()
    Ab, Bb = discretize.bilinear(A, B, 0.5)  # away from the pole: finite, and (I − hA) Ab = I + hA
    I = torch.eye(2, dtype=torch.float64)
    assert torch.allclose((I - 0.25 * A) @ Ab, I + 0.25 * A)


def test_diagonal_bilinear_at_its_pole_was_silently_infinite():
    A = torch.tensor([2.0, -1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="bilinear: argument 'dt'"):
        discretize.bilinear(A, torch.ones(2, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="bilinear: argument 'dt'"):  # one step of a (T,) dt on the pole
        discretize.bilinear(A, torch.ones(2, dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_crossover_length_on_an_empty_result():
    with pytest.raises(ValueError, match="crossover_length: argument 'results' must be results with at least one case"):
        bench.crossover_length({"cases": []})
    with pytest.raises(ValueError, match="crossover_length: argument 'results' must be benchmark results"):
        bench.crossover_length({})
    # with the shape given (or in the settings) an empty result has no crossover: None, as documented
    assert bench.crossover_length({"cases": []}, shape=(1, 8, 4)) is None
    assert bench.crossover_length({"cases": [], "settings": {"batch": 1, "dim": 8, "N": 4}}) is None


@pytest.mark.parametrize("text", ["\ud800", "ok \udfff", "a\ud83d"])  # lone surrogates
def test_text_to_tokens_on_a_lone_surrogate(text):
    with pytest.raises(ValueError, match="text_to_tokens: argument 'text' must be valid Unicode text"):
        tokenizer.text_to_tokens(text, 16, "induction")
    assert len(tokenizer.text_to_tokens("\U0001f600", 16, "induction")) == 4  # a real emoji: 4 UTF-8 bytes


# ----------------------------------------------------------------------------------------------
# Silently wrong before
# ----------------------------------------------------------------------------------------------


def test_scan_inplace_refuses_aliased_inputs():
    x = torch.rand(8, dtype=torch.float64)
    before = x.clone()
    with pytest.raises(ValueError, match="scan_inplace: argument 'b' must be memory separate from a's"):
        scan.scan_inplace(x, x)
    assert torch.equal(x, before)  # refused before writing anything
    y = torch.rand(12, dtype=torch.float64)
    with pytest.raises(ValueError, match="argument 'b'"):
        scan.scan_inplace(y[:8], y[4:12])  # overlapping views
    with pytest.raises(ValueError, match="argument 'a'.*stride-0"):
        scan.scan_inplace(torch.rand(1).expand(8), torch.rand(8))


def test_scan_inplace_with_separate_inputs_is_right():
    a, b = torch.rand(3, 13, dtype=torch.float64), torch.rand(3, 13, dtype=torch.float64)
    want = scan.scan_sequential(a, b)
    assert torch.allclose(scan.scan_inplace(a.clone(), b.clone()), want)
    both = torch.rand(2, 3, 13, dtype=torch.float64)  # two halves of one tensor: separate memory, allowed
    want = scan.scan_sequential(both[0], both[1])
    assert torch.allclose(scan.scan_inplace(both[0], both[1]), want)


def test_scan_inplace_refuses_autograd():
    with pytest.raises(ValueError, match="scan_inplace: argument 'a' must be a tensor that does not require grad"):
        scan.scan_inplace(torch.rand(8, requires_grad=True), torch.rand(8))


@pytest.mark.parametrize("mixer", list(models.MIXERS))
def test_tiny_lm_step_with_too_few_states(mixer):
    """`step(tok, [])` used to skip every layer (zip stops at the shorter list) and return logits."""
    lm = models.TinyLM(10, 8, 2, mixer=mixer)
    tok = torch.zeros(1, dtype=torch.long)
    for state in ([], lm.init_state(1)[:1], lm.init_state(1) * 2, None):
        with pytest.raises(ValueError, match="TinyLM.step: argument 'state' must be a list of 2 layer states"):
            lm.step(tok, state)
    logits, state = lm.step(tok, lm.init_state(1))
    assert logits.shape == (1, 10) and len(state) == 2


# ----------------------------------------------------------------------------------------------
# A hang, bounded
# ----------------------------------------------------------------------------------------------


def test_lti_kernel_with_an_absurd_length_fails_at_once():
    Ab, Bb, C = torch.full((2, 2), 0.5), torch.ones(2, 2), torch.ones(2, 2)
    with pytest.raises(ValueError, match=rf"lti_kernel: argument 'L' must be an integer >= 1 and <= {lti.MAX_LOOP_L}"):
        lti.lti_kernel(Ab, Bb, C, L=10**12)
    with pytest.raises(ValueError, match="s4d_kernel: argument 'L'"):
        lti.s4d_kernel(-torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), 0.1, 10**12)
    assert lti.lti_kernel(Ab, Bb, C, L=5).shape == (2, 5)


# ----------------------------------------------------------------------------------------------
# NaN and Inf (docs/design.md, "NaN and Inf"): the scan propagates like the official kernel; the
# teaching functions refuse non-finite arguments; the CLI never shows a NaN silently.
# ----------------------------------------------------------------------------------------------


def _runnable():
    return [name for name, e in registry.implementations().items() if e.available(torch.device("cpu"))[0]]


@pytest.mark.parametrize("where, value", [("u", math.nan), ("delta", math.nan), ("B", math.nan), ("C", math.nan),
                                          ("z", math.nan), ("u", math.inf), ("B", -math.inf)])
def test_every_implementation_is_non_finite_where_the_reference_is(where, value):
    x = _scan_inputs()
    x[where][0, 1, 3] = value  # u, delta, z: channel 1 at t = 3; B, C: state 1 at t = 3 (every channel)
    ref = selective_scan_ref(**{k: v.double() for k, v in x.items()}, delta_softplus=True)
    bad = ~torch.isfinite(ref)
    assert bad.any() and not bad.all()  # the NaN spreads forward in time, not everywhere
    assert not bad[..., :3].any()  # ... and never backward
    for name in _runnable():
        out = mamba_edu.selective_scan(**x, delta_softplus=True, impl=name)
        assert torch.equal(~torch.isfinite(out), bad), name
        assert torch.allclose(out[~bad].double(), ref[~bad], rtol=1e-4, atol=1e-4), name


@pytest.mark.parametrize("call", [
    lambda: discretize.zoh(torch.tensor([-1.0, math.nan]), torch.ones(2), 0.1),
    lambda: lti.lti_kernel(torch.tensor([[0.5, math.inf]]), torch.ones(1, 2), torch.ones(1, 2), 4),
    lambda: lti.lti_recurrent(torch.full((1, 2), 0.5), torch.ones(1, 2), torch.ones(1, 2), torch.tensor([[1.0, math.nan]])),
    lambda: mamba_edu.selective_scan(**{**_scan_inputs(), "A": torch.full((4, 3), math.nan)}, impl="parallel"),
])
def test_teaching_functions_refuse_non_finite_arguments(call):
    with pytest.raises(ValueError, match="must be finite everywhere"):
        call()


def test_cli_train_refuses_to_save_a_diverged_model(tmp_path, monkeypatch, capsys):
    """A NaN loss is said, not printed as an accuracy, and no NaN checkpoint is written."""
    cfg = T.TrainConfig(task="induction", model="s4d", seq_len=8, vocab_size=5, d_model=8, n_layers=1, steps=1)
    model = T.build_model(cfg)
    with torch.no_grad():
        model.embedding.weight.fill_(math.nan)
    result = T.TrainResult(model, cfg, history=[{"step": 1, "loss": math.nan, "train_accuracy": 0.0,
                                                 "accuracy": 0.2, "sequence_accuracy": 0.0, "seconds": 0.1}])
    monkeypatch.setattr(T, "train", lambda *a, **k: result)
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--task", "induction", "--model", "s4d", "--seq-len", "8", "--vocab-size", "5",
                  "--d-model", "8", "--n-layers", "1", "--steps", "1", "--quiet", "--out", str(tmp_path / "m")])
    assert "diverged" in str(e.value.code) and "step 1" in str(e.value.code)
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------------------------
# Found beyond the list, the same classes
# ----------------------------------------------------------------------------------------------


def test_trace_block_with_an_empty_sequence():
    with pytest.raises(ValueError, match="trace_block: argument 'x' must be a sequence of length L >= 1"):
        models.trace_block(models.MambaBlock(4, 4), torch.randn(1, 0, 4))


@pytest.mark.parametrize("mixer", list(models.MIXERS))
@pytest.mark.parametrize("batch", [-1, "2", 1.0])
def test_init_state_with_a_bad_batch(mixer, batch):
    kw = {"headdim": 4} if mixer == "mamba3" else {}  # its default head (16 channels) is wider than d_inner = 8
    for owner in (models.MIXERS[mixer](4, **kw), models.TinyLM(10, 4, 1, mixer=mixer, **kw)):
        with pytest.raises(ValueError, match=r"init_state: argument 'batch' must be an integer"):
            owner.init_state(batch)


def test_decode_throughput_does_not_truncate_a_fractional_batch():
    """int(1.5) used to measure batch 1 and report it as batch 1.5's throughput."""
    with pytest.raises(ValueError, match="decode_throughput: argument 'batch_sizes' must be an integer"):
        models.decode_throughput(models.TinyLM(10, 4, 1), [1.5], position=1)


def test_hybrid_state_bytes_names_its_own_arguments():
    with pytest.raises(ValueError, match="hybrid_state_bytes: argument 'position'"):
        models.hybrid_state_bytes(-1, 2, 1, 8, 2)
    with pytest.raises(ValueError, match="hybrid_state_bytes: argument 'd_model'"):
        models.hybrid_state_bytes(5, 2, 1, 0, 2)


def test_text_targets_refuses_float_tokens():
    with pytest.raises(ValueError, match="text_targets: argument 'tokens' must be a tensor of integer token ids"):
        tokenizer.text_targets(torch.tensor([1.0, 2.0]), "induction")


def test_state_bytes_of_something_else():
    with pytest.raises(ValueError, match="state_bytes: argument 'state'"):
        models.state_bytes(None)


def nan_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """An implementation that returns NaN everywhere (registered by the test below only)."""
    out = torch.full_like(u, math.nan)
    return (out, torch.zeros(u.shape[0], u.shape[1], A.shape[1])) if return_last_state else out


def test_the_benchmark_never_times_or_prints_a_nan(monkeypatch):
    """A non-finite result is recorded as `wrong` (with its error) and never timed: no NaN reaches
    the JSON's times or the terminal's table."""
    from mamba_edu.iomodel import fused_bytes
    from mamba_edu.viz import bench as vb

    entry = registry.Implementation("nan_scan", "returns NaN", f"{__name__}:nan_scan", fused_bytes, has_backward=False)
    monkeypatch.setitem(registry._REGISTRY, "nan_scan", entry)
    cfg = bench.BenchConfig(lengths=(8,), batch=1, dim=4, N=2, dtype="float32", impls=("nan_scan", "parallel"),
                            passes=("forward",), attention=False)
    results = bench.run_bench(cfg, device="cpu", progress=False)
    status = {c["impl"]: c for c in results["cases"]}
    assert status["parallel"]["status"] == "ok"
    assert status["nan_scan"]["status"] == "wrong" and not status["nan_scan"].get("ms")
    table = vb.summary_table(results)
    assert "nan_scan" in table and "wrong" in table and "nan " not in table.lower().replace("nan_scan", "")
