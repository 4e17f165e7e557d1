#include "onnx/qdq.h"

#include "onnx/graph_builder.h"

#include <quantsim/affine/functional.h>
#include <quantsim/errors.h>
#include <quantsim/floating/quantizer.h>

#include <ATen/ATen.h>

#include <algorithm>

namespace quantsim::onnx_export {
namespace {

/// How an encoding's scale lies on the tensor for QuantizeLinear/DequantizeLinear-13, whose scale
/// is a scalar or a 1-D tensor along one axis.
struct AxisPlan {
  /// Empty: the nodes apply to the tensor as it is. Otherwise the tensor is viewed as
  /// (-1, C, T) around them (C scales on axis 1; T the elements of one block row after them).
  std::vector<int64_t> view;
  /// The axis of a 1-D scale; -1 for a scalar (per-tensor) scale.
  int64_t axis = -1;
  /// Rank of the tensor the nodes see (for broadcasting a 1-D scale in the float ops).
  int64_t rank = 0;
  /// float32, 0-d (per tensor) or 1-D (along `axis`).
  at::Tensor scale;
  /// float32, the scale's shape (o of eq. (1), integers).
  at::Tensor offset;
};

/// One dim of the tensor as the encoding sees it: its size (-1 unknown) and the number of scales
/// along it (1 or the size).
struct ViewDim {
  int64_t size;
  int64_t scales;
};

AxisPlan plan_axes(const affine::AffineEncoding& encoding, const std::vector<int64_t>& shape,
                   const std::string& name) {
  const at::Tensor scale = encoding.scale().to(at::kFloat);
  const at::Tensor offset = encoding.offset().to(at::kFloat).expand(scale.sizes());
  const auto rank = static_cast<int64_t>(shape.size());
  const int64_t scale_rank = scale.dim();
  const auto& block = encoding.block_size();
  TORCH_CHECK_VALUE(scale_rank <= rank, "ONNX export of '", name, "': scale of shape ",
                    scale.sizes(), " does not fit a tensor of rank ", rank);
  const auto mismatch = [&] {
    QS_THROW(c10::ValueError, "ONNX export of '", name, "': scale of shape ", scale.sizes(),
             block.empty() ? "" : c10::str(" with block size ", block), " does not fit shape ",
             c10::IntArrayRef(shape));
  };

  // The tensor's dims; a blockwise encoding splits each dim it covers into (scales, block).
  std::vector<ViewDim> dims;
  const int64_t lead = rank - scale_rank;
  for (int64_t i = 0; i < lead; ++i) dims.push_back({shape[i], 1});
  for (int64_t j = 0; j < scale_rank; ++j) {
    const int64_t size = shape[lead + j];
    const int64_t scales = scale.size(j);
    if (block.empty()) {
      if (scales != 1 && size >= 0 && size != scales) mismatch();
      dims.push_back({scales != 1 ? scales : size, scales});
      continue;
    }
    int64_t block_dim = block[j];
    if (block_dim == -1) {
      if (size < 0 || size % scales != 0) mismatch();
      block_dim = size / scales;
    }
    if (size >= 0 && scales * block_dim != size) mismatch();
    dims.push_back({scales, scales});
    dims.push_back({block_dim, 1});
  }

  std::vector<int64_t> varying;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i].scales > 1) varying.push_back(static_cast<int64_t>(i));
  }
  AxisPlan plan;
  plan.rank = rank;
  if (varying.empty()) {
    plan.scale = scale.reshape({});
    plan.offset = offset.reshape({});
    return plan;
  }
  plan.scale = scale.reshape({-1});
  plan.offset = offset.reshape({-1});
  if (block.empty() && varying.size() == 1) {
    plan.axis = varying[0];
    return plan;
  }
  // Several varying dims: the tensor is viewed as (-1, C, T) with C the elements of the dims from
  // the first varying one to the last, on axis 1. Dims of size > 1 between them along which the
  // scale is constant (the rows of a 2-D block) get the scale repeated along them: the same values
  // per element, so the same arithmetic.
  const int64_t first = varying.front(), last = varying.back();
  std::vector<int64_t> scale_view, expanded;
  for (const ViewDim& dim : dims) scale_view.push_back(dim.scales);
  int64_t channels = 1, trailing = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const bool inner = static_cast<int64_t>(i) >= first && static_cast<int64_t>(i) <= last;
    TORCH_CHECK_VALUE(!inner || dims[i].size >= 0, "ONNX export of '", name, "': scale of shape ",
                      scale.sizes(), " needs dim ", i, " of shape ", c10::IntArrayRef(shape),
                      " to be known");
    expanded.push_back(inner ? dims[i].size : 1);
    if (inner) channels *= dims[i].size;
    if (static_cast<int64_t>(i) > last) {
      TORCH_CHECK_VALUE(dims[i].size >= 0, "ONNX export of '", name, "': scale of shape ",
                        scale.sizes(), " needs the dims of shape ", c10::IntArrayRef(shape),
                        " after its varying ones to be known");
      trailing *= dims[i].size;
    }
  }
  plan.scale = scale.reshape(scale_view).expand(expanded).reshape({-1});
  plan.offset = offset.reshape(scale_view).expand(expanded).reshape({-1});
  plan.view = {-1, channels, trailing};
  plan.axis = 1;
  plan.rank = 3;
  return plan;
}

