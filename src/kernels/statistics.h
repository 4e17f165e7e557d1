#pragma once

// CPU kernels of calibration statistics (spec §2.2, §2.3), in two implementations:
//  * `*_reference`: composed torch ops (one slice at a time where needed). NORMATIVE: the fused
//    kernels must match it exactly (min/max bit-exact, histogram counts equal).
//  * `*_fused`: one pass over memory, vectorised, multi-threaded, per-thread partial results.
//
// "Per parameter": `param_sizes` is an analyzer shape, left-padded with 1s to x's rank and
// expandable to x's shape; parameter p's slice is the set of elements that broadcast to it
// (the reduction runs over the dims where the padded shape is 1). c10::Error if not expandable.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace quantsim::kernels {

/// Per-parameter extremes of one tensor, each a tensor of `param_sizes` in x's dtype.
struct MinMaxStats {
  at::Tensor min, max;                ///< over non-NaN values (+-inf included); +inf/-inf if none
  at::Tensor finite_min, finite_max;  ///< over finite values only; +inf/-inf if none
  int64_t nan_count = 0;              ///< NaN elements in the whole tensor
};

/// c10::Error unless `param_sizes` is expandable to x's shape.
void check_statistics_shape(const at::Tensor& x, at::IntArrayRef param_sizes);

MinMaxStats min_max_fused(const at::Tensor& x, at::IntArrayRef param_sizes);
MinMaxStats min_max_reference(const at::Tensor& x, at::IntArrayRef param_sizes);

/// Per-parameter histograms: a (P, num_bins) float64 tensor of counts, P = numel(param_sizes),
/// row p for parameter p (row-major over param_sizes). A value v in [lo[p], hi[p]] goes to bin
/// trunc((v - lo) / (hi - lo) * num_bins), computed in x's type (float32 for float16/bfloat16),
/// the right edge into the last bin: torch.histc's CPU arithmetic. Values below lo[p] (-inf
/// included) count in bin 0, values above hi[p] (+inf included) in the last bin; NaN is skipped.
/// `lo`, `hi`: tensors of `param_sizes` in x's dtype with lo < hi elementwise.
at::Tensor histogram_fused(const at::Tensor& x, at::IntArrayRef param_sizes, const at::Tensor& lo,
                           const at::Tensor& hi, int64_t num_bins);
at::Tensor histogram_reference(const at::Tensor& x, at::IntArrayRef param_sizes,
                               const at::Tensor& lo, const at::Tensor& hi, int64_t num_bins);

}  // namespace quantsim::kernels
