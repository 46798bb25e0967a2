#!/usr/bin/env bash
# One command for a GPU machine (issue #9 §5): every CUDA-only test (marker gpu) and the GPU figures of
# tests/benchmarks/test_bench_gpu.py, from a source checkout, with the python that has torch (no install, no
# network). Figures are printed as "[gpu] ..." lines and written, as JSON lines, to $OUT/gpu_figures.jsonl when
# $OUT is set (else ./gpu_figures.jsonl), the whole log to gpu_check.log beside them, and the throughput
# records to throughput/ there. Exit status: pytest's (0 when everything passed or skipped).
#   scripts/gpu_check.sh [extra pytest args]        PYTHON=python3.12 scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
dest=${OUT:-$PWD}
mkdir -p "$dest"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export REPBENCH_FIGURES="$dest/gpu_figures.jsonl" REPBENCH_GPU_RESULTS="$dest/throughput"
export REPBENCH_CACHE_DIR="${TMPDIR:-/tmp}/repbench-gpu-check-cache"
rm -f "$REPBENCH_FIGURES"
py=${PYTHON:-python3}
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
          torch.cuda.get_device_name() if torch.cuda.is_available() else "(no GPU: the tests skip)")' \
    2>&1 | tee "$dest/gpu_check.log"
# -o addopts=: this checkout's pyproject adds --benchmark-disable, which needs pytest-benchmark; keep the rest
timeout 900 "$py" -m pytest -m gpu tests -s -rs -p no:cacheprovider -o addopts="-ra --strict-markers" \
    "$@" 2>&1 | tee -a "$dest/gpu_check.log"
status=${PIPESTATUS[0]}
echo "--- figures ($REPBENCH_FIGURES) ---" | tee -a "$dest/gpu_check.log"
[ -f "$REPBENCH_FIGURES" ] && cat "$REPBENCH_FIGURES" | tee -a "$dest/gpu_check.log"
exit "$status"