/// The integer type QuantizeLinear-13 stores the grid and the zero points in: uint8 or int8, or
/// Undefined when they need more than 8 bits.
at::ScalarType storage_type(const affine::AffineEncoding& encoding, const AxisPlan& plan,
                            const std::string& name) {
  TORCH_CHECK_VALUE(plan.scale.isfinite().all().item<bool>() && (plan.scale > 0).all().item<bool>(),
                    "ONNX export of '", name, "': the scale must be positive and finite, got ",
                    plan.scale);
  TORCH_CHECK_VALUE((plan.offset == plan.offset.round()).all().item<bool>(), "ONNX export of '",
                    name, "': the offset must be an integer (a zero point), got ", plan.offset);
  const int64_t qmin = encoding.qmin(), qmax = encoding.qmax();
  TORCH_CHECK_VALUE(qmax - qmin <= 65535, "ONNX export of '", name, "': grid [", qmin, ", ", qmax,
                    "] has more than 2^16 levels (at most 16 bits export exactly)");
  const auto zero_point = -plan.offset;
  const double low = std::min<double>(qmin, zero_point.min().item<double>());
  const double high = std::max<double>(qmax, zero_point.max().item<double>());
  if (low >= 0 && high <= 255) return at::kByte;
  if (low >= -128 && high <= 127) return at::kChar;
  TORCH_CHECK_VALUE(std::abs(low) <= (1 << 24) && std::abs(high) <= (1 << 24), "ONNX export of '",
                    name, "': grid [", qmin, ", ", qmax, "] and zero points ", zero_point,
                    " are not exact in float32");
  return at::ScalarType::Undefined;
}

/// The scale (or offset) of `plan` shaped to broadcast over the tensor the nodes see.
at::Tensor broadcastable(const at::Tensor& values, const AxisPlan& plan) {
  if (plan.axis < 0) return values;
  std::vector<int64_t> shape(plan.rank - plan.axis, 1);
  shape[0] = values.numel();
  return values.reshape(shape);
}

struct Names {
  explicit Names(std::string prefix) : prefix(std::move(prefix)) {}
  std::string operator()(const std::string& what) const { return prefix + "/" + what; }
  std::string prefix;
};

::onnx::NodeProto& add_axis_node(::onnx::GraphProto& graph, const std::string& op_type,
                                 const std::vector<std::string>& inputs, const std::string& output,
                                 const AxisPlan& plan, const std::string& name) {
  ::onnx::NodeProto& node = add_node(graph, op_type, inputs, {output}, name);
  if (plan.axis >= 0) set_attribute(node, "axis", plan.axis);
  return node;
}

