#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/forward_recorder.h>

#include "nn/destroy_guards.h"

#include <ATen/core/grad_mode.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <sstream>

namespace quantsim::nn {

// ---- calibration ------------------------------------------------------------------------------

ModuleCalibrationGuard::ModuleCalibrationGuard(BaseQuantizationMixin* module) : module_(module) {
  if (module_->calibrating_++ > 0) return;  // re-entrant: the outer scope owns the quantizers
  try {
    module_->compute_param_encodings(/*overwrite=*/true);
    for (auto* slots : {&module_->input_quantizers, &module_->output_quantizers}) {
      for (auto& quantizer : (*slots)->unique_quantizers()) {
        if (!quantizer->overwrite_allowed()) continue;  // frozen: quantizes as usual
        if (std::find(observed_.begin(), observed_.end(), quantizer) != observed_.end()) continue;
        observed_.push_back(quantizer);
        guards_.push_back(quantizer->compute_encodings());
        module_->observing_.push_back(quantizer.get());
      }
    }
  } catch (...) {
    module_->observing_.clear();
    --module_->calibrating_;
    throw;
  }
}

ModuleCalibrationGuard::ModuleCalibrationGuard(ModuleCalibrationGuard&& other) noexcept
    : module_(other.module_),
      observed_(std::move(other.observed_)),
      guards_(std::move(other.guards_)) {
  other.module_ = nullptr;
}

ModuleCalibrationGuard::~ModuleCalibrationGuard() noexcept(false) {
  if (!module_) return;
  if (--module_->calibrating_ > 0) return;
  module_->observing_.clear();
  // Each quantizer guard sets its range on a normal exit and nothing while unwinding; one that
  // fails must not keep the others from finishing.
  destroy_guards(guards_);
}

ModuleCalibrationGuard BaseQuantizationMixin::compute_encodings() {
  return ModuleCalibrationGuard(this);
}

void BaseQuantizationMixin::compute_encodings(const std::function<void()>& run) {
  auto calibrating = compute_encodings();
  run();
}

void BaseQuantizationMixin::compute_param_encodings(bool overwrite) {
  auto& self = as_module();
  const auto parameters = self.named_parameters(/*recurse=*/false);
  for (const auto& key : param_quantizers->keys()) {
    auto quantizer = param_quantizers->at(key);
    if (!quantizer || !quantizer->overwrite_allowed()) continue;
    if (!overwrite && quantizer->is_initialized()) continue;
    const auto* parameter = parameters.find(key);
    if (parameter == nullptr || !parameter->defined()) continue;
    auto calibrating = quantizer->compute_encodings();
    quantizer->observe_only(parameter->detach());
  }
}

bool BaseQuantizationMixin::observing(const QuantizerBase* quantizer) const {
  return std::find(observing_.begin(), observing_.end(), quantizer) != observing_.end();
}

// ---- forward helpers --------------------------------------------------------------------------

at::Tensor BaseQuantizationMixin::apply(QuantizerBase* quantizer, bool observe,
                                        const at::Tensor& x) {
  if (quantizer == nullptr || !x.defined() || !x.is_floating_point()) return x;
  if (observe) {
    quantizer->observe_only(x.detach());
    return x;
  }
  return quantizer->fake_quantize(x);
}

at::Tensor BaseQuantizationMixin::quantize_input(size_t index, const at::Tensor& x) {
  if (auto* recorder = RecordingScope::active()) recorder->on_input(*this, index, x);
  auto quantizer = input_quantizers->at(index);
  return apply(quantizer.get(), observing(quantizer.get()), x);
}

at::Tensor BaseQuantizationMixin::quantize_output(size_t index, const at::Tensor& y) {
  if (auto* recorder = RecordingScope::active()) recorder->on_output(*this, index, y);
  auto quantizer = output_quantizers->at(index);
  return apply(quantizer.get(), observing(quantizer.get()), y);
}

std::vector<BaseQuantizationMixin::TensorState> BaseQuantizationMixin::tensor_states(
    const QuantizerBase& quantizer, const at::Tensor& parameter, bool* requires_grad) {
  std::vector<TensorState> states;
  auto record = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    states.push_back({t, t.data_ptr(), t._version()});
    *requires_grad = *requires_grad || t.requires_grad();
  };
  record(parameter);
  for (const auto& t : quantizer.parameters()) record(t);
  for (const auto& t : quantizer.buffers()) record(t);
  return states;
}

