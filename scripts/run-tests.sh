#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds quantsim with its tests, checks formatting and
# that the generated files are what tools/module_table.py generates, runs the whole test suite
# with ctest, then the main job in its short mode (`quantsim demo --quick`), then the sanitizer
# and fuzzing jobs (scripts/run-sanitizers.sh).
# Usage: scripts/run-tests.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

bash scripts/setup.sh

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "== format check (.clang-format)"
  git ls-files -z '*.h' '*.cpp' | xargs -0 clang-format --dry-run --Werror
fi

# /usr/bin/python3: the system's, whatever python3 comes first on PATH.
echo "== generated files match tools/module_table.py's table"
/usr/bin/python3 tools/module_table.py --check

echo "== configure and build ($build)"
# Benchmarks are built where they are run (`-DQUANTSIM_BUILD_BENCHMARKS=ON`, docs/benchmarks.md),
# not here: they would add their compile time to every test run.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTSIM_BUILD_TESTS=ON \
  -DQUANTSIM_BUILD_BENCHMARKS=OFF -DQUANTSIM_BUILD_APPS=ON
cmake --build "$build"

echo "== tests"
ctest --test-dir "$build" --output-on-failure -j 2

echo "== the main job in its short mode (quantsim demo --quick)"
demo_out=$(mktemp -d)
trap 'rm -rf "$demo_out"' EXIT
"$build/apps/quantsim" demo --quick --out "$demo_out"
for file in report.json report.html w8a8.encodings w8a8_torch.encodings w4a8.encodings \
  w4a8_torch.encodings; do
  test -s "$demo_out/$file" || { echo "demo did not write $file" >&2; exit 1; }
done

# Data-parallel on two local ranks (docs/distributed.md §7), reusing the float checkpoint: every
# configuration within 1 point of the single-process run, world_size in the report.
echo "== the main job on 2 local ranks (quantsim demo --quick --nproc 2)"
mv "$demo_out/report.json" "$demo_out/report-1-rank.json"
"$build/apps/quantsim" demo --quick --nproc 2 --out "$demo_out"
python3 - "$demo_out/report-1-rank.json" "$demo_out/report.json" <<'EOF'
import json, sys
one, two = (json.load(open(path)) for path in sys.argv[1:])
assert two["settings"]["world_size"] == 2, "the --nproc 2 report does not say world_size 2"
accuracy = lambda report: {(r["scheme"], r["analyzer"]): r["accuracy"] for r in report["results"]}
single, ranks = accuracy(one), accuracy(two)
for key, value in single.items():
    if abs(ranks[key] - value) > 1.0:
        sys.exit(f"--nproc 2: {' '.join(key)} {ranks[key]:.2f}% vs {value:.2f}% on one rank")
print("--nproc 2: every configuration within 1 pt of the single-process run")
EOF

# ThreadSanitizer on the concurrency tests, AddressSanitizer + UndefinedBehaviorSanitizer on a
# subset of the tests, and each libFuzzer target for 30 s, in "$build-tsan" and "$build-asan".
echo "== sanitizers and fuzzers (scripts/run-sanitizers.sh)"
bash scripts/run-sanitizers.sh "$build"