/// Appends Reshape(`input`) to plan.view; returns the viewed tensor's name.
std::string add_view(::onnx::GraphProto& graph, const std::string& input, const AxisPlan& plan,
                     const Names& names) {
  add_initializer(graph, at::tensor(plan.view, at::kLong), names("view_shape"));
  add_node(graph, "Reshape", {input, names("view_shape")}, {names("viewed")}, names("view"));
  return names("viewed");
}

/// The 0-d bounds of the grid in `type`.
void add_grid_bounds(::onnx::GraphProto& graph, const affine::AffineEncoding& encoding,
                     at::ScalarType type, const Names& names) {
  add_initializer(graph, at::scalar_tensor(encoding.qmin(), at::kDouble).to(type), names("qmin"));
  add_initializer(graph, at::scalar_tensor(encoding.qmax(), at::kDouble).to(type), names("qmax"));
}

bool grid_is_storage_range(const affine::AffineEncoding& encoding, at::ScalarType storage) {
  return storage == at::kByte ? encoding.qmin() == 0 && encoding.qmax() == 255
                              : encoding.qmin() == -128 && encoding.qmax() == 127;
}

/// Which of eq. (1)-(3) a call appends.
enum class Stage { kQuantize, kDequantize, kQuantizeDequantize };

void append_affine(::onnx::GraphProto& graph, const std::string& input, const std::string& output,
                   const affine::AffineEncoding& encoding, const std::vector<int64_t>& input_shape,
                   const std::string& name, Stage stage) {
  const Names names(name);
  const AxisPlan plan = plan_axes(encoding, input_shape, name);
  const at::ScalarType storage = storage_type(encoding, plan, name);
  const std::string viewed = plan.view.empty() ? input : add_view(graph, input, plan, names);
  const std::string result = plan.view.empty() ? output : names("result");
  const bool quantize = stage != Stage::kDequantize;
  const bool dequantize = stage != Stage::kQuantize;

  if (storage != at::ScalarType::Undefined) {
    add_initializer(graph, plan.scale, names("scale"));
    add_initializer(graph, (-plan.offset).to(storage), names("zero_point"));
    std::string quantized = viewed;
    if (quantize) {
      add_axis_node(graph, "QuantizeLinear", {viewed, names("scale"), names("zero_point")},
                    names("quantized"), plan, names("quantize"));
      quantized = names("quantized");
      if (!grid_is_storage_range(encoding, storage)) {
        // The storage type's saturation is the wider clamp; Clip narrows it to eq. (1)'s grid.
        add_grid_bounds(graph, encoding, storage, names);
        add_node(graph, "Clip", {quantized, names("qmin"), names("qmax")}, {names("clipped")},
                 names("clip"));
        quantized = names("clipped");
      }
    } else {
      // quantsim's quantized tensors hold the grid integers as floats: exact in the storage type.
      ::onnx::NodeProto& cast =
          add_node(graph, "Cast", {viewed}, {names("integers")}, names("to_integers"));
      set_attribute(cast, "to", onnx_type(storage));
      quantized = names("integers");
    }
    if (dequantize) {
      add_axis_node(graph, "DequantizeLinear", {quantized, names("scale"), names("zero_point")},
                    result, plan, names("dequantize"));
    } else {
      ::onnx::NodeProto& cast = add_node(graph, "Cast", {quantized}, {result}, names("to_float"));
      set_attribute(cast, "to", ::onnx::TensorProto_DataType_FLOAT);
    }
  } else {
    // Eq. (1)-(3) one float32 operation at a time, in quantsim's order: a true division, round
    // half to even (ONNX Round), the offset subtracted after rounding, the clamp, then (q + o) * s.
    add_initializer(graph, broadcastable(plan.scale, plan), names("scale"));
    add_initializer(graph, broadcastable(plan.offset, plan), names("offset"));
    std::string quantized = viewed;
    if (quantize) {
      add_grid_bounds(graph, encoding, at::kFloat, names);
      add_node(graph, "Div", {viewed, names("scale")}, {names("scaled")}, names("divide"));
      add_node(graph, "Round", {names("scaled")}, {names("rounded")}, names("round"));
      add_node(graph, "Sub", {names("rounded"), names("offset")}, {names("shifted")},
               names("subtract_offset"));
      quantized = dequantize ? names("quantized") : result;
      add_node(graph, "Clip", {names("shifted"), names("qmin"), names("qmax")}, {quantized},
               names("clip"));
    }
    if (dequantize) {
      add_node(graph, "Add", {quantized, names("offset")}, {names("unshifted")},
               names("add_offset"));
      add_node(graph, "Mul", {names("unshifted"), names("scale")}, {result}, names("multiply"));
    }
  }
  if (!plan.view.empty()) {
    add_node(graph, "Shape", {input}, {names("input_shape")}, names("shape"));
    add_node(graph, "Reshape", {result, names("input_shape")}, {output}, names("unview"));
  }
}

}  // namespace

