// Histogram observer (docs/quantization.md §8.3) against the reference's values, hand-derived
// merges and a plain per-slice torch::histc reference on random shapes, channel axes and ±inf/NaN
// mixes.

#include <quantsim/analyzers/histogram.h>
#include <quantsim/analyzers/percentile.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "testing/random.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::HistogramObserver;
using qs::HistogramStatistics;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

at::Tensor counts(std::initializer_list<double> values) {
  return at::tensor(std::vector<double>(values), at::kDouble);
}

/// Histogram h's slice of x as the reference selects it: index (h / numel(trailing)) % dim
/// along every axis whose left-padded analyzer dim is > 1.
at::Tensor slice_of(const at::Tensor& x, const std::vector<int64_t>& shape, int64_t h) {
  std::vector<int64_t> padded(x.dim() - shape.size(), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  at::Tensor s = x;
  for (int64_t axis = 0; axis < x.dim(); ++axis) {
    if (padded[axis] == 1) continue;
    int64_t trailing = 1;
    for (int64_t a = axis + 1; a < x.dim(); ++a) trailing *= padded[a];
    s = s.select(axis, (h / trailing) % padded[axis]).unsqueeze(axis);
  }
  return s;
}

/// Plain reference of collect_stats for one slice, one torch op at a time
/// (docs/quantization.md §8.3).
struct SliceHistogram {
  at::Tensor hist, edges;
  double min, max;
};
SliceHistogram reference_collect(const at::Tensor& slice, int64_t bins) {
  const auto finite = slice.masked_select(at::isfinite(slice));
  const auto mn = finite.min(), mx = finite.max();
  auto lo = mn, hi = mx;
  if (mn.item<float>() == mx.item<float>()) {
    lo = mn - 0.5;
    hi = mx + 0.5;
  }
  const auto step = (hi.to(at::kFloat) - lo.to(at::kFloat)) / bins;
  const auto edges = at::arange(bins + 1, at::kLong) * step + lo.to(at::kFloat);
  const double e0 = edges[0].item<double>(), eb = edges[bins].item<double>();
  // NaN is left out: torch 1.13's histc would count it in bin 0 (docs/differences.md).
  const auto not_nan = slice.masked_select(~at::isnan(slice)).to(at::kFloat);
  auto hist = at::histc(not_nan, bins, e0, eb).to(at::kDouble);
  hist[0] += (slice < edges[0]).sum().item<double>();
  hist[bins - 1] += (slice > edges[bins]).sum().item<double>();
  return {hist, edges, mn.item<double>(), mx.item<double>()};
}

}  // namespace

// ±inf in the end bins, with the reference's values.
TEST(HistogramObserver, Check29InfinityGoesToTheEndBins) {
  HistogramObserver observer({1}, 10);
  auto batch = observer.collect_stats(f32({1, 7, 5.3, 6, kInf, kInf}));
  observer.merge_stats(batch, f32({1, 7, 5.3, 6, kInf, kInf}));
  auto s = observer.stats();
  EXPECT_EQ(s->min.item<float>(), 1);
  EXPECT_EQ(s->max.item<float>(), 7);
  EXPECT_EQ(s->histogram[0][9].item<double>(), 3);
  EXPECT_TRUE(all_close(s->bin_edges[0], f32({1, 1.6, 2.2, 2.8, 3.4, 4, 4.6, 5.2, 5.8, 6.4, 7})));

  const auto x2 = f32({0, 17, -5, 3, -kInf, kInf, -kInf});
  observer.merge_stats(observer.collect_stats(x2), x2);
  s = observer.stats();
  EXPECT_EQ(s->min.item<float>(), -5);
  EXPECT_EQ(s->max.item<float>(), 17);
  EXPECT_EQ(s->histogram[0][0].item<double>(), 3);
  EXPECT_EQ(s->histogram[0][9].item<double>(), 2);
  EXPECT_TRUE(
      all_close(s->bin_edges[0], f32({-5, -2.8, -0.6, 1.6, 3.8, 6, 8.2, 10.4, 12.6, 14.8, 17})));

  const auto before = s->histogram.clone();
  const auto x3 = f32({10, -kInf, kInf, -kInf});
  observer.merge_stats(observer.collect_stats(x3), x3);
  s = observer.stats();
  EXPECT_EQ(s->histogram[0][0].item<double>(), before[0][0].item<double>() + 2);
  EXPECT_EQ(s->histogram[0][9].item<double>(), before[0][9].item<double>() + 1);

  EXPECT_THROW(observer.collect_stats(f32({kInf, -kInf, -kInf, kInf, kInf})), c10::ValueError);
  EXPECT_THROW(observer.collect_stats(f32({std::nan(""), kInf})), c10::ValueError);
}

