#pragma once

// CPU kernels of the affine ops (docs/quantization.md §2, §6), in two implementations:
//
//  * `*_reference`: composed torch ops that follow the equations line by line. NORMATIVE: every
//    result of the fused kernels must equal it bit-exactly (element-wise outputs) or up to the
//    order of a double-precision summation (the reduced scale/offset gradients).
//  * `*_fused`: one pass over memory, vectorised, multi-threaded with at::parallel_for.
//
// Shared preconditions (the ops layer establishes them): `x` (or `q`), `scale`, `offset` have the
// same floating dtype (the internal dtype of §5); `x` is non-overlapping and dense; `scale` and
// `offset` are contiguous, of one shape, and expandable to `x` (§3); `grid` is the clamp range.
// Outputs have x's sizes and strides.

#include <quantsim/affine/grid.h>

#include <ATen/core/Tensor.h>

#include <array>

namespace quantsim::kernels {

/// Gradients of one affine op; members are undefined unless requested.
struct AffineGrads {
  at::Tensor input;   ///< shape and strides of the op's input
  at::Tensor scale;   ///< shape of `scale`
  at::Tensor offset;  ///< shape of `offset`
};

/// Which of (input, scale, offset) need a gradient.
using GradMask = std::array<bool, 3>;

// q = clamp(round(x / s) - o, qmin, qmax)                                            eq. (1)
at::Tensor quantize_fused(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                          affine::Grid grid);
at::Tensor quantize_reference(const at::Tensor& x, const at::Tensor& scale,
                              const at::Tensor& offset, affine::Grid grid);

// x' = (q + o) * s                                                                   eq. (2)
at::Tensor dequantize_fused(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset);
at::Tensor dequantize_reference(const at::Tensor& q, const at::Tensor& scale,
                                const at::Tensor& offset);

// x' = (clamp(round(x / s) - o, qmin, qmax) + o) * s                                eq. (3)
at::Tensor quantize_dequantize_fused(const at::Tensor& x, const at::Tensor& scale,
                                     const at::Tensor& offset, affine::Grid grid);
at::Tensor quantize_dequantize_reference(const at::Tensor& x, const at::Tensor& scale,
                                         const at::Tensor& offset, affine::Grid grid);

// Backward formulas (8)-(10), with the mask m = [qmin <= round(x/s) - o <= qmax] recomputed from x
// (nothing is saved by the forward but its inputs). `grad` has x's sizes (any strides).
AffineGrads quantize_backward_fused(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& scale, const at::Tensor& offset,
                                    affine::Grid grid, GradMask needs);
AffineGrads quantize_backward_reference(const at::Tensor& grad, const at::Tensor& x,
                                        const at::Tensor& scale, const at::Tensor& offset,
                                        affine::Grid grid, GradMask needs);
AffineGrads dequantize_backward_fused(const at::Tensor& grad, const at::Tensor& q,
                                      const at::Tensor& scale, const at::Tensor& offset,
                                      GradMask needs);
AffineGrads dequantize_backward_reference(const at::Tensor& grad, const at::Tensor& q,
                                          const at::Tensor& scale, const at::Tensor& offset,
                                          GradMask needs);
AffineGrads quantize_dequantize_backward_fused(const at::Tensor& grad, const at::Tensor& x,
                                               const at::Tensor& scale, const at::Tensor& offset,
                                               affine::Grid grid, GradMask needs);
AffineGrads quantize_dequantize_backward_reference(const at::Tensor& grad, const at::Tensor& x,
                                                   const at::Tensor& scale,
                                                   const at::Tensor& offset, affine::Grid grid,
                                                   GradMask needs);

// ---- the learnable range (docs/quantization.md eq. (4), (5)) ----------------------------------

/// Gradients of a quantizer's learnable range.
struct RangeGrads {
  at::Tensor min;
  at::Tensor max;
};

// The chain rule from the gradients of the encoding to those of the range it derives from,
//   s = (max - min) / n,   o = ste_round(min / s) - qmin   (o = 0 when symmetric),
// with the op order autograd applies to those composed torch ops (normative reference: autograd
// over AffineQuantizerBase::scale_from / offset_from, tests/affine/learned_range_test.cpp):
//   g_t = g_o;   g_s' = g_s + (-g_t) * ((min / s) / s);   g_d = g_s' / n;
//   g_max = g_d;  g_min = g_t / s + (-g_d)
// float32, element-wise over tensors of one shape; `grad_offset` undefined when symmetric.
RangeGrads range_backward_fused(const at::Tensor& grad_scale, const at::Tensor& grad_offset,
                                const at::Tensor& min, const at::Tensor& scale, int64_t num_steps);

}  // namespace quantsim::kernels
