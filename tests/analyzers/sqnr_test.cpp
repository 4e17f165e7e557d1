// SqnrEncodingAnalyzer (docs/quantization.md §8.5).

#include <quantsim/analyzers/sqnr.h>
#include <quantsim/errors.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::SqnrEncodingAnalyzer;
using qs::SqnrOptions;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;

// Uniform data without outliers and gamma 1: the best candidate is the observed range itself,
// delta = (1 - (-1)) / 255 with offset round(-1 / delta) (docs/quantization.md eq. (S6), float32).
TEST(SqnrEncodingAnalyzer, UniformDataKeepsTheObservedRange) {
  SqnrEncodingAnalyzer analyzer({1}, SqnrOptions().gamma(1.0));
  analyzer.update_stats(torch::arange(-100, 101, torch::kFloat) / 100);
  const auto [mn, mx] = analyzer.compute_encodings(255, false);
  const auto delta = (f32({1}) - f32({-1})) / 255;
  const auto offset = at::round(f32({-1}) / delta);
  const auto expected_min = delta * offset;
  EXPECT_TRUE(bitwise_equal(mn, expected_min));
  EXPECT_TRUE(bitwise_equal(mx, expected_min + delta * 255));
}

// An outlier at 34 beside n uniform values in [0, 25.5): n is chosen so that the squared error
// n * delta^2 / 12 + (34 - 255 delta)^2 is minimal at delta = 0.1, i.e. max 25.5 (the
// candidate k = 12 of 17 for max_delta = 34 / 255).
TEST(SqnrEncodingAnalyzer, OutlierIsClipped) {
  torch::manual_seed(0);
  const double delta = 0.1, outlier = 255 * delta / 0.75;
  const auto n = static_cast<int64_t>(std::llround(12 * 255 * outlier / delta - 12 * 255 * 255));
  SqnrEncodingAnalyzer analyzer({1}, SqnrOptions().gamma(1.0));
  analyzer.update_stats(torch::rand({1, n}) * 255 * delta);
  analyzer.update_stats(torch::full({1, 1}, outlier));
  const auto [mn, mx] = analyzer.compute_encodings(255, false);
  EXPECT_TRUE(all_close(mn, f32({0}), 1e-6));
  EXPECT_TRUE(all_close(mx, f32({25.5}), 0, 1e-5));
}

// All-zero histograms tie every candidate: the first one wins. Symmetric grid, n = 255:
// delta_1 = max(2 * 1 / 255 * 1 / 100, EPS), offset floor(-255 / 2) = -128.
TEST(SqnrEncodingAnalyzer, FirstCandidateWinsTies) {
  SqnrEncodingAnalyzer analyzer({}, SqnrOptions().num_bins(8));
  qs::HistogramStatistics stats;
  stats.histogram = torch::zeros({1, 8}, torch::kDouble);
  stats.bin_edges = torch::linspace(-1, 1, 9).unsqueeze(0);
  stats.min = f32({-1}).reshape({});
  stats.max = f32({1}).reshape({});
  const auto [mn, mx] = analyzer.compute_encodings_from_stats(stats, 255, true);
  const auto max_delta = 2 * f32({1}) / 255;
  const auto delta = (max_delta * 1 / 100).clamp_min(std::numeric_limits<float>::epsilon());
  EXPECT_TRUE(bitwise_equal(mn, (-128 * delta).reshape({})));
  EXPECT_TRUE(bitwise_equal(mx, (-128 * delta + 255 * delta).reshape({})));
}

// Symmetric results lie on the signed grid: min = -128 delta, max = 127 delta.
TEST(SqnrEncodingAnalyzer, SymmetricUsesTheSignedGrid) {
  torch::manual_seed(1);
  SqnrEncodingAnalyzer analyzer({});
  analyzer.update_stats(torch::randn({4000}));
  const auto [mn, mx] = analyzer.compute_encodings(255, true);
  const auto delta = (mx - mn) / 255;
  EXPECT_TRUE(all_close(mn, -128 * delta, 1e-6));
  EXPECT_TRUE(all_close(mx, 127 * delta, 1e-6));
}

