// SqnrEncodingAnalyzer (docs/quantization.md §8.5): the candidate grids are built with tensor ops
// in float32 and in the reference's op order; the noise of every candidate comes from the
// closed-form kernel kernels::sqnr_noise_fused (O(levels) per candidate), whose reference is the
// per-bin float32 evaluation kernels::sqnr_noise_reference.

#include <quantsim/analyzers/sqnr.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>

#include "kernels/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace quantsim {
namespace {

constexpr double kEps = std::numeric_limits<float>::epsilon();  // the reference's minimum scale

// Candidate grids: deltas (h, C) and offsets (h, C), or (1, 1) when shared by all candidates.
struct Candidates {
  at::Tensor deltas, offsets;
};

Candidates asymmetric_candidates(const at::Tensor& min_v, const at::Tensor& max_v,
                                 int64_t num_steps, int64_t num_deltas, int64_t num_offsets) {
  const auto f32 = min_v.options().dtype(at::kFloat);
  const auto h = min_v.size(0);
  const auto max_delta = (max_v - min_v).to(at::kFloat) / num_steps;
  const auto observed_offset = at::round(min_v / max_delta);
  const auto observed_min = max_delta * observed_offset;
  const auto observed_max = observed_min + max_delta * num_steps;
  const auto search = at::arange(1, num_deltas + 1, f32);
  const auto deltas = max_delta.unsqueeze(1) * search.unsqueeze(0) / (num_deltas - 1);  // (h, K)
  // Evenly spaced offsets in [-n, 0] (arange's own element count and values), plus the
  // observed offset: n = 255, O = 21 gives [-255, -242, ..., -13, 0] and the observed one.
  const int64_t spaced = std::min(num_steps + 2, num_offsets);
  const double step = static_cast<double>(num_steps) / static_cast<double>(spaced - 2);
  const auto grid = at::round(at::arange(-num_steps, step, step, f32));
  const auto offsets = at::cat(
      {grid.unsqueeze(0).expand({h, grid.size(0)}), observed_offset.to(at::kFloat).unsqueeze(1)},
      1);  // (h, O')
  // Clamp each candidate's range into the observed one and re-derive (delta, offset).
  auto test_min = deltas.unsqueeze(2) * offsets.unsqueeze(1);  // (h, K, O')
  auto test_max = test_min + deltas.unsqueeze(2) * num_steps;
  test_min = at::maximum(observed_min.view({h, 1, 1}), test_min);
  test_max = at::minimum(observed_max.view({h, 1, 1}), test_max);
  auto clamped = ((test_max - test_min) / num_steps).clamp_min(kEps);
  auto clamped_offsets = at::round(test_min / clamped);
  return {clamped.reshape({h, -1}), clamped_offsets.reshape({h, -1})};
}

Candidates symmetric_candidates(const at::Tensor& min_v, const at::Tensor& max_v, int64_t num_steps,
                                int64_t num_deltas) {
  const auto f32 = min_v.options().dtype(at::kFloat);
  const auto max_delta = 2 * at::maximum(max_v, -min_v).to(at::kFloat) / num_steps;
  const auto search = at::arange(1, num_deltas + 1, f32);
  auto deltas = (max_delta.unsqueeze(1) * search.unsqueeze(0) / (num_deltas - 1)).clamp_min(kEps);
  // floor(-n / 2), the offset of the signed symmetric grid (n = 255 -> -128).
  const auto offset = static_cast<double>(-((num_steps + 1) / 2));
  return {deltas, at::full({1, 1}, offset, f32)};
}

}  // namespace

SqnrEncodingAnalyzer::SqnrEncodingAnalyzer(std::vector<int64_t> shape, SqnrOptions options)
    : HistogramEncodingAnalyzer(std::move(shape), options.num_bins()),
      options_(std::move(options)) {
  TORCH_CHECK_VALUE(options_.asymmetric_delta_candidates() >= 2,
                    "`asymmetric_delta_candidates` must be >= 2, got ",
                    options_.asymmetric_delta_candidates());
  TORCH_CHECK_VALUE(options_.symmetric_delta_candidates() >= 2,
                    "`symmetric_delta_candidates` must be >= 2, got ",
                    options_.symmetric_delta_candidates());
  TORCH_CHECK_VALUE(options_.offset_candidates() >= 3, "`offset_candidates` must be >= 3, got ",
                    options_.offset_candidates());
  TORCH_CHECK_VALUE(options_.max_parallelism() >= 1, "`max_parallelism` must be >= 1, got ",
                    options_.max_parallelism());
  TORCH_CHECK_VALUE(std::isfinite(options_.gamma()) && options_.gamma() >= 0,
                    "`gamma` must be finite and >= 0, got ", options_.gamma());
}

std::pair<at::Tensor, at::Tensor> SqnrEncodingAnalyzer::compute_encodings_from_stats(
    const Statistics& stats, int64_t num_steps, bool symmetric) const {
  check_num_steps(num_steps, symmetric);
  const auto& s = histogram_stats(stats);
  const int64_t total = s.histogram.size(0), chunk = options_.max_parallelism();
  const auto all_min = s.min.reshape({-1}), all_max = s.max.reshape({-1});
  std::vector<at::Tensor> mins, maxs;
  for (int64_t begin = 0; begin < total; begin += chunk) {
    const int64_t end = std::min(total, begin + chunk);
    auto min_v = all_min.slice(0, begin, end);
    auto max_v = all_max.slice(0, begin, end);
    min_v = at::minimum(min_v, at::zeros_like(min_v));
    max_v = at::maximum(max_v, at::zeros_like(max_v));
    max_v = at::maximum(max_v, min_v + kEps * static_cast<double>(num_steps));
    const auto c =
        symmetric
            ? symmetric_candidates(min_v, max_v, num_steps, options_.symmetric_delta_candidates())
            : asymmetric_candidates(min_v, max_v, num_steps, options_.asymmetric_delta_candidates(),
                                    options_.offset_candidates());
    // The reference's counts are float32.
    const auto hist = s.histogram.slice(0, begin, end).to(at::kFloat);
    auto noise = kernels::sqnr_noise_fused(hist, s.bin_edges.slice(0, begin, end), c.deltas,
                                           c.offsets, num_steps, options_.gamma());
    // Compared in float32, the reference's precision, so that candidates whose noise the
    // reference cannot tell apart (ranges a few ulps apart) tie there too and the first one
    // wins. NaN (degenerate histograms only) never wins.
    noise = at::nan_to_num(noise.to(at::kFloat), std::numeric_limits<double>::infinity());
    const int64_t count = noise.size(1);
    const auto index = at::arange(count, noise.options().dtype(at::kLong)).unsqueeze(0);
    const auto first = at::where(noise == noise.amin(1, true), index, count).amin(1, true);
    const auto delta = c.deltas.gather(1, first);
    const auto offset = c.offsets.size(1) == 1 ? c.offsets : c.offsets.gather(1, first);
    const auto mn = offset * delta;
    mins.push_back(mn);
    maxs.push_back(mn + num_steps * delta);
  }
  return {at::cat(mins).to(s.min.scalar_type()).reshape(shape()),
          at::cat(maxs).to(s.max.scalar_type()).reshape(shape())};
}

}  // namespace quantsim