// Per-channel collection: histogram i covers the slice the shape selects.
TEST(HistogramObserver, Check29PerChannelCollect) {
  const auto x = torch::arange(24, torch::kFloat).view({2, 3, 4});
  const std::vector<std::vector<int64_t>> shapes = {{4},       {3, 1},    {2, 1, 1}, {3, 4},
                                                    {2, 3, 1}, {2, 1, 4}, {2, 3, 4}};
  for (const auto& shape : shapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << at::IntArrayRef(shape));
    const auto s = HistogramObserver(shape, 5).collect_stats(x);
    const auto mins = s->min.reshape({-1}), maxs = s->max.reshape({-1});
    ASSERT_EQ(mins.numel(), s->histogram.size(0));
    for (int64_t h = 0; h < mins.numel(); ++h) {
      const auto sl = slice_of(x, shape, h);
      EXPECT_EQ(mins[h].item<float>(), sl.min().item<float>()) << h;
      EXPECT_EQ(maxs[h].item<float>(), sl.max().item<float>()) << h;
    }
  }
  // The spelled-out cases of check 29.
  const auto by_last = HistogramObserver({4}, 5).collect_stats(x);
  EXPECT_TRUE(bitwise_equal(by_last->min, f32({0, 1, 2, 3})));
  EXPECT_TRUE(bitwise_equal(by_last->max, f32({20, 21, 22, 23})));
  const auto by_middle = HistogramObserver({3, 1}, 5).collect_stats(x);
  EXPECT_TRUE(bitwise_equal(by_middle->min, f32({0, 4, 8}).view({3, 1})));
  EXPECT_TRUE(bitwise_equal(by_middle->max, f32({15, 19, 23}).view({3, 1})));
  const auto elementwise = HistogramObserver({2, 3, 4}, 5).collect_stats(x);
  EXPECT_TRUE(bitwise_equal(elementwise->min, x));
  EXPECT_TRUE(bitwise_equal(elementwise->max, x));
}

// Merges derived by hand from the redistribution rule docs/quantization.md eq. (S4) (3 bins).
TEST(HistogramObserver, MergeGrowsTheRangeAndRedistributes) {
  HistogramObserver observer({}, 3);
  auto feed = [&](const at::Tensor& x) { observer.merge_stats(observer.collect_stats(x), x); };
  feed(f32({2, 3.5, 4.2, 5}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({1, 1, 2})));
  EXPECT_TRUE(bitwise_equal(observer.stats()->bin_edges[0], f32({2, 3, 4, 5})));
  // Max grows: old bins [2,3) [3,4) [4,5] fold into [2,4) [4,6); new data 5.3 | 6.4 7 8.
  feed(f32({5.3, 6.4, 7, 8}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({2, 3, 3})));
  EXPECT_TRUE(bitwise_equal(observer.stats()->bin_edges[0], f32({2, 4, 6, 8})));
  // Min grows: round(1.9333 * 2 / 2) = 2 of bin 0 to bin 1; bins 1 and 2 to bin 2.
  feed(f32({-4.2, 0, 2.3, 4.5}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({1, 4, 7})));
  EXPECT_TRUE(all_close(observer.stats()->bin_edges[0], f32({-4.2, -0.133333, 3.933333, 8}), 1e-5));
  EXPECT_EQ(observer.stats()->min.item<float>(), -4.2f);
  EXPECT_EQ(observer.stats()->max.item<float>(), 8.f);
}

