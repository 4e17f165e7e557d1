#pragma once

/// Model-level calibration: every quantized module of a model at once (docs/modules.md §3; the
/// reference's `aimet_torch.v2.nn.compute_encodings(model)` and `compute_param_encodings(model)`).

#include <quantsim/nn/base_quantization_mixin.h>

#include <c10/util/intrusive_ptr.h>
#include <torch/nn/module.h>

#include <functional>
#include <vector>

namespace c10d {
class ProcessGroup;
}  // namespace c10d

namespace quantsim::nn {

/// RAII scope holding one ModuleCalibrationGuard per quantized module of a model; the modules'
/// ranges are set, in reverse order of entry, when it is destroyed normally.
class ModelCalibrationGuard {
 public:
  explicit ModelCalibrationGuard(torch::nn::Module& model);
  ModelCalibrationGuard(ModelCalibrationGuard&&) noexcept = default;
  ~ModelCalibrationGuard() noexcept(false);

 private:
  std::vector<ModuleCalibrationGuard> guards_;
};

/// Enters compute_encodings() of every quantized module in `model` (the model included):
///
///     {
///       auto calibrating = qs::nn::compute_encodings(*model);
///       for (auto& x : data) model->forward(x);
///     }
[[nodiscard]] ModelCalibrationGuard compute_encodings(torch::nn::Module& model);
/// The same around `run`.
void compute_encodings(torch::nn::Module& model, const std::function<void()>& run);
/// Data-parallel: the same around `run` on every rank of `process_group`, with the statistics
/// merged across ranks before the ranges are set, so that every rank ends with the same
/// encodings (quantsim::distributed::compute_encodings, <quantsim/distributed.h>,
/// docs/distributed.md).
void compute_encodings(torch::nn::Module& model, const std::function<void()>& run,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& process_group);
/// Calibrates the parameter quantizers of every quantized module in `model` on their parameters.
void compute_param_encodings(torch::nn::Module& model);

}  // namespace quantsim::nn
