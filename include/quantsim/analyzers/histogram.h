#pragma once

/// The histogram observer shared by the Percentile and SQNR analyzers (docs/quantization.md §8.3):
/// one histogram per element of the analyzer shape, re-binned onto the union range as batches widen
/// it.

#include <quantsim/analyzers/encoding_analyzer.h>

#include <memory>
#include <vector>

namespace quantsim {

/// Histograms of H = numel(shape) slices (row h = element h of the shape, row-major).
struct HistogramStatistics : Statistics {
  /// (H, num_bins) float64 counts. ±inf values are counted in the first/last bin. A batch's
  /// statistics returned by HistogramEncodingAnalyzer::update_stats may defer it (undefined
  /// here, `deferred_input` set) until compute_encodings_from_stats needs it: module-level
  /// calibration never does, and is spared a pass over the data.
  mutable at::Tensor histogram;
  /// The batch whose histogram is deferred; undefined otherwise.
  mutable at::Tensor deferred_input;
  /// (H, num_bins + 1) float32: edge i = i * float32((hi - lo) / num_bins) + lo, where
  /// (lo, hi) = (min, max), or (min - 0.5, max + 0.5) when min == max.
  at::Tensor bin_edges;
  /// Of the analyzer shape, in the input's dtype: min/max over the finite values seen.
  at::Tensor min, max;
};

/// Collects and merges per-slice histograms (docs/quantization.md §8.3).
///
/// Deliberate difference from the reference (docs/differences.md): from the second batch on the
/// new data of histogram h is the channel-h slice for every shape, where the reference takes
/// row h of reshape(x, (H, -1)).
///
///     qs::HistogramObserver observer({4}, /*num_bins=*/10);   // one histogram per x[..., i]
///     auto batch = observer.collect_stats(x);
///     observer.merge_stats(batch, x);
class HistogramObserver {
 public:
  /// c10::ValueError for num_bins < 1.
  HistogramObserver(std::vector<int64_t> shape, int64_t num_bins);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t num_bins() const { return num_bins_; }
  int64_t num_histograms() const;

  /// Histograms of x alone. c10::Error if the shape is not expandable to x; c10::ValueError
  /// if some slice holds no finite value (the reference's ValueError).
  std::shared_ptr<HistogramStatistics> collect_stats(const at::Tensor& x) const;
  /// collect_stats without the histogram pass: min, max, edges and NaN count only.
  std::shared_ptr<HistogramStatistics> collect_range(const at::Tensor& x) const;
  /// The histogram of x on the edges of `stats` (collected from x), as collect_stats bins it.
  at::Tensor histogram_of(const HistogramStatistics& stats, const at::Tensor& x) const;
  /// Folds `batch` (collected from x) into the accumulated histograms: the old counts are
  /// redistributed onto the bins of the union range (splitting a source bin that straddles two
  /// destination bins in proportion to the overlap) and x is binned on that range.
  void merge_stats(std::shared_ptr<const HistogramStatistics> batch, const at::Tensor& x);
  /// collect_range(x) then merge_stats with it, in one pass over x where the accumulated range
  /// holds the batch (float32, float16 and bfloat16 data): x is binned on the accumulated range
  /// while its range is found, and only the histograms whose range grew bin x again. The same
  /// statistics as the two calls. Returns the batch's range statistics.
  std::shared_ptr<HistogramStatistics> collect_range_and_merge(const at::Tensor& x);
  void reset_stats() { stats_.reset(); }
  /// The accumulated histograms, null before the first batch.
  const std::shared_ptr<const HistogramStatistics>& stats() const { return stats_; }

