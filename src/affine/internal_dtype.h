#pragma once

// The internal dtype of quantize_dequantize (docs/quantization.md §5), shared by the functional op
// and the quantizer modules' direct path (affine/learned_range.h).

#include <c10/core/ScalarType.h>

#include <cstdint>

namespace quantsim::affine::detail {

/// The input's dtype, widened to float32, then float64, until it resolves the grid [qmin, qmax]
/// (every grid value and its neighbours exact, and an epsilon fine enough for the grid's size).
at::ScalarType quantize_dequantize_internal_dtype(at::ScalarType input, int64_t qmin, int64_t qmax);

}  // namespace quantsim::affine::detail
