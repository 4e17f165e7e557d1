#pragma once

/// Graph capture for the ONNX exporter (issue 11 §2): a torch::nn::Module's forward traced with
/// libtorch's tracer into a torch::jit::Graph, cleaned, with the names the ONNX graph will use.
/// Internal header (src/onnx/).
///
/// Each quantsim:: node a quantizer computed carries the quantizer's address
/// (ops::quantizer_attribute()); the capture names it with the quantizer's module path.
///
/// The model's parameters and buffers become graph constants (tracing runs with
/// requires_grad off, restored afterwards even on error), named after their
/// named_parameters()/named_buffers() paths. Every node computing on constants only is folded
/// into a constant, except the quantsim:: operators: a weight's quantize_dequantize stays one node
/// over the weight's constant, so the exporter sees which tensor each quantizer quantizes.
///
/// The batch dimension stays dynamic: the model is traced twice, at the given batch size B and
/// at B + 1 (the inputs with their first row repeated, floating ones negated so that a branch on
/// their values goes the other way), and the two graphs must be the same but
/// for integer constants that are B in the first and B + 1 in the second (a C++ forward's
/// `x.size(0)` that the tracer cannot see, baked into a view's shape): those are recorded as
/// batch-dependent, and the exporter computes them from the input's shape. Any other difference
/// means the trace depends on the data (control flow on values or shapes) and is a c10::Error.

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace quantsim::onnx_export {

/// The forward to trace: the model inputs in, its outputs out.
using Forward = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

struct CapturedGraph {
  std::shared_ptr<torch::jit::Graph> graph;
  /// One per graph input / output: "input" and "output" when there is one, else "input_0", ...
  std::vector<std::string> input_names, output_names;
  /// The constant tensors that are the model's parameters or buffers, with their paths.
  std::unordered_map<const torch::jit::Value*, std::string> parameter_names;
  /// For each tensor constant derived from parameters or buffers (a parameter itself, or a value
  /// folded from them, such as a quantizer's scale from its `min` and `max`), their paths.
  std::unordered_map<const torch::jit::Value*, std::vector<std::string>> constant_sources;
  /// For each quantsim:: node a quantizer module computed (marked by ops::traced_by), the
  /// quantizer's module path ("conv1.output_quantizers.0"; "" for the traced module itself).
  std::unordered_map<const torch::jit::Node*, std::string> quantizer_paths;
  /// Integer constants (an int, or an int[] holding it) that are the batch size: for each, the
  /// positions in the list (0 for an int) whose value is the batch size.
  std::unordered_map<const torch::jit::Value*, std::vector<size_t>> batch_dependent;
  /// The batch size of the example inputs (the first input's first dim).
  int64_t batch_size = 0;

  /// Where a node comes from, for messages: "module `a.b`" when it reads parameters of module
  /// a.b, "after module `a.b`" for the nearest upstream node that does, else "the model's input".
  std::string module_path_of(const torch::jit::Node* node) const;
};

/// Traces `forward` on `inputs` (each with the batch as its first dim) and cleans the graph:
/// inlining, folding of constant subgraphs (not quantsim:: nodes), dead code elimination,
/// constant pooling. c10::ValueError for no inputs or an input without a batch dim; c10::Error
/// naming the node and module for a trace that depends on the data.
CapturedGraph capture(torch::nn::Module& module, const Forward& forward,
                      const std::vector<at::Tensor>& inputs);

}  // namespace quantsim::onnx_export
