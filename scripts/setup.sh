#!/usr/bin/env bash
# Installs every dependency of quantsim from Debian's registry, and ONNX Runtime from npm's.
# Idempotent: runs `apt-get update` once (only when something is missing), installs only the
# packages that are not there yet, and reinstalls ONNX Runtime only when its pinned version is not
# in the cache folder (see the end of this file).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache clang-format python3
  libtorch-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  # ONNX export: protobuf types and checker (1.12; libtorch already links its libonnx1).
  libonnx-dev
  # The Python package (python/, docs/python.md): pybind11 bindings against Debian's torch for
  # /usr/bin/python3, and pytest for its tests.
  python3-dev pybind11-dev python3-torch python3-pytest
  # Data-parallel calibration/QAT: c10d's ProcessGroupGloo (in libtorch) includes gloo's headers.
  libgloo-dev
  dataset-fashion-mnist
  # scripts/run-sanitizers.sh: clang with its sanitizer runtimes, libFuzzer, OpenMP and the
  # symbolizer that turns the reports' addresses into file:line.
  clang-14 libclang-rt-14-dev libfuzzer-14-dev libomp-14-dev llvm-14
)

# ONNX Runtime is driven by tools/onnxruntime/run_model.js under Node. nodejs and npm come from
# apt only when missing: a host may have them from elsewhere (nodesource's nodejs bundles npm and
# conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime from npm: onnxruntime-node at the exact version tools/onnxruntime/package.json pins
# (its package-lock.json pins the rest), installed with `npm ci --ignore-scripts` into a cache
# folder outside the checkout: the package carries the Linux x64 libonnxruntime.so, and its install
# script only downloads GPU add-ons. docs/onnx.md says why this version.
# Folder: $QUANTSIM_ONNXRUNTIME_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/quantsim/onnxruntime-node-<version>
# (tests/testing/onnxruntime.cpp and the demo look in the same places).
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_manifest_dir="$repo_dir/tools/onnxruntime"
ort_version="$(node -p "require('$ort_manifest_dir/package.json').dependencies['onnxruntime-node']")"
ort_dir="${QUANTSIM_ONNXRUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quantsim/onnxruntime-node-$ort_version}"
ort_package="$ort_dir/node_modules/onnxruntime-node"
installed_version="$(node -p "require('$ort_package/package.json').version" 2>/dev/null || true)"
ort_libraries=("$ort_package"/bin/napi-v*/linux/x64/libonnxruntime.so.1)
if [ "$installed_version" = "$ort_version" ] && [ -f "${ort_libraries[0]}" ]; then
  echo "setup: onnxruntime-node $ort_version present in $ort_dir"
else
  echo "setup: installing onnxruntime-node $ort_version into $ort_dir"
  mkdir -p "$ort_dir"
  cp "$ort_manifest_dir/package.json" "$ort_manifest_dir/package-lock.json" "$ort_dir/"
  (cd "$ort_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  node -e "require('$ort_package')" # fails here, not in a test, if the binding cannot load
fi
