#include <quantsim/sim/quantsim_model.h>

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/calibration.h>
#include <quantsim/nn/fake_quantization_mixin.h>
#include <quantsim/nn/forward_recorder.h>
#include <quantsim/onnx/encodings.h>
#include <quantsim/onnx/export.h>
#include <quantsim/sim/atomic_file.h>
#include <quantsim/sim/module_facts.h>

#include "sim/json_reading.h"

#include <ATen/core/grad_mode.h>
#include <c10/util/Optional.h>
#include <torch/nn/modules/conv.h>

#include <algorithm>
#include <filesystem>
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
    /// The tensor id each slot saw first (tensor_id()).
    std::map<size_t, int64_t> input_tensors;
    std::map<size_t, int64_t> output_tensors;
  };

  void on_input(const BaseQuantizationMixin& module, size_t index, const at::Tensor& x) override {
    auto& calls = calls_[&module];
    calls.input_tensors.emplace(index, tensor_id(x));
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
    calls_[&module].output_tensors.emplace(index, tensor_id(y));
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
  // One id per tensor object and version: a view is another tensor, and so is the result of an
  // in-place op (the exported graph names both anew). The tensor is kept alive so that its
  // address is not reused by another one during the pass.
  int64_t tensor_id(const at::Tensor& x) {
    if (!x.defined()) return -1;
    const int64_t version = x.is_inference() ? 0 : static_cast<int64_t>(x._version());
    const auto key = std::make_pair(x.unsafeGetTensorImpl(), version);
    auto [it, inserted] = tensor_ids_.emplace(key, static_cast<int64_t>(tensor_ids_.size()));
    if (inserted) kept_tensors_.push_back(x);
    return it->second;
  }

  std::unordered_map<const c10::StorageImpl*, std::pair<const BaseQuantizationMixin*, size_t>>
      writers_;
  std::map<const BaseQuantizationMixin*, Calls> calls_;
  std::vector<c10::Storage> kept_;
  std::map<std::pair<const c10::TensorImpl*, int64_t>, int64_t> tensor_ids_;
  std::vector<at::Tensor> kept_tensors_;
};

// The module classes whose output the reference folds a following batch norm into, by
// connected-graph op type: Conv (Conv1d, Conv2d), ConvTranspose (ConvTranspose2d) and Gemm
// (Linear); Conv3d, ConvTranspose1d/3d keep their class names there and match no pattern
// (docs/quantization.md §11.1).
bool folds_batch_norm(const SimModule& conv) {
  if (conv.type == "Conv1d" || conv.type == "Conv2d" || conv.type == "Linear") return true;
  if (conv.type != "ConvTranspose2d") return false;
  // A grouped transposed conv is not foldable.
  const auto* deconv =
      dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(&conv.module->as_module());
  return deconv != nullptr && deconv->options.groups() == 1;
}

// The batch-norm classes of the connected-graph type BatchNormalization.
bool is_foldable_batch_norm_type(const std::string& type) {
  return type == "BatchNorm1d" || type == "BatchNorm2d";
}

bool feeds_exactly_one_module(const SimModule& entry) {
  return entry.consumers.size() == 1 && entry.consumers[0] == 1;
}

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
        TORCH_CHECK_VALUE(
            !param.is_quantized.value_or(false) || !param.is_symmetric.value_or(false),
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
    entry.input_tensors.assign(entry.module->input_quantizers->size(), -1);
    entry.output_tensors.assign(entry.module->output_quantizers->size(), -1);
    if (calls == nullptr) continue;
    for (const auto& [index, producers] : calls->input_producers) {
      if (index < entry.producers.size()) entry.producers[index] = producers;
    }
    for (const auto& [index, count] : calls->output_consumers) {
      if (index < entry.consumers.size()) entry.consumers[index] = count;
    }
    for (const auto& [index, id] : calls->input_tensors) {
      if (index < entry.input_tensors.size()) entry.input_tensors[index] = id;
    }
    for (const auto& [index, id] : calls->output_tensors) {
      if (index < entry.output_tensors.size()) entry.output_tensors[index] = id;
    }
  }
}

