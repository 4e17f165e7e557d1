#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/forward_recorder.h>
#include <quantsim/ops.h>

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
#include <thread>

namespace quantsim::nn {

// ---- calibration ------------------------------------------------------------------------------

namespace {

/// Claims `use` for this thread, waiting while another thread holds it: for closing a scope,
/// which must not fail because a misused forward of another thread is finishing.
ExclusiveUse::Claim claim_waiting(ExclusiveUse& use) {
  auto claim = use.try_claim();
  while (claim == ExclusiveUse::Claim::kBusy) {
    std::this_thread::yield();
    claim = use.try_claim();
  }
  return claim;
}

}  // namespace

ModuleCalibrationGuard::ModuleCalibrationGuard(BaseQuantizationMixin* module) : module_(module) {
  const auto scope = module_->calibration_scope_.try_claim();
  if (scope == ExclusiveUse::Claim::kBusy) {
    module_ = nullptr;
    TORCH_CHECK(false, module->description(),
                ": compute_encodings() entered from a second thread while another thread is "
                "inside it; calibration of one module is not thread-safe (docs/simulation.md, "
                "\"Threads\")");
  }
  if (scope == ExclusiveUse::Claim::kNested) {  // the outer scope owns the quantizers
    ++module_->calibration_depth_;
    return;
  }
  ExclusiveUse::Release release_scope(module_->calibration_scope_, true);
  ExclusiveUse::Release release_busy(
      module_->calibration_busy_,
      claim_waiting(module_->calibration_busy_) == ExclusiveUse::Claim::kAcquired);
  uint64_t idle = 0;
  if (!module_->call_state_.compare_exchange_strong(idle, BaseQuantizationMixin::kCalibratingBit,
                                                    std::memory_order_acq_rel)) {
    module_ = nullptr;
    TORCH_CHECK(false, module->description(), ": compute_encodings() entered while ",
                idle & ~BaseQuantizationMixin::kCalibratingBit,
                " forward call(s) of the module are running; calibrate before sharing the "
                "module between threads (docs/simulation.md, \"Threads\")");
  }
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
    module_->call_state_.fetch_and(~BaseQuantizationMixin::kCalibratingBit,
                                   std::memory_order_acq_rel);
    throw;
  }
  module_->calibration_depth_ = 1;
  release_scope.dismiss();  // held until the outermost guard is destroyed
}

ModuleCalibrationGuard::ModuleCalibrationGuard(ModuleCalibrationGuard&& other) noexcept
    : module_(other.module_),
      observed_(std::move(other.observed_)),
      guards_(std::move(other.guards_)) {
  other.module_ = nullptr;
}