TEST(HistogramObserver, MergeSplitsAStraddlingBin) {
  HistogramObserver observer({}, 3);
  auto feed = [&](const at::Tensor& x) { observer.merge_stats(observer.collect_stats(x), x); };
  feed(f32({1, 7, 5.3, 6, 5.7, 6.8, 6.2, 2.8, 3.9}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({2, 1, 6})));
  // Old bin [5,7] straddles the new edge 6: round((6-5)/2 * 6) = 3 stay, 3 move on.
  feed(f32({0, 9, 7.8, 2.5, 4.6, 6.2, 8.8}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({4, 5, 7})));
  EXPECT_TRUE(bitwise_equal(observer.stats()->bin_edges[0], f32({0, 3, 6, 9})));
}

TEST(HistogramObserver, MergeWithoutGrowthAddsCounts) {
  HistogramObserver observer({}, 3);
  auto feed = [&](const at::Tensor& x) { observer.merge_stats(observer.collect_stats(x), x); };
  feed(f32({2, 3.5, 4.2, 5}));
  feed(f32({2, 3.3, 4.8, 5}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({2, 2, 4})));
  feed(f32({3.1, 3.3, 3.7, 3.9}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({2, 6, 4})));
  EXPECT_TRUE(bitwise_equal(observer.stats()->bin_edges[0], f32({2, 3, 4, 5})));
}

// A constant first batch has zero-width source bins; the reference's 0/0 would fill the merged
// histogram with NaN. quantsim moves each count whole (docs/differences.md).
TEST(HistogramObserver, MergeAfterAConstantBatchKeepsCountsFinite) {
  HistogramObserver observer({}, 4);
  auto feed = [&](const at::Tensor& x) { observer.merge_stats(observer.collect_stats(x), x); };
  feed(f32({3, 3, 3}));
  EXPECT_TRUE(bitwise_equal(observer.stats()->bin_edges[0], f32({2.5, 2.75, 3, 3.25, 3.5})));
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({0, 0, 3, 0})));
  feed(f32({0, 4}));  // edges [0, 1, 2, 3, 4]: the three 3s belong to bin 3, as 4 does
  EXPECT_TRUE(bitwise_equal(observer.stats()->histogram[0], counts({1, 0, 0, 4})));
}