// Per-channel results equal the per-tensor results of each slice, and chunking the histograms
// (max_parallelism) never changes a value.
TEST(SqnrEncodingAnalyzer, PerChannelEqualsPerTensorOfEachSlice) {
  torch::manual_seed(2);
  std::vector<at::Tensor> batches;
  for (int b = 0; b < 2; ++b) batches.push_back(torch::randn({3, 5, 4}) * (b + 1) + b);
  const auto options = SqnrOptions().num_bins(128);
  SqnrEncodingAnalyzer wide({5, 1}, options);
  SqnrEncodingAnalyzer chunked({5, 1}, SqnrOptions(options).max_parallelism(2));
  for (const auto& x : batches) {
    wide.update_stats(x);
    chunked.update_stats(x);
  }
  for (bool symmetric : {false, true}) {
    const auto [mn, mx] = wide.compute_encodings(255, symmetric);
    const auto [cmn, cmx] = chunked.compute_encodings(255, symmetric);
    EXPECT_TRUE(bitwise_equal(mn, cmn));
    EXPECT_TRUE(bitwise_equal(mx, cmx));
    for (int64_t c = 0; c < 5; ++c) {
      SqnrEncodingAnalyzer single({}, options);
      for (const auto& x : batches) single.update_stats(x.select(1, c));
      const auto [smn, smx] = single.compute_encodings(255, symmetric);
      EXPECT_TRUE(bitwise_equal(mn[c][0], smn)) << c << " symmetric " << symmetric;
      EXPECT_TRUE(bitwise_equal(mx[c][0], smx)) << c << " symmetric " << symmetric;
    }
  }
}

// 16 to 32 bits finish (the search costs O(min(levels, bins)) per candidate, not O(levels)): with
// the default gamma 3 and a grid this fine, clipping a bin costs more than any rounding, so the
// range keeps every histogram mid-point (the first and the last: within half a bin of the data's
// extremes) and zero, on the asymmetric and the signed grid; the range is no wider than needed,
// except for the floor of EPS per step (n EPS = 512 at 32 bits, eq. (S6)'s max_v).
TEST(SqnrEncodingAnalyzer, WideGridsFinishAndKeepTheData) {
  torch::manual_seed(3);
  const auto x = torch::randn({4096});
  const double lo = x.min().item<double>(), hi = x.max().item<double>();
  const double half_bin = (hi - lo) / 2048 / 2;
  for (int bits : {16, 20, 24, 32}) {
    for (bool symmetric : {false, true}) {
      SqnrEncodingAnalyzer analyzer({});
      analyzer.update_stats(x);
      const auto [mn, mx] = analyzer.compute_encodings((int64_t{1} << bits) - 1, symmetric);
      const double a = mn.item<double>(), b = mx.item<double>();
      EXPECT_LE(a, lo + half_bin * 1.001) << bits << " bits, symmetric " << symmetric;
      EXPECT_GE(b, hi - half_bin * 1.001) << bits << " bits, symmetric " << symmetric;
      EXPECT_LE(a, 0.0);
      EXPECT_GE(b, 0.0);
      const double floor = std::ldexp(1.0, bits - 23);  // ~n EPS
      EXPECT_LT(b - a, std::max(2 * (hi - lo), 2 * floor)) << bits << " bits, sym " << symmetric;
    }
  }
}

TEST(SqnrEncodingAnalyzer, Validation) {
  EXPECT_THROW(SqnrEncodingAnalyzer({1}, SqnrOptions().num_bins(0)), c10::ValueError);
  EXPECT_THROW(SqnrEncodingAnalyzer({1}, SqnrOptions().num_bins(-1)), c10::ValueError);
  EXPECT_THROW(SqnrEncodingAnalyzer({1}, SqnrOptions().asymmetric_delta_candidates(1)),
               c10::ValueError);
  EXPECT_THROW(SqnrEncodingAnalyzer({1}, SqnrOptions().offset_candidates(2)), c10::ValueError);
  EXPECT_THROW(SqnrEncodingAnalyzer({1}, SqnrOptions().max_parallelism(0)), c10::ValueError);
  SqnrEncodingAnalyzer analyzer({1});
  EXPECT_THROW(analyzer.compute_encodings(255, false), qs::StatisticsNotFoundError);
  analyzer.update_stats(torch::randn({3, 4}));
  EXPECT_THROW(analyzer.compute_encodings(0, false), c10::ValueError);
  const auto copy = analyzer.clone();
  EXPECT_TRUE(bitwise_equal(copy->compute_encodings(255, false).first,
                            analyzer.compute_encodings(255, false).first));
}