ModuleCalibrationGuard::~ModuleCalibrationGuard() noexcept(false) {
  if (!module_) return;
  if (--module_->calibration_depth_ > 0) return;
  // Released last, whatever the quantizer guards throw: the module leaves calibration mode only
  // once its ranges are set.
  ExclusiveUse::Release release_scope(module_->calibration_scope_, true);
  ExclusiveUse::Release release_busy(
      module_->calibration_busy_,
      claim_waiting(module_->calibration_busy_) == ExclusiveUse::Claim::kAcquired);
  struct LeaveCalibration {
    BaseQuantizationMixin* module;
    ~LeaveCalibration() {
      module->observing_.clear();
      module->call_state_.fetch_and(~BaseQuantizationMixin::kCalibratingBit,
                                    std::memory_order_acq_rel);
    }
  } leave{module_};
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

std::vector<std::pair<std::shared_ptr<QuantizerBase>, at::Tensor>>
BaseQuantizationMixin::parameters_to_calibrate(bool overwrite) {
  std::vector<std::pair<std::shared_ptr<QuantizerBase>, at::Tensor>> selected;
  const auto parameters = as_module().named_parameters(/*recurse=*/false);
  for (const auto& key : param_quantizers->keys()) {
    auto quantizer = param_quantizers->at(key);
    if (!quantizer || !quantizer->overwrite_allowed()) continue;
    if (!overwrite && quantizer->is_initialized()) continue;
    const auto* parameter = parameters.find(key);
    if (parameter == nullptr || !parameter->defined()) continue;
    selected.emplace_back(std::move(quantizer), *parameter);
  }
  return selected;
}

bool BaseQuantizationMixin::has_uninitialized_parameter_quantizer() {
  const auto slots = param_quantizers.get();
  for (size_t i = 0; i < slots->size(); ++i) {
    const auto quantizer = slots->at(i);
    if (quantizer && quantizer->overwrite_allowed() && !quantizer->is_initialized()) return true;
  }
  return false;
}

void BaseQuantizationMixin::compute_param_encodings(bool overwrite) {
  for (const auto& [quantizer, parameter] : parameters_to_calibrate(overwrite)) {
    auto calibrating = quantizer->compute_encodings();
    quantizer->observe_only(parameter.detach());
  }
}

bool BaseQuantizationMixin::observing(const QuantizerBase* quantizer) const {
  // Outside calibration observing_ is not read at all: inference threads share nothing mutable.
  if (!is_calibrating()) return false;
  return std::find(observing_.begin(), observing_.end(), quantizer) != observing_.end();
}

std::string BaseQuantizationMixin::description() const {
  std::ostringstream stream;
  as_module().pretty_print(stream);
  return stream.str();
}

// ---- forward helpers --------------------------------------------------------------------------

BaseQuantizationMixin::ForwardScope BaseQuantizationMixin::begin_forward() {
  const auto previous = call_state_.fetch_add(1, std::memory_order_acq_rel);
  if ((previous & kCalibratingBit) == 0) {
    ForwardScope scope(this, ForwardScope::Mode::kInference);
    // Lazy initialization (docs/modules.md §2): checked without a lock, done under one, so that
    // the first calls of several threads initialize each quantizer once.
    if (has_uninitialized_parameter_quantizer() &&
        !parameters_to_calibrate(/*overwrite=*/false).empty()) {
      std::lock_guard<std::mutex> lock(refresh_mutex_);
      compute_param_encodings(/*overwrite=*/false);
    }
    return scope;
  }
  call_state_.fetch_sub(1, std::memory_order_acq_rel);
  const auto claim = calibration_busy_.try_claim();
  TORCH_CHECK(claim != ExclusiveUse::Claim::kBusy, description(),
              ": forward called inside compute_encodings() from a second thread while another "
              "thread is calibrating the module; calibration of one module is not thread-safe "
              "(docs/simulation.md, \"Threads\")");
  ForwardScope scope(this, claim == ExclusiveUse::Claim::kAcquired
                               ? ForwardScope::Mode::kCalibrating
                               : ForwardScope::Mode::kCalibratingNested);
  compute_param_encodings(/*overwrite=*/false);
  return scope;
}

BaseQuantizationMixin::ForwardScope::~ForwardScope() {
  if (!module_) return;
  switch (mode_) {
    case Mode::kInference:
      module_->call_state_.fetch_sub(1, std::memory_order_acq_rel);
      break;
    case Mode::kCalibrating:
      module_->calibration_busy_.release();
      break;
    case Mode::kCalibratingNested:
      break;
  }
}

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

namespace {

/// A tensor a cached quantized parameter depends on. The tensor is held, so that it cannot be
/// freed and its address reused by a new tensor that would pass for it.
struct TensorState {
  at::Tensor tensor;
  const void* data = nullptr;
  int64_t version = 0;
  bool operator==(const TensorState& o) const {
    return tensor.is_same(o.tensor) && data == o.data && version == o.version;
  }
};

/// The parameter and the quantizer's parameters and buffers; `requires_grad` says whether any
/// of them requires a gradient.
std::vector<TensorState> tensor_states(const QuantizerBase& quantizer, const at::Tensor& parameter,
                                       bool* requires_grad) {
  std::vector<TensorState> states;
  auto record = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    states.push_back({t, t.data_ptr(), t._version()});
    *requires_grad = *requires_grad || t.requires_grad();
  };
  record(parameter);
  quantizer.for_each_state_tensor(record);
  return states;
}

bool requires_grad(const QuantizerBase& quantizer, const at::Tensor& parameter) {
  bool any = parameter.requires_grad();
  quantizer.for_each_state_tensor([&](const at::Tensor& t) { any = any || t.requires_grad(); });
  return any;
}

/// tensor_states(quantizer, parameter) == states, without building the vector.
bool same_states(const std::vector<TensorState>& states, const QuantizerBase& quantizer,
                 const at::Tensor& parameter) {
  size_t i = 0;
  bool same = true;
  auto compare = [&](const at::Tensor& t) {
    if (!same || !t.defined()) return;
    same = i < states.size() && states[i].tensor.is_same(t) && states[i].data == t.data_ptr() &&
           states[i].version == t._version();
    ++i;
  };
  compare(parameter);
  quantizer.for_each_state_tensor(compare);
  return same && i == states.size();
}

}  // namespace

