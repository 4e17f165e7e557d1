// PercentileEncodingAnalyzer (docs/quantization.md §8.4) and the quantizer's set_percentile.

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/errors.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::PercentileEncodingAnalyzer;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::scalar;

// docs/quantization.md eq. (S5): the left edge of the percentile's bin, and ±0.5 padding for a
// constant input: 3 bins over [2.5, 3.5], the 99th percentile lies in bin 1 whose left edge is
// 2.8333.
TEST(PercentileEncodingAnalyzer, ConstantInputUsesLeftEdgeOfPaddedBins) {
  PercentileEncodingAnalyzer analyzer({1}, /*num_bins=*/3, /*percentile=*/99);
  analyzer.update_stats(torch::full({1}, 3.0));
  auto [mn, mx] = analyzer.compute_encodings(255, false);
  EXPECT_TRUE(all_close(mn, f32({0}), 1e-6));
  EXPECT_TRUE(all_close(mx, f32({2.8333}), 5e-5));
  std::tie(mn, mx) = analyzer.compute_encodings(254, true);
  EXPECT_TRUE(all_close(mn, f32({-2.8333}), 5e-5));
  EXPECT_TRUE(all_close(mx, f32({2.8333}), 5e-5));
}

// arange(0, 1001) in 500 bins of width 2: cumulative counts 2, 4, ..., 998, 1001. The 99th
// percentile threshold 990.99 is first reached by bin 495 (left edge 990), the 1st percentile
// threshold 10.01 by bin 5 (left edge 10, then 0 is included).
TEST(PercentileEncodingAnalyzer, SequentialInput) {
  PercentileEncodingAnalyzer analyzer({1}, 500, 99);
  analyzer.update_stats(torch::arange(0, 1001, torch::kFloat));
  auto [mn, mx] = analyzer.compute_encodings(255, false);
  EXPECT_EQ(mn.item<float>(), 0);
  EXPECT_EQ(mx.item<float>(), 990);
  std::tie(mn, mx) = analyzer.compute_encodings(254, true);
  EXPECT_EQ(mn.item<float>(), -990);
  EXPECT_EQ(mx.item<float>(), 990);
}

// Percentile 100 takes the histogram's full range, then the MinMax adjustments (as check 25).
TEST(PercentileEncodingAnalyzer, FullPercentileIsTheObservedRange) {
  PercentileEncodingAnalyzer analyzer({1}, 1, 100);
  analyzer.update_stats(torch::arange(-2, 10, torch::kFloat));
  const auto [mn, mx] = analyzer.compute_encodings(7, true);
  EXPECT_TRUE(all_close(mn, f32({-12})));
  EXPECT_TRUE(all_close(mx, f32({9})));
}

TEST(PercentileEncodingAnalyzer, Validation) {
  for (double p : {-1.0, 5.0, 49.0, 101.0, std::nan("")}) {
    EXPECT_THROW(PercentileEncodingAnalyzer({1}, 3, p), c10::ValueError) << p;
  }
  EXPECT_NO_THROW(PercentileEncodingAnalyzer({1}, 3, 50));
  EXPECT_THROW(PercentileEncodingAnalyzer({1}, 0, 99), c10::ValueError);
  EXPECT_THROW(PercentileEncodingAnalyzer({1}, -1, 99), c10::ValueError);

  PercentileEncodingAnalyzer analyzer({}, 8, 99);
  EXPECT_THROW(analyzer.compute_encodings(255, false), qs::StatisticsNotFoundError);
  analyzer.update_stats(torch::randn({10}));
  EXPECT_THROW(analyzer.compute_encodings(0, false), c10::ValueError);
  EXPECT_THROW(analyzer.set_percentile(100.5), c10::ValueError);
  EXPECT_EQ(analyzer.percentile(), 99);
}

// Per-channel results are the per-tensor results of each channel's own data, over several
// batches (the merge slices channels correctly for every shape, docs/differences.md).
TEST(PercentileEncodingAnalyzer, PerChannelEqualsPerTensorOfEachSlice) {
  torch::manual_seed(3);
  std::vector<at::Tensor> batches;
  for (int b = 0; b < 3; ++b) batches.push_back(torch::randn({5, 4, 6}) * (b + 1));
  PercentileEncodingAnalyzer per_channel({4, 1}, 64, 97);
  for (const auto& x : batches) per_channel.update_stats(x);
  for (bool symmetric : {false, true}) {
    const auto [mn, mx] = per_channel.compute_encodings(255, symmetric);
    ASSERT_EQ(mn.sizes(), at::IntArrayRef({4, 1}));
    for (int64_t c = 0; c < 4; ++c) {
      PercentileEncodingAnalyzer single({}, 64, 97);
      for (const auto& x : batches) single.update_stats(x.select(1, c));
      const auto [smn, smx] = single.compute_encodings(255, symmetric);
      EXPECT_TRUE(bitwise_equal(mn[c][0], smn)) << c;
      EXPECT_TRUE(bitwise_equal(mx[c][0], smx)) << c;
    }
  }
}

TEST(PercentileEncodingAnalyzer, CloneAccumulatesSeparately) {
  PercentileEncodingAnalyzer analyzer({}, 16, 100);
  analyzer.update_stats(f32({-1, 1}));
  const auto copy = analyzer.clone();
  copy->update_stats(f32({0, 5}));
  EXPECT_TRUE(all_close(analyzer.compute_encodings(255, false).second, scalar(1)));
  EXPECT_TRUE(all_close(copy->compute_encodings(255, false).second, scalar(5), 1e-5));
}

// quantsim's set_percentile_value: the quantizer forwards to its percentile analyzer.
TEST(PercentileEncodingAnalyzer, QuantizerSetPercentile) {
  auto analyzer = std::make_shared<PercentileEncodingAnalyzer>(std::vector<int64_t>{}, 500, 100);
  qs::affine::QuantizeDequantize q(
      qs::affine::QuantizerOptions({}, 8, false).encoding_analyzer(analyzer));
  EXPECT_TRUE(q->set_percentile(99));
  EXPECT_EQ(analyzer->percentile(), 99);
  EXPECT_THROW(q->set_percentile(40), c10::ValueError);
  EXPECT_EQ(analyzer->percentile(), 99);
  q->compute_encodings([&] { q(torch::arange(0, 1001, torch::kFloat)); });
  EXPECT_EQ(q->max.item<float>(), 990);

  qs::affine::QuantizeDequantize minmax({}, 8, false);
  EXPECT_FALSE(minmax->set_percentile(99));
}

// update_stats defers the histogram of every batch after the first (module-level calibration
// never reads it); asked for, it must be the histogram a fresh collection of that batch gives.
TEST(PercentileEncodingAnalyzer, DeferredBatchHistogramEqualsAFreshCollection) {
  torch::manual_seed(5);
  PercentileEncodingAnalyzer analyzer({3, 1}, 64, 99.0);
  analyzer.update_stats(torch::randn({3, 50}));
  const auto x = torch::randn({3, 50}) * 2;
  const auto batch = analyzer.update_stats(x);
  const auto deferred = analyzer.compute_encodings_from_stats(*batch, 255, false);
  const auto fresh = analyzer.compute_dynamic_encodings(x, 255, false);
  EXPECT_TRUE(qs::testing::bitwise_equal(deferred.first, fresh.first));
  EXPECT_TRUE(qs::testing::bitwise_equal(deferred.second, fresh.second));
  // And the accumulated statistics still cover both batches.
  const auto all = analyzer.compute_encodings(255, false);
  EXPECT_TRUE((all.first <= deferred.first).all().item<bool>());
}
