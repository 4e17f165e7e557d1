#pragma once

/// ONNX Runtime for the tests: runs a .onnx file in npm's onnxruntime-node through
/// tools/onnxruntime/run_model.js in a Node process, and reads the outputs back as tensors.
///
/// Where things are found (each overridable for a host laid out differently):
/// - node: $QUANTSIM_NODE, else `node` on PATH;
/// - ONNX Runtime: $QUANTSIM_ONNXRUNTIME_DIR (a folder holding node_modules/onnxruntime-node),
///   else ${XDG_CACHE_HOME:-~/.cache}/quantsim/onnxruntime-node-<pinned version>, the folder
///   scripts/setup.sh installs into;
/// - the script: the checkout's tools/onnxruntime/run_model.js.
///
/// A test that needs the runtime starts with QS_REQUIRE_ONNXRUNTIME(): on a CI host (CI=true) a
/// missing runtime fails the test, elsewhere it skips it with the reason. The runner itself needs
/// no GoogleTest (the macro expands in test files, which include it): a program such as the demo
/// can compile onnxruntime.cpp with the two definitions tests/CMakeLists.txt gives it.
///
///     QS_REQUIRE_ONNXRUNTIME();
///     auto outputs = run_in_onnxruntime(path, {{"x", x}}, OrtOptimization::kDisabled);

#include <ATen/ATen.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace quantsim::testing {

/// ONNX Runtime's graph optimization level (SessionOptions.graphOptimizationLevel).
enum class OrtOptimization {
  kDisabled,  ///< runs every node as written: the QDQ graph's float arithmetic
  kAll,       ///< every fusion, QDQ pairs into the integer kernels included
};

/// Named input tensors of one run.
using OrtInputs = std::vector<std::pair<std::string, at::Tensor>>;

/// Empty when ONNX Runtime can run here; otherwise why not (what is missing, and where it was
/// looked for).
std::string onnxruntime_unavailable_reason();

/// True when node and onnxruntime-node are found (checked once per process).
bool onnxruntime_available();

/// Runs the model at `model_path` once on `inputs` (contiguous CPU tensors of dtype float32,
/// float64, int64, int32, int8, uint8 or bool) and returns its outputs in the model's output order.
/// Throws c10::Error with the runtime's message when it fails.
std::vector<at::Tensor> run_in_onnxruntime(const std::string& model_path, const OrtInputs& inputs,
                                           OrtOptimization level = OrtOptimization::kDisabled);

/// Runs the model once per element of `runs` in one Node process and one ONNX Runtime session
/// (loading Node and the model cost ~0.3 s; a run of a small model, microseconds): the outputs of
/// each run, in order.
std::vector<std::vector<at::Tensor>> run_in_onnxruntime(const std::string& model_path,
                                                        const std::vector<OrtInputs>& runs,
                                                        OrtOptimization level);

}  // namespace quantsim::testing

/// Skips the test (fails it when the environment says CI=true) unless ONNX Runtime is available.
#define QS_REQUIRE_ONNXRUNTIME()                                                             \
  do {                                                                                       \
    const std::string qs_ort_reason = ::quantsim::testing::onnxruntime_unavailable_reason(); \
    if (!qs_ort_reason.empty()) {                                                            \
      const char* qs_ci = std::getenv("CI");                                                 \
      if (qs_ci != nullptr && std::string(qs_ci) == "true") {                                \
        FAIL() << "ONNX Runtime is required on CI: " << qs_ort_reason;                       \
      }                                                                                      \
      GTEST_SKIP() << "ONNX Runtime not available: " << qs_ort_reason;                       \
    }                                                                                        \
  } while (false)
