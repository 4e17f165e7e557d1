// The `quantsim` operator library (include/quantsim/ops.h): registration and the dispatching
// calls the quantizer modules use while tracing.

#include <quantsim/affine/functional.h>
#include <quantsim/floating/functional.h>
#include <quantsim/ops.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/library.h>

#include <cstdint>
#include <cstring>
#include <utility>

extern "C" const char quantsim_ops_library[] = "quantsim";

namespace quantsim::ops {
namespace {

at::Tensor quantize_kernel(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                           int64_t qmin, int64_t qmax, at::IntArrayRef block_size) {
  return affine::quantize(x, scale, offset, qmin, qmax, block_size.vec());
}

at::Tensor dequantize_kernel(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
                             at::IntArrayRef block_size) {
  return affine::dequantize(q, scale, offset, block_size.vec());
}

at::Tensor quantize_dequantize_kernel(const at::Tensor& x, const at::Tensor& scale,
                                      const at::Tensor& offset, int64_t qmin, int64_t qmax,
                                      at::IntArrayRef block_size) {
  return affine::quantize_dequantize(x, scale, offset, qmin, qmax, block_size.vec());
}

at::Tensor float_quantize_dequantize_kernel(const at::Tensor& x, int64_t exponent_bits,
                                            int64_t mantissa_bits, c10::optional<int64_t> bias,
                                            double format_maxval,
                                            const c10::optional<at::Tensor>& maxval) {
  return floating::quantize_dequantize(
      x, float_format(exponent_bits, mantissa_bits, bias, format_maxval),
      maxval.has_value() ? *maxval : at::Tensor());
}

template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace

// m.def with a kernel registers it as CompositeImplicitAutograd: it runs above autograd (the
// functional API records its own torch::autograd::Function), and the Tracer key, not covered by
// that alias, falls back to libtorch's generic tracing kernel, which records one node and runs
// the kernel with tracing off.
TORCH_LIBRARY(quantsim, m) {
  m.def(
      "quantize(Tensor x, Tensor scale, Tensor offset, int qmin, int qmax, int[] block_size=[]) "
      "-> Tensor",
      quantize_kernel);
  m.def("dequantize(Tensor q, Tensor scale, Tensor offset, int[] block_size=[]) -> Tensor",
        dequantize_kernel);
  m.def(
      "quantize_dequantize(Tensor x, Tensor scale, Tensor offset, int qmin, int qmax, "
      "int[] block_size=[]) -> Tensor",
      quantize_dequantize_kernel);
  m.def(
      "float_quantize_dequantize(Tensor x, int exponent_bits, int mantissa_bits, int? bias, "
      "float format_maxval, Tensor? maxval=None) -> Tensor",
      float_quantize_dequantize_kernel);
}

bool tracing() { return torch::jit::tracer::isTracing(); }

c10::Symbol quantizer_attribute() {
  static const auto attribute = c10::Symbol::attr("quantsim_quantizer");
  return attribute;
}

at::Tensor traced_by(at::Tensor output, const void* quantizer) {
  if (!tracing()) return output;
  auto* node = torch::jit::tracer::getValueTrace(output)->node();
  if (std::strncmp(node->kind().toQualString(), "quantsim::", 10) == 0) {
    node->i_(quantizer_attribute(), static_cast<int64_t>(reinterpret_cast<intptr_t>(quantizer)));
  }
  return output;
}

at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                    int64_t qmin, int64_t qmax, const std::vector<int64_t>& block_size) {
  static const auto op = typed_op<decltype(quantize_kernel)>("quantsim::quantize");
  return op.call(x, scale, offset, qmin, qmax, block_size);
}

at::Tensor dequantize(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
                      const std::vector<int64_t>& block_size) {
  static const auto op = typed_op<decltype(dequantize_kernel)>("quantsim::dequantize");
  return op.call(q, scale, offset, block_size);
}

at::Tensor quantize_dequantize(const at::Tensor& x, const at::Tensor& scale,
                               const at::Tensor& offset, int64_t qmin, int64_t qmax,
                               const std::vector<int64_t>& block_size) {
  static const auto op =
      typed_op<decltype(quantize_dequantize_kernel)>("quantsim::quantize_dequantize");
  return op.call(x, scale, offset, qmin, qmax, block_size);
}

at::Tensor float_quantize_dequantize(const at::Tensor& x, const floating::FloatFormat& format,
                                     const at::Tensor& maxval) {
  static const auto op =
      typed_op<decltype(float_quantize_dequantize_kernel)>("quantsim::float_quantize_dequantize");
  return op.call(x, format.exponent_bits, format.mantissa_bits, format.bias, format.maxval,
                 maxval.defined() ? c10::optional<at::Tensor>(maxval) : c10::nullopt);
}

floating::FloatFormat float_format(int64_t exponent_bits, int64_t mantissa_bits,
                                   c10::optional<int64_t> bias, double format_maxval) {
  floating::FloatFormat format;
  format.exponent_bits = exponent_bits;
  format.mantissa_bits = mantissa_bits;
  format.bias = bias;
  format.maxval = format_maxval;
  return format;
}

}  // namespace quantsim::ops
