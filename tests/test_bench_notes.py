"""The numbers typed into results/bench/NOTES.md and the README agree with the recorded H100 run.

Rerunning `mamba-edu bench --preset full` replaces results/bench/h100.json; this test then names
each sentence that has to be updated with it."""

import re
from pathlib import Path

from mamba_edu import bench

ROOT = Path(__file__).resolve().parents[1]
MAIN = dict(batch=8, dim=1536, L=2048, N=16)
# NOTES.md's target table: row label → (implementation, pass, shape)
ROWS = {
    "fused forward (8, 1536, 2048, 16)": ("fused", "forward", MAIN),
    "fused forward + backward, same shape": ("fused", "forward_backward", MAIN),
    "fused forward (1, 1536, 8192, 16)": ("fused", "forward", dict(batch=1, dim=1536, L=8192, N=16)),
    "fused forward (8, 4096, 2048, 16)": ("fused", "forward", dict(batch=8, dim=4096, L=2048, N=16)),
    "parallel forward (8, 1536, 2048, 16)": ("parallel", "forward", MAIN),
}


def _case(results, impl, pass_, shape):
    (case,) = bench.ok_cases(results, pass_, impl=impl, **shape)
    return case


def test_notes_target_table_matches_the_recorded_run():
    results = bench.load_results(bench.BENCH_DIR / "h100.json")
    rows = {}
    for line in (ROOT / "results/bench/NOTES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in ROWS:
            rows[cells[0]] = cells
    assert set(rows) == set(ROWS)
    for label, (impl, pass_, shape) in ROWS.items():
        case = _case(results, impl, pass_, shape)
        measured = float(re.search(r"([\d.]+) ms", rows[label][2]).group(1))
        assert abs(measured - case["ms"]) < 0.006 * max(1.0, case["ms"]), label
        if impl == "fused":
            fb, fe = (float(x) for x in re.findall(r"([\d.]+) %", rows[label][3]))
            assert (fb, fe) == (round(100 * case["fraction_bandwidth"], 1), round(100 * case["fraction_exp"], 1)), label


def test_readme_numbers_match_the_recorded_run():
    results = bench.load_results(bench.BENCH_DIR / "h100.json")
    fwd, fb = (_case(results, "fused", p, MAIN)["ms"] for p in ("forward", "forward_backward"))
    speedup = _case(results, "parallel", "forward", MAIN)["ms"] / fwd
    text = " ".join((ROOT / "README.md").read_text().split())
    assert f"the fused forward takes {fwd:.2f} ms, {round(speedup, -1):.0f}× less" in text
    assert f"forward + backward takes {fb:.1f} ms" in text


def test_readme_and_notes_ratios_against_official_match_the_recorded_run():
    """The same-run ratios quoted in the README, and NOTES.md's full table, come from h100.json."""
    results = bench.load_results(bench.BENCH_DIR / "h100.json")
    rows = bench.same_run_ratios(results)
    assert rows, "h100.json has no case where fused and official both ran"
    at = {(r["pass"], r["batch"], r["dim"], r["L"], r["N"]): r["ratio"] for r in rows}
    text = " ".join((ROOT / "README.md").read_text().split())
    main = (8, 1536, 2048, 16)
    assert f"{at[('forward', *main)]:.2f} (forward) and {at[('forward_backward', *main)]:.2f} (forward + backward)" in text
    worst = min(rows, key=lambda r: r["ratio"])
    assert f"worst {worst['ratio']:.2f} at {worst['batch']} × {worst['dim']} × {worst['L']}" in text
    slower = sum(r["ratio"] < 1 for r in rows)
    assert f"slower** in {slower} of the {len(rows)} cases" in text
    notes = (ROOT / "results/bench/NOTES.md").read_text()
    for r in rows:
        line = (f"{r['pass']:17} {r['batch']:5} {r['dim']:5} {r['L']:7} {r['N']:4} {r['ms']:9.3f} "
                f"{r['peer_ms']:11.3f} {r['ratio']:6.2f}")
        assert line in notes, line
