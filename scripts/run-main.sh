#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds quantsim and runs the main job: the quantizer
# benchmark, ending with a summary of each kernel's speed relative to Tensor::copy_.
# Usage: scripts/run-main.sh [extra Google Benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build

bash scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DQUANTSIM_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --target quantizer_bench
"$build/bench/quantizer_bench" --benchmark_min_time=0.3 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true "$@"
