#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds quantsim with its tests, checks formatting and
# runs the whole test suite with ctest. Usage: scripts/run-tests.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

bash scripts/setup.sh

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "== format check (.clang-format)"
  git ls-files -z '*.h' '*.cpp' | xargs -0 clang-format --dry-run --Werror
fi

echo "== configure and build ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTSIM_BUILD_TESTS=ON -DQUANTSIM_BUILD_BENCHMARKS=ON
cmake --build "$build"

echo "== tests"
ctest --test-dir "$build" --output-on-failure -j 2
