// Calibration statistics merged across ranks (docs/distributed.md §3): MinMax by MIN/MAX
// all-reduce, histograms by all-gather and a merge in rank order, NaN counts by SUM.

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/histogram.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/distributed/calibration.h>
#include <quantsim/errors.h>
#include <quantsim/nn/calibration.h>

#include <ATen/ATen.h>
#include <c10/util/irange.h>

#include <chrono>
#include <limits>
#include <optional>
#include <set>

#include "kernels/statistics.h"

namespace quantsim::distributed {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Statistics travel as float64: exact for float16, bfloat16, float32 and float64 values.
at::Tensor flat64(const at::Tensor& t) { return t.reshape({-1}).to(at::kDouble); }

at::Tensor all_gather(const at::Tensor& mine, c10d::ProcessGroup& group, const char* what) {
  std::vector<at::Tensor> inputs{mine.contiguous()};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < group.getSize(); ++r) outputs[0].push_back(at::empty_like(inputs[0]));
  wait_for(group.allgather(outputs, inputs), group, what);
  return at::stack(outputs[0]);  // (world_size, n)
}

void all_reduce(at::Tensor& t, c10d::ReduceOp op, c10d::ProcessGroup& group, const char* what) {
  std::vector<at::Tensor> tensors{t};
  c10d::AllreduceOptions options;
  options.reduceOp = op;
  wait_for(group.allreduce(tensors, options), group, what);
}

// NaN counts: summed; the total goes to rank 0 alone, which reports it once.
std::vector<int64_t> nan_totals(const std::vector<EncodingAnalyzer*>& analyzers,
                                c10d::ProcessGroup& group) {
  auto counts = at::empty({static_cast<int64_t>(analyzers.size())}, at::kLong);
  for (const auto i : c10::irange(analyzers.size())) counts[i] = analyzers[i]->nan_count();
  all_reduce(counts, c10d::ReduceOp::SUM, group, "distributed calibration: NaN counts");
  std::vector<int64_t> totals(analyzers.size());
  for (const auto i : c10::irange(analyzers.size())) {
    totals[i] = group.getRank() == 0 ? counts[i].item<int64_t>() : 0;
  }
  return totals;
}

// One MIN all-reduce for every MinMax analyzer: [-has, -dtype, min..., -max...] each; a rank
// without statistics sends +inf, which MIN ignores.
void merge_min_max(const std::vector<MinMaxEncodingAnalyzer*>& analyzers,
                   const std::vector<int64_t>& nan_totals, c10d::ProcessGroup& group) {
  std::vector<at::Tensor> parts;
  for (auto* a : analyzers) {
    const auto n = numel_of(a->shape());
    const auto stats = std::static_pointer_cast<const MinMaxStatistics>(a->accumulated_stats());
    if (stats) {
      parts.push_back(
          at::tensor({-1.0, -static_cast<double>(stats->min.scalar_type())}, at::kDouble));
      parts.push_back(flat64(stats->min));
      parts.push_back(-flat64(stats->max));
    } else {
      parts.push_back(at::full({2 + 2 * n}, kInf, at::kDouble));
    }
  }
  if (parts.empty()) return;
  auto buffer = at::cat(parts);
  all_reduce(buffer, c10d::ReduceOp::MIN, group, "distributed calibration: MinMax statistics");
  int64_t at_ = 0;
  for (const auto i : c10::irange(analyzers.size())) {
    auto* a = analyzers[i];
    const auto n = numel_of(a->shape());
    const bool any = buffer[at_].item<double>() == -1.0;
    if (any) {
      const auto dtype = static_cast<at::ScalarType>(-buffer[at_ + 1].item<double>());
      const auto mn = buffer.slice(0, at_ + 2, at_ + 2 + n).to(dtype).reshape(a->shape());
      const auto mx =
          (-buffer.slice(0, at_ + 2 + n, at_ + 2 + 2 * n)).to(dtype).reshape(a->shape());
      auto merged = std::make_shared<MinMaxStatistics>(mn, mx);
      merged->nan_count = nan_totals[i];
      a->set_accumulated_stats(std::move(merged), nan_totals[i]);
    }
    at_ += 2 + 2 * n;
  }
}

