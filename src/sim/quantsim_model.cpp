#include <quantsim/sim/quantsim_model.h>

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/calibration.h>
#include <quantsim/nn/fake_quantization_mixin.h>
#include <quantsim/nn/forward_recorder.h>
#include <quantsim/sim/module_facts.h>

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace quantsim {
namespace {

using nn::BaseQuantizationMixin;

struct SchemeName {
  QuantScheme scheme;
  const char* name;
};
constexpr SchemeName kSchemes[] = {
    {QuantScheme::kPostTrainingTf, "post_training_tf"},
    {QuantScheme::kPostTrainingTfEnhanced, "post_training_tf_enhanced"},
    {QuantScheme::kPostTrainingPercentile, "post_training_percentile"},
    {QuantScheme::kTrainingRangeLearningWithTfInit, "training_range_learning_with_tf_init"},
    {QuantScheme::kTrainingRangeLearningWithTfEnhancedInit,
     "training_range_learning_with_tf_enhanced_init"},
};

bool is_post_training(QuantScheme scheme) {
  return scheme == QuantScheme::kPostTrainingTf || scheme == QuantScheme::kPostTrainingTfEnhanced ||
         scheme == QuantScheme::kPostTrainingPercentile;
}

// Which module wrote each tensor storage last, and what each module read: the dataflow of one
// forward pass between quantized modules. Storage identity follows views (flatten, reshape) and
// in-place ops, which keep the producer's storage.
class DataflowRecorder : public nn::ForwardRecorder {
 public:
  struct Calls {
    std::map<size_t, std::vector<const BaseQuantizationMixin*>> input_producers;
    std::map<size_t, int64_t> output_consumers;
  };

  void on_input(const BaseQuantizationMixin& module, size_t index, const at::Tensor& x) override {
    auto& calls = calls_[&module];
    auto& producers = calls.input_producers[index];
    const BaseQuantizationMixin* producer = nullptr;
    if (x.defined() && x.has_storage()) {
      if (auto it = writers_.find(x.storage().unsafeGetStorageImpl()); it != writers_.end()) {
        producer = it->second.first;
        ++calls_[producer].output_consumers[it->second.second];
      }
    }
    if (std::find(producers.begin(), producers.end(), producer) == producers.end()) {
      producers.push_back(producer);
    }
  }

  void on_output(const BaseQuantizationMixin& module, size_t index, const at::Tensor& y) override {
    calls_[&module].output_consumers.emplace(index, 0);
    if (y.defined() && y.has_storage()) {
      // The storage is kept alive: a freed one's address could be reused by a later tensor that
      // no module wrote.
      writers_[y.storage().unsafeGetStorageImpl()] = {&module, index};
      kept_.push_back(y.storage());
    }
  }

  const Calls* find(const BaseQuantizationMixin* module) const {
    auto it = calls_.find(module);
    return it == calls_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<const c10::StorageImpl*, std::pair<const BaseQuantizationMixin*, size_t>>
      writers_;
  std::map<const BaseQuantizationMixin*, Calls> calls_;
  std::vector<c10::Storage> kept_;
};

// Restores each module's training flag (the recorded pass runs in eval mode so that batch norm
// running statistics are not updated by it).
class EvalScope {
 public:
  explicit EvalScope(torch::nn::Module& model) {
    for (const auto& module : model.modules(/*include_self=*/true)) {
      saved_.emplace_back(module, module->is_training());
    }
    model.eval();
  }
  ~EvalScope() {
    for (auto& [module, training] : saved_) module->train(training);
  }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> saved_;
};

void freeze_range(QuantizerBase& quantizer) {
  for (auto& parameter : quantizer.parameters()) parameter.requires_grad_(false);
}

}  // namespace

QuantScheme quant_scheme_from_string(const std::string& name) {
  for (const auto& entry : kSchemes) {
    if (name == entry.name) return entry.scheme;
  }
  std::string known;
  for (const auto& entry : kSchemes) known += std::string(known.empty() ? "" : ", ") + entry.name;
  QS_THROW(c10::ValueError, "unknown quant scheme \"", name, "\" (expected one of: ", known, ")");
}

std::string to_string(QuantScheme scheme) {
  for (const auto& entry : kSchemes) {
    if (scheme == entry.scheme) return entry.name;
  }
  QS_THROW(c10::ValueError, "invalid QuantScheme value ", static_cast<int>(scheme));
}

QuantizationSimModel::QuantizationSimModel(std::shared_ptr<torch::nn::Module> model,
                                           const std::function<void()>& sample_forward,
                                           SimOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  TORCH_CHECK(model_ != nullptr, "QuantizationSimModel: `model` is null");
  const std::pair<const char*, int64_t> bitwidths[] = {
      {"default_param_bw", options_.default_param_bw()},
      {"default_output_bw", options_.default_output_bw()}};
  for (const auto& [what, bitwidth] : bitwidths) {
    TORCH_CHECK_VALUE(bitwidth >= 1 && bitwidth <= 32, "QuantizationSimModel: `", what,
                      "` must be in [1, 32], got ", bitwidth);
  }
  for (const auto& item : model_->named_modules("", /*include_self=*/true)) {
    auto* module = dynamic_cast<BaseQuantizationMixin*>(item.value().get());
    if (module == nullptr) continue;
    SimModule entry;
    entry.name = item.key();
    // "torch::nn::Conv2dImpl" -> "Conv2d", "quantsim::nn::custom::AddImpl" -> "Add".
    entry.type = nn::detail::module_name_from_type(module->get_original_module()->name());
    entry.module = module;
    modules_.push_back(std::move(entry));
  }
  TORCH_CHECK(!modules_.empty(),
              "QuantizationSimModel: the model has no quantized module; write it with "
              "quantsim::nn::drop_in or convert it with quantsim::nn::convert");
  // A symmetric quantizer needs >= 2 grid steps: 1 bit gives the signed grid [-1, 0], which holds
  // no positive value (the reference calibrates it to NaN). Refused here, before the sample
  // forward, naming the option and the module that would get such a quantizer.
  for (const auto& entry : modules_) {
    const auto& config = options_.config();
    if (options_.default_param_bw() == 1) {
      for (const auto& name : entry.module->param_quantizers->keys()) {
        const ParamConfig param = config.param(entry.type, name);
        TORCH_CHECK_VALUE(!param.is_quantized.value_or(false) || !param.is_symmetric.value_or(true),
                          "QuantizationSimModel: `default_param_bw` 1 is too narrow for the "
                          "symmetric quantizer of parameter \"",
                          name, "\" of module \"", entry.name, "\" (", entry.type,
                          "): a symmetric grid needs bitwidth >= 2; use default_param_bw >= 2 or "
                          "make the parameter asymmetric in the config (is_symmetric false)");
      }
    }
    TORCH_CHECK_VALUE(
        options_.default_output_bw() != 1 || !config.op(entry.type).is_symmetric.value_or(false),
        "QuantizationSimModel: `default_output_bw` 1 is too narrow for the symmetric "
        "activation quantizers of module \"",
        entry.name, "\" (", entry.type,
        "): a symmetric grid needs bitwidth >= 2; use default_output_bw >= 2 or "
        "asymmetric activations");
  }
  record(sample_forward);
  configure();
}

void QuantizationSimModel::record(const std::function<void()>& sample_forward) {
  // The recorded pass runs the float model: quantizers already in the slots would replace the
  // tensors the next module reads (and uninitialized ones would throw). They come back if the
  // pass fails; configure() replaces them otherwise.
  std::vector<nn::QuantizerRemoval> removals;
  for (auto& entry : modules_) removals.push_back(entry.module->remove_all_quantizers());
  DataflowRecorder recorder;
  {
    EvalScope eval(*model_);
    at::NoGradGuard no_grad;
    nn::RecordingScope recording(recorder);
    sample_forward();
  }
  for (auto& removal : removals) removal.dismiss();

  for (auto& entry : modules_) {
    const auto* calls = recorder.find(entry.module);
    entry.called = calls != nullptr;
    entry.producers.assign(entry.module->input_quantizers->size(), {});
    entry.consumers.assign(entry.module->output_quantizers->size(), 0);
    if (calls == nullptr) continue;
    for (const auto& [index, producers] : calls->input_producers) {
      if (index < entry.producers.size()) entry.producers[index] = producers;
    }
    for (const auto& [index, count] : calls->output_consumers) {
      if (index < entry.consumers.size()) entry.consumers[index] = count;
    }
  }
}

void QuantizationSimModel::configure() {
  const auto fused = fused_by_supergroups();
  for (const auto& entry : modules_) {
    configure_activations(entry, fused.count(entry.module) != 0);
    configure_params(entry);
  }
}

std::shared_ptr<QuantizerBase> QuantizationSimModel::make_quantizer(
    std::vector<int64_t> shape, int64_t bitwidth, bool symmetric,
    const c10::optional<std::pair<double, double>>& constraints) const {
  std::shared_ptr<EncodingAnalyzer> analyzer;
  switch (options_.quant_scheme()) {
    case QuantScheme::kPostTrainingPercentile:
      analyzer = std::make_shared<PercentileEncodingAnalyzer>(shape, 2048, options_.percentile());
      break;
    case QuantScheme::kPostTrainingTfEnhanced:
    case QuantScheme::kTrainingRangeLearningWithTfEnhancedInit:
      analyzer = std::make_shared<SqnrEncodingAnalyzer>(shape);
      break;
    default:
      break;  // MinMax, the quantizer's default
  }
  affine::QuantizeDequantize quantizer(
      affine::QuantizerOptions(shape, bitwidth, symmetric).encoding_analyzer(analyzer));
  if (constraints) {
    quantizer->set_range(constraints->first, constraints->second);
    quantizer->allow_overwrite(false);
    freeze_range(*quantizer);
  } else if (is_post_training(options_.quant_scheme())) {
    freeze_range(*quantizer);
  }
  return std::static_pointer_cast<QuantizerBase>(quantizer.ptr());
}

std::set<const BaseQuantizationMixin*> QuantizationSimModel::fused_by_supergroups() const {
  // A chain of ops in which each output feeds only the next op is fused by the runtime, so only
  // the chain's last output is quantized.
  std::map<const BaseQuantizationMixin*, std::vector<const SimModule*>> consumers_of;
  for (const auto& entry : modules_) {
    for (const auto& producers : entry.producers) {
      for (const auto* producer : producers) {
        if (producer != nullptr) consumers_of[producer].push_back(&entry);
      }
    }
  }
  std::set<const BaseQuantizationMixin*> fused;
  for (const auto& group : options_.config().supergroups) {
    for (const auto& first : modules_) {
      if (!first.called || !QuantsimConfig::matches(first.type, group[0])) continue;
      std::vector<const SimModule*> chain = {&first};
      for (size_t i = 1; i < group.size(); ++i) {
        const SimModule* last = chain.back();
        if (last->consumers.size() != 1 || last->consumers[0] != 1) break;
        const auto& next = consumers_of[last->module];
        if (next.size() != 1 || !QuantsimConfig::matches(next[0]->type, group[i])) break;
        chain.push_back(next[0]);
      }
      if (chain.size() != group.size()) continue;
      for (size_t i = 0; i + 1 < chain.size(); ++i) fused.insert(chain[i]->module);
    }
  }
  return fused;
}

void QuantizationSimModel::configure_activations(const SimModule& entry, bool fused) {
  const auto& config = options_.config();
  auto* module = entry.module;
  const OpConfig op = config.op(entry.type);
  const bool symmetric = op.is_symmetric.value_or(false);

  for (size_t i = 0; i < module->output_quantizers->size(); ++i) {
    bool quantized = op.is_output_quantized.value_or(false);
    if (config.model_output_quantized && entry.called && entry.consumers[i] == 0) quantized = true;
    if (fused) quantized = false;
    module->output_quantizers->set(module->output_quantizers->keys()[i],
                                   quantized ? make_quantizer({}, options_.default_output_bw(),
                                                              symmetric, op.encoding_constraints)
                                             : nullptr);
  }

  for (size_t i = 0; i < module->input_quantizers->size(); ++i) {
    bool quantized = op.is_input_quantized.value_or(false);
    if (config.model_input_quantized && entry.called) {
      const auto& producers = entry.producers[i];
      quantized =
          quantized || std::find(producers.begin(), producers.end(), nullptr) != producers.end();
    }
    module->input_quantizers->set(module->input_quantizers->keys()[i],
                                  quantized ? make_quantizer({}, options_.default_output_bw(),
                                                             symmetric, op.encoding_constraints)
                                            : nullptr);
  }
}

void QuantizationSimModel::configure_params(const SimModule& entry) {
  const auto& config = options_.config();
  auto* module = entry.module;
  const bool per_channel = config.op(entry.type).per_channel_quantization.value_or(false);
  const auto parameters = module->as_module().named_parameters(/*recurse=*/false);
  for (const auto& name : module->param_quantizers->keys()) {
    const ParamConfig param = config.param(entry.type, name);
    const at::Tensor* value = parameters.find(name);
    if (!param.is_quantized.value_or(false) || value == nullptr || !value->defined()) {
      module->param_quantizers->set(name, nullptr);
      continue;
    }
    std::vector<int64_t> shape;
    if (per_channel && value->dim() >= 2) {
      // One encoding per output channel: along axis 0, or 1 for a transposed conv's
      // (in, out / groups, k...) weight (docs/simulation.md §3).
      const int64_t axis = weight_channel_axis(entry.type);
      shape.assign(static_cast<size_t>(value->dim()), 1);
      shape[static_cast<size_t>(axis)] = value->size(axis);
    }
    module->param_quantizers->set(
        name, make_quantizer(shape, options_.default_param_bw(), param.is_symmetric.value_or(true),
                             param.encoding_constraints));
  }
}

void QuantizationSimModel::compute_encodings(const std::function<void()>& forward_pass) {
  nn::compute_encodings(*model_, forward_pass);
}

nlohmann::json QuantizationSimModel::quantizer_args() const {
  const auto& config = options_.config();
  return {{"quant_scheme", to_string(options_.quant_scheme())},
          {"param_bitwidth", options_.default_param_bw()},
          {"activation_bitwidth", options_.default_output_bw()},
          {"dtype", "int"},
          {"is_symmetric", config.default_params.is_symmetric.value_or(true)},
          {"per_channel_quantization", config.per_channel_quantization}};
}

void QuantizationSimModel::export_encodings(const std::string& dir, const std::string& prefix,
                                            EncodingVersion version) const {
  quantsim::export_encodings(*model_, dir, prefix,
                             ExportOptions().version(version).quantizer_args(quantizer_args()));
}

void QuantizationSimModel::load_encodings(const std::string& path, const LoadOptions& options) {
  quantsim::load_encodings(*model_, path, options);
}

void QuantizationSimModel::save(const std::string& path) const { save_state(*model_, path); }

void QuantizationSimModel::load(const std::string& path) { load_state(*model_, path); }

}  // namespace quantsim
