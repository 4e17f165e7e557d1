// Histogram observer (docs/quantization.md §8.3). The per-element passes over the data run in the
// statistics kernels; everything here works on (H, num_bins) tensors, all histograms at once.

#include <quantsim/analyzers/histogram.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>

#include "kernels/statistics.h"

namespace quantsim {
namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// The reference bins `x.to(torch.float)`.
at::Tensor as_float(const at::Tensor& x) {
  const auto xd = x.detach();
  return xd.scalar_type() == at::kFloat ? xd : xd.to(at::kFloat);
}

}  // namespace

HistogramObserver::HistogramObserver(std::vector<int64_t> shape, int64_t num_bins)
    : shape_(std::move(shape)), num_bins_(num_bins) {
  TORCH_CHECK_VALUE(num_bins_ >= 1, "`num_bins` must be >= 1, got ", num_bins_);
}

int64_t HistogramObserver::num_histograms() const { return numel_of(shape_); }

at::Tensor HistogramObserver::bin_edges(const at::Tensor& mn, const at::Tensor& mx) const {
  // ±0.5 padding in the statistics' dtype, then float32, as the reference does (eq. (S2)).
  const auto same = mn == mx;
  const auto lo = at::where(same, mn - 0.5, mn).to(at::kFloat);
  const auto hi = at::where(same, mx + 0.5, mx).to(at::kFloat);
  const auto step = (hi - lo) / num_bins_;
  // i * step first, then + lo: two float32 roundings, as torch.arange(B + 1) * step + lo.
  auto edges =
      at::arange(num_bins_ + 1, lo.options()).unsqueeze(0) * step.unsqueeze(1) + lo.unsqueeze(1);
  const auto first = edges.select(1, 0), last = edges.select(1, num_bins_);
  const bool usable =
      (at::isfinite(first) & at::isfinite(last) & (first < last)).all().item<bool>();
  TORCH_CHECK(usable, "histogram range cannot be split into ", num_bins_,
              " float32 bins (range too wide or too narrow): min ", mn.min().item<double>(),
              ", max ", mx.max().item<double>());
  return edges;
}

// The range on which histogram_fused bins a batch for the union range [umin, umax] with edges
// `edges`: (umin, umax) in float32; a still-degenerate range uses its padded edges (histc cannot
// bin on [c, c]).
std::pair<at::Tensor, at::Tensor> HistogramObserver::binning_range(const at::Tensor& umin,
                                                                   const at::Tensor& umax,
                                                                   const at::Tensor& edges) const {
  const auto lo32 = umin.to(at::kFloat), hi32 = umax.to(at::kFloat);
  const auto spread = lo32 < hi32;
  return {at::where(spread, lo32, edges.select(1, 0)).reshape(shape_),
          at::where(spread, hi32, edges.select(1, num_bins_)).reshape(shape_)};
}

std::shared_ptr<HistogramStatistics> HistogramObserver::collect_range(const at::Tensor& x) const {
  const auto xd = x.detach();
  const auto mm = kernels::min_max_fused(xd, shape_);  // also validates the shape
  return range_statistics(xd, mm.finite_min, mm.finite_max, mm.nan_count);
}

std::shared_ptr<HistogramStatistics> HistogramObserver::range_statistics(
    const at::Tensor& xd, const at::Tensor& finite_min, const at::Tensor& finite_max,
    int64_t nan_count) const {
  // finite_min is +inf for a slice without any finite value.
  const auto empty = at::isinf(finite_min).reshape({-1});
  if (xd.numel() == 0 || empty.any().item<bool>()) {
    const int64_t first = xd.numel() == 0 ? 0 : empty.nonzero()[0][0].item<int64_t>();
    TORCH_CHECK_VALUE(false,
                      "Input tensor cannot contain only infinite or only NaN values: histogram ",
                      first, " of shape ", at::IntArrayRef(shape_),
                      " has no finite value (input shape ", xd.sizes(), ")");
  }
  auto stats = std::make_shared<HistogramStatistics>();
  // float32 for float16/bfloat16 data: the range arithmetic below (the ±0.5 padding, the union
  // of ranges) then rounds as it does for the same values in float32.
  stats->min = EncodingAnalyzer::widened(finite_min).reshape(shape_);
  stats->max = EncodingAnalyzer::widened(finite_max).reshape(shape_);
  stats->bin_edges = bin_edges(stats->min.reshape({-1}), stats->max.reshape({-1}));
  stats->nan_count = nan_count;
  return stats;
}

