#pragma once

/// The file layer of the ONNX exporter: a graph becomes a ModelProto with quantsim's opset, is
/// checked with libonnx's checker, and is written atomically. Internal header (it includes onnx's
/// protobuf types, which the public headers of include/quantsim/ never do). docs/onnx.md §2-3 say
/// which opset and why.

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

namespace quantsim::onnx_export {

/// The ai.onnx opset of every exported model: 17, the newest that Debian's libonnx 1.12 checker
/// knows, so that every model is checked completely. What opset 17's QuantizeLinear /
/// DequantizeLinear cannot express directly exports exactly within it: 9-16-bit grids as eq.
/// (1)-(3) in float ops, blockwise scales through a Reshape view (src/onnx/qdq.h, docs/onnx.md §2).
constexpr int64_t kCheckedOpset = 17;

/// Wraps `graph` into a model importing ai.onnx at `opset` (kCheckedOpset; c10::ValueError for
/// any other), with IR version 8 (the one of opset 17), producer "quantsim" and its version.
::onnx::ModelProto make_model(::onnx::GraphProto graph, int64_t opset);

/// Checks `model` with libonnx's checker (onnx::checker::check_model: the protobuf structure, every
/// node against its operator schema, topological order, initializers); throws c10::ValueError
/// starting with `what` and the checker's message when it fails.
void check_model(const ::onnx::ModelProto& model, const std::string& what);

/// Checks `model` (check_model) and writes it to `path` atomically (write_file_atomically): a
/// failing check or write leaves no file, and any earlier file at `path` intact. Errors name
/// `path`.
void write_model(const ::onnx::ModelProto& model, const std::string& path);

}  // namespace quantsim::onnx_export
