#pragma once

/// Float quantize-dequantize (docs/quantization.md §7): rounds each element to the nearest value of
/// a floating-point format, as a plain tensor of the input's dtype.

#include <quantsim/floating/format.h>

#include <ATen/core/Tensor.h>

namespace quantsim::floating {

/// Fake-casts `x` to `format` (eq. F2 of format.h, ties to even), saturating at +-maxval.
///
/// `maxval`, when defined, overrides `format.maxval` and rescales the grid (per tensor, or per
/// channel when it broadcasts to x); the reference's IEEE-style formats then take their bias from
/// (F3) in float32 tensor ops, as the reference does with its maxval buffer. Without it the bias
/// is computed in double and rounded once, as the reference's NumPy scalar is, and float16 /
/// bfloat16 are a cast round trip `x.to(dtype).to(x.dtype)` (round to nearest even).
///
/// Gradient: straight-through (identity) where -maxval <= x <= maxval, zero elsewhere and for NaN
/// (the reference's is zero everywhere; docs/differences.md). The cast round trip has the identity
/// gradient, as in the reference. float16/bfloat16 inputs are computed in float32 and cast back.
///
///     auto y = quantsim::floating::quantize_dequantize(x, FloatFormat::from_name("E4M3FN"));
at::Tensor quantize_dequantize(const at::Tensor& x, const FloatFormat& format,
                               const at::Tensor& maxval = {});

}  // namespace quantsim::floating
