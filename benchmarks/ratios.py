"""Same-run ratios of a benchmark result: official time / fused time (> 1: fused is faster) and peak memory,
for every shape where both ran.   python benchmarks/ratios.py results/bench/h100.json"""

import sys

from mamba_edu import bench
from mamba_edu.bench import same_run_ratios

results = bench.load_results(sys.argv[1] if len(sys.argv) > 1 else bench.BENCH_DIR / "h100.json")
rows = same_run_ratios(results)
print(f"{'pass':17} {'batch':>5} {'dim':>5} {'L':>7} {'N':>4} {'fused ms':>9} {'official ms':>11} {'ratio':>6} {'memory':>6}")
for r in rows:
    mem = "" if r["memory"] is None else f"{r['memory']:.2f}"
    print(f"{r['pass']:17} {r['batch']:5} {r['dim']:5} {r['L']:7} {r['N']:4} {r['ms']:9.3f} {r['peer_ms']:11.3f}"
          f" {r['ratio']:6.2f} {mem:>6}")
if rows:
    worst = min(rows, key=lambda r: r["ratio"])
    print(f"worst ratio {worst['ratio']:.2f} ({worst['pass']}, {worst['batch']}x{worst['dim']}x{worst['L']}x{worst['N']}); "
          f"{sum(r['ratio'] >= 2 for r in rows)} of {len(rows)} cases at >= 2x, {sum(r['ratio'] < 1 for r in rows)} slower")
else:
    print("no case where both fused and official ran")