// The kernel path against one torch::histc per slice, on random shapes, channel axes and
// ±inf/NaN mixes; several batches per case so that merges with growth are covered.
TEST(HistogramObserver, PerChannelMatchesPlainPerSliceHistograms) {
  torch::manual_seed(7);
  struct Case {
    std::vector<int64_t> input, shape;
  };
  const std::vector<Case> cases = {{{64}, {}},
                                   {{6, 10}, {6, 1}},
                                   {{6, 10}, {10}},
                                   {{3, 5, 7}, {5, 1}},
                                   {{3, 5, 7}, {7}},
                                   {{3, 5, 7}, {3, 1, 7}},
                                   {{2, 3, 4, 5}, {3, 1, 1}},
                                   {{4, 9}, {4, 9}},
                                   {{2, 8, 3}, {1, 8, 1}}};
  for (const auto& c : cases) {
    for (double special : {0.0, 0.15}) {
      SCOPED_TRACE(::testing::Message() << "input " << at::IntArrayRef(c.input) << " shape "
                                        << at::IntArrayRef(c.shape) << " specials " << special);
      const int64_t bins = 16;
      HistogramObserver observer(c.shape, bins);
      // Per-slice histories, each observed by a per-tensor observer: the merged per-channel
      // histogram must be the merged histogram of that channel's data alone (docs/differences.md).
      std::vector<HistogramObserver> singles;
      const int64_t H = observer.num_histograms();
      for (int64_t h = 0; h < H; ++h) singles.emplace_back(std::vector<int64_t>{}, bins);
      for (int batch = 0; batch < 3; ++batch) {
        auto x = quantsim::testing::noisy_randn(c.input, special) * (1 + batch);
        // Keep one finite value per slice so that every batch is valid.
        x.view({-1})[0] = 0.5;
        for (int64_t h = 0; h < H; ++h) {
          auto first = slice_of(x, c.shape, h);  // a strided view: select down to its first element
          while (first.dim() > 0) first = first.select(0, 0);
          first.fill_(0.25 * batch);
        }
        const auto collected = observer.collect_stats(x);
        for (int64_t h = 0; h < H; ++h) {
          const auto sl = slice_of(x, c.shape, h);
          const auto ref = reference_collect(sl, bins);
          ASSERT_TRUE(bitwise_equal(collected->histogram[h], ref.hist)) << "collect, slice " << h;
          ASSERT_TRUE(bitwise_equal(collected->bin_edges[h], ref.edges)) << "edges, slice " << h;
          EXPECT_EQ(collected->min.reshape({-1})[h].item().toDouble(), ref.min);
          EXPECT_EQ(collected->max.reshape({-1})[h].item().toDouble(), ref.max);
          singles[h].merge_stats(singles[h].collect_stats(sl), sl);
        }
        observer.merge_stats(collected, x);
        const auto merged = observer.stats();
        for (int64_t h = 0; h < H; ++h) {
          ASSERT_TRUE(bitwise_equal(merged->histogram[h], singles[h].stats()->histogram[0]))
              << "merged, batch " << batch << ", slice " << h;
          ASSERT_TRUE(bitwise_equal(merged->bin_edges[h], singles[h].stats()->bin_edges[0]));
          // Every non-NaN element is counted exactly once.
          EXPECT_EQ(merged->histogram[h].sum().item<double>(),
                    singles[h].stats()->histogram[0].sum().item<double>());
        }
      }
    }
  }
}

TEST(HistogramObserver, CountsEveryNonNanElementAndReportsNan) {
  const auto x = f32({1, std::nan(""), kInf, -kInf, 2, std::nan(""), 3});
  const auto s = HistogramObserver({}, 8).collect_stats(x);
  EXPECT_EQ(s->histogram.sum().item<double>(), 5);
  EXPECT_EQ(s->nan_count, 2);
}

TEST(HistogramObserver, Errors) {
  EXPECT_THROW(HistogramObserver({}, 0), c10::ValueError);
  EXPECT_THROW(HistogramObserver({3, 4}, 8).collect_stats(torch::zeros({2, 3, 5})), c10::Error);
  // The slice named in the message is the one without a finite value.
  auto x = torch::ones({2, 3});
  x[1].fill_(kInf);
  try {
    HistogramObserver({2, 1}, 8).collect_stats(x);
    FAIL() << "expected c10::ValueError";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("histogram 1"), std::string::npos) << e.what();
  }
}

// A rejected batch leaves the accumulated statistics untouched (issue 3).
TEST(HistogramEncodingAnalyzer, RejectedBatchKeepsStatistics) {
  qs::PercentileEncodingAnalyzer analyzer({}, 8);
  analyzer.update_stats(f32({-1, 2, std::nan("")}));
  const auto before = analyzer.accumulated_stats();
  EXPECT_THROW(analyzer.update_stats(f32({kInf, std::nan("")})), c10::ValueError);
  EXPECT_EQ(analyzer.accumulated_stats(), before);
  EXPECT_EQ(analyzer.nan_count(), 1);
  analyzer.reset_stats();
  EXPECT_EQ(analyzer.nan_count(), 0);
  EXPECT_EQ(analyzer.accumulated_stats(), nullptr);
}
