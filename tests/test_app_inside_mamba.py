"""The Inside Mamba page through AppTest: defaults, every preset, hostile text (emoji, 10k characters,
empty, control characters, lone surrogates), the figures' numbers against the library, and reruns
answered from the cache."""

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_rerun import rerun_from_cache
from mamba_edu import block_reading, probe, textlm
from mamba_edu.tokenizer import byte_labels, utf8_tokens
from mamba_edu.train import load_checkpoint
from plotly_data import by_prefix, charts_by_title as charts, tensor as arr

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "textlm"


def page(text=None, **widgets) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("pages/inside_mamba.py").run()
    if text is not None:
        at.text_area(key="im_text").set_value(text).run()
    for key, value in widgets.items():
        next(w for w in at.main if getattr(w, "key", None) == key).set_value(value)
        at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def expected(text, max_bytes=1024):
    model, _ = load_checkpoint(RESULTS / textlm.SHIPPED)
    tokens, _ = utf8_tokens(text, max_bytes)
    return model, tokens, block_reading.read(model, tokens)


def check(at, text, t=None, layer=0):
    model, tokens, r = expected(text)
    T = tokens.numel()
    if t is None:  # the page keeps the chosen byte when the text changes (clamped to the new text)
        t = at.slider(key="im_pos").value if T > 1 else 0
    assert 0 <= t < T
    figs = charts(at)
    assert len(figs) == 8, list(figs)
    strip = by_prefix(figs, "Click a byte")
    assert strip["data"][0]["text"] == byte_labels(tokens)
    bits = arr(strip["data"][0]["marker"]["color"])
    want = block_reading.surprise_bits(r).double()
    assert torch.allclose(bits[:-1], want[:-1], atol=1e-5) and torch.isnan(bits[-1])
    flow = by_prefix(figs, f"Block {layer + 1} at byte #{t} ")
    stages = block_reading.flow_stages(r, layer, t)
    assert len(flow["data"]) == len(stages)
    for tr, st_ in zip(flow["data"], stages):
        v = st_["values"].double()
        assert torch.allclose(arr(tr["z"]), v[:, None] if v.dim() == 1 else v, atol=1e-5, rtol=1e-5), st_["name"]
    update = by_prefix(figs, f"State update at byte #{t}")
    before, after = block_reading.states_around(r.blocks[layer].trace, t)
    assert torch.allclose(arr(update["data"][3]["z"]), after.T.double(), atol=1e-6)
    assert torch.allclose(arr(update["data"][0]["z"]), before.T.double(), atol=1e-6)
    nxt = by_prefix(figs, f"Next byte after #{t}")
    ids, p = block_reading.top_next(r, t, 8)
    assert torch.allclose(arr(nxt["data"][0]["x"]), p.double(), atol=1e-6)
    delta = by_prefix(figs, f"Δ per channel at byte #{t}")
    assert torch.allclose(arr(delta["data"][0]["y"]), r.blocks[layer].trace.delta[0, :, t].double(), rtol=1e-6)
    keep = by_prefix(figs, f"What is left of byte #{t}'s write")
    assert torch.allclose(arr(keep["data"][0]["y"]), block_reading.kept_fraction(r.blocks[0].trace, t).double(), atol=1e-6)
    mem = by_prefix(figs, "Memory held for decoding")
    attn = json.loads((RESULTS / "results.json").read_text())["runs"]["textlm-attention"]["model_kwargs"]
    xs, kv = arr(mem["data"][1]["x"]), arr(mem["data"][1]["y"])
    assert all(int(k) == block_reading.memory_by_now(model, int(x), attn)["attention KV cache"] for x, k in zip(xs, kv))
    assert len(set(arr(mem["data"][0]["y"]).tolist())) == 1  # the state does not grow
    player = by_prefix(figs, f"Play through the text (▶): the state of block {layer + 1}")
    tr = r.blocks[layer].trace
    chans = probe.most_selective(tr, 8)
    assert torch.allclose(arr(player["data"][0]["z"]), tr.h[0, chans].permute(2, 0, 1).reshape(T, -1).T.double(), atol=1e-6)
    assert len(player["frames"]) == min(60, T) or T == 1
    assert at.metric[0].value == f"#{t} {byte_labels(tokens)[t]}"
    return r


def test_defaults_match_the_library():
    at = page()
    assert at.title[0].value == "Inside Mamba"
    text = at.text_area(key="im_text").value
    r = check(at, text, t=len(text.encode()) - 2)  # it opens at the last byte whose next byte is known
    nxt = at.metric[1].value
    assert nxt == f"{float(block_reading.surprise_bits(r)[-2]):.2f} bits"


@pytest.mark.parametrize("preset", ["A loop", "Emoji and accents", "Repetition"])
def test_presets(preset):
    default = page().text_area(key="im_text").value
    at = page(im_preset=preset)
    text = at.text_area(key="im_text").value
    assert text and text != default  # picking an example replaces the text
    check(at, text)


def test_choosing_a_token_and_a_block_changes_the_pictures():
    at = page()
    text = at.text_area(key="im_text").value
    before = charts(at)
    at.slider(key="im_pos").set_value(3).run()
    assert not at.exception
    check(at, text, t=3)
    at.radio(key="im_layer").set_value(1).run()
    check(at, text, t=3, layer=1)
    after = charts(at)
    assert by_prefix(after, "Block 2 at byte #3")["data"][0]["z"] != by_prefix(before, "Block 1 at byte #")["data"][0]["z"]


@pytest.mark.parametrize("text", [
    "🐍" * 600,  # 2400 bytes: cut at 256 emoji = 1024 bytes
    "x" * 10_000,
    "\x00\x01\x07\x1b[31m\r\n\t\x7f",  # control characters and an escape sequence
    "a\ufffdb 👨‍👩‍👧 שלום مرحبا",  # the replacement character, a joined emoji, right-to-left scripts
    "é",  # one character, two bytes
    "a",  # a single byte: no slider, nothing after it
    " ",
])
def test_hostile_text_is_bounded_and_drawn(text):
    at = page(text)
    tokens, n_chars = utf8_tokens(text, 1024)
    assert tokens.numel() <= 1024
    if n_chars < len(text):
        assert f"reads the first {n_chars} characters" in at.warning[0].value
    check(at, text)


def test_lone_surrogates_cannot_reach_the_page():
    # Streamlit's widget protocol carries UTF-8 only: a browser turns a lone surrogate into U+FFFD
    # before sending, and AppTest refuses to send one. The page's tokenizer maps them to U+FFFD too
    # (tests/test_probe_read.py::test_utf8_tokens_counts_bytes_and_cuts_whole_characters).
    at = page()
    with pytest.raises(UnicodeEncodeError):
        at.text_area(key="im_text").set_value("a\ud800b").run()
    assert utf8_tokens("a\ud800b", 16)[0].tolist() == list("a\ufffdb".encode())


def test_empty_text_is_a_message_not_a_traceback():
    at = page("")
    assert not at.get("plotly_chart") and "at least one byte" in at.info[0].value


def test_a_position_past_a_shorter_text_is_clamped():
    at = page()
    at.slider(key="im_pos").set_value(20).run()
    at.text_area(key="im_text").set_value("hi").run()
    assert not at.exception and not at.error
    check(at, "hi", t=1)


def test_rerun_at_unchanged_settings_is_answered_from_the_cache(monkeypatch):
    at = page()
    rerun_from_cache(at, monkeypatch, ["mamba_edu.block_reading.read", "mamba_edu.viz.inside.block_flow",
                                       "mamba_edu.viz.inside.reading_player"])
    assert len(charts(at)) == 8
