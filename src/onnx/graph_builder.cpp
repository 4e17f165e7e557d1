#include "onnx/graph_builder.h"

#include <quantsim/errors.h>

#include <ATen/ATen.h>

namespace quantsim::onnx_export {

::onnx::TensorProto_DataType onnx_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return ::onnx::TensorProto_DataType_FLOAT;
    case at::kDouble:
      return ::onnx::TensorProto_DataType_DOUBLE;
    case at::kHalf:
      return ::onnx::TensorProto_DataType_FLOAT16;
    case at::kBFloat16:
      return ::onnx::TensorProto_DataType_BFLOAT16;
    case at::kChar:
      return ::onnx::TensorProto_DataType_INT8;
    case at::kByte:
      return ::onnx::TensorProto_DataType_UINT8;
    case at::kShort:
      return ::onnx::TensorProto_DataType_INT16;
    case at::kInt:
      return ::onnx::TensorProto_DataType_INT32;
    case at::kLong:
      return ::onnx::TensorProto_DataType_INT64;
    case at::kBool:
      return ::onnx::TensorProto_DataType_BOOL;
    default:
      QS_THROW(c10::TypeError, "ONNX export: no ONNX element type for dtype ", type);
  }
}

::onnx::TensorProto to_tensor_proto(const at::Tensor& tensor, const std::string& name) {
  ::onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(onnx_type(tensor.scalar_type()));
  for (const int64_t dim : tensor.sizes()) proto.add_dims(dim);
  // x86-64 and aarch64 are little-endian, as raw_data is.
  const at::Tensor contiguous = tensor.detach().cpu().contiguous();
  proto.set_raw_data(static_cast<const char*>(contiguous.data_ptr()),
                     contiguous.numel() * contiguous.element_size());
  return proto;
}

const std::string& add_initializer(::onnx::GraphProto& graph, const at::Tensor& tensor,
                                   const std::string& name) {
  *graph.add_initializer() = to_tensor_proto(tensor, name);
  return name;
}

::onnx::NodeProto& add_node(::onnx::GraphProto& graph, const std::string& op_type,
                            const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::string& name) {
  ::onnx::NodeProto& node = *graph.add_node();
  node.set_op_type(op_type);
  node.set_name(name);
  for (const auto& input : inputs) node.add_input(input);
  for (const auto& output : outputs) node.add_output(output);
  return node;
}

void set_value_info(::onnx::ValueInfoProto& value, const std::string& name, at::ScalarType type,
                    const std::vector<int64_t>& shape, const std::string& dynamic_dim) {
  value.set_name(name);
  auto& tensor_type = *value.mutable_type()->mutable_tensor_type();
  tensor_type.set_elem_type(onnx_type(type));
  auto& dims = *tensor_type.mutable_shape();
  dims.Clear();
  for (const int64_t size : shape) {
    if (size < 0) {
      dims.add_dim()->set_dim_param(dynamic_dim);
    } else {
      dims.add_dim()->set_dim_value(size);
    }
  }
}

void set_attribute(::onnx::NodeProto& node, const std::string& name, int64_t value) {
  ::onnx::AttributeProto& attribute = *node.add_attribute();
  attribute.set_name(name);
  attribute.set_type(::onnx::AttributeProto_AttributeType_INT);
  attribute.set_i(value);
}

}  // namespace quantsim::onnx_export
