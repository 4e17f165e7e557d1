#pragma once

/// `QuantizationSimModel`: fills every quantized module of a model with quantizers from a
/// configuration, calibrates, exports and reloads encodings (docs/simulation.md).

#include <quantsim/sim/config.h>
#include <quantsim/sim/encodings_io.h>
#include <quantsim/sim/placement.h>

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace c10d {
class ProcessGroup;
}  // namespace c10d

namespace quantsim {

class QuantizerBase;
namespace nn {
class BaseQuantizationMixin;
}

/// How quantizers are calibrated and trained (docs/simulation.md §2): the analyzer of every
/// quantizer, and whether quantizer ranges stay trainable.
enum class QuantScheme {
  kPostTrainingTf,                          ///< MinMax; ranges frozen
  kPostTrainingTfEnhanced,                  ///< SQNR; ranges frozen
  kPostTrainingPercentile,                  ///< Percentile; ranges frozen
  kTrainingRangeLearningWithTfInit,         ///< MinMax; ranges trainable
  kTrainingRangeLearningWithTfEnhancedInit  ///< SQNR; ranges trainable
};

/// The scheme named as the reference names it ("post_training_tf", "post_training_tf_enhanced",
/// "post_training_percentile", "training_range_learning_with_tf_init",
/// "training_range_learning_with_tf_enhanced_init"); c10::ValueError otherwise.
QuantScheme quant_scheme_from_string(const std::string& name);
std::string to_string(QuantScheme scheme);

/// Options of QuantizationSimModel.
struct SimOptions {
  /// Default: post_training_tf (MinMax analyzers, frozen ranges).
  TORCH_ARG(QuantScheme, quant_scheme) = QuantScheme::kPostTrainingTf;
  /// Bitwidth of parameter quantizers. Default: 8.
  TORCH_ARG(int64_t, default_param_bw) = 8;
  /// Bitwidth of activation (input and output) quantizers. Default: 8.
  TORCH_ARG(int64_t, default_output_bw) = 8;
  /// Percentile of the percentile analyzers (post_training_percentile). Default: 100.
  TORCH_ARG(double, percentile) = 100.0;
  /// The quantsim configuration. Default: QuantsimConfig::default_config() (weights symmetric
  /// per-channel, activations asymmetric per-tensor, biases unquantized, Conv/Gemm + ReLU and
  /// Conv + BatchNorm (+ ReLU) supergroups).
  TORCH_ARG(QuantsimConfig, config) = QuantsimConfig::default_config();
};

/// One quantized module of a simulation model, as the recorded forward pass saw it.
struct SimModule {
  /// Name in the model (`named_modules()`; "" for the root).
  std::string name;
  /// Op type: the float module's class name ("Conv2d", "Add").
  std::string type;
  nn::BaseQuantizationMixin* module = nullptr;
  /// Modules whose output feeds each input slot (nullptr: a model input or a functional op's
  /// result), in slot order; empty when the recorded pass did not call the module.
  std::vector<std::vector<const nn::BaseQuantizationMixin*>> producers;
  /// Number of recorded consumers of each output.
  std::vector<int64_t> consumers;
  /// The tensor each input and output slot saw, as an id shared by the slots that saw the very
  /// same tensor (same object, not modified in place since); -1 when unknown. A producer's output
  /// and its consumer's input share an id; an output seen through a view (flatten) does not,
  /// as the two are distinct tensors of the exported graph.
  std::vector<int64_t> input_tensors;
  std::vector<int64_t> output_tensors;
  /// False when the recorded pass did not call the module (its slots are filled by the config
  /// alone).
  bool called = false;
};

/// A simulation of a model's quantization on integer hardware.
///
/// `model` is any model whose quantizable leaves are quantized modules (written with
/// `quantsim::nn::drop_in`, converted with `quantsim::nn::convert`, or assembled by hand). The
/// constructor runs `sample_forward` once (it should call the model on a representative input,
/// under torch::NoGradGuard or not) and records which module's output feeds which, then fills
/// every slot of every quantized module from the configuration: activation quantizers for
/// outputs, for inputs that no quantized module produces (model inputs, functional ops' results)
/// and for op types configured with `is_input_quantized`; parameter quantizers per `params`;
/// supergroups share the last op's output quantizer; every Conv/Linear -> BatchNorm pair the
/// reference would fold is configured as folded, whatever the configuration says
/// (docs/quantization.md §11). The model is changed in place; slots the configuration leaves empty
/// are emptied.
///
///     auto model = std::make_shared<Net>();             // written with quantsim::nn::drop_in
///     qs::QuantizationSimModel sim(model, [&] { model->forward(sample); },
///                                  qs::SimOptions().default_param_bw(4));
///     sim.compute_encodings([&] { for (auto& b : calibration) model->forward(b.data); });
///     sim.export_encodings("out", "model");
class QuantizationSimModel {
 public:
  QuantizationSimModel(std::shared_ptr<torch::nn::Module> model,
                       const std::function<void()>& sample_forward, SimOptions options = {});

