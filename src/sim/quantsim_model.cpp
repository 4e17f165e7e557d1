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
#include <quantsim/sim/placement.h>

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

std::vector<SlotPlan> QuantizationSimModel::plan_slots() const {
  // The recorded dataflow as the abstract op graph the placement works on (quantsim/sim/
  // placement.h), which the Python package records from its own models.
  std::map<const BaseQuantizationMixin*, int64_t> index_of;
  for (size_t i = 0; i < modules_.size(); ++i) {
    index_of[modules_[i].module] = static_cast<int64_t>(i);
  }
  std::vector<PlacementOp> ops;
  ops.reserve(modules_.size());
  for (const auto& entry : modules_) {
    PlacementOp op;
    op.name = entry.name;
    op.type = entry.type;
    op.called = entry.called;
    for (const auto& producers : entry.producers) {
      auto& indices = op.producers.emplace_back();
      for (const auto* producer : producers) {
        indices.push_back(producer == nullptr ? -1 : index_of.at(producer));
      }
    }
    op.consumers = entry.consumers;
    op.input_tensors = entry.input_tensors;
    op.output_tensors = entry.output_tensors;
    if (const auto* deconv =
            dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(&entry.module->as_module())) {
      op.groups = deconv->options.groups();
    }
    ops.push_back(std::move(op));
  }
  return quantsim::plan_slots(ops, options_.config());
}

void QuantizationSimModel::configure_activations(const SimModule& entry, const SlotPlan& plan) {
  auto* module = entry.module;
  const ActivationPlacement placement = place_activation(options_.config(), entry.type);
  const auto quantizer = [&](bool quantized) {
    return quantized ? make_quantizer({}, options_.default_output_bw(), placement.symmetric,
                                      placement.encoding_constraints)
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
  auto* module = entry.module;
  const auto parameters = module->as_module().named_parameters(/*recurse=*/false);
  for (const auto& name : module->param_quantizers->keys()) {
    const at::Tensor* value = parameters.find(name);
    const auto placement = value == nullptr || !value->defined()
                               ? c10::nullopt
                               : place_param(options_.config(), entry.type, name,
                                             value->sizes().vec(), plan.folded_batch_norm);
    module->param_quantizers->set(
        name, placement ? make_quantizer(placement->shape, options_.default_param_bw(),
                                         placement->symmetric, placement->encoding_constraints)
                        : nullptr);
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
