#include <quantsim/nn/calibration.h>

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
  std::exception_ptr first_error;
  while (!guards_.empty()) {
    try {
      guards_.pop_back();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error && std::uncaught_exceptions() == 0) std::rethrow_exception(first_error);
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
