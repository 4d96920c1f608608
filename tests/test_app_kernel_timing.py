"""The Kernel timing page through Streamlit's AppTest: the recorded results at defaults (labelled with device
and date, figure data equal to the JSON), the controls, a run on this machine at the smallest size (its
figure data come from the run), refused sizes on a CPU, and uploads (a malformed file gives a clear message
and changes nothing; a valid one is added and compared)."""

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mamba_edu import bench
from mamba_edu.viz import bench as vb
from app_rerun import rerun_from_cache
from plotly_data import arr, title

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
PAGE = str(APP / "pages" / "kernel_timing.py")
H100 = bench.BENCH_DIR / "h100.json"
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))  # the pages import _common, as they do under app/Home.py

pytestmark = pytest.mark.skipif(not H100.exists(), reason="no recorded results/bench/h100.json")
ON_GPU = torch.cuda.is_available()


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at) -> dict:
    """{key: decoded plotly spec} of the page's charts, by the key each was drawn with."""
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def traces(spec) -> dict:
    return {t["name"]: (list(arr(t["x"])), list(arr(t["y"]))) for t in spec["data"]}


def expected_times(res, pass_):
    b, d, n = vb.sweep_shape(res)
    out = {}
    for c in bench.ok_cases(res, pass_, batch=b, dim=d, N=n):
        out.setdefault(c["impl"], []).append((c["L"], c["ms"]))
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def h100():
    return bench.load_results(H100)


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    return ok(at)


def test_defaults_show_the_recorded_results_with_device_and_date(app, h100):
    assert app.title[0].value == "Kernel timing"
    label = f"{h100['device']['name']} · {h100['date']} (recorded: h100.json)"
    assert app.selectbox(key="kt_choice").value == label
    date = h100["date"].replace(":", "\\:")  # Markdown-escaped (a ':' could start an emoji short code)
    assert any(f"**{h100['device']['name']}**" in m.value and f"**{date}**" in m.value for m in app.markdown)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Cases checked and timed"] == str(sum(c["status"] == "ok" for c in h100["cases"]))
    figs = charts(app)
    assert h100["device"]["name"] in title(figs["kt_time"])
    assert h100["date"] in title(figs["kt_time"])
    got = traces(figs["kt_time"])
    for impl, pts in expected_times(h100, "forward").items():
        assert got[impl][0] == [L for L, _ in pts]
        assert got[impl][1] == pytest.approx([ms for _, ms in pts])
    # the crossover named in the caption is the one computed from the data
    L_star = vb.crossover_length(h100, "fused", "attention", "forward")
    assert any(f"L ≈ {L_star:,.0f}" in c.value for c in app.caption)
    # the comparison figure draws fused from the recorded results
    cmp = traces(figs["kt_compare"])
    (name, (xs, ys)), = cmp.items()
    assert name.startswith(label) and ys == pytest.approx([ms for _, ms in expected_times(h100, "forward")["fused"]])
    assert app.download_button(key="kt_download").label == "Download these results (JSON)"


def test_rerun_at_defaults_uses_the_cache(app, monkeypatch):
    rerun_from_cache(app, monkeypatch, ["mamba_edu.bench.load_bench_results", "mamba_edu.viz.bench.time_vs_length",
                                        "mamba_edu.viz.bench.speedup_vs_length", "mamba_edu.viz.bench.floor_fractions",
                                        "mamba_edu.viz.bench.attention_crossover", "mamba_edu.viz.bench.compare_runs"])
    assert app.title[0].value == "Kernel timing" and "kt_time" in charts(app)


def test_pass_and_baseline_change_the_figures(h100):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.selectbox(key="kt_pass").set_value("forward_backward")
    at.selectbox(key="kt_baseline").set_value("fused")
    ok(at.run())
    figs = charts(at)
    want = expected_times(h100, "forward_backward")
    assert traces(figs["kt_time"])["fused"][1] == pytest.approx([ms for _, ms in want["fused"]])
    fused = dict(want["fused"])
    speed = traces(figs["kt_speedup"])
    assert "fused" not in speed
    xs, ys = speed["parallel"]
    assert ys == pytest.approx([fused[L] / dict(want["parallel"])[L] for L in xs])
    assert title(figs["kt_speedup"]) == "speed-up over fused (forward + backward)"


def _set_run(at, lengths, batch, dim, N, impls):
    at.multiselect(key="kt_lengths").set_value(lengths)
    at.selectbox(key="kt_batch").set_value(batch)
    at.selectbox(key="kt_dim").set_value(dim)
    at.selectbox(key="kt_N").set_value(N)
    at.multiselect(key="kt_impls").set_value(impls)
    at.button(key="kt_go").click()
    at.run()
    return at


