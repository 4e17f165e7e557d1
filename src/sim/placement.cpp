#include <quantsim/sim/placement.h>

#include <quantsim/sim/module_facts.h>

#include <algorithm>

namespace quantsim {
namespace {

// The module classes whose output the reference folds a following batch norm into, by
// connected-graph op type: Conv (Conv1d, Conv2d), ConvTranspose (ConvTranspose2d) and Gemm
// (Linear); Conv3d, ConvTranspose1d/3d keep their class names there and match no pattern
// (docs/quantization.md §11.1). A grouped transposed conv is not foldable.
bool folds_batch_norm(const PlacementOp& conv) {
  if (conv.type == "Conv1d" || conv.type == "Conv2d" || conv.type == "Linear") return true;
  return conv.type == "ConvTranspose2d" && conv.groups == 1;
}

// The batch-norm classes of the connected-graph type BatchNormalization.
bool is_foldable_batch_norm_type(const std::string& type) {
  return type == "BatchNorm1d" || type == "BatchNorm2d";
}

bool feeds_exactly_one_op(const PlacementOp& op) {
  return op.consumers.size() == 1 && op.consumers[0] == 1;
}

}  // namespace

std::map<size_t, size_t> foldable_batch_norms(const std::vector<PlacementOp>& ops) {
  std::map<size_t, size_t> folds;
  for (size_t b = 0; b < ops.size(); ++b) {
    const auto& bn = ops[b];
    if (!bn.called || !is_foldable_batch_norm_type(bn.type) || bn.producers.empty()) continue;
    const auto& producers = bn.producers[0];
    if (producers.size() != 1 || producers[0] < 0) continue;
    const auto c = static_cast<size_t>(producers[0]);
    const auto& conv = ops.at(c);
    // The batch norm reads the conv's output itself (not a view of it), and nothing else does.
    if (!folds_batch_norm(conv) || !feeds_exactly_one_op(conv) || conv.output_tensors.empty() ||
        conv.output_tensors[0] < 0 || bn.input_tensors.empty() ||
        conv.output_tensors[0] != bn.input_tensors[0]) {
      continue;
    }
    folds[b] = c;
  }
  return folds;
}

std::vector<std::vector<size_t>> supergroup_chains(const std::vector<PlacementOp>& ops,
                                                   const QuantsimConfig& config,
                                                   const std::map<size_t, size_t>& folds) {
  std::map<size_t, std::vector<size_t>> consumers_of;
  for (size_t i = 0; i < ops.size(); ++i) {
    for (const auto& producers : ops[i].producers) {
      for (const auto producer : producers) {
        if (producer >= 0) consumers_of[static_cast<size_t>(producer)].push_back(i);
      }
    }
  }
  // The op after `i` in a chain: its output feeds one op only (a runtime cannot fuse a tensor
  // that is also read elsewhere). A folded batch norm is looked through, as the reference leaves
  // it out of the op sequence its patterns are matched on.
  const auto next = [&](size_t i) -> c10::optional<size_t> {
    for (int skipped = 0; skipped < 2; ++skipped) {
      if (!feeds_exactly_one_op(ops[i])) return c10::nullopt;
      const auto it = consumers_of.find(i);
      if (it == consumers_of.end() || it->second.size() != 1) return c10::nullopt;
      i = it->second[0];
      if (folds.count(i) == 0) return i;
    }
    return c10::nullopt;
  };
  std::vector<std::vector<size_t>> chains;
  for (const auto& group : config.supergroups) {
    for (size_t first = 0; first < ops.size(); ++first) {
      if (!ops[first].called || folds.count(first) != 0 ||
          !QuantsimConfig::matches(ops[first].type, group[0])) {
        continue;
      }
      std::vector<size_t> chain = {first};
      for (size_t k = 1; k < group.size(); ++k) {
        const auto following = next(chain.back());
        if (!following || !QuantsimConfig::matches(ops[*following].type, group[k])) break;
        chain.push_back(*following);
      }
      if (chain.size() == group.size()) chains.push_back(std::move(chain));
    }
  }
  return chains;
}

std::vector<SlotPlan> plan_slots(const std::vector<PlacementOp>& ops,
                                 const QuantsimConfig& config) {
  std::vector<SlotPlan> plans(ops.size());
  // 1. defaults and op types.
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpConfig op = config.op(ops[i].type);
    plans[i].inputs.assign(ops[i].producers.size(), op.is_input_quantized.value_or(false));
    plans[i].outputs.assign(ops[i].consumers.size(), op.is_output_quantized.value_or(false));
  }
  // 2. supergroups: a chain's outputs but the last, and its inputs but the first, stay float.
  const auto folds = foldable_batch_norms(ops);
  for (const auto& chain : supergroup_chains(ops, config, folds)) {
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
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& op = ops[i];
    if (!op.called) continue;
    for (size_t j = 0; j < plans[i].inputs.size(); ++j) {
      const auto& producers = op.producers[j];
      if (config.model_input_quantized &&
          std::find(producers.begin(), producers.end(), -1) != producers.end()) {
        plans[i].inputs[j] = true;
      }
    }
    for (size_t j = 0; j < plans[i].outputs.size(); ++j) {
      if (config.model_output_quantized && op.consumers[j] == 0) plans[i].outputs[j] = true;
    }
  }
  return plans;
}

ActivationPlacement place_activation(const QuantsimConfig& config, const std::string& type) {
  const OpConfig op = config.op(type);
  return {op.is_symmetric.value_or(false), op.encoding_constraints};
}

c10::optional<ParamPlacement> place_param(const QuantsimConfig& config, const std::string& type,
                                          const std::string& name,
                                          const std::vector<int64_t>& sizes,
                                          bool folded_batch_norm) {
  const ParamConfig param = config.param(type, name);
  if (folded_batch_norm || !param.is_quantized.value_or(false)) return c10::nullopt;
  ParamPlacement placement;
  const bool per_channel = config.op(type).per_channel_quantization.value_or(false);
  if (per_channel && sizes.size() >= 2) {
    // One encoding per output channel: along axis 0, or 1 for a transposed conv's
    // (in, out / groups, k...) weight (docs/simulation.md §3).
    const auto axis = static_cast<size_t>(weight_channel_axis(type));
    placement.shape.assign(sizes.size(), 1);
    placement.shape[axis] = sizes[axis];
  }
  // Unless the configuration says otherwise, parameters are quantized asymmetrically, as the
  // reference's configurator starts every quantizer asymmetric (docs/quantization.md §11.3).
  placement.symmetric = param.is_symmetric.value_or(false);
  placement.encoding_constraints = param.encoding_constraints;
  return placement;
}

}  // namespace quantsim
