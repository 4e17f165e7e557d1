#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds quantsim and runs the main job: the Fashion-MNIST
# quantization study (`quantsim demo`: float training, W8A8/W4A8 post-training quantization with
# each analyzer, W4A8 quantization-aware training; table on stdout, report in ./quantsim-demo).
# Usage: scripts/run-main.sh [demo options, e.g. --quick or --out DIR; see `quantsim demo --help`]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build

bash scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTSIM_BUILD_APPS=ON >/dev/null
cmake --build "$build" --target quantsim_cli
"$build/apps/quantsim" demo "$@"
