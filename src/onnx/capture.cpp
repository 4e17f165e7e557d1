#include "onnx/capture.h"

#include <quantsim/errors.h>
#include <quantsim/ops.h>
#include <quantsim/quantizer_base.h>

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <unordered_set>
#include <utility>

namespace quantsim::onnx_export {
namespace {

/// Turns requires_grad off on every parameter for the guard's lifetime: the tracer refuses to
/// bake a tensor that requires grad into a constant. Restores the flags however the scope ends.
class NoParameterGradGuard {
 public:
  explicit NoParameterGradGuard(torch::nn::Module& module) {
    for (auto& parameter : module.parameters(/*recurse=*/true)) {
      if (parameter.requires_grad()) {
        parameter.requires_grad_(false);
        restored_.push_back(parameter);
      }
    }
  }
  ~NoParameterGradGuard() {
    for (auto& parameter : restored_) parameter.requires_grad_(true);
  }
  NoParameterGradGuard(const NoParameterGradGuard&) = delete;
  NoParameterGradGuard& operator=(const NoParameterGradGuard&) = delete;

 private:
  std::vector<at::Tensor> restored_;
};

bool is_quantsim_op(const torch::jit::Node* node) {
  return std::strncmp(node->kind().toQualString(), "quantsim::", 10) == 0;
}

using ParameterPaths = std::unordered_map<const c10::TensorImpl*, std::string>;
using Sources = std::unordered_map<const torch::jit::Value*, std::vector<std::string>>;

/// The parameter path of a constant that is a parameter or buffer, else null.
const std::string* parameter_path(const torch::jit::Value* value, const ParameterPaths& paths) {
  if (value->node()->kind() != torch::jit::prim::Constant) return nullptr;
  const auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isTensor()) return nullptr;
  const auto found = paths.find(constant->toTensor().unsafeGetTensorImpl());
  return found == paths.end() ? nullptr : &found->second;
}

/// Layout ops that stay nodes over a parameter (a Linear's aten::t(weight)): folding them would
/// make an anonymous constant of the parameter, which the exporter could no longer name.
bool keeps_parameter_layout(const torch::jit::Node* node, const ParameterPaths& paths) {
  static const std::unordered_set<std::string> layout_ops{"aten::t", "aten::transpose",
                                                          "aten::permute", "aten::numpy_T"};
  return layout_ops.count(node->kind().toQualString()) != 0 && !node->inputs().empty() &&
         parameter_path(node->inputs()[0], paths) != nullptr;
}

/// Replaces every node whose inputs are all constants by the constants of its outputs, except
/// the quantsim:: operators (a quantized weight keeps its quantize_dequantize node) and layout
/// ops on parameters. `sources` gets, for each tensor constant, the parameters it comes from (a
/// quantizer's scale, folded from its min and max, names the quantizer).
void fold_constants(torch::jit::Graph& graph, const ParameterPaths& paths, Sources& sources) {
  for (auto* node : graph.nodes()) {
    if (node->kind() != torch::jit::prim::Constant) continue;
    if (const auto* path = parameter_path(node->output(), paths)) {
      sources[node->output()] = {*path};
    }
  }
  std::vector<torch::jit::Node*> folded;
  for (auto* node : graph.nodes()) {
    if (node->kind() == torch::jit::prim::Constant || is_quantsim_op(node) ||
        !node->blocks().empty() || keeps_parameter_layout(node, paths)) {
      continue;
    }
    auto outputs = torch::jit::runNodeIfInputsAreConstant(node);
    if (!outputs || outputs->size() != node->outputs().size()) continue;
    std::vector<std::string> from;
    for (const auto* input : node->inputs()) {
      const auto found = sources.find(input);
      if (found == sources.end()) continue;
      for (const auto& path : found->second) {
        if (std::find(from.begin(), from.end(), path) == from.end()) from.push_back(path);
      }
    }
    torch::jit::WithInsertPoint insert_before(node);
    for (size_t i = 0; i < outputs->size(); ++i) {
      auto* constant = graph.insertConstant((*outputs)[i]);
      if ((*outputs)[i].isTensor()) {
        constant->inferTypeFrom((*outputs)[i].toTensor());
        if (!from.empty()) sources[constant] = from;
      }
      node->outputs()[i]->replaceAllUsesWith(constant);
    }
    folded.push_back(node);
  }
  for (auto* node : folded) node->destroy();
}

std::shared_ptr<torch::jit::Graph> trace(const Forward& forward,
                                         const std::vector<at::Tensor>& inputs,
                                         const ParameterPaths& paths, Sources& sources) {
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  auto traced = torch::jit::tracer::trace(
      std::move(stack),
      [&](torch::jit::Stack in) {
        std::vector<at::Tensor> tensors;
        for (const auto& value : in) tensors.push_back(value.toTensor());
        auto outputs = forward(tensors);
        return torch::jit::Stack(outputs.begin(), outputs.end());
      },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/false);
  auto graph = traced.first->graph;
  torch::jit::Inline(*graph);
  fold_constants(*graph, paths, sources);
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.numel() * ac.element_size()) == 0;
}