  /// For merging observers in a fixed order, as ranks do (quantsim::distributed,
  /// docs/distributed.md): what the accumulated statistics add to a merge whose union range
  /// after them is (umin, umax) (analyzer shape, holding the accumulated range), as (H, num_bins)
  /// float64 counts on that range. `x`, when defined, must be the only batch seen: it is binned
  /// on (umin, umax) exactly as merge_stats bins a new batch. Otherwise the accumulated counts
  /// are re-binned onto it as merge_stats re-bins the old counts. c10::Error without statistics.
  at::Tensor contribution_on(const at::Tensor& umin, const at::Tensor& umax,
                             const at::Tensor& x) const;
  /// Replaces the accumulated statistics with `histogram` ((H, num_bins) float64) on the range
  /// (min, max) of the analyzer shape, e.g. statistics merged across ranks.
  void set_stats(at::Tensor histogram, const at::Tensor& min, const at::Tensor& max,
                 int64_t nan_count);

 private:
  /// (H, B+1) float32 edges for per-histogram ranges (H,) (docs/quantization.md eq. (S2)).
  at::Tensor bin_edges(const at::Tensor& min, const at::Tensor& max) const;
  /// (lo, hi) of the analyzer shape on which a batch is binned for the union range (umin, umax)
  /// with edges `edges`.
  std::pair<at::Tensor, at::Tensor> binning_range(const at::Tensor& umin, const at::Tensor& umax,
                                                  const at::Tensor& edges) const;
  /// Range statistics of x (detached) from the extremes of its finite values (+inf/-inf for a
  /// slice without any: c10::ValueError) and its NaN count.
  std::shared_ptr<HistogramStatistics> range_statistics(const at::Tensor& xd,
                                                        const at::Tensor& finite_min,
                                                        const at::Tensor& finite_max,
                                                        int64_t nan_count) const;
  /// merge_stats; `on_current_range` (if defined): x binned on the accumulated range.
  void merge(std::shared_ptr<const HistogramStatistics> batch, const at::Tensor& x,
             const at::Tensor& on_current_range);

  std::vector<int64_t> shape_;
  int64_t num_bins_;
  std::shared_ptr<const HistogramStatistics> stats_;
};

/// Base of the analyzers whose statistics are HistogramStatistics (Percentile, SQNR).
class HistogramEncodingAnalyzer : public EncodingAnalyzer {
 public:
  /// c10::ValueError for num_bins < 1.
  HistogramEncodingAnalyzer(std::vector<int64_t> shape, int64_t num_bins);

  int64_t num_bins() const { return observer_.num_bins(); }

  std::shared_ptr<const Statistics> update_stats(const at::Tensor& x) override;
  void reset_stats() override {
    observer_.reset_stats();
    single_batch_.reset();
    nan_count_ = 0;
  }
  std::shared_ptr<const Statistics> collect_stats(const at::Tensor& x) const override {
    return observer_.collect_stats(x);
  }
  std::shared_ptr<const Statistics> accumulated_stats() const override { return observer_.stats(); }

  const HistogramObserver& observer() const { return observer_; }
  /// Keeps the first batch's input while it is the only batch (nothing by default), so that a
  /// merge across ranks can bin it on the union range as single-process calibration would
  /// (quantsim::distributed). The retained input is dropped by the next batch and by reset_stats.
  void retain_single_batch(bool retain) {
    retain_single_batch_ = retain;
    if (!retain) single_batch_.reset();
  }
  /// The input of the only batch seen, when retain_single_batch(true) was set before it;
  /// undefined otherwise.
  const at::Tensor& single_batch() const { return single_batch_; }
  /// Replaces the accumulated statistics and the NaN count (HistogramObserver::set_stats).
  void set_accumulated_stats(at::Tensor histogram, const at::Tensor& min, const at::Tensor& max,
                             int64_t stats_nan_count, int64_t nan_count) {
    observer_.set_stats(std::move(histogram), min, max, stats_nan_count);
    single_batch_.reset();
    nan_count_ = nan_count;
  }

 protected:
  /// `stats` as HistogramStatistics of this analyzer's shape and bin count; c10::Error otherwise.
  const HistogramStatistics& histogram_stats(const Statistics& stats) const;

 private:
  HistogramObserver observer_;
  bool retain_single_batch_ = false;
  at::Tensor single_batch_;
};

}  // namespace quantsim
