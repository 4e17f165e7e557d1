#pragma once

/// `PercentileEncodingAnalyzer`: the range clips the `100 - percentile` % smallest and largest
/// values, read from a histogram (docs/quantization.md §8.4).

#include <quantsim/analyzers/histogram.h>

namespace quantsim {

/// Range = [edge of the (100 - p)-th percentile, edge of the p-th percentile] of the histogram of
/// all batches, taking the LEFT edge of the bin that holds each percentile (as the reference,
/// docs/quantization.md eq. (S5)); p = 100 takes the full histogram range. The range then gets the
/// MinMax adjustments: zero included, clipped to ±FLT_MAX, at least EPS per step, symmetric if
/// asked.
///
///     qs::PercentileEncodingAnalyzer a({}, /*num_bins=*/2048, /*percentile=*/99.9);
///     a.update_stats(activations);
///     auto [mn, mx] = a.compute_encodings(255, /*symmetric=*/false);
class PercentileEncodingAnalyzer : public HistogramEncodingAnalyzer {
 public:
  /// c10::ValueError for num_bins < 1 or a percentile outside [50, 100].
  explicit PercentileEncodingAnalyzer(std::vector<int64_t> shape, int64_t num_bins = 2048,
                                      double percentile = 100);

  /// The clipping percentile, in [50, 100]; c10::ValueError (the reference's ValueError)
  /// otherwise, NaN included. Takes effect at the next compute_encodings.
  void set_percentile(double percentile);
  double percentile() const { return percentile_; }

  std::shared_ptr<EncodingAnalyzer> clone() const override {
    return std::make_shared<PercentileEncodingAnalyzer>(*this);
  }
  std::pair<at::Tensor, at::Tensor> compute_encodings_from_stats(const Statistics& stats,
                                                                 int64_t num_steps,
                                                                 bool symmetric) const override;

 private:
  double percentile_ = 100;
};

}  // namespace quantsim
