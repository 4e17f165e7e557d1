#pragma once

/// Autograd-aware affine quantization functions (docs/quantization.md §2-§6).
///
/// With scale s, offset o (AIMET convention: the offset is *subtracted*, o = -zero_point) and the
/// integer grid [qmin, qmax] (docs/quantization.md, eq. 1–3):
///
///     quantize(x)            = clamp(round(x / s) - o, qmin, qmax)          (1)
///     dequantize(q)          = (q + o) * s                                   (2)
///     quantize_dequantize(x) = dequantize(quantize(x))                       (3)
///
/// `round` is round-half-to-even. The result has x's dtype, shape and memory format. Arithmetic
/// runs in the internal dtype of §5 (x's dtype, widened to float32/float64 when x's type cannot
/// resolve the grid). `scale` and `offset` broadcast to x right-aligned, each dim 1 or equal to
/// x's (per-tensor `{}`, per-channel `{C, 1}`, ...); with a non-empty `block_size` (one entry per
/// scale dim, -1 = whole dim / scale dim) they apply to blocks of x's last dims (§3).
///
/// Gradients (§6) flow to x (straight-through inside the grid), scale and offset, each only when
/// it requires grad.
///
/// Example:
///     auto y = quantsim::affine::quantize_dequantize(x, torch::tensor(0.1f), torch::tensor(0.f),
///                                                    -128, 127);

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace quantsim::affine {

/// Grid integers of x as a tensor of x's dtype; eq. (1).
at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                    int64_t qmin, int64_t qmax, const std::vector<int64_t>& block_size = {});

/// Real values of grid integers q; eq. (2).
at::Tensor dequantize(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
                      const std::vector<int64_t>& block_size = {});

/// Fake quantization of x; eq. (3), bit-identical to dequantize(quantize(x)) in the same dtype.
at::Tensor quantize_dequantize(const at::Tensor& x, const at::Tensor& scale,
                               const at::Tensor& offset, int64_t qmin, int64_t qmax,
                               const std::vector<int64_t>& block_size = {});

/// Round half to even in the forward pass, identity gradient (the `ste_round` of
/// docs/quantization.md eq. (5)).
at::Tensor ste_round(const at::Tensor& x);

/// Shapes for blockwise application (docs/quantization.md §3): x viewed as
/// (*lead, S0, B0, S1, B1, ...) and the scale as (S0, 1, S1, 1, ...). Throws c10::Error when
/// block_size does not fit.
struct BlockShapes {
  std::vector<int64_t> input;
  std::vector<int64_t> scale;
};
BlockShapes block_shapes(at::IntArrayRef input_sizes, at::IntArrayRef scale_sizes,
                         const std::vector<int64_t>& block_size);

}  // namespace quantsim::affine