// Histograms: (1) all-gather every rank's range, (2) each rank bins its contribution on the union
// range the merge reaches at its turn, (3) all-gather the contributions and fold them in rank
// order, as HistogramObserver::merge folds batches.
void merge_histograms(const std::vector<HistogramEncodingAnalyzer*>& analyzers,
                      const std::vector<int64_t>& nan_totals, c10d::ProcessGroup& group) {
  if (analyzers.empty()) return;
  const int world = group.getSize(), me = group.getRank();
  // (1) [has, dtype, min..., max...] per analyzer.
  std::vector<at::Tensor> parts;
  for (auto* a : analyzers) {
    const auto n = numel_of(a->shape());
    const auto& stats = a->observer().stats();
    if (stats) {
      parts.push_back(
          at::tensor({1.0, static_cast<double>(stats->min.scalar_type())}, at::kDouble));
      parts.push_back(flat64(stats->min));
      parts.push_back(flat64(stats->max));
    } else {
      parts.push_back(at::zeros({2 + 2 * n}, at::kDouble));
    }
  }
  const auto ranges =
      all_gather(at::cat(parts), group, "distributed calibration: histogram ranges");

  // The union range after each rank's turn, per analyzer; ranks without statistics skip a turn.
  struct Turns {
    std::vector<int> ranks;              // ranks with statistics, in order
    std::vector<at::Tensor> umin, umax;  // union range after ranks[k], in the stats dtype
  };
  std::vector<Turns> turns(analyzers.size());
  std::vector<at::Tensor> contributions;
  int64_t at_ = 0;
  for (const auto i : c10::irange(analyzers.size())) {
    auto* a = analyzers[i];
    const auto n = numel_of(a->shape());
    auto& t = turns[i];
    for (int r = 0; r < world; ++r) {
      if (ranges[r][at_].item<double>() != 1.0) continue;
      const auto dtype = static_cast<at::ScalarType>(ranges[r][at_ + 1].item<int64_t>());
      auto mn = ranges[r].slice(0, at_ + 2, at_ + 2 + n).to(dtype);
      auto mx = ranges[r].slice(0, at_ + 2 + n, at_ + 2 + 2 * n).to(dtype);
      if (!t.ranks.empty()) {
        mn = at::minimum(mn, t.umin.back());
        mx = at::maximum(mx, t.umax.back());
      }
      t.ranks.push_back(r);
      t.umin.push_back(mn);
      t.umax.push_back(mx);
    }
    at_ += 2 + 2 * n;
    // (2) This rank's contribution: its histogram as is when it opens the merge, else binned on
    // the union range at its turn; zeros when it has no statistics.
    const int64_t hb = a->observer().num_histograms() * a->num_bins();
    at::Tensor mine = at::zeros({hb}, at::kDouble);
    for (const auto k : c10::irange(t.ranks.size())) {
      if (t.ranks[k] != me) continue;
      mine = k == 0 ? a->observer().stats()->histogram.reshape({-1})
                    : a->observer()
                          .contribution_on(t.umin[k], t.umax[k], a->single_batch())
                          .reshape({-1});
    }
    contributions.push_back(mine.to(at::kDouble));
  }
  const auto gathered =
      all_gather(at::cat(contributions), group, "distributed calibration: histograms");

  // (3) Fold in rank order; identical arithmetic on every rank.
  int64_t offset = 0;
  for (const auto i : c10::irange(analyzers.size())) {
    auto* a = analyzers[i];
    const auto H = a->observer().num_histograms(), B = a->num_bins();
    const auto& t = turns[i];
    const auto slice = [&gathered, start = offset, H, B](int r) {
      return gathered[r].slice(0, start, start + H * B).reshape({H, B}).clone();
    };
    offset += H * B;
    if (t.ranks.empty()) continue;
    auto histogram = slice(t.ranks[0]);
    for (const auto k : c10::irange(size_t{1}, t.ranks.size())) {
      histogram = kernels::merge_histograms_fused(
          slice(t.ranks[k]), histogram, t.umin[k - 1].reshape({-1}), t.umax[k - 1].reshape({-1}),
          t.umin[k].reshape({-1}), t.umax[k].reshape({-1}));
    }
    a->set_accumulated_stats(histogram, t.umin.back(), t.umax.back(), nan_totals[i], nan_totals[i]);
  }
}

}  // namespace