void QuantizationSimModel::configure() {
  const auto plans = plan_slots();
  for (size_t i = 0; i < modules_.size(); ++i) {
    configure_activations(modules_[i], plans[i]);
    configure_params(modules_[i], plans[i]);
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

std::map<size_t, size_t> QuantizationSimModel::foldable_batch_norms() const {
  std::map<const BaseQuantizationMixin*, size_t> index_of;
  for (size_t i = 0; i < modules_.size(); ++i) index_of[modules_[i].module] = i;
  std::map<size_t, size_t> folds;
  for (size_t b = 0; b < modules_.size(); ++b) {
    const auto& bn = modules_[b];
    if (!bn.called || !is_foldable_batch_norm_type(bn.type) || bn.producers.empty()) continue;
    const auto& producers = bn.producers[0];
    if (producers.size() != 1 || producers[0] == nullptr) continue;
    const size_t c = index_of.at(producers[0]);
    const auto& conv = modules_[c];
    // The batch norm reads the conv's output itself (not a view of it), and nothing else does.
    if (!folds_batch_norm(conv) || !feeds_exactly_one_module(conv) || conv.output_tensors.empty() ||
        conv.output_tensors[0] < 0 || conv.output_tensors[0] != bn.input_tensors[0]) {
      continue;
    }
    folds[b] = c;
  }
  return folds;
}

std::vector<std::vector<size_t>> QuantizationSimModel::supergroup_chains(
    const std::map<size_t, size_t>& folds) const {
  std::map<const BaseQuantizationMixin*, size_t> index_of;
  for (size_t i = 0; i < modules_.size(); ++i) index_of[modules_[i].module] = i;
  std::map<size_t, std::vector<size_t>> consumers_of;
  for (size_t i = 0; i < modules_.size(); ++i) {
    for (const auto& producers : modules_[i].producers) {
      for (const auto* producer : producers) {
        if (producer != nullptr) consumers_of[index_of.at(producer)].push_back(i);
      }
    }
  }
  // The op after `i` in a chain: its output feeds one module only (a runtime cannot fuse a
  // tensor that is also read elsewhere). A folded batch norm is looked through, as the reference
  // leaves it out of the op sequence its patterns are matched on.
  const auto next = [&](size_t i) -> c10::optional<size_t> {
    for (int skipped = 0; skipped < 2; ++skipped) {
      if (!feeds_exactly_one_module(modules_[i])) return c10::nullopt;
      const auto it = consumers_of.find(i);
      if (it == consumers_of.end() || it->second.size() != 1) return c10::nullopt;
      i = it->second[0];
      if (folds.count(i) == 0) return i;
    }
    return c10::nullopt;
  };
  std::vector<std::vector<size_t>> chains;
  for (const auto& group : options_.config().supergroups) {
    for (size_t first = 0; first < modules_.size(); ++first) {
      if (!modules_[first].called || folds.count(first) != 0 ||
          !QuantsimConfig::matches(modules_[first].type, group[0])) {
        continue;
      }
      std::vector<size_t> chain = {first};
      for (size_t k = 1; k < group.size(); ++k) {
        const auto following = next(chain.back());
        if (!following || !QuantsimConfig::matches(modules_[*following].type, group[k])) break;
        chain.push_back(*following);
      }
      if (chain.size() == group.size()) chains.push_back(std::move(chain));
    }
  }
  return chains;
}

std::vector<QuantizationSimModel::SlotPlan> QuantizationSimModel::plan_slots() const {
  const auto& config = options_.config();
  std::vector<SlotPlan> plans(modules_.size());
  // 1. defaults and op types.
  for (size_t i = 0; i < modules_.size(); ++i) {
    const auto* module = modules_[i].module;
    const OpConfig op = config.op(modules_[i].type);
    plans[i].inputs.assign(module->input_quantizers->size(), op.is_input_quantized.value_or(false));
    plans[i].outputs.assign(module->output_quantizers->size(),
                            op.is_output_quantized.value_or(false));
  }
  // 2. supergroups: a chain's outputs but the last, and its inputs but the first, stay float.
  const auto folds = foldable_batch_norms();
  for (const auto& chain : supergroup_chains(folds)) {
    for (size_t k = 0; k < chain.size(); ++k) {
      auto& plan = plans[chain[k]];
      if (k + 1 < chain.size()) std::fill(plan.outputs.begin(), plan.outputs.end(), false);
      if (k > 0) std::fill(plan.inputs.begin(), plan.inputs.end(), false);
    }
  }
  // 3. batch-norm folding: the batch norm's input and parameters stay float, and its output is
  // quantized as the conv's output would have been (the conv's output no longer is).
  for (const auto& [b, c] : folds) {
    auto& bn = plans[b];
    auto& conv = plans[c];
    bn.folded_batch_norm = true;
    std::fill(bn.inputs.begin(), bn.inputs.end(), false);
    for (size_t j = 0; j < std::min(bn.outputs.size(), conv.outputs.size()); ++j) {
      bn.outputs[j] = conv.outputs[j];
      conv.outputs[j] = false;
    }
  }
  // 4. model inputs (and inputs no quantized module produces), 5. model outputs.
  for (size_t i = 0; i < modules_.size(); ++i) {
    const auto& entry = modules_[i];
    if (!entry.called) continue;
    for (size_t j = 0; j < plans[i].inputs.size(); ++j) {
      const auto& producers = entry.producers[j];
      if (config.model_input_quantized &&
          std::find(producers.begin(), producers.end(), nullptr) != producers.end()) {
        plans[i].inputs[j] = true;
      }
    }
    for (size_t j = 0; j < plans[i].outputs.size(); ++j) {
      if (config.model_output_quantized && entry.consumers[j] == 0) plans[i].outputs[j] = true;
    }
  }
  return plans;
}

void QuantizationSimModel::configure_activations(const SimModule& entry, const SlotPlan& plan) {
  auto* module = entry.module;
  const OpConfig op = options_.config().op(entry.type);
  const bool symmetric = op.is_symmetric.value_or(false);
  const auto quantizer = [&](bool quantized) {
    return quantized ? make_quantizer({}, options_.default_output_bw(), symmetric,
                                      op.encoding_constraints)
                     : nullptr;
  };
  for (size_t i = 0; i < module->output_quantizers->size(); ++i) {
    module->output_quantizers->set(module->output_quantizers->keys()[i],
                                   quantizer(plan.outputs[i]));
  }
  for (size_t i = 0; i < module->input_quantizers->size(); ++i) {
    module->input_quantizers->set(module->input_quantizers->keys()[i], quantizer(plan.inputs[i]));
  }
}

void QuantizationSimModel::configure_params(const SimModule& entry, const SlotPlan& plan) {
  const auto& config = options_.config();
  auto* module = entry.module;
  const bool per_channel = config.op(entry.type).per_channel_quantization.value_or(false);
  const auto parameters = module->as_module().named_parameters(/*recurse=*/false);
  for (const auto& name : module->param_quantizers->keys()) {
    const ParamConfig param = config.param(entry.type, name);
    const at::Tensor* value = parameters.find(name);
    if (plan.folded_batch_norm || !param.is_quantized.value_or(false) || value == nullptr ||
        !value->defined()) {
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
    // Unless the configuration says otherwise, parameters are quantized asymmetrically, as the
    // reference's configurator starts every quantizer asymmetric (docs/quantization.md §11.3).
    module->param_quantizers->set(
        name, make_quantizer(shape, options_.default_param_bw(), param.is_symmetric.value_or(false),
                             param.encoding_constraints));
  }
}

std::vector<std::vector<std::string>> QuantizationSimModel::shared_activation_tensors() const {
  const auto slot_name = [](const SimModule& entry, const char* direction, size_t index) {
    const auto slot = std::string(direction) + "_" + std::to_string(index);
    return entry.name.empty() ? slot : entry.name + "." + slot;
  };
  std::map<int64_t, std::vector<std::string>> names_of;
  for (const auto& entry : modules_) {
    for (size_t i = 0; i < entry.input_tensors.size(); ++i) {
      if (entry.input_tensors[i] >= 0) {
        names_of[entry.input_tensors[i]].push_back(slot_name(entry, "input", i));
      }
    }
    for (size_t i = 0; i < entry.output_tensors.size(); ++i) {
      if (entry.output_tensors[i] >= 0) {
        names_of[entry.output_tensors[i]].push_back(slot_name(entry, "output", i));
      }
    }
  }
  std::vector<std::vector<std::string>> groups;
  for (auto& [id, names] : names_of) {
    if (names.size() > 1) groups.push_back(std::move(names));
  }
  return groups;
}

void QuantizationSimModel::compute_encodings(const std::function<void()>& forward_pass) {
  nn::compute_encodings(*model_, forward_pass);
}

nlohmann::json QuantizationSimModel::quantizer_args() const {
  const auto& config = options_.config();
  // As the reference (extract_global_quantizer_args): a range-learning scheme is reported as the
  // post-training scheme that initializes it.
  auto scheme = options_.quant_scheme();
  if (scheme == QuantScheme::kTrainingRangeLearningWithTfInit)
    scheme = QuantScheme::kPostTrainingTf;
  if (scheme == QuantScheme::kTrainingRangeLearningWithTfEnhancedInit) {
    scheme = QuantScheme::kPostTrainingTfEnhanced;
  }
  return {{"quant_scheme", to_string(scheme)},
          {"param_bitwidth", options_.default_param_bw()},
          {"activation_bitwidth", options_.default_output_bw()},
          {"dtype", "int"},
          // As the reference: defaults.params.is_symmetric, else the per-channel flag.
          {"is_symmetric",
           config.default_params.is_symmetric.value_or(config.per_channel_quantization)},
          {"per_channel_quantization", config.per_channel_quantization}};
}

void QuantizationSimModel::export_encodings(const std::string& dir, const std::string& prefix,
                                            EncodingVersion version) const {
  quantsim::export_encodings(*model_, dir, prefix,
                             ExportOptions()
                                 .version(version)
                                 .quantizer_args(quantizer_args())
                                 .shared_tensors(shared_activation_tensors()));
}

void QuantizationSimModel::load_encodings(const std::string& path, const LoadOptions& options) {
  quantsim::load_encodings(*model_, path, options);
}

std::map<std::string, std::string> QuantizationSimModel::export_onnx(
    const std::string& dir, const std::string& prefix, const std::vector<at::Tensor>& dummy_inputs,
    const std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>& forward,
    EncodingVersion version) const {
  TORCH_CHECK_VALUE(!prefix.empty() && prefix.find('/') == std::string::npos,
                    "export_onnx: `prefix` must be a non-empty file name prefix, got '", prefix,
                    "'");
  // Every content first: an export that fails writes nothing.
  const auto graphs = export_onnx_graphs(*model_, forward, dummy_inputs, prefix);
  const auto options = ExportOptions().version(version).quantizer_args(quantizer_args());
  const auto graph_keyed =
      quantsim::encodings(*model_, ExportOptions(options).tensor_names(graphs.quantized_tensors))
          .dump(4, ' ', /*ensure_ascii=*/true);
  const auto torch_keyed = torch_encodings(*model_, options).dump(4, ' ', /*ensure_ascii=*/true);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  TORCH_CHECK(!error, "export_onnx: cannot create the directory '", dir, "': ", error.message());
  const auto base = (std::filesystem::path(dir) / prefix).string();
  const auto text = [](const std::string& content) -> StreamWriter {
    return [&content](std::ostream& os) { os << content; };
  };
  write_files_atomically({{base + ".onnx", text(graphs.float_model)},
                          {base + ".encodings", text(graph_keyed)},
                          {base + "_qdq.onnx", text(graphs.qdq_model)},
                          {base + "_torch.encodings", text(torch_keyed)}});
  return graphs.quantized_tensors;
}

void QuantizationSimModel::load_onnx_encodings(const std::string& encodings_path,
                                               const std::string& onnx_path,
                                               const LoadOptions& options) {
  const auto tensors = read_quantized_tensors(onnx_path);
  const std::string where = "load_onnx_encodings: '" + encodings_path + "': ";
  const auto graph_keyed = detail::read_json_file(encodings_path, where);
  nlohmann::json torch_keyed;
  try {
    torch_keyed = torch_encodings_from_graph_keyed(graph_keyed, tensors, model_.get());
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, where);
  }
  quantsim::load_encodings(*model_, torch_keyed, options);
}

void QuantizationSimModel::save(const std::string& path) const { save_state(*model_, path); }

void QuantizationSimModel::load(const std::string& path) { load_state(*model_, path); }

}  // namespace quantsim