at::Tensor BaseQuantizationMixin::quantized_parameter(const std::string& name,
                                                      const at::Tensor& parameter) {
  auto quantizer = param_quantizers->at(name);
  if (!quantizer || !parameter.defined() || !quantizer->is_initialized()) return parameter;
  if (quantizer->is_calibrating()) return quantizer->fake_quantize(parameter);
  // Inference calls reuse the quantized weight: re-quantizing a 1024 x 1024 weight on every
  // call costs about a fifth of the matmul it feeds.
  bool requires_grad = false;
  auto states = tensor_states(*quantizer, parameter, &requires_grad);
  if (at::GradMode::is_enabled() && requires_grad) return quantizer->fake_quantize(parameter);
  auto cached = std::find_if(parameter_cache_.begin(), parameter_cache_.end(),
                             [&](const CachedParameter& c) { return c.name == name; });
  if (cached != parameter_cache_.end() && cached->quantizer.lock() == quantizer &&
      cached->revision == quantizer->revision() && cached->tensors == states) {
    return cached->value;
  }
  auto value = quantizer->fake_quantize(parameter);
  if (cached == parameter_cache_.end()) {
    parameter_cache_.push_back({name, {}, 0, {}, {}});
    cached = parameter_cache_.end() - 1;
  }
  *cached = {name, quantizer, quantizer->revision(), std::move(states), value};
  return value;
}

// ---- structure --------------------------------------------------------------------------------

std::shared_ptr<QuantizerSlotsImpl> BaseQuantizationMixin::SlotsRef::get() const {
  const auto children = owner_->as_module().named_children();
  const auto* child = children.find(name_);
  TORCH_CHECK(child != nullptr, "the module has no ", name_);
  return std::static_pointer_cast<QuantizerSlotsImpl>(*child);
}

void BaseQuantizationMixin::init_quantizers(torch::nn::Module& self, size_t num_inputs,
                                            size_t num_outputs) {
  auto indices = [](size_t n) {
    std::vector<std::string> keys;
    for (size_t i = 0; i < n; ++i) keys.push_back(std::to_string(i));
    return keys;
  };
  std::vector<std::string> parameter_names;
  for (const auto& parameter : self.named_parameters(/*recurse=*/false)) {
    parameter_names.push_back(parameter.key());
  }
  self.register_module("input_quantizers", QuantizerSlots("input_quantizers", indices(num_inputs)));
  self.register_module("output_quantizers",
                       QuantizerSlots("output_quantizers", indices(num_outputs)));
  self.register_module("param_quantizers",
                       QuantizerSlots("param_quantizers", std::move(parameter_names)));
  // A module converted from an eval-mode float module starts in eval mode, containers included.
  for (const char* name : {"input_quantizers", "output_quantizers", "param_quantizers"}) {
    self.named_children()[name]->train(self.is_training());
  }
}

void BaseQuantizationMixin::print_renamed(std::ostream& stream, std::string printed,
                                          const std::string& name,
                                          const std::string& quantized_name) {
  // The float module prints `torch::nn::Linear(in_features=5, ...)`: keep its namespace and
  // arguments, rename the class.
  auto at = printed.find(name + "(");
  if (at == std::string::npos && printed.size() >= name.size() &&
      printed.compare(printed.size() - name.size(), name.size(), name) == 0) {
    at = printed.size() - name.size();
  }
  if (at == std::string::npos) {
    stream << quantized_name;
    return;
  }
  auto begin = at;
  while (begin > 0 && (std::isalnum(static_cast<unsigned char>(printed[begin - 1])) ||
                       printed[begin - 1] == '_' || printed[begin - 1] == ':')) {
    --begin;
  }
  auto qualifier = printed.substr(begin, at - begin);
  if (qualifier.rfind("torch::nn::", 0) == 0) qualifier.replace(0, 11, "quantsim::nn::");
  printed.replace(begin, at - begin + name.size(), qualifier + quantized_name);
  stream << printed;
}

