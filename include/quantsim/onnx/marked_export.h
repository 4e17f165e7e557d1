#pragma once

/// ONNX export for front ends that trace with an ONNX exporter of their own (the Python package's
/// `QuantizationSimModel.export`, through torch.onnx.export): they emit one marker node per
/// quantizer call, and this turns the marked model into quantsim's two graphs with the very
/// nodes QuantizationSimModel::export_onnx writes (src/onnx/qdq.h, docs/onnx.md §2), so that the
/// quantizer arithmetic of an exported model has one implementation.
///
/// A marker is a node of domain kQuantizerMarkerDomain and type "Quantizer" with one input (the
/// tensor quantized) and one output (what the quantizer returned), and the attributes
/// `quantizer` (string: the quantizer's path, "conv1.output_quantizers.0") and `shape` (ints: the
/// input's shape, -1 for dims unknown at export, such as a dynamic batch).
///
///     auto graphs = quantsim::graphs_from_marked_model(bytes, {{"conv1.output_quantizers.0", {q}}});
///     // graphs.float_model: markers removed; graphs.qdq_model: QuantizeLinear/DequantizeLinear

#include <quantsim/onnx/export.h>
#include <quantsim/quantizer_base.h>

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>

namespace quantsim {

inline constexpr const char* kQuantizerMarkerDomain = "quantsim.marker";

/// The quantizer of a marker.
struct MarkedQuantizer {
  std::shared_ptr<QuantizerBase> quantizer;
  /// For a parameter quantizer whose marker reads an initializer: the parameter, exported as
  /// quantsim's integer initializer followed by DequantizeLinear (undefined otherwise).
  at::Tensor weight;
};

/// From a serialized ModelProto holding marker nodes (ai.onnx opset 17 besides them):
/// - `float_model`: the markers removed (their consumers read the marker's input; a marker
///   whose output is a graph output becomes an Identity), the quantizer -> tensor map recorded
///   as metadata (kQuantizedTensorsMetadataKey);
/// - `qdq_model`: each marker replaced by its quantizer's nodes, float initializers no node reads
///   any more dropped;
/// - `quantized_tensors`: each quantizer's path -> the tensor of the float graph it quantizes.
/// Both checked with libonnx's checker. c10::ValueError for bytes that are not a model, a
/// malformed marker, a marker naming no quantizer of `quantizers`; the errors of append_quantizer
/// (an uninitialized or calibrating quantizer, one ONNX cannot express) naming the quantizer.
OnnxGraphs graphs_from_marked_model(const std::string& marked_model,
                                    const std::map<std::string, MarkedQuantizer>& quantizers);

}  // namespace quantsim
