#pragma once

/// Quantizer placement (docs/simulation.md §3-§4): which input, output and parameter slots of each
/// op of a recorded forward pass a configuration quantizes, and how. It works on an abstract op
/// graph (op names, types, producer/consumer edges, tensor identities) so that every front end
/// places quantizers the same way: QuantizationSimModel records its graph from a C++ model, the
/// Python package (`quantsim.quantsim.QuantizationSimModel`) from module hooks on a Python model.
///
///     std::vector<quantsim::PlacementOp> ops(2);
///     ops[0] = {"conv", "Conv2d", {{-1}}, {1}, {0}, {1}, true};
///     ops[1] = {"relu", "ReLU", {{0}}, {0}, {1}, {2}, true};
///     auto plans = quantsim::plan_slots(ops, quantsim::QuantsimConfig::default_config());
///     // plans[0].outputs == {false}: Conv + Relu is a supergroup; plans[1].outputs == {true}

#include <quantsim/sim/config.h>

#include <c10/util/Optional.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace quantsim {

/// One op (a quantized module) of a recorded forward pass.
struct PlacementOp {
  /// Name in the model ("layer1.conv"; "" for the root).
  std::string name;
  /// The float module's class name ("Conv2d", "Add").
  std::string type;
  /// For each input slot, the ops whose output it read (indices into the op list), -1 for a
  /// tensor no op produced (a model input, a functional op's result); empty when not called.
  std::vector<std::vector<int64_t>> producers;
  /// Number of recorded reads of each output slot by other ops.
  std::vector<int64_t> consumers;
  /// The tensor each input and output slot saw, as an id shared by the slots that saw the very
  /// same tensor; -1 when unknown. A producer's output and its consumer's input share an id.
  std::vector<int64_t> input_tensors;
  std::vector<int64_t> output_tensors;
  /// False when the recorded pass did not call the op (its slots follow the configuration alone).
  bool called = false;
  /// The op's `groups` (a convolution's); only a transposed conv's matters (a grouped one does
  /// not fold a following batch norm).
  int64_t groups = 1;
};

/// Which input and output slots of one op are quantized.
struct SlotPlan {
  std::vector<bool> inputs;
  std::vector<bool> outputs;
  /// The op is a batch norm folded into the conv or linear before it: no input or parameter
  /// quantizers.
  bool folded_batch_norm = false;
};

/// For each batch norm the reference folds, the index of the conv or linear it folds into
/// (docs/quantization.md §11.1), keyed by the batch norm's index.
std::map<size_t, size_t> foldable_batch_norms(const std::vector<PlacementOp>& ops);

/// The op chains matched by the configuration's supergroups, folded batch norms skipped
/// (docs/quantization.md §11.2), as op indices.
std::vector<std::vector<size_t>> supergroup_chains(const std::vector<PlacementOp>& ops,
                                                   const QuantsimConfig& config,
                                                   const std::map<size_t, size_t>& folds);

/// The slots of every op the configuration quantizes, in the reference's order: op settings,
/// supergroups, batch-norm folding, model inputs, model outputs. Each plan has as many input and
/// output slots as the op's `producers` and `consumers`.
std::vector<SlotPlan> plan_slots(const std::vector<PlacementOp>& ops, const QuantsimConfig& config);

/// How one activation (input or output) quantizer of an op of class `type` is made.
struct ActivationPlacement {
  bool symmetric = false;
  /// A fixed range, set once and frozen.
  c10::optional<std::pair<double, double>> encoding_constraints;
};
ActivationPlacement place_activation(const QuantsimConfig& config, const std::string& type);

/// How the quantizer of parameter `name` (of `sizes`) of an op of class `type` is made.
struct ParamPlacement {
  /// The quantizer's shape: () per tensor, or all ones but the output-channel axis (0, or 1 for a
  /// transposed conv's weight) when the configuration asks for per-channel quantization.
  std::vector<int64_t> shape;
  bool symmetric = false;
  c10::optional<std::pair<double, double>> encoding_constraints;
};
/// nullopt when the parameter stays float: not quantized by the configuration, or a parameter of
/// a folded batch norm.
c10::optional<ParamPlacement> place_param(const QuantsimConfig& config, const std::string& type,
                                          const std::string& name,
                                          const std::vector<int64_t>& sizes,
                                          bool folded_batch_norm);

}  // namespace quantsim