def test_a_run_at_the_smallest_size_completes_and_is_plotted():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    smallest = at.multiselect(key="kt_lengths").options[0]
    ok(_set_run(at, [smallest], 1, 8, 4, ["naive", "parallel"]))
    runs = at.session_state["kt_runs"]
    assert len(runs) == 1
    label, res = next(iter(runs.items()))
    assert "(run 1 here)" in label and at.selectbox(key="kt_choice").value == label
    assert {c["status"] for c in res["cases"]} == {"ok"}  # each checked against float64, then timed
    assert {(c["impl"], c["pass"]) for c in res["cases"]} == {
        (i, p) for i in ("naive", "parallel", "attention") for p in ("forward", "forward_backward")}
    figs = charts(at)
    assert res["device"]["name"] in title(figs["kt_time"])
    got = traces(figs["kt_time"])
    assert set(got) == {"naive", "parallel", "attention"}
    for impl, (xs, ys) in got.items():
        case = next(c for c in res["cases"] if c["impl"] == impl and c["pass"] == "forward")
        assert xs == [int(smallest)] and ys == pytest.approx([case["ms"]])


@pytest.mark.skipif(ON_GPU, reason="the size limits apply on a CPU only")
@pytest.mark.parametrize("lengths,dim,impls,message", [
    ([16, 2048], 8, ["naive"], "Too large for a CPU"),
    ([16], 4096, ["parallel"], "Too large for a CPU"),
    ([1024], 16, ["naive", "fused"], "Triton's interpreter"),
])
def test_too_large_settings_are_refused_on_a_cpu(lengths, dim, impls, message):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    if "fused" in impls and "fused" not in at.multiselect(key="kt_impls").options:
        pytest.skip("the Triton kernels need TRITON_INTERPRET=1 on a CPU")
    _set_run(at, lengths, 1, dim, 4, impls)
    assert not at.exception and not at.error
    assert any(message in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.session_state["kt_runs"] == {}


@pytest.mark.parametrize("name,raw,message", [
    ("broken.json", b"{not json", "broken.json is not a JSON file"),
    ("other.json", json.dumps({"schema": "something-else/1"}).encode(), "field 'schema' must be"),
    ("nocase.json", None, "case 0: field 'ms' must be a positive finite number"),
])
def test_a_malformed_upload_gives_a_clear_message_and_changes_nothing(h100, name, raw, message):
    if raw is None:  # a well-formed file with one broken case
        bad = copy.deepcopy(h100)
        bad["cases"][0]["ms"] = -1.0
        raw = json.dumps(bad).encode()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    before = (at.selectbox(key="kt_choice").options, at.selectbox(key="kt_choice").value, charts(at))
    at.file_uploader(key="kt_upload").set_value((name, raw, "application/json"))
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0] and errors[0].endswith("Nothing was added.")
    assert at.session_state["kt_uploads"] == {}
    assert (at.selectbox(key="kt_choice").options, at.selectbox(key="kt_choice").value, charts(at)) == before


def test_a_valid_upload_is_added_and_compared(h100):
    other = copy.deepcopy(h100)
    other["device"]["name"] = "Some Other GPU"
    for c in other["cases"]:
        if c["status"] == "ok":
            c["ms"] *= 2
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.file_uploader(key="kt_upload").set_value(("other.json", json.dumps(other).encode(), "application/json"))
    ok(at.run())
    label = f"Some Other GPU · {h100['date']} (uploaded: other.json)"
    assert label in at.selectbox(key="kt_choice").options
    cmp = traces(charts(at)["kt_compare"])
    assert len(cmp) == 2
    mine = next(v for k, v in cmp.items() if k.startswith(label))
    want = [2 * ms for _, ms in expected_times(h100, "forward")["fused"]]
    assert mine[1] == pytest.approx(want)
    at.selectbox(key="kt_choice").set_value(label)
    ok(at.run())
    assert "Some Other GPU" in title(charts(at)["kt_time"])
    assert any("**Some Other GPU**" in m.value for m in at.markdown)