/// The second trace (batch B + 1) must be the first (batch B) but for integers B -> B + 1.
void compare_traces(CapturedGraph& captured, const torch::jit::Graph& other) {
  const auto& graph = *captured.graph;
  const int64_t batch = captured.batch_size;
  std::unordered_map<const torch::jit::Value*, const torch::jit::Value*> corresponding;
  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    corresponding[graph.inputs()[i]] = other.inputs()[i];
  }
  const auto differ = [&](const torch::jit::Node* node, const std::string& what) {
    // A constant is named by the op that reads it.
    if (node->kind() == torch::jit::prim::Constant && node->hasUses()) {
      node = node->output()->uses()[0].user;
    }
    QS_THROW(c10::Error, "cannot export: the trace depends on the input data (", what, " of ",
             node->kind().toQualString(), ", ", captured.module_path_of(node),
             ", differs between batch sizes ", batch, " and ", batch + 1,
             "): control flow on tensor values or shapes cannot be exported as one graph");
  };
  auto theirs = other.nodes().begin();
  for (const auto* node : graph.nodes()) {
    if (theirs == other.nodes().end() || (*theirs)->kind() != node->kind() ||
        (*theirs)->inputs().size() != node->inputs().size() ||
        (*theirs)->outputs().size() != node->outputs().size()) {
      differ(node, "the node");
    }
    const auto* their = *theirs;
    ++theirs;
    for (size_t i = 0; i < node->inputs().size(); ++i) {
      if (corresponding[node->inputs()[i]] != their->inputs()[i]) differ(node, "an input");
    }
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      corresponding[node->outputs()[i]] = their->outputs()[i];
    }
    if (node->kind() != torch::jit::prim::Constant) continue;
    const auto mine = torch::jit::toIValue(node->output());
    const auto yours = torch::jit::toIValue(their->output());
    if (!mine || !yours) continue;  // None
    if (mine->isTensor() && yours->isTensor()) {
      if (!same_tensor(mine->toTensor(), yours->toTensor())) {
        differ(node, c10::str("a constant tensor of shape ", mine->toTensor().sizes(), " (",
                              yours->toTensor().sizes(), " in the second trace), an input"));
      }
    } else if (mine->isInt() && yours->isInt()) {
      if (mine->toInt() == batch && yours->toInt() == batch + 1) {
        captured.batch_dependent[node->output()] = {0};
      } else if (mine->toInt() != yours->toInt()) {
        differ(node, "a constant");
      }
    } else if (mine->isIntList() && yours->isIntList()) {
      const auto a = mine->toIntVector(), b = yours->toIntVector();
      if (a.size() != b.size()) differ(node, "a constant list");
      std::vector<size_t> positions;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] == batch && b[i] == batch + 1) {
          positions.push_back(i);
        } else if (a[i] != b[i]) {
          differ(node, "a constant list");
        }
      }
      if (!positions.empty()) captured.batch_dependent[node->output()] = positions;
    } else if (!(*mine == *yours)) {
      differ(node, "a constant");
    }
  }
  if (theirs != other.nodes().end()) {
    QS_THROW(c10::Error, "cannot export: the trace depends on the input data (the trace at batch ",
             batch + 1, " has more nodes than at batch ", batch, ")");
  }
}

