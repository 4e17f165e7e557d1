#pragma once

/// `SqnrEncodingAnalyzer`: the range whose quantization noise, estimated from a histogram, is
/// smallest over a grid of candidate (scale, offset) pairs (docs/quantization.md §8.5,
/// "tf_enhanced").

#include <quantsim/analyzers/histogram.h>

#include <torch/arg.h>

namespace quantsim {

/// Options of SqnrEncodingAnalyzer; the defaults are the reference's.
///
///     qs::SqnrEncodingAnalyzer a({}, qs::SqnrOptions().num_bins(512).gamma(1.0));
struct SqnrOptions {
  /// Bins per histogram. Default: 2048.
  TORCH_ARG(int64_t, num_bins) = 2048;
  /// Scales tried in asymmetric mode: max_delta * k / (K - 1), k = 1..K. Default: 17.
  TORCH_ARG(int64_t, asymmetric_delta_candidates) = 17;
  /// Scales tried in symmetric mode, same spacing. Default: 101.
  TORCH_ARG(int64_t, symmetric_delta_candidates) = 101;
  /// Offsets tried in asymmetric mode (evenly spaced in [-num_steps, 0], plus the observed
  /// offset). Default: 21.
  TORCH_ARG(int64_t, offset_candidates) = 21;
  /// Histograms searched together; bounds memory only, never the result. Default: 64.
  TORCH_ARG(int64_t, max_parallelism) = 64;
  /// Weight of the clipping noise relative to the rounding noise (1 = plain squared error).
  /// Default: 3.0.
  TORCH_ARG(double, gamma) = 3.0;
};

/// For each histogram, candidate (delta, offset) grids are built from the observed range
/// (docs/quantization.md eq. (S6): asymmetric = K scales x offsets, clamped to the observed range;
/// symmetric = K scales with offset floor(-n/2)); the noise of each candidate is estimated by
/// quantizing the bin mid-points, weighting by the counts (clipped bins times gamma); the first
/// candidate with the smallest noise gives min = offset * delta, max = min + n * delta.
///
///     qs::SqnrEncodingAnalyzer a({16, 1});                 // per output channel
///     a.update_stats(weight);
///     auto [mn, mx] = a.compute_encodings(255, /*symmetric=*/true);
class SqnrEncodingAnalyzer : public HistogramEncodingAnalyzer {
 public:
  /// c10::ValueError for num_bins < 1, fewer than 2 delta candidates (the grid divides by
  /// K - 1), fewer than 3 offset candidates, max_parallelism < 1 or a negative/non-finite gamma.
  explicit SqnrEncodingAnalyzer(std::vector<int64_t> shape, SqnrOptions options = {});

  const SqnrOptions& options() const { return options_; }

  std::shared_ptr<EncodingAnalyzer> clone() const override {
    return std::make_shared<SqnrEncodingAnalyzer>(*this);
  }
  std::pair<at::Tensor, at::Tensor> compute_encodings_from_stats(const Statistics& stats,
                                                                 int64_t num_steps,
                                                                 bool symmetric) const override;

 private:
  SqnrOptions options_;
};

}  // namespace quantsim
