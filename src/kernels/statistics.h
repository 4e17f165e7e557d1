#pragma once

// CPU kernels of calibration statistics (docs/quantization.md §8), in two implementations:
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
///
/// `active` (fused kernel only; undefined: every parameter): P booleans, the parameters to count;
/// the rows of the others stay 0 and their elements are not binned (re-binning only the
/// histograms whose range grew, docs/quantization.md §8.3).
at::Tensor histogram_fused(const at::Tensor& x, at::IntArrayRef param_sizes, const at::Tensor& lo,
                           const at::Tensor& hi, int64_t num_bins, const at::Tensor& active = {});
at::Tensor histogram_reference(const at::Tensor& x, at::IntArrayRef param_sizes,
                               const at::Tensor& lo, const at::Tensor& hi, int64_t num_bins);

/// min_max_fused(x, param_sizes) and histogram_fused(x, param_sizes, lo, hi, num_bins) in one
/// pass over memory, each equal to what its own kernel returns (the extremes up to the sign of a
/// zero extreme, which depends on the visiting order). The histogram observer bins a batch on the
/// accumulated range while it learns the batch's range: where the range did not grow, that
/// histogram is the one needed. References: min_max_reference and histogram_reference.
struct MinMaxHistogram {
  MinMaxStats stats;
  at::Tensor histogram;  ///< (P, num_bins) float64
};
MinMaxHistogram min_max_histogram_fused(const at::Tensor& x, at::IntArrayRef param_sizes,
                                        const at::Tensor& lo, const at::Tensor& hi,
                                        int64_t num_bins);

/// The merge of docs/quantization.md eq. (S4): the accumulated histograms `hist` ((H, B) float64,
/// row h on [cmin[h], cmax[h]]) re-binned onto the union ranges [umin[h], umax[h]] and added to
/// `add` ((H, B) float64, the new data's histograms on the union ranges). Rows whose range did not
/// change are added unchanged. The re-binning follows the reference's arithmetic in the ranges'
/// dtype (float32 counts for float32 ranges). Source bin i, starting at start = cmin + sw * i:
///
///     di    = min(trunc_int32((start - umin) / dw), B - 1)
///     share = min(round((umin + dw * (di + 1) - start) / sw * count), count)      -> bin di
///     rest  = count - share         -> bin min(trunc_int32((start + dw - umin) / dw), B - 1)
///
/// A zero-width source range moves each bin whole (docs/differences.md). `cmin`, `cmax`, `umin`,
/// `umax`: (H,) of one floating dtype.
///
/// The fused kernel writes into `add` (contiguous float64, owned by the caller) and returns it,
/// in one pass over the rows; it is bit-exact to the reference (the per-bin arithmetic is the
/// same, and sums of integral float64 counts below 2^53 do not depend on their order).
at::Tensor merge_histograms_fused(at::Tensor add, const at::Tensor& hist, const at::Tensor& cmin,
                                  const at::Tensor& cmax, const at::Tensor& umin,
                                  const at::Tensor& umax);
at::Tensor merge_histograms_reference(const at::Tensor& add, const at::Tensor& hist,
                                      const at::Tensor& cmin, const at::Tensor& cmax,
                                      const at::Tensor& umin, const at::Tensor& umax);

/// Quantization noise of SQNR candidates (docs/quantization.md eq. (S7)): for histogram h and
/// candidate c,
///
///     noise[h, c] = sum_j hist[h, j] * ((clamp(q_j, 0, n) + o) * delta - mid_j)^2
///                                    * (q_j < 0 || q_j > n ? gamma : 1)
///
///     q_j = round_half_even(mid_j / delta - o),    mid_j = (edges[h, 0] + w / 2) + w * j,
///     w = edges[h, 1] - edges[h, 0],    delta = deltas[h, c],    o = offsets[h, c]
///
/// `hist`: (H, B) float32 counts; `edges`: (H, B + 1) float32; `deltas`: (H, C) float32 > 0;
/// `offsets`: (H, C) float32 integers, or (1, 1) for one offset shared by all. Returns (H, C)
/// float64.
///
/// The reference evaluates every (candidate, bin) term in float32 and sums them with torch: O(B)
/// per candidate. The fused kernel groups the bins by quantization level, whose error has the
/// closed form H a^2 - 2 a S1 + S2 from prefix sums over the bins of the counts, of counts x
/// mid-points and of counts x squared mid-points (accumulated in float64 about the weighted mean):
/// O(levels) per candidate. NOT bit-exact to the reference: the sums are in a different order and
/// precision, and a bin whose mid-point lies within float32 rounding of a half-way point between
/// two levels may be assigned to the other one (its error is the same to first order). The
/// clipping boundaries, where gamma applies, use the reference's float32 level exactly. Agreement
/// is tested with a stated relative bound and on the chosen candidate
/// (tests/kernels/statistics_kernels_test.cpp).
at::Tensor sqnr_noise_fused(const at::Tensor& hist, const at::Tensor& edges,
                            const at::Tensor& deltas, const at::Tensor& offsets, int64_t num_steps,
                            double gamma);
at::Tensor sqnr_noise_reference(const at::Tensor& hist, const at::Tensor& edges,
                                const at::Tensor& deltas, const at::Tensor& offsets,
                                int64_t num_steps, double gamma);

}  // namespace quantsim::kernels