void BaseQuantizationMixin::clone_quantizers_into(
    BaseQuantizationMixin& copy, const c10::optional<torch::Device>& device) const {
  std::map<const QuantizerBase*, std::shared_ptr<QuantizerBase>> clones;
  auto* self = const_cast<BaseQuantizationMixin*>(this);
  for (auto* slots : {&self->input_quantizers, &self->output_quantizers, &self->param_quantizers}) {
    auto& target =
        copy.*(slots == &self->input_quantizers    ? &BaseQuantizationMixin::input_quantizers
               : slots == &self->output_quantizers ? &BaseQuantizationMixin::output_quantizers
                                                   : &BaseQuantizationMixin::param_quantizers);
    for (const auto& key : (*slots)->keys()) {
      auto quantizer = (*slots)->at(key);
      if (!quantizer) continue;
      auto& clone = clones[quantizer.get()];
      if (!clone) {
        clone = std::dynamic_pointer_cast<QuantizerBase>(quantizer->clone(device));
        TORCH_CHECK(clone != nullptr, "cloning the quantizer in ", slots->name(), "[", key,
                    "] did not give a quantizer");
      }
      if (target->contains(key)) target->set(key, clone);
    }
  }
}

// ---- removal ----------------------------------------------------------------------------------

void QuantizerRemoval::remove(const std::shared_ptr<QuantizerSlotsImpl>& slots,
                              const std::string& key) {
  auto quantizer = slots->at(key);
  if (!quantizer) return;
  removed_.push_back({slots, key, quantizer});
  slots->set(key, nullptr);
}

void QuantizerRemoval::restore() {
  for (auto it = removed_.rbegin(); it != removed_.rend(); ++it)
    it->slots->set(it->key, it->quantizer);
  removed_.clear();
}

namespace {
void remove_indices(QuantizerRemoval& removal, const std::shared_ptr<QuantizerSlotsImpl>& slots,
                    const std::vector<int64_t>& indices) {
  if (indices.empty()) {
    for (const auto& key : slots->keys()) removal.remove(slots, key);
    return;
  }
  for (const auto index : indices) removal.remove(slots, (*slots)[index].key());
}
}  // namespace

QuantizerRemoval BaseQuantizationMixin::remove_input_quantizers(std::vector<int64_t> indices) {
  QuantizerRemoval removal;
  remove_indices(removal, input_quantizers.get(), indices);
  return removal;
}

QuantizerRemoval BaseQuantizationMixin::remove_output_quantizers(std::vector<int64_t> indices) {
  QuantizerRemoval removal;
  remove_indices(removal, output_quantizers.get(), indices);
  return removal;
}

QuantizerRemoval BaseQuantizationMixin::remove_param_quantizers(std::vector<std::string> names) {
  QuantizerRemoval removal;
  auto slots = param_quantizers.get();
  for (const auto& name : names.empty() ? slots->keys() : names) {
    removal.remove(slots, (*slots)[name].key());
  }
  return removal;
}

QuantizerRemoval BaseQuantizationMixin::remove_activation_quantizers() {
  QuantizerRemoval removal;
  remove_indices(removal, input_quantizers.get(), {});
  remove_indices(removal, output_quantizers.get(), {});
  return removal;
}

