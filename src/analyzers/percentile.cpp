// PercentileEncodingAnalyzer (docs/quantization.md §8.4), all histograms at once.

#include <quantsim/analyzers/percentile.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace quantsim {
namespace {

// The reference's adjust_min_max, element-wise over all histograms, in float32 like its edges.
std::pair<at::Tensor, at::Tensor> adjust_min_max(at::Tensor mn, at::Tensor mx, int64_t num_steps,
                                                 bool symmetric) {
  constexpr double kEps = std::numeric_limits<float>::epsilon();
  const double kMax = std::numeric_limits<float>::max();
  const int64_t pos_steps = num_steps / 2, neg_steps = num_steps - num_steps / 2;
  mn = at::minimum(mn, at::zeros_like(mn)).clamp(-kMax, 0);  // zero representable, finite
  mx = at::maximum(mx, at::zeros_like(mx)).clamp(0, kMax);
  const auto too_close = (mx - mn) / num_steps < kEps;
  if (symmetric) {
    mn = at::where(too_close, mn - kEps * static_cast<double>(neg_steps), mn);
    mx = at::where(too_close, mx + kEps * static_cast<double>(pos_steps), mx);
    const auto delta =
        at::maximum(mx / static_cast<double>(pos_steps), -mn / static_cast<double>(neg_steps));
    mn = delta * static_cast<double>(-neg_steps);
    mx = delta * static_cast<double>(pos_steps);
  } else {
    mx = at::where(too_close, mx + kEps * static_cast<double>(num_steps), mx);
  }
  return {mn, mx};
}

}  // namespace

PercentileEncodingAnalyzer::PercentileEncodingAnalyzer(std::vector<int64_t> shape, int64_t num_bins,
                                                       double percentile)
    : HistogramEncodingAnalyzer(std::move(shape), num_bins) {
  set_percentile(percentile);
}

void PercentileEncodingAnalyzer::set_percentile(double percentile) {
  TORCH_CHECK_VALUE(percentile >= 50 && percentile <= 100,
                    "`percentile` must be within [50, 100], got ", percentile);
  percentile_ = percentile;
}

std::pair<at::Tensor, at::Tensor> PercentileEncodingAnalyzer::compute_encodings_from_stats(
    const Statistics& stats, int64_t num_steps, bool symmetric) const {
  check_num_steps(num_steps, symmetric);
  const auto& s = histogram_stats(stats);
  const int64_t B = num_bins();
  const auto& edges = s.bin_edges;
  at::Tensor lo, hi;
  if (percentile_ == 100) {
    lo = edges.select(1, 0);
    hi = edges.select(1, B);
  } else {
    // float32 cumulative counts and thresholds, in the reference's op order: (T * p) / 100 and
    // T * (1 - p / 100) with the scalar rounded to float32.
    const auto cumulative = s.histogram.to(at::kFloat).cumsum(1);
    const auto total = cumulative.select(1, B - 1).unsqueeze(1);
    const auto upper = total * percentile_ / 100;
    const auto lower = total * (1 - percentile_ / 100);
    // searchsorted (left): the first bin whose cumulative count reaches the threshold; its left
    // edge is the range end (docs/quantization.md eq. (S5)).
    hi = edges.gather(1, at::searchsorted(cumulative, upper)).squeeze(1);
    lo = edges.gather(1, at::searchsorted(cumulative, lower)).squeeze(1);
  }
  auto [mn, mx] = adjust_min_max(lo, hi, num_steps, symmetric);
  return {mn.to(s.min.scalar_type()).reshape(shape()), mx.to(s.max.scalar_type()).reshape(shape())};
}

}  // namespace quantsim
