#!/usr/bin/env bash
# Everything a GPU session checks and times, in one command (see ../shared/gpu for .gpu/):
#   source .gpu/setup.sh; bash benchmarks/gpu_all.sh OUTDIR [tests] [bench] [branches]
# tests     the GPU tests (kernels against the reference at real sizes, every layout, the block's default path)
# bench     `mamba-edu bench --preset full`, the official kernel measured in the same run
# branches  every notebook and app page on its GPU branch (benchmarks/gpu_branches.py)
# Each part writes its log and JSON into OUTDIR; the last lines printed are a short summary.
set -u
out=${1:?usage: gpu_all.sh OUTDIR [tests] [bench] [branches]}; shift
parts=${*:-tests bench branches}
mkdir -p "$out"
# Wheels the notebooks and the app need on a machine that lacks them (benchmarks/fetch_gpu_wheels.sh).
if [ -d .gpu/whl2 ] && ! python3 -c "import streamlit, nbclient, ipykernel" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site2 .gpu/whl2/*.whl
  export PYTHONPATH=/tmp/site2${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi -L
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
summary=()
for part in $parts; do
  t0=$(date +%s)
  case $part in
    tests)
      timeout ${TESTS_TIMEOUT:-300} python3 -m pytest -m gpu -q -p no:cacheprovider tests/ > "$out/gpu_tests.log" 2>&1
      summary+=("tests: $(tail -1 "$out/gpu_tests.log") ($(( $(date +%s) - t0 )) s)") ;;
    bench)
      type wait_official >/dev/null 2>&1 && wait_official
      timeout ${BENCH_TIMEOUT:-420} mamba-edu bench --preset full --out "$out/h100.json" --quiet > "$out/bench.log" 2>&1
      python3 benchmarks/ratios.py "$out/h100.json" > "$out/ratios.txt" 2>&1
      summary+=("bench: rc $? ($(( $(date +%s) - t0 )) s)"); cat "$out/ratios.txt" ;;
    branches)
      timeout ${BRANCHES_TIMEOUT:-540} python3 benchmarks/gpu_branches.py --out "$out/gpu_branches.json" > "$out/branches.log" 2>&1
      summary+=("branches: $(tail -1 "$out/branches.log") ($(( $(date +%s) - t0 )) s)"); cat "$out/branches.log" | grep -v WARNING | tail -25 ;;
  esac
done
printf '%s\n' "${summary[@]}"
