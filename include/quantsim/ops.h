#pragma once

/// The `quantsim` operator library: the quantizers as dispatcher operators (docs/quantization.md
/// §2-§7), registered with `TORCH_LIBRARY(quantsim, m)` when libquantsim is linked.
///
/// Schemas (TorchScript and Python reach them as `torch.ops.quantsim.<name>`):
///
///     quantize(Tensor x, Tensor scale, Tensor offset, int qmin, int qmax, int[] block_size=[])
///     dequantize(Tensor q, Tensor scale, Tensor offset, int[] block_size=[])
///     quantize_dequantize(Tensor x, Tensor scale, Tensor offset, int qmin, int qmax,
///                         int[] block_size=[])
///     float_quantize_dequantize(Tensor x, int exponent_bits, int mantissa_bits, int? bias,
///                               float format_maxval, Tensor? maxval=None)
///
/// Each kernel is the public functional API (quantsim::affine::quantize..., and
/// quantsim::floating::quantize_dequantize), registered as CompositeImplicitAutograd: autograd
/// comes from the functional API's own torch::autograd::Function, so gradients are the
/// functional API's bit for bit, and libtorch's tracer records each call as exactly one
/// `quantsim::<name>` node (its Tracer fallback records the op and runs the kernel with tracing
/// off). Per-tensor, per-channel on any axis and blockwise are the scale's shape plus
/// `block_size`; LPBQ is blockwise quantize_dequantize with its derived scale; a float format
/// is (exponent_bits, mantissa_bits, bias of an OCP format or None, its largest value).
///
/// The functions below call the operators through the dispatcher. Quantizer modules call them
/// only while tracing (`tracing()`), so that a traced model holds one node per quantizer and the
/// hot path stays the direct functional call:
///
///     if (quantsim::ops::tracing()) return quantsim::ops::quantize_dequantize(x, s, o, 0, 255);
///     return quantsim::affine::quantize_dequantize(x, s, o, 0, 255);

#include <quantsim/floating/format.h>

#include <ATen/core/Tensor.h>
#include <ATen/core/symbol.h>

#include <cstdint>
#include <vector>

namespace quantsim::ops {

/// True while libtorch's tracer records a graph on this thread (torch::jit::tracer::isTracing).
bool tracing();

/// quantsim::quantize through the dispatcher; the values of quantsim::affine::quantize.
at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                    int64_t qmin, int64_t qmax, const std::vector<int64_t>& block_size = {});

/// quantsim::dequantize through the dispatcher; the values of quantsim::affine::dequantize.
at::Tensor dequantize(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
                      const std::vector<int64_t>& block_size = {});

/// quantsim::quantize_dequantize through the dispatcher; the values of
/// quantsim::affine::quantize_dequantize.
at::Tensor quantize_dequantize(const at::Tensor& x, const at::Tensor& scale,
                               const at::Tensor& offset, int64_t qmin, int64_t qmax,
                               const std::vector<int64_t>& block_size = {});

/// quantsim::float_quantize_dequantize through the dispatcher; the values of
/// quantsim::floating::quantize_dequantize(x, format, maxval).
at::Tensor float_quantize_dequantize(const at::Tensor& x, const floating::FloatFormat& format,
                                     const at::Tensor& maxval = {});

/// While tracing, marks the node that computed `output` (the quantsim:: operator just called) as
/// produced by `quantizer` (the QuantizerBase, as `const void*`: this layer does not know the
/// type), in the node's int attribute quantizer_attribute(); no-op otherwise. The exporter maps
/// the address to the quantizer's module path, so that every quantizer node is identified, also
/// one that reads no parameter (a float16/bfloat16 cast has no maxval). Returns `output`.
///
///     if (ops::tracing()) return ops::traced_by(ops::float_quantize_dequantize(x, f), this);
at::Tensor traced_by(at::Tensor output, const void* quantizer);

/// The attribute traced_by sets: `quantsim_quantizer` (an int holding the address).
c10::Symbol quantizer_attribute();

/// The float format a float_quantize_dequantize node's arguments describe (the inverse of the
/// encoding float_quantize_dequantize gives the operator; the name is not kept).
floating::FloatFormat float_format(int64_t exponent_bits, int64_t mantissa_bits,
                                   c10::optional<int64_t> bias, double format_maxval);

}  // namespace quantsim::ops

/// Defined next to the TORCH_LIBRARY registration. libquantsim's link interface passes
/// `--undefined=quantsim_ops_library` to the linker, so an executable linking the static library
/// always pulls in that object file and its registration (a static library's member is otherwise
/// linked only when one of its symbols is referenced, and the registration is a static
/// initializer nobody references).
extern "C" const char quantsim_ops_library[];
