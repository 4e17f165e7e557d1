#pragma once

/// Small helpers that append initializers and nodes to an onnx::GraphProto: how the exporter's
/// files build graphs without repeating protobuf boilerplate. Internal header (onnx types).

#include <ATen/core/Tensor.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace quantsim::onnx_export {

/// ONNX's element type for a torch dtype (float32/64/16, bfloat16, int8/16/32/64, uint8, bool);
/// c10::TypeError for any other.
::onnx::TensorProto_DataType onnx_type(at::ScalarType type);

/// The tensor's values as a TensorProto named `name` (raw little-endian data, row-major; the
/// tensor is made contiguous on the CPU first).
::onnx::TensorProto to_tensor_proto(const at::Tensor& tensor, const std::string& name);

/// Adds `tensor` as the graph initializer `name` and returns `name`.
const std::string& add_initializer(::onnx::GraphProto& graph, const at::Tensor& tensor,
                                   const std::string& name);

/// Appends the node `op_type(inputs) -> outputs` named `name` (domain ai.onnx) and returns it for
/// its attributes. An empty input name is an omitted optional input, as ONNX spells it.
::onnx::NodeProto& add_node(::onnx::GraphProto& graph, const std::string& op_type,
                            const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::string& name);

/// Fills `value` (a graph input or output) with `name`, `type`'s element type and `shape`, in which
/// -1 is a dynamic dim named `dynamic_dim` (the same name ties the dims that must be equal).
void set_value_info(::onnx::ValueInfoProto& value, const std::string& name, at::ScalarType type,
                    const std::vector<int64_t>& shape, const std::string& dynamic_dim = "batch");

/// Sets the integer attribute `name` of `node`.
void set_attribute(::onnx::NodeProto& node, const std::string& name, int64_t value);

}  // namespace quantsim::onnx_export
