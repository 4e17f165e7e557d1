#pragma once

/// `MinMaxEncodingAnalyzer`: the range is the running min/max of every batch
/// (docs/quantization.md §8.2).

#include <quantsim/analyzers/encoding_analyzer.h>

namespace quantsim {

/// Running element-wise minimum and maximum of the non-NaN values (±inf included).
struct MinMaxStatistics : Statistics {
  at::Tensor min, max;
  MinMaxStatistics(at::Tensor mn, at::Tensor mx) : min(std::move(mn)), max(std::move(mx)) {}
};

/// Range = [min(x_min, 0), max(x_max, 0)], widened to at least EPS per step and made symmetric when
/// asked, then clipped to the finite range of the dtype (docs/quantization.md eq. (S1)). Unlike the
/// reference, NaN values are skipped (and counted) instead of turning the encoding into NaN; ±inf
/// clip to ±FLT_MAX as in the reference. A slice with nothing but NaN is c10::ValueError.
///
///     qs::MinMaxEncodingAnalyzer a({});
///     a.update_stats(torch::tensor({-1.f, NAN, 2.f}));
///     auto [mn, mx] = a.compute_encodings(255, false);   // (-1, 2); a.nan_count() == 1
class MinMaxEncodingAnalyzer : public EncodingAnalyzer {
 public:
  explicit MinMaxEncodingAnalyzer(std::vector<int64_t> shape);

  /// Statistics are immutable once stored, so the copy shares them.
  std::shared_ptr<EncodingAnalyzer> clone() const override {
    return std::make_shared<MinMaxEncodingAnalyzer>(*this);
  }

  std::shared_ptr<const Statistics> update_stats(const at::Tensor& x) override;
  void reset_stats() override {
    stats_.reset();
    nan_count_ = 0;
  }
  std::pair<at::Tensor, at::Tensor> compute_encodings_from_stats(const Statistics& stats,
                                                                 int64_t num_steps,
                                                                 bool symmetric) const override;
  std::shared_ptr<const Statistics> collect_stats(const at::Tensor& x) const override;
  std::shared_ptr<const Statistics> accumulated_stats() const override { return stats_; }
  /// Replaces the accumulated statistics and the NaN count, e.g. with statistics merged across
  /// ranks (quantsim::distributed).
  void set_accumulated_stats(std::shared_ptr<const MinMaxStatistics> stats, int64_t nan_count) {
    stats_ = std::move(stats);
    nan_count_ = nan_count;
  }

 private:
  std::shared_ptr<const MinMaxStatistics> stats_;
};

}  // namespace quantsim