void append_quantize_dequantize(::onnx::GraphProto& graph, const std::string& input,
                                const std::string& output, const affine::AffineEncoding& encoding,
                                const std::vector<int64_t>& input_shape, const std::string& name) {
  append_affine(graph, input, output, encoding, input_shape, name, Stage::kQuantizeDequantize);
}

void append_quantize(::onnx::GraphProto& graph, const std::string& input, const std::string& output,
                     const affine::AffineEncoding& encoding,
                     const std::vector<int64_t>& input_shape, const std::string& name) {
  append_affine(graph, input, output, encoding, input_shape, name, Stage::kQuantize);
}

void append_dequantize(::onnx::GraphProto& graph, const std::string& input,
                       const std::string& output, const affine::AffineEncoding& encoding,
                       const std::vector<int64_t>& input_shape, const std::string& name) {
  append_affine(graph, input, output, encoding, input_shape, name, Stage::kDequantize);
}

void append_quantized_weight(::onnx::GraphProto& graph, const at::Tensor& weight,
                             const std::string& output, const affine::AffineEncoding& encoding,
                             const std::string& name) {
  const Names names(name);
  const at::Tensor w = weight.detach().to(at::kFloat);
  const AxisPlan plan = plan_axes(encoding, w.sizes().vec(), name);
  const at::ScalarType storage = storage_type(encoding, plan, name);
  // Eq. (1) by quantsim itself: the initializer holds exactly the grid integers it simulates.
  at::Tensor quantized =
      affine::quantize(w, encoding.scale().to(at::kFloat), encoding.offset().to(at::kFloat),
                       encoding.qmin(), encoding.qmax(), encoding.block_size());
  if (!plan.view.empty()) quantized = quantized.reshape(plan.view);
  add_initializer(graph, plan.scale, names("scale"));
  std::vector<std::string> dequantize_inputs = {names("quantized"), names("scale")};
  if (storage != at::ScalarType::Undefined) {
    add_initializer(graph, quantized.to(storage), names("quantized"));
    add_initializer(graph, (-plan.offset).to(storage), names("zero_point"));
    dequantize_inputs.push_back(names("zero_point"));
  } else {
    // DequantizeLinear-13 reads int32 without a zero point: store q + o = q - zero_point, exact
    // in int32 and float32 for grids of at most 2^16 levels.
    add_initializer(graph, (quantized + broadcastable(plan.offset, plan)).to(at::kInt),
                    names("quantized"));
  }
  const std::string result = plan.view.empty() ? output : names("dequantized");
  add_axis_node(graph, "DequantizeLinear", dequantize_inputs, result, plan, names("dequantize"));
  if (!plan.view.empty()) {
    add_initializer(graph, at::tensor(w.sizes().vec(), at::kLong), names("weight_shape"));
    add_node(graph, "Reshape", {result, names("weight_shape")}, {output}, names("unview"));
  }
}

