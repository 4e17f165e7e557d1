#pragma once

// The affine quantizer's forward in one step (docs/quantization.md §4, §6): quantize-dequantize
// with the encoding its learnable range defines, without the small tensor ops and autograd nodes
// of computing eq. (4)-(5) on every call. Used by AffineQuantizerBase when the call qualifies (see
// AffineQuantizerBase::direct_quantize_dequantize); results are bit-identical to the composed
// path.

#include <quantsim/affine/grid.h>

#include <ATen/core/Tensor.h>

namespace quantsim::affine::detail {

/// Eq. (3) of float32 `x` with `scale`, `offset`: eq. (4)-(5) of (`min`, `max`), float32,
/// contiguous, of the range's shape (expandable to x). Without gradients to compute this is the
/// fused kernel alone; otherwise one autograd node whose backward gives x its straight-through
/// gradient (eq. (8)) and min/max the chain rule of eq. (9)-(10) through eq. (4)-(5), exactly as
/// autograd over the composed ops would.
at::Tensor learned_range_quantize_dequantize(const at::Tensor& x, const at::Tensor& min,
                                             const at::Tensor& max, const at::Tensor& scale,
                                             const at::Tensor& offset, Grid grid, bool symmetric);

}  // namespace quantsim::affine::detail
