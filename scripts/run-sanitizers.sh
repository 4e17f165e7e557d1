#!/usr/bin/env bash
# The sanitizer jobs of the test command (docs/reliability.md §5):
# 1. ThreadSanitizer (GCC): the library and the concurrency tests, instrumented, on one intra-op
#    thread;
# 2. AddressSanitizer + UndefinedBehaviorSanitizer (clang, with libFuzzer's coverage): the
#    library, a subset of the tests (kernels, analyzers, quantizers, simulation I/O, errors, bad
#    values and hostile files), and
#    the libFuzzer targets of fuzz/, each run for QUANTSIM_FUZZ_SECONDS (default 30) on its
#    checked-in corpus fuzz/corpus/<name>.
# Any sanitizer report, failing test or fuzzer crash fails the script. libtorch is Debian's,
# uninstrumented: scripts/sanitizers/*.supp hold the suppressions that needs, each with its reason.
# Usage: scripts/run-sanitizers.sh [build-dir-prefix]   (builds <prefix>-tsan and <prefix>-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-build}
tsan_build=$prefix-tsan
asan_build=$prefix-asan
fuzz_seconds=${QUANTSIM_FUZZ_SECONDS:-30}
root=$(pwd)
supp=$root/scripts/sanitizers

# Only the tests whose threads are std::threads: at::parallel_for's are libgomp's, uninstrumented,
# and TSan cannot see the ordering their barriers give (it reports the kernels' reductions).
tsan_tests=(nn_concurrent_inference_test)
asan_tests=(
  kernels_affine_kernels_test kernels_statistics_kernels_test
  analyzers_min_max_test analyzers_histogram_test analyzers_percentile_test analyzers_sqnr_test
  affine_quantizer_test affine_grid_test floating_quantizer_test
  sim_config_test sim_encodings_io_test sim_quantsim_model_test errors_test
  affine_bad_values_test sim_hostile_files_test sim_fuzz_regressions_test
)
fuzzers=(config encodings state idx)

run_tests() {
  local build=$1
  shift
  for t in "$@"; do
    echo "-- $t"
    "$build/tests/$t" --gtest_brief=1
  done
}

seconds() { date +%s; }

# ---- ThreadSanitizer ------------------------------------------------------------------------
start=$(seconds)
echo "== ThreadSanitizer: configure and build ($tsan_build)"
cmake -S . -B "$tsan_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTSIM_SANITIZE=thread \
  -DQUANTSIM_BUILD_TESTS=ON -DQUANTSIM_BUILD_BENCHMARKS=OFF -DQUANTSIM_BUILD_APPS=OFF >/dev/null
cmake --build "$tsan_build" --target "${tsan_tests[@]}"
echo "== ThreadSanitizer: tests"
# One intra-op thread: libgomp's worker threads are uninstrumented, so TSan cannot see the
# ordering its barriers give; the concurrency tests make their own std::threads.
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$supp/tsan.supp" \
  OMP_NUM_THREADS=1 run_tests "$tsan_build" "${tsan_tests[@]}"
echo "ThreadSanitizer job: $(($(seconds) - start)) s"

# ---- AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzzers --------------------------
start=$(seconds)
echo "== AddressSanitizer + UndefinedBehaviorSanitizer: configure and build ($asan_build)"
CXX=clang++-14 cmake -S . -B "$asan_build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DQUANTSIM_SANITIZE=address,undefined,fuzzer-no-link -DQUANTSIM_BUILD_FUZZERS=ON \
  -DQUANTSIM_BUILD_TESTS=ON -DQUANTSIM_BUILD_BENCHMARKS=OFF -DQUANTSIM_BUILD_APPS=OFF >/dev/null
cmake --build "$asan_build" --target "${asan_tests[@]}" "${fuzzers[@]/%/_fuzzer}"

export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
export ASAN_OPTIONS="halt_on_error=1 detect_stack_use_after_return=0 strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1"
echo "== AddressSanitizer + UndefinedBehaviorSanitizer: tests"
run_tests "$asan_build" "${asan_tests[@]}"
echo "AddressSanitizer + UndefinedBehaviorSanitizer tests: $(($(seconds) - start)) s"

start=$(seconds)
echo "== fuzzers, ${fuzz_seconds} s each"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fuzz() {
  local name=$1
  mkdir -p "$work/$name"
  local dict=()
  case $name in config | encodings) dict=(-dict=fuzz/json.dict) ;; esac
  local lsan=$LSAN_OPTIONS
  if [ "$name" = state ]; then lsan="suppressions=$supp/lsan_state_fuzzer.supp"; fi
  # New inputs go to $work/$name; the checked-in corpus is only read. Crashes are written to
  # $work/crash-<name>-*, printed below.
  LSAN_OPTIONS=$lsan "$asan_build/fuzz/${name}_fuzzer" "$work/$name" "fuzz/corpus/$name" \
    -max_total_time="$fuzz_seconds" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="$work/crash-$name-" "${dict[@]}" >"$work/$name.log" 2>&1
}
status=0
# Two at a time: one per core.
for pair in "config encodings" "state idx"; do
  pids=()
  for name in $pair; do
    fuzz "$name" &
    pids+=($!)
  done
  i=0
  for name in $pair; do
    if wait "${pids[$i]}"; then
      echo "-- ${name}_fuzzer: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
        "$work/$name.log" | grep -o '[0-9]*$') inputs, no failure"
    else
      status=1
      echo "-- ${name}_fuzzer FAILED; its log:"
      tail -n 80 "$work/$name.log"
      for crash in "$work"/crash-"$name"-*; do
        [ -e "$crash" ] || continue
        echo "-- the input ($(basename "$crash"), base64):"
        head -c 65536 "$crash" | base64
      done
    fi
    i=$((i + 1))
  done
done
echo "fuzzers: $(($(seconds) - start)) s"
exit $status
