#!/usr/bin/env bash
# Installs every dependency of quantsim from Debian's registry. Idempotent: runs `apt-get update`
# once (only when something is missing) and installs only the packages that are not there yet.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache clang-format python3
  libtorch-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  dataset-fashion-mnist
  # scripts/run-sanitizers.sh: clang with its sanitizer runtimes, libFuzzer, OpenMP and the
  # symbolizer that turns the reports' addresses into file:line.
  clang-14 libclang-rt-14-dev libfuzzer-14-dev libomp-14-dev llvm-14
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