struct BaseQuantizationMixin::ParameterCache {
  struct Entry {
    std::string name;
    std::weak_ptr<QuantizerBase> quantizer;
    uint64_t revision = 0;
    std::vector<TensorState> tensors;
    at::Tensor value;
  };
  std::vector<Entry> entries;

  const Entry* find(const std::string& name) const {
    for (const auto& entry : entries) {
      if (entry.name == name) return &entry;
    }
    return nullptr;
  }
};

at::Tensor BaseQuantizationMixin::quantized_parameter(const std::string& name,
                                                      const at::Tensor& parameter) {
  auto quantizer = param_quantizers->at(name);
  if (!quantizer || !parameter.defined() || !quantizer->is_initialized()) return parameter;
  // A trace must record the weight's quantizer node, not a cached result as a constant.
  if (quantizer->is_calibrating() || ops::tracing()) return quantizer->fake_quantize(parameter);
  // Inference calls reuse the quantized weight: re-quantizing a 1024 x 1024 weight on every
  // call costs about a fifth of the matmul it feeds.
  if (at::GradMode::is_enabled() && requires_grad(*quantizer, parameter)) {
    return quantizer->fake_quantize(parameter);
  }
  const uint64_t revision = quantizer->revision();
  if (const auto cache = std::atomic_load(&parameter_cache_)) {
    const auto* cached = cache->find(name);
    if (cached != nullptr && cached->quantizer.lock() == quantizer &&
        cached->revision == revision && same_states(cached->tensors, *quantizer, parameter)) {
      return cached->value;
    }
  }
  bool ignored = false;
  auto states = tensor_states(*quantizer, parameter, &ignored);
  auto value = quantizer->fake_quantize(parameter);
  // Published as a new snapshot: threads still reading the old one keep it alive.
  std::lock_guard<std::mutex> lock(refresh_mutex_);
  const auto current = std::atomic_load(&parameter_cache_);
  auto next =
      current ? std::make_shared<ParameterCache>(*current) : std::make_shared<ParameterCache>();
  ParameterCache::Entry entry{name, quantizer, revision, std::move(states), value};
  bool replaced = false;
  for (auto& existing : next->entries) {
    if (existing.name == name) {
      existing = entry;
      replaced = true;
    }
  }
  if (!replaced) next->entries.push_back(std::move(entry));
  std::atomic_store(&parameter_cache_, std::shared_ptr<const ParameterCache>(std::move(next)));
  return value;
}

// ---- structure --------------------------------------------------------------------------------

std::shared_ptr<QuantizerSlotsImpl> BaseQuantizationMixin::SlotsRef::get() const {
  auto& module = owner_->as_module();
  if (auto found = std::atomic_load(&found_)) {
    // Still registered (under its name: a child is registered once, and replace_module or a
    // clone's assignment swaps the object, which this scan then misses).
    for (const auto& child : module.children()) {
      if (child.get() == found.get()) return found;
    }
  }
  const auto children = module.named_children();
  const auto* child = children.find(name_);
  TORCH_CHECK(child != nullptr, "the module has no ", name_);
  auto found = std::static_pointer_cast<QuantizerSlotsImpl>(*child);
  std::atomic_store(&found_, found);
  return found;
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
