#pragma once

/// aten -> ONNX translation (issue 11 §3): each node of a captured graph (capture.h) becomes
/// ONNX nodes of opset 17 (model_file.h's kCheckedOpset) computing the same function, one
/// translation per aten op (the table in aten_to_onnx.cpp, supported_aten_ops() lists it).
/// Internal header (onnx types).
///
/// quantsim:: nodes become, in the QDQ graph, the QuantizeLinear/DequantizeLinear nodes of qdq.h
/// (a weight as an integer initializer); in the float graph, nothing: the quantizer's output is
/// its input, and the translation records which graph tensor each quantizer quantizes (the
/// tensor names `<prefix>.encodings` is keyed by).
///
/// An op without a translation, or with arguments it cannot express (a BatchNorm in training
/// mode, an adaptive pooling whose output does not divide its input, ...) is a c10::Error naming
/// the aten op and the module it comes from (CapturedGraph::module_path_of).

#include "onnx/capture.h"

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

namespace quantsim::onnx_export {

/// What quantsim:: nodes become.
enum class QuantizerNodes {
  kQuantizeDequantize,  ///< QuantizeLinear/DequantizeLinear (the self-contained QDQ graph)
  kFloat,               ///< nothing (the float graph that `<prefix>.encodings` annotates)
};

struct TranslatedGraph {
  ::onnx::GraphProto graph;
  /// For each quantizer (its module path, e.g. "conv1.output_quantizers.0": the quantizer module
  /// that marked the node while tracing, CapturedGraph::quantizer_paths; for an operator called
  /// directly, the module of the parameters its scale comes from, else "quantizer_<i>") the tensor
  /// it quantizes: an initializer's name for a weight, a node output or graph input otherwise.
  std::map<std::string, std::string> quantized_tensors;
};

/// Translates `captured` into a graph named `graph_name` whose inputs and outputs are float32
/// (or the inputs' integer type) with a dynamic first dim. c10::Error as the header says.
TranslatedGraph translate(const CapturedGraph& captured, QuantizerNodes quantizers,
                          const std::string& graph_name);

/// The aten ops translate() knows (qualified, e.g. "aten::relu"), sorted.
std::vector<std::string> supported_aten_ops();

}  // namespace quantsim::onnx_export