QuantizerRemoval BaseQuantizationMixin::remove_all_quantizers() {
  QuantizerRemoval removal;
  remove_indices(removal, input_quantizers.get(), {});
  remove_indices(removal, output_quantizers.get(), {});
  auto params = param_quantizers.get();
  for (const auto& name : params->keys()) removal.remove(params, name);
  return removal;
}

// ---- encodings --------------------------------------------------------------------------------

namespace {
std::vector<c10::optional<nlohmann::json>> export_slots(const QuantizerSlotsImpl& slots) {
  std::vector<c10::optional<nlohmann::json>> encodings;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto quantizer = slots.at(i);
    encodings.push_back(quantizer ? quantizer->get_legacy_encodings() : c10::nullopt);
  }
  return encodings;
}
}  // namespace

std::vector<c10::optional<nlohmann::json>> BaseQuantizationMixin::export_input_encodings() const {
  return export_slots(*input_quantizers);
}

std::vector<c10::optional<nlohmann::json>> BaseQuantizationMixin::export_output_encodings() const {
  return export_slots(*output_quantizers);
}

std::map<std::string, c10::optional<nlohmann::json>> BaseQuantizationMixin::export_param_encodings()
    const {
  std::map<std::string, c10::optional<nlohmann::json>> encodings;
  for (const auto& key : param_quantizers->keys()) {
    auto quantizer = param_quantizers->at(key);
    encodings[key] = quantizer ? quantizer->get_legacy_encodings() : c10::nullopt;
  }
  return encodings;
}

void BaseQuantizationMixin::import_encodings(QuantizerSlotsImpl& slots,
                                             const nlohmann::json& encodings,
                                             const ImportOptions& options) {
  TORCH_CHECK_VALUE(encodings.is_object(), "encodings for ", slots.kind(),
                    " must be a JSON object keyed by slot, got ", encodings.dump());
  for (const auto& entry : encodings.items()) {
    TORCH_CHECK_INDEX(slots.contains(entry.key()), "encodings name slot \"", entry.key(),
                      "\", which the module does not have");
  }
  // Validate every entry before changing any quantizer: a bad file changes nothing.
  for (const auto& key : slots.keys()) {
    auto quantizer = slots.at(key);
    if (quantizer && !quantizer->overwrite_allowed()) continue;
    if (!encodings.contains(key) || encodings.at(key).is_null()) continue;
    TORCH_CHECK(quantizer || !options.strict(), "encodings given for the empty slot \"", key,
                "\" (strict import)");
    const auto& entry = encodings.at(key);
    TORCH_CHECK_VALUE(entry.is_object() || entry.is_array(), "encodings[\"", key,
                      "\"] must be a dict or a list of dicts, got ", entry.dump());
  }
  for (const auto& key : slots.keys()) {
    auto quantizer = slots.at(key);
    if (quantizer && !quantizer->overwrite_allowed()) continue;
    if (!encodings.contains(key) || encodings.at(key).is_null()) {
      if (!options.partial()) slots.set(key, nullptr);
      continue;
    }
    if (!quantizer) continue;
    const auto& entry = encodings.at(key);
    quantizer->set_legacy_encodings(entry.is_array() ? entry : nlohmann::json::array({entry}));
    if (options.requires_grad()) {
      for (auto& parameter : quantizer->parameters()) {
        parameter.requires_grad_(*options.requires_grad());
      }
    }
    if (options.allow_overwrite()) quantizer->allow_overwrite(*options.allow_overwrite());
  }
}

void BaseQuantizationMixin::import_input_encodings(const nlohmann::json& encodings,
                                                   const ImportOptions& options) {
  import_encodings(*input_quantizers, encodings, options);
}

void BaseQuantizationMixin::import_output_encodings(const nlohmann::json& encodings,
                                                    const ImportOptions& options) {
  import_encodings(*output_quantizers, encodings, options);
}

void BaseQuantizationMixin::import_param_encodings(const nlohmann::json& encodings,
                                                   const ImportOptions& options) {
  import_encodings(*param_quantizers, encodings, options);
}

}  // namespace quantsim::nn
