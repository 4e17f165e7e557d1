#pragma once

/// The file layer of the ONNX exporter: a graph becomes a ModelProto with quantsim's opset, is
/// checked with libonnx's checker, and is written atomically. Internal header (it includes onnx's
/// protobuf types, which the public headers of include/quantsim/ never do). docs/onnx.md says which
/// opset and why.

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

namespace quantsim::onnx_export {

/// The ai.onnx opset of models whose every node exists in opset 17, the newest that Debian's
/// libonnx 1.12 checker knows: such a model is checked completely.
constexpr int64_t kCheckedOpset = 17;
/// The ai.onnx opset of models that need QuantizeLinear/DequantizeLinear-21 (int16/uint16 storage,
/// `block_size`). The 1.12 checker cannot check those nodes (see check_model).
constexpr int64_t kQdq21Opset = 21;

/// Wraps `graph` into a model importing ai.onnx at `opset` (kCheckedOpset or kQdq21Opset), with the
/// IR version that opset requires (8 for 17, 10 for 21), producer "quantsim" and its version.
::onnx::ModelProto make_model(::onnx::GraphProto graph, int64_t opset);

/// Checks `model` with libonnx's checker (onnx::checker::check_model, the protobuf structure, every
/// node against its operator schema, topological order, initializers); throws c10::ValueError
/// starting with `what` and the checker's message when it fails.
///
/// An opset-21 model is checked as an opset-17 model in which every QuantizeLinear /
/// DequantizeLinear node stands in for its opset-21 form: the checker sees the rest of the graph,
/// and the QDQ-21 nodes are validated structurally here (inputs, attributes, the storage types
/// opset 21 allows) — ONNX Runtime then validates them fully against the ONNX 1.17 schemas when it
/// loads the model (tests/onnx/).
void check_model(const ::onnx::ModelProto& model, const std::string& what);

/// Checks `model` (check_model) and writes it to `path` atomically (write_file_atomically): a
/// failing check or write leaves no file, and any earlier file at `path` intact. Errors name
/// `path`.
void write_model(const ::onnx::ModelProto& model, const std::string& path);

}  // namespace quantsim::onnx_export
