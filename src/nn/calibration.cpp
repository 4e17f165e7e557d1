#include <quantsim/nn/calibration.h>

#include "nn/destroy_guards.h"

#include <exception>

namespace quantsim::nn {
namespace {

std::vector<BaseQuantizationMixin*> quantized_modules(torch::nn::Module& model) {
  std::vector<BaseQuantizationMixin*> found;
  for (const auto& module : model.modules(/*include_self=*/true)) {
    if (auto* mixin = dynamic_cast<BaseQuantizationMixin*>(module.get())) found.push_back(mixin);
  }
  return found;
}

}  // namespace

ModelCalibrationGuard::ModelCalibrationGuard(torch::nn::Module& model) {
  for (auto* module : quantized_modules(model)) guards_.push_back(module->compute_encodings());
}

ModelCalibrationGuard::~ModelCalibrationGuard() noexcept(false) {
  // Every module finishes even when one fails to set its range; the first failure is rethrown.
  destroy_guards(guards_);
}

ModelCalibrationGuard compute_encodings(torch::nn::Module& model) {
  return ModelCalibrationGuard(model);
}

void compute_encodings(torch::nn::Module& model, const std::function<void()>& run) {
  auto calibrating = compute_encodings(model);
  run();
}

void compute_param_encodings(torch::nn::Module& model) {
  for (auto* module : quantized_modules(model)) module->compute_param_encodings();
}

}  // namespace quantsim::nn