  /// The simulated model (the one passed in).
  const std::shared_ptr<torch::nn::Module>& model() const { return model_; }
  const SimOptions& options() const { return options_; }
  /// Every quantized module of the model, in `named_modules()` order.
  const std::vector<SimModule>& modules() const { return modules_; }

  /// Calibrates every quantizer over what `forward_pass` feeds through the model (parameters at
  /// entry, activations from all batches), then freezes the ranges of post-training schemes.
  void compute_encodings(const std::function<void()>& forward_pass);
  /// Data-parallel: every rank of `process_group` runs its own `forward_pass` (its shard) and the
  /// statistics are merged across ranks before the ranges are set, so that every rank ends with
  /// the same encodings (docs/distributed.md; include <quantsim/distributed.h> for the group).
  void compute_encodings(const std::function<void()>& forward_pass,
                         const c10::intrusive_ptr<c10d::ProcessGroup>& process_group);

  /// The `quantizer_args` entry of exported files.
  nlohmann::json quantizer_args() const;
  /// Writes `<dir>/<prefix>.encodings` (version `version`) and `<dir>/<prefix>_torch.encodings`,
  /// each atomically. `<prefix>.encodings` has one entry per tensor: when an output slot and an
  /// input slot (or several input slots) quantize the same tensor, the slot the reference writes
  /// last keeps its entry (docs/quantization.md §11.4).
  void export_encodings(const std::string& dir, const std::string& prefix,
                        EncodingVersion version = EncodingVersion::k0_6_1) const;
  /// Loads a `_torch.encodings` file (docs/simulation.md §8); nothing changes on failure.
  void load_encodings(const std::string& path, const LoadOptions& options = {});

  /// The reference's `export(path, filename_prefix, dummy_input)` (docs/onnx.md §6): traces
  /// `forward(dummy_inputs)` and writes, in `dir` (created when missing),
  /// - `<prefix>.onnx`: the float graph (quantizers left out);
  /// - `<prefix>.encodings` (`version`): keyed by that graph's tensor and initializer names, one
  ///   entry per quantized tensor;
  /// - `<prefix>_qdq.onnx`: the self-contained QDQ graph;
  /// - `<prefix>_torch.encodings`: as export_encodings writes it.
  /// Everything is computed and checked first, then the four files are written with
  /// write_files_atomically: on any error (an op without ONNX translation, an uninitialized
  /// quantizer, an unwritable directory) no file is half-written and earlier files stay intact.
  /// Returns the quantizer path -> tensor name map (quantsim::export_onnx). The model should be
  /// in eval mode.
  ///     sim.export_onnx("out", "net", {torch::randn({1, 1, 28, 28})},
  ///                     [&](const std::vector<at::Tensor>& x) {
  ///                       return std::vector<at::Tensor>{model->forward(x[0])};
  ///                     });
  std::map<std::string, std::string> export_onnx(
      const std::string& dir, const std::string& prefix,
      const std::vector<at::Tensor>& dummy_inputs,
      const std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>& forward,
      EncodingVersion version = EncodingVersion::k0_6_1) const;
  /// Loads a `<prefix>.encodings` written by export_onnx (0.6.1 or 1.0.0), keyed by the graph's
  /// tensor names, with the quantizer -> tensor map recorded in `<prefix>.onnx` (`onnx_path`):
  /// every quantizer of a tensor gets the tensor's entry, then as load_encodings (a fresh
  /// simulation of the same model then computes the exported one's outputs bit-exactly).
  /// Malformed entries: c10::ValueError naming the file, the entry and the value
  /// (quantsim/onnx/encodings.h).
  void load_onnx_encodings(const std::string& encodings_path, const std::string& onnx_path,
                           const LoadOptions& options = {});

  /// Saves the whole simulation state (parameters, quantizer ranges and initialization flags)
  /// atomically; `load` restores it into a simulation built the same way.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  void record(const std::function<void()>& sample_forward);
  /// Fills every slot of every module from the configuration and the recorded dataflow.
  void configure();
  /// The slots of every module the configuration quantizes (quantsim/sim/placement.h, on the
  /// recorded dataflow), indexed like modules_.
  std::vector<SlotPlan> plan_slots() const;
  /// The input and output quantizers of `entry` as `plan` says.
  void configure_activations(const SimModule& entry, const SlotPlan& plan);
  /// The parameter quantizers of `entry`, per output channel where the configuration says so;
  /// none for a folded batch norm.
  void configure_params(const SimModule& entry, const SlotPlan& plan);
  /// Groups of activation entry names (`conv.output_0`, `pool.input_0`) that name one tensor.
  std::vector<std::vector<std::string>> shared_activation_tensors() const;
  /// A quantizer with the scheme's encoding analyzer; a range given by `constraints` is set and
  /// frozen, and post-training schemes freeze every range.
  std::shared_ptr<QuantizerBase> make_quantizer(
      std::vector<int64_t> shape, int64_t bitwidth, bool symmetric,
      const c10::optional<std::pair<double, double>>& constraints) const;

  std::shared_ptr<torch::nn::Module> model_;
  SimOptions options_;
  std::vector<SimModule> modules_;
};

}  // namespace quantsim
