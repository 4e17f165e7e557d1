#pragma once

/// quantsim's quantizers as ONNX nodes (opset 17, docs/onnx.md §2): for one tensor of a graph, the
/// QuantizeLinear / DequantizeLinear nodes (and their initializers) that compute exactly what
/// quantsim's quantizer computes, eq. (1)-(3) of docs/quantization.md with zero_point = -offset.
///
/// Every granularity of an AffineEncoding (per tensor; per channel on any axis; blockwise and any
/// other broadcast scale; LPBQ through its final block scales) and every grid of at most 2^16
/// levels:
/// - grids (and zero points) that fit uint8 or int8: QuantizeLinear -> [Clip to the grid when it
///   is narrower than the storage type] -> DequantizeLinear, per-axis when the scale varies along
///   one axis; other encodings view the tensor as (-1, C, T) around them (Reshape), C the
///   elements from the first dim along which the scale varies to the last, T those after (the
///   scale is repeated along the dims in between where it is constant);
/// - wider grids (9-16 bits): QuantizeLinear-13 has no 16-bit output, so the same arithmetic in
///   float32 ops, Div -> Round -> Sub(o) -> Clip(qmin, qmax) -> Add(o) -> Mul, which is eq. (1)-(3)
///   operation by operation.
/// Weights become integer initializers (uint8/int8 with their zero points; int32 holding q + o
/// for wider grids) followed by DequantizeLinear. float16/bfloat16 quantizers are Cast pairs.
///
///     onnx::GraphProto graph;
///     append_quantize_dequantize(graph, "x", "x_qdq", *encoding, {-1, 16, 8, 8}, "conv1.input_0");
///     append_quantized_weight(graph, conv->weight, "conv1.weight_qdq", *weight_encoding,
///                             "conv1.weight");

#include <quantsim/affine/encoding.h>
#include <quantsim/floating/format.h>
#include <quantsim/quantizer_base.h>

#include <ATen/core/Tensor.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace quantsim::onnx_export {

/// Appends nodes computing `output` = quantize_dequantize(`input`) with `encoding` (eq. (3)) for a
/// float32 tensor. `input_shape` is the input's shape with -1 for dims unknown at export (the
/// batch): per-tensor and per-channel encodings need only the rank; a blockwise encoding needs
/// the dims after its varying ones. New node and initializer names start with `name` + "/".
///
/// c10::ValueError naming `name` for an offset that is not an integer, a scale that is not
/// positive and finite, a grid wider than 2^16 levels, a scale that does not fit the shape, or
/// an unknown dim that the view of a blockwise scale needs.
void append_quantize_dequantize(::onnx::GraphProto& graph, const std::string& input,
                                const std::string& output, const affine::AffineEncoding& encoding,
                                const std::vector<int64_t>& input_shape, const std::string& name);

/// Appends nodes computing `output` = quantize(`input`) (eq. (1)): the grid integers q as float32,
/// as quantsim's quantize returns them (QuantizeLinear [-> Clip] -> Cast to float, or the float
/// ops of eq. (1)). Arguments and errors as append_quantize_dequantize.
void append_quantize(::onnx::GraphProto& graph, const std::string& input, const std::string& output,
                     const affine::AffineEncoding& encoding,
                     const std::vector<int64_t>& input_shape, const std::string& name);

/// Appends nodes computing `output` = dequantize(`input`) (eq. (2)) of float32 grid integers (the
/// output of quantize: values on the grid; Cast to the storage type -> DequantizeLinear, or
/// Add(o) -> Mul(s)). Arguments and errors as append_quantize_dequantize.
void append_dequantize(::onnx::GraphProto& graph, const std::string& input,
                       const std::string& output, const affine::AffineEncoding& encoding,
                       const std::vector<int64_t>& input_shape, const std::string& name);

/// Adds `weight` quantized with `encoding` as an integer initializer and appends the nodes that
/// dequantize it into `output` (float32, `weight`'s shape), equal to
/// quantize_dequantize(weight) bit for bit. Errors as append_quantize_dequantize.
void append_quantized_weight(::onnx::GraphProto& graph, const at::Tensor& weight,
                             const std::string& output, const affine::AffineEncoding& encoding,
                             const std::string& name);

/// Appends the float quantizer of `format` as a Cast pair (float32 -> float16/bfloat16 ->
/// float32: round to nearest even, as the quantizer). Only float16 and bfloat16 without a
/// calibrated maxval have one: any other format, or `has_maxval`, is a c10::ValueError naming the
/// format and `name`.
void append_float_quantize_dequantize(::onnx::GraphProto& graph, const std::string& input,
                                      const std::string& output,
                                      const floating::FloatFormat& format, bool has_maxval,
                                      const std::string& name);

/// The quantize-dequantize of a quantizer module: append_quantize_dequantize with an affine
/// quantizer's encoding (QuantizeDequantize, GroupedBlockQuantizeDequantize through its final
/// scales), append_float_quantize_dequantize for a FloatQuantizeDequantize. c10::Error naming
/// `name` for a quantizer that is not initialized or is calibrating (inside compute_encodings);
/// otherwise the errors of those functions.
void append_quantizer(::onnx::GraphProto& graph, const std::string& input,
                      const std::string& output, const QuantizerBase& quantizer,
                      const std::vector<int64_t>& input_shape, const std::string& name);

/// A weight quantized by a quantizer module: append_quantized_weight with an affine quantizer's
/// encoding; for a float16/bfloat16 FloatQuantizeDequantize, the float32 weight as an initializer
/// and its Cast pair. Errors as append_quantizer.
void append_quantized_weight(::onnx::GraphProto& graph, const at::Tensor& weight,
                             const std::string& output, const QuantizerBase& quantizer,
                             const std::string& name);

}  // namespace quantsim::onnx_export
