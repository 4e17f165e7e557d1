#pragma once

/// `EncodingAnalyzer`: gathers statistics of the tensors a quantizer sees during calibration and
/// turns them into a (min, max) range (docs/quantization.md §8.1).

#include <ATen/core/Tensor.h>

#include <memory>
#include <utility>
#include <vector>

namespace quantsim {

/// Statistics of one or more batches; each analyzer defines its own kind.
class Statistics {
 public:
  virtual ~Statistics() = default;
  /// NaN elements of the data these statistics describe; they are left out of the statistics.
  int64_t nan_count = 0;
};

/// Range estimator of shape `shape()` (per-tensor `{}`, per-channel e.g. `{C, 1}`). The shape must
/// be expandable to every input it sees; the reduction runs over the dims where it is 1.
///
///     qs::MinMaxEncodingAnalyzer a({});
///     a.update_stats(batch1); a.update_stats(batch2);
///     auto [mn, mx] = a.compute_encodings(/*num_steps=*/255, /*symmetric=*/false);
class EncodingAnalyzer {
 public:
  explicit EncodingAnalyzer(std::vector<int64_t> shape);
  virtual ~EncodingAnalyzer() = default;

  const std::vector<int64_t>& shape() const { return shape_; }

  /// A deep copy (with the statistics gathered so far), for cloning the quantizer that owns it.
  virtual std::shared_ptr<EncodingAnalyzer> clone() const = 0;

  /// Accumulates the statistics of x and returns those of this batch alone. NaN values are left
  /// out (and counted, see nan_count()). c10::Error if the shape is not expandable to x;
  /// c10::ValueError if a slice of x holds no usable value (no finite value for the
  /// histogram analyzers, only NaN for MinMax), in which case the statistics gathered so far
  /// are kept unchanged.
  virtual std::shared_ptr<const Statistics> update_stats(const at::Tensor& x) = 0;
  /// Forgets every batch seen so far (and the NaN count).
  virtual void reset_stats() = 0;
  /// NaN values left out of the statistics by update_stats since the last reset_stats(), so that
  /// the quantizer can report them once per calibration. A batch that update_stats rejected
  /// does not count.
  int64_t nan_count() const { return nan_count_; }
  /// (min, max) of `shape()` from the given statistics; c10::ValueError for num_steps < 1, and
  /// for a symmetric range of one step (the 1-bit signed grid [-1, 0] has no positive step: the
  /// reference divides by floor(n / 2) = 0 and returns NaN).
  virtual std::pair<at::Tensor, at::Tensor> compute_encodings_from_stats(const Statistics& stats,
                                                                         int64_t num_steps,
                                                                         bool symmetric) const = 0;
  /// Statistics of x alone, without accumulating.
  virtual std::shared_ptr<const Statistics> collect_stats(const at::Tensor& x) const = 0;
  /// The accumulated statistics, null before the first batch.
  virtual std::shared_ptr<const Statistics> accumulated_stats() const = 0;

  /// (min, max) over every batch since the last reset; StatisticsNotFoundError before any batch.
  std::pair<at::Tensor, at::Tensor> compute_encodings(int64_t num_steps, bool symmetric) const;
  /// (min, max) of x alone; nothing is accumulated.
  std::pair<at::Tensor, at::Tensor> compute_dynamic_encodings(const at::Tensor& x,
                                                              int64_t num_steps,
                                                              bool symmetric) const;

  /// c10::ValueError unless num_steps >= 1, and >= 2 when symmetric (see
  /// compute_encodings_from_stats).
  static void check_num_steps(int64_t num_steps, bool symmetric);
  /// Statistics (of x) in the dtype they are computed in: float32 for float16 and bfloat16
  /// (which it holds exactly), so that a reduced-precision batch calibrates exactly as the same
  /// values in float32 (docs/differences.md); x's own dtype otherwise.
  static at::Tensor widened(const at::Tensor& stats);

 protected:
  /// Dims of x to reduce so that the result has `shape()` (left-padded with 1s), after checking
  /// that the shape is expandable to x.
  std::vector<int64_t> reduction_dims(const at::Tensor& x) const;

  /// Maintained by update_stats / reset_stats of the concrete analyzers.
  int64_t nan_count_ = 0;

 private:
  std::vector<int64_t> shape_;
};

}  // namespace quantsim