/// CapturedGraph::quantizer_paths: the address each quantsim:: node carries, as the module path
/// of the quantizer at that address. A node of a quantizer that is not a submodule of `module`
/// (called from outside the model) keeps no path.
void name_quantizer_nodes(torch::nn::Module& module, CapturedGraph& captured) {
  std::unordered_map<int64_t, std::string> path_of;
  const auto add = [&](const torch::nn::Module& m, const std::string& path) {
    if (const auto* quantizer = dynamic_cast<const QuantizerBase*>(&m)) {
      // A quantizer in several slots: the last path, as parameter paths (named_parameters()).
      path_of[static_cast<int64_t>(reinterpret_cast<intptr_t>(quantizer))] = path;
    }
  };
  add(module, "");
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    add(*item.value(), item.key());
  }
  const auto attribute = ops::quantizer_attribute();
  for (const auto* node : captured.graph->nodes()) {
    if (!is_quantsim_op(node) || !node->hasAttribute(attribute)) continue;
    const auto found = path_of.find(node->i(attribute));
    if (found != path_of.end()) captured.quantizer_paths[node] = found->second;
  }
}

}  // namespace

std::string CapturedGraph::module_path_of(const torch::jit::Node* node) const {
  const auto module_of = [&](const torch::jit::Node* n) -> std::string {
    for (const auto* input : n->inputs()) {
      const auto found = parameter_names.find(input);
      if (found == parameter_names.end()) continue;
      const auto dot = found->second.rfind('.');
      return dot == std::string::npos ? std::string() : found->second.substr(0, dot);
    }
    return "?";
  };
  auto own = module_of(node);
  if (own != "?") return own.empty() ? "the model itself" : "module `" + own + "`";
  // Breadth-first upstream: the nearest node that reads parameters.
  std::deque<const torch::jit::Node*> queue{node};
  std::unordered_set<const torch::jit::Node*> seen{node};
  while (!queue.empty()) {
    const auto* n = queue.front();
    queue.pop_front();
    for (const auto* input : n->inputs()) {
      const auto* producer = input->node();
      if (producer->kind() == torch::jit::prim::Param || !seen.insert(producer).second) continue;
      const auto path = module_of(producer);
      if (path != "?")
        return path.empty() ? "after the model's own parameters" : "after module `" + path + "`";
      queue.push_back(producer);
    }
  }
  return "on the model's input";
}

CapturedGraph capture(torch::nn::Module& module, const Forward& forward,
                      const std::vector<at::Tensor>& inputs) {
  TORCH_CHECK_VALUE(!inputs.empty(), "cannot export ", module.name(), ": no example inputs");
  for (size_t i = 0; i < inputs.size(); ++i) {
    TORCH_CHECK_VALUE(inputs[i].defined() && inputs[i].dim() >= 1 && inputs[i].size(0) >= 1,
                      "cannot export ", module.name(), ": example input ", i,
                      " has no batch dimension (its first dim is the batch; got shape ",
                      inputs[i].defined() ? c10::str(inputs[i].sizes()) : "undefined", ")");
  }
  CapturedGraph captured;
  captured.batch_size = inputs[0].size(0);
  // Batch + 1: each input with its first row repeated, and floating inputs negated so that a
  // branch on their values (a sign, a sum) takes the other way. Integer inputs (indices) keep
  // their values, which the model may need in range.
  std::vector<at::Tensor> wider;
  for (const auto& input : inputs) {
    auto repeated = at::cat({input, input.narrow(0, 0, 1)}, 0);
    wider.push_back(at::isFloatingType(input.scalar_type()) ? -repeated : repeated);
  }
  ParameterPaths paths;
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    paths.emplace(item.value().unsafeGetTensorImpl(), item.key());
  }
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    paths[item.value().unsafeGetTensorImpl()] = item.key();
  }
  std::shared_ptr<torch::jit::Graph> other;
  Sources other_sources;
  {
    NoParameterGradGuard no_grad(module);
    // One untraced call first, in the state the traces run in: a module that caches results
    // across calls (quantized parameters) then answers both traces the same way.
    forward(inputs);
    captured.graph = trace(forward, inputs, paths, captured.constant_sources);
    other = trace(forward, wider, paths, other_sources);
  }
  for (const auto* node : captured.graph->nodes()) {
    if (node->kind() != torch::jit::prim::Constant) continue;
    if (const auto* path = parameter_path(node->output(), paths)) {
      captured.parameter_names[node->output()] = *path;
    }
  }
  compare_traces(captured, *other);
  name_quantizer_nodes(module, captured);

  const auto names = [](size_t count, const char* stem) {
    std::vector<std::string> result;
    for (size_t i = 0; i < count; ++i) {
      result.push_back(count == 1 ? std::string(stem) : c10::str(stem, "_", i));
    }
    return result;
  };
  captured.input_names = names(captured.graph->inputs().size(), "input");
  captured.output_names = names(captured.graph->outputs().size(), "output");
  return captured;
}

}  // namespace quantsim::onnx_export