void append_float_quantize_dequantize(::onnx::GraphProto& graph, const std::string& input,
                                      const std::string& output,
                                      const floating::FloatFormat& format, bool has_maxval,
                                      const std::string& name) {
  const bool castable = (format.is_float16() || format.is_bfloat16()) && !has_maxval;
  TORCH_CHECK_VALUE(castable, "ONNX export of '", name, "': float format ",
                    format.name.empty()
                        ? c10::str("E", format.exponent_bits, "M", format.mantissa_bits)
                        : format.name,
                    has_maxval ? " with a calibrated maxval" : "",
                    " has no ONNX counterpart (float16 and bfloat16 without a maxval export as a "
                    "Cast pair)");
  const Names names(name);
  ::onnx::NodeProto& narrow = add_node(graph, "Cast", {input}, {names("narrowed")}, names("cast"));
  set_attribute(narrow, "to",
                format.is_float16() ? ::onnx::TensorProto_DataType_FLOAT16
                                    : ::onnx::TensorProto_DataType_BFLOAT16);
  ::onnx::NodeProto& widen =
      add_node(graph, "Cast", {names("narrowed")}, {output}, names("cast_back"));
  set_attribute(widen, "to", ::onnx::TensorProto_DataType_FLOAT);
}

namespace {

/// The quantizer's affine encoding, or null for a float quantizer; c10::Error when it has none
/// to export.
std::shared_ptr<affine::AffineEncoding> exportable_encoding(const QuantizerBase& quantizer,
                                                            const std::string& name) {
  TORCH_CHECK(!quantizer.is_calibrating(), "ONNX export of '", name,
              "': the quantizer is calibrating (inside compute_encodings); export after the "
              "calibration scope closes");
  TORCH_CHECK(quantizer.is_initialized(), "ONNX export of '", name,
              "': the quantizer is not initialized (calibrate it, set its range or load its "
              "encodings)");
  if (dynamic_cast<const floating::FloatQuantizeDequantizeImpl*>(&quantizer) != nullptr) {
    return nullptr;
  }
  auto encoding = std::dynamic_pointer_cast<affine::AffineEncoding>(quantizer.get_encoding());
  TORCH_CHECK(encoding != nullptr, "ONNX export of '", name,
              "': the quantizer has no affine encoding");
  return encoding;
}

}  // namespace

void append_quantizer(::onnx::GraphProto& graph, const std::string& input,
                      const std::string& output, const QuantizerBase& quantizer,
                      const std::vector<int64_t>& input_shape, const std::string& name) {
  const auto encoding = exportable_encoding(quantizer, name);
  if (encoding != nullptr) {
    append_quantize_dequantize(graph, input, output, *encoding, input_shape, name);
    return;
  }
  const auto& floating = dynamic_cast<const floating::FloatQuantizeDequantizeImpl&>(quantizer);
  append_float_quantize_dequantize(graph, input, output, floating.format(),
                                   floating.maxval.defined(), name);
}

void append_quantized_weight(::onnx::GraphProto& graph, const at::Tensor& weight,
                             const std::string& output, const QuantizerBase& quantizer,
                             const std::string& name) {
  const auto encoding = exportable_encoding(quantizer, name);
  if (encoding != nullptr) {
    append_quantized_weight(graph, weight, output, *encoding, name);
    return;
  }
  const auto& floating = dynamic_cast<const floating::FloatQuantizeDequantizeImpl&>(quantizer);
  const std::string stored = name + "/float";
  // Checked before the initializer is added, so that a refused format leaves the graph as it was.
  ::onnx::GraphProto nodes;
  append_float_quantize_dequantize(nodes, stored, output, floating.format(),
                                   floating.maxval.defined(), name);
  add_initializer(graph, weight.detach().to(at::kFloat), stored);
  for (const auto& node : nodes.node()) *graph.add_node() = node;
}

}  // namespace quantsim::onnx_export