def test_without_recorded_results_the_page_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=120)
    ok(at.run())
    assert any("No benchmark results yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def _edited(h100, edit) -> bytes:
    bad = copy.deepcopy(h100)
    edit(bad)
    return json.dumps(bad).encode()


def _skipped(res) -> dict:
    return next(c for c in res["cases"] if c["status"] == "skipped")


# Hostile uploads: each passed the old validation (or crashed the page) and broke the Results section.
HOSTILE = {
    "deep.json": (lambda h: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "latin1.json": (lambda h: '{"device": "\xe9"}'.encode("latin-1"), "is not a JSON file"),
    "settings.json": (lambda h: _edited(h, lambda d: d["settings"].update(batch="two")), "field 'settings.batch'"),
    "settings0.json": (lambda h: _edited(h, lambda d: d["settings"].update(dim=0)), "field 'settings.dim'"),
    "settingslist.json": (lambda h: _edited(h, lambda d: d.update(settings=[1, 2])), "field 'settings' must be"),
    "floors.json": (lambda h: _edited(h, lambda d: d["floors"].update(copy_bytes_per_s="fast")),
                    "floors.copy_bytes_per_s"),
    "floorsnan.json": (lambda h: _edited(h, lambda d: d["floors"].update(exp_per_s=float("nan"))), "floors.exp_per_s"),
    "floorsneg.json": (lambda h: _edited(h, lambda d: d["floors"].update(exp_per_s=-1)), "floors.exp_per_s"),
    "relerr.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(rel_error=-0.5)), "field 'rel_error'"),
    "relerrstr.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(rel_error="tiny")), "field 'rel_error'"),
    "bps.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(bytes_per_s=float("inf"))), "field 'bytes_per_s'"),
    "mskipped.json": (lambda h: _edited(h, lambda d: _skipped(d).update(ms=1.0)), "was not timed"),
    "bpsskipped.json": (lambda h: _edited(h, lambda d: _skipped(d).update(bytes_per_s=1e9)), "was not timed"),
    "L0.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(L=0)), "field 'L' must be between 1"),
    "Lneg.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(L=-256)), "field 'L' must be between 1"),
    "Lhuge.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(L=10**30)), "field 'L' must be between 1"),
    "dtype.json": (lambda h: _edited(h, lambda d: d["cases"][0].update(dtype="int8")), "field 'dtype'"),
    "name.json": (lambda h: _edited(h, lambda d: d["device"].update(name="x" * 5000)), "device.name"),
    "sms.json": (lambda h: _edited(h, lambda d: d["device"].update(multiprocessors="many")), "device.multiprocessors"),
    "versions.json": (lambda h: _edited(h, lambda d: d.update(versions=[1])), "field 'versions'"),
    "nocases.json": (lambda h: _edited(h, lambda d: d.update(cases=[])), "field 'cases'"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_uploads_are_refused_and_leave_every_result_shown(h100, name):
    make, message = HOSTILE[name]
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    before = (at.selectbox(key="kt_choice").options, charts(at))
    at.file_uploader(key="kt_upload").set_value((name, make(h100), "application/json"))
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0] and errors[0].endswith("Nothing was added."), errors
    assert (at.selectbox(key="kt_choice").options, charts(at)) == before  # the shipped results still shown
    at.run()  # and on every later rerun
    assert not at.exception and (at.selectbox(key="kt_choice").options, charts(at)) == before


def test_an_upload_can_be_removed_and_its_device_name_is_shown_literally(h100):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    shipped = list(at.selectbox(key="kt_choice").options)
    raw = _edited(h100, lambda d: d["device"].update(name="**Evil** GPU [link](http://x) <b>:smile:</b>"))
    at.file_uploader(key="kt_upload").set_value(("evil.json", raw, "application/json"))
    at.run()
    assert not at.exception and not at.error
    label = next(o for o in at.selectbox(key="kt_choice").options if "evil.json" in o)
    at.selectbox(key="kt_choice").set_value(label).run()
    md = next(m.value for m in at.markdown if "Evil" in m.value)
    assert r"\*\*Evil\*\* GPU \[link\](http\://x) \<b\>\:smile\:\</b\>" in md, md
    assert at.selectbox(key="kt_remove_choice").value == label
    at.button(key="kt_remove").click().run()
    assert not at.exception and list(at.selectbox(key="kt_choice").options) == shipped
    at.run()  # the file is still in the uploader: it is not read again
    assert list(at.selectbox(key="kt_choice").options) == shipped


def test_the_official_kernel_beside_fused_from_the_same_run(app, h100):
    """The recorded run has the official kernel: every same-run ratio drawn, the slower cases named."""
    rows = bench.same_run_ratios(h100)
    spec = charts(app)["kt_official"]
    assert list(arr(spec["data"][0]["x"])) == pytest.approx([r["ratio"] for r in rows])
    caption = " ".join(c.value for c in app.caption)
    slower = [r for r in rows if r["ratio"] < 1]
    assert f"fused is faster in {len(rows) - len(slower)} of {len(rows)} cases" in caption
    assert f"**Slower** in {len(slower)}:" in caption
    worst = min(rows, key=lambda r: r["ratio"])
    assert f"{worst['batch']}×{worst['dim']}×{worst['L']}×{worst['N']} ({worst['ratio']:.2f})" in caption