at::Tensor HistogramObserver::histogram_of(const HistogramStatistics& stats,
                                           const at::Tensor& x) const {
  // histc on (edges[0], edges[B]); values beyond (±inf, and finite values above an edges[B]
  // rounded below max) land in the end bins.
  return kernels::histogram_fused(as_float(x.detach()), shape_,
                                  stats.bin_edges.select(1, 0).reshape(shape_),
                                  stats.bin_edges.select(1, num_bins_).reshape(shape_), num_bins_);
}

std::shared_ptr<HistogramStatistics> HistogramObserver::collect_stats(const at::Tensor& x) const {
  auto stats = collect_range(x);
  stats->histogram = histogram_of(*stats, x);
  return stats;
}

void HistogramObserver::merge_stats(std::shared_ptr<const HistogramStatistics> batch,
                                    const at::Tensor& x) {
  merge(std::move(batch), x, at::Tensor());
}

std::shared_ptr<HistogramStatistics> HistogramObserver::collect_range_and_merge(
    const at::Tensor& x) {
  // Two passes: the batch's range, then its histogram on the union range. The one-pass variant
  // (kernels::min_max_histogram_fused on the accumulated range, re-binning the slices whose range
  // grew) measured slower on this machine's 8 x 4M-float calibration (Percentile per-tensor
  // 37-43 ms against 26-32 ms, per-channel 72-79 ms against 48-50 ms; docs/benchmarks.md, issue
  // 14 after), so it is not used.
  const auto xd = x.detach();
  auto batch = collect_range(xd);
  merge(batch, xd, at::Tensor());
  return batch;
}

void HistogramObserver::merge(std::shared_ptr<const HistogramStatistics> batch, const at::Tensor& x,
                              const at::Tensor& on_current_range) {
  TORCH_CHECK(batch != nullptr, "merge_stats: no statistics given");
  if (!stats_) {
    stats_ = std::move(batch);
    return;
  }
  const int64_t B = num_bins_;
  const auto& cur = *stats_;
  const auto cmin = cur.min.reshape({-1}), cmax = cur.max.reshape({-1});
  const auto umin = at::minimum(batch->min.reshape({-1}), cmin);
  const auto umax = at::maximum(batch->max.reshape({-1}), cmax);
  auto merged = std::make_shared<HistogramStatistics>();
  merged->min = umin.reshape(shape_);
  merged->max = umax.reshape(shape_);
  merged->bin_edges = bin_edges(umin, umax);
  // The reference bins the new data with histc(x, B, umin, umax) and adds the ±inf counts to the
  // end bins; no finite value lies outside [umin, umax], so the kernel's out-of-range rule does
  // exactly that.
  const auto [lo, hi] = binning_range(umin, umax, merged->bin_edges);
  at::Tensor binned;
  if (!on_current_range.defined()) {
    binned = kernels::histogram_fused(as_float(x), shape_, lo, hi, B);
  } else {
    // x was binned on the accumulated range: right where the range did not grow (the same
    // float32 range to the value, so the same bins). Only the slices whose range grew are
    // binned again, on the union range.
    const auto grown = (umin != cmin) | (umax != cmax);
    binned = on_current_range;
    if (grown.any().item<bool>()) {
      const auto again = kernels::histogram_fused(as_float(x), shape_, lo, hi, B, grown);
      binned = at::where(grown.unsqueeze(1), again, on_current_range);
    }
  }
  // The old counts, re-binned onto the union range where it grew, are added in one pass.
  merged->histogram =
      kernels::merge_histograms_fused(binned, cur.histogram, cmin, cmax, umin, umax);
  merged->nan_count = cur.nan_count + batch->nan_count;
  stats_ = std::move(merged);
}

