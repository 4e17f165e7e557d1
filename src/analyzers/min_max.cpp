#include <quantsim/analyzers/min_max.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>

#include "kernels/statistics.h"

#include <limits>

namespace quantsim {

namespace {
double largest_finite(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf:
      return 65504.0;
    case at::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::max());
    case at::kDouble:
      return std::numeric_limits<double>::max();
    default:
      return std::numeric_limits<float>::max();
  }
}
}  // namespace

MinMaxEncodingAnalyzer::MinMaxEncodingAnalyzer(std::vector<int64_t> shape)
    : EncodingAnalyzer(std::move(shape)) {}

std::shared_ptr<const Statistics> MinMaxEncodingAnalyzer::collect_stats(const at::Tensor& x) const {
  reduction_dims(x);  // validates the shape with the analyzer's own message
  TORCH_CHECK(x.numel() > 0, "cannot collect min/max statistics of an empty tensor of shape ",
              x.sizes());
  // One pass over x: min/max over the non-NaN values, NaN counted (see docs/differences.md).
  auto s = kernels::min_max_fused(x.detach(), shape());
  // A slice of only NaN has min = +inf > max = -inf; its "range" would silently become [0, 0].
  const auto empty = (s.min > s.max).reshape({-1});
  if (empty.any().item<bool>()) {
    const auto first = empty.nonzero()[0][0].item<int64_t>();
    TORCH_CHECK_VALUE(false, "Input tensor cannot contain only NaN values: slice ", first,
                      " of the min/max statistics of shape ", at::IntArrayRef(shape()),
                      " holds no value other than NaN (input shape ", x.sizes(), ")");
  }
  auto stats = std::make_shared<MinMaxStatistics>(widened(s.min).reshape(shape()),
                                                  widened(s.max).reshape(shape()));
  stats->nan_count = s.nan_count;
  return stats;
}

std::shared_ptr<const Statistics> MinMaxEncodingAnalyzer::update_stats(const at::Tensor& x) {
  auto batch = std::static_pointer_cast<const MinMaxStatistics>(collect_stats(x));
  if (!stats_) {
    stats_ = batch;
  } else {
    auto merged = std::make_shared<MinMaxStatistics>(at::minimum(stats_->min, batch->min),
                                                     at::maximum(stats_->max, batch->max));
    merged->nan_count = stats_->nan_count + batch->nan_count;
    stats_ = std::move(merged);
  }
  nan_count_ += batch->nan_count;
  return batch;
}

std::pair<at::Tensor, at::Tensor> MinMaxEncodingAnalyzer::compute_encodings_from_stats(
    const Statistics& stats, int64_t num_steps, bool symmetric) const {
  check_num_steps(num_steps, symmetric);
  const auto* s = dynamic_cast<const MinMaxStatistics*>(&stats);
  TORCH_CHECK(s != nullptr, "MinMaxEncodingAnalyzer needs MinMaxStatistics");
  constexpr double kEps = std::numeric_limits<float>::epsilon();  // 2^-23, as the reference
  const int64_t pos_steps = num_steps / 2, neg_steps = num_steps - num_steps / 2;
  // docs/quantization.md eq. (S1), in its op order.
  auto mn = at::minimum(s->min, at::zeros_like(s->min));  // zero is always representable
  auto mx = at::maximum(s->max, at::zeros_like(s->max));
  const auto adj = ((mx - mn) / num_steps < kEps).to(mn.scalar_type()) * kEps;
  if (symmetric) {
    mx = mx + adj * static_cast<double>(pos_steps);
    mn = mn - adj * static_cast<double>(neg_steps);
    const auto delta =
        at::maximum(mx / static_cast<double>(pos_steps), -mn / static_cast<double>(neg_steps));
    mn = delta * static_cast<double>(-neg_steps);
    mx = delta * static_cast<double>(pos_steps);
  } else {
    mx = mx + adj * static_cast<double>(num_steps);
  }
  const double finite_max = largest_finite(mx.scalar_type());
  mx = at::clamp_max(mx, finite_max);
  mn = at::clamp_min(mn, -finite_max);
  return {mn, mx};
}

}  // namespace quantsim