void synchronize_statistics(const std::vector<EncodingAnalyzer*>& analyzers,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
  TORCH_CHECK(group, "synchronize_statistics: no process group");
  // Every rank holds the same model, so every rank returns here alike (Gloo cannot reduce an
  // empty tensor).
  if (analyzers.empty()) return;
  std::vector<MinMaxEncodingAnalyzer*> min_max;
  std::vector<HistogramEncodingAnalyzer*> histograms;
  std::vector<EncodingAnalyzer*> ordered;  // min_max then histograms, as nan_totals are laid out
  for (auto* a : analyzers) {
    if (auto* m = dynamic_cast<MinMaxEncodingAnalyzer*>(a)) {
      min_max.push_back(m);
    } else if (auto* h = dynamic_cast<HistogramEncodingAnalyzer*>(a)) {
      histograms.push_back(h);
    } else {
      QS_THROW(c10::TypeError, "synchronize_statistics: an analyzer of shape ",
               at::IntArrayRef(a->shape()),
               " is neither MinMax nor histogram-based; its statistics cannot be merged");
    }
  }
  ordered.insert(ordered.end(), min_max.begin(), min_max.end());
  ordered.insert(ordered.end(), histograms.begin(), histograms.end());
  const auto totals = nan_totals(ordered, *group);
  merge_min_max(min_max, std::vector<int64_t>(totals.begin(), totals.begin() + min_max.size()),
                *group);
  merge_histograms(histograms, std::vector<int64_t>(totals.begin() + min_max.size(), totals.end()),
                   *group);
}

std::vector<EncodingAnalyzer*> calibrating_analyzers(torch::nn::Module& model) {
  std::vector<EncodingAnalyzer*> found;
  std::set<const EncodingAnalyzer*> seen;
  for (const auto& module : model.modules(/*include_self=*/true)) {
    auto* quantizer = dynamic_cast<affine::AffineQuantizerBase*>(module.get());
    if (quantizer == nullptr || !quantizer->is_calibrating()) continue;
    auto* analyzer = quantizer->encoding_analyzer().get();
    if (analyzer != nullptr && seen.insert(analyzer).second) found.push_back(analyzer);
  }
  return found;
}

void compute_encodings(torch::nn::Module& model, const std::function<void()>& run,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                       CalibrationTimes* times) {
  TORCH_CHECK(group, "distributed compute_encodings: no process group");
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  // Entered here (setting the parameters' ranges) and closed explicitly below (setting the
  // activations' ranges), so that their time can be told apart.
  auto start = Clock::now();
  std::optional<nn::ModelCalibrationGuard> calibrating(nn::compute_encodings(model));
  const double enter = seconds_since(start);
  const auto analyzers = calibrating_analyzers(model);
  // A rank's only batch is kept until the merge, which bins it on the union range as
  // single-process calibration would (docs/distributed.md §3.2).
  std::vector<HistogramEncodingAnalyzer*> retaining;
  for (auto* a : analyzers) {
    if (auto* h = dynamic_cast<HistogramEncodingAnalyzer*>(a)) {
      h->retain_single_batch(true);
      retaining.push_back(h);
    }
  }
  struct StopRetaining {
    std::vector<HistogramEncodingAnalyzer*>& analyzers;
    ~StopRetaining() {
      for (auto* h : analyzers) h->retain_single_batch(false);
    }
  } stop{retaining};
  start = Clock::now();
  run();
  const double forward = seconds_since(start);
  start = Clock::now();
  synchronize_statistics(analyzers, group);
  const double synchronize = seconds_since(start);
  // The retained batches are merged; released before the ranges are set, as `stop` would.
  for (auto* h : retaining) h->retain_single_batch(false);
  // `calibrating` sets every range from the merged statistics as it closes.
  start = Clock::now();
  calibrating.reset();
  if (times != nullptr) *times = {forward, synchronize, enter + seconds_since(start)};
}

}  // namespace quantsim::distributed

namespace quantsim::nn {

void compute_encodings(torch::nn::Module& model, const std::function<void()>& run,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& process_group) {
  distributed::compute_encodings(model, run, process_group);
}

}  // namespace quantsim::nn