at::Tensor HistogramObserver::contribution_on(const at::Tensor& umin, const at::Tensor& umax,
                                              const at::Tensor& x) const {
  TORCH_CHECK(stats_ != nullptr, "contribution_on: no statistics");
  const auto umin1 = umin.reshape({-1}), umax1 = umax.reshape({-1});
  if (x.defined()) {
    // As merge() bins a new batch on the union range.
    const auto [lo, hi] = binning_range(umin1, umax1, bin_edges(umin1, umax1));
    return kernels::histogram_fused(as_float(x), shape_, lo, hi, num_bins_);
  }
  // As merge() carries the old counts over: onto the union range, added to nothing.
  const auto& cur = *stats_;
  return kernels::merge_histograms_fused(at::zeros_like(cur.histogram), cur.histogram,
                                         cur.min.reshape({-1}), cur.max.reshape({-1}), umin1,
                                         umax1);
}

void HistogramObserver::set_stats(at::Tensor histogram, const at::Tensor& min,
                                  const at::Tensor& max, int64_t nan_count) {
  TORCH_CHECK(histogram.dim() == 2 && histogram.size(0) == num_histograms() &&
                  histogram.size(1) == num_bins_,
              "set_stats: histograms of shape ", histogram.sizes(), ", expected (",
              num_histograms(), ", ", num_bins_, ")");
  auto stats = std::make_shared<HistogramStatistics>();
  stats->min = min.reshape(shape_);
  stats->max = max.reshape(shape_);
  stats->bin_edges = bin_edges(stats->min.reshape({-1}), stats->max.reshape({-1}));
  stats->histogram = std::move(histogram);
  stats->nan_count = nan_count;
  stats_ = std::move(stats);
}

HistogramEncodingAnalyzer::HistogramEncodingAnalyzer(std::vector<int64_t> shape, int64_t num_bins)
    : EncodingAnalyzer(shape), observer_(std::move(shape), num_bins) {}

std::shared_ptr<const Statistics> HistogramEncodingAnalyzer::update_stats(const at::Tensor& x) {
  reduction_dims(x);  // the analyzer's shape message before any work
  // The first batch becomes the accumulated statistics and needs its histogram; later batches
  // merge from their range alone, so their own histogram is deferred until asked for.
  const bool first = observer_.stats() == nullptr;
  std::shared_ptr<HistogramStatistics> batch;
  if (first) {
    batch = observer_.collect_stats(x);
    observer_.merge_stats(batch, x);
    if (retain_single_batch_) single_batch_ = x.detach();
  } else {
    batch = observer_.collect_range_and_merge(x);
    batch->deferred_input = x.detach();
    single_batch_.reset();
  }
  nan_count_ += batch->nan_count;
  return batch;
}

const HistogramStatistics& HistogramEncodingAnalyzer::histogram_stats(
    const Statistics& stats) const {
  const auto* s = dynamic_cast<const HistogramStatistics*>(&stats);
  TORCH_CHECK(s != nullptr, "histogram analyzers need HistogramStatistics");
  if (!s->histogram.defined() && s->deferred_input.defined()) {
    s->histogram = observer_.histogram_of(*s, s->deferred_input);
    s->deferred_input.reset();
  }
  TORCH_CHECK(s->histogram.dim() == 2 && s->histogram.size(0) == observer_.num_histograms() &&
                  s->histogram.size(1) == num_bins(),
              "statistics hold histograms of shape ", s->histogram.sizes(), ", expected (",
              observer_.num_histograms(), ", ", num_bins(), ")");
  return *s;
}

}  // namespace quantsim
