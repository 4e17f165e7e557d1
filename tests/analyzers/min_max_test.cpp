// MinMaxEncodingAnalyzer (docs/quantization.md §8.1, §8.2) against the reference's values.

#include <quantsim/analyzers/min_max.h>
#include <quantsim/errors.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::MinMaxEncodingAnalyzer;
using qs::testing::all_close;
using qs::testing::f32;
using qs::testing::f32_2d;
using qs::testing::scalar;

namespace {

constexpr double kFloatMax = std::numeric_limits<float>::max();  // 3.4028235e38
constexpr double kInf = std::numeric_limits<double>::infinity();

/// (min, max) of a per-tensor analyzer after one batch.
std::pair<at::Tensor, at::Tensor> encodings_of(const at::Tensor& x, int64_t num_steps,
                                               bool symmetric) {
  MinMaxEncodingAnalyzer analyzer({});
  analyzer.update_stats(x);
  return analyzer.compute_encodings(num_steps, symmetric);
}

::testing::AssertionResult range_is(const std::pair<at::Tensor, at::Tensor>& range, double min,
                                    double max, double atol = qs::testing::kSpecAtol,
                                    double rtol = 0.0) {
  auto result = all_close(range.first, scalar(min), atol, rtol);
  if (!result) return result << " (min)";
  result = all_close(range.second, scalar(max), atol, rtol);
  if (!result) return result << " (max)";
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(MinMaxEncodingAnalyzer, Check25Ranges) {
  const auto half_steps = torch::arange(0, 26, 0.5, torch::kFloat);
  EXPECT_TRUE(range_is(encodings_of(half_steps, 255, false), 0, 25.5));
  EXPECT_TRUE(range_is(encodings_of(half_steps, 254, true), -25.5, 25.5));
  EXPECT_TRUE(range_is(encodings_of(torch::arange(-2, 10, torch::kFloat), 7, true), -12, 9));

  const auto constant = torch::full({10}, 3.0);
  EXPECT_TRUE(range_is(encodings_of(constant, 255, false), 0, 3));
  EXPECT_TRUE(range_is(encodings_of(constant, 254, true), -3, 3));
}

// A zero range is widened to EPS per step. The values are far below the default 1e-6 tolerance,
// so they are compared relatively.
TEST(MinMaxEncodingAnalyzer, Check25ZerosAreWidenedToEpsPerStep) {
  const auto zeros = torch::zeros({10});
  EXPECT_TRUE(range_is(encodings_of(zeros, 255, false), 0, 3.0398369e-05, 0, 1e-7));
  EXPECT_TRUE(range_is(encodings_of(zeros, 255, true), -1.5258789e-05, 1.5139580e-05, 0, 1e-7));
}

TEST(MinMaxEncodingAnalyzer, Check25PerChannel) {
  MinMaxEncodingAnalyzer analyzer({3, 1});
  analyzer.update_stats(torch::arange(24, torch::kFloat).view({2, 3, 4}));
  const auto [mn, mx] = analyzer.compute_encodings(255, false);
  EXPECT_TRUE(all_close(mn, torch::zeros({3, 1})));
  EXPECT_TRUE(all_close(mx, f32({15, 19, 23}).view({3, 1})));
}

TEST(MinMaxEncodingAnalyzer, Check25InfinityClipsToTheLargestFloat) {
  EXPECT_TRUE(range_is(encodings_of(f32({-1, kInf}), 255, false), -1, kFloatMax, 0, 1e-7));
  EXPECT_TRUE(
      range_is(encodings_of(f32({-kInf, kInf}), 255, true), -kFloatMax, kFloatMax, 0, 1e-7));
}

// Deliberate difference (docs/differences.md): NaN is left out and counted, not propagated.
TEST(MinMaxEncodingAnalyzer, NanIsSkippedAndCounted) {
  MinMaxEncodingAnalyzer analyzer({});
  analyzer.update_stats(f32({1, std::nan(""), -2}));
  analyzer.update_stats(f32({std::nan(""), 0.5, std::nan("")}));
  EXPECT_TRUE(range_is(analyzer.compute_encodings(255, false), -2, 1));
  EXPECT_EQ(analyzer.nan_count(), 3);
  // compute_dynamic_encodings accumulates nothing, NaN count included.
  analyzer.compute_dynamic_encodings(f32({std::nan(""), 1}), 255, false);
  EXPECT_EQ(analyzer.nan_count(), 3);
  analyzer.reset_stats();
  EXPECT_EQ(analyzer.nan_count(), 0);
}

// A slice of nothing but NaN has no range: an error, and the statistics so far are kept.
// (A slice of only ±inf is fine: check 25 clips it to ±FLT_MAX.)
TEST(MinMaxEncodingAnalyzer, AllNanSliceIsRejectedAndStatisticsKept) {
  MinMaxEncodingAnalyzer analyzer({2, 1});
  analyzer.update_stats(f32_2d({{-1, 1}, {0, 2}}));
  EXPECT_THROW(analyzer.update_stats(f32_2d({{5, 6}, {std::nan(""), std::nan("")}})),
               c10::ValueError);
  const auto [mn, mx] = analyzer.compute_encodings(255, false);
  EXPECT_TRUE(all_close(mn, f32({-1, 0}).view({2, 1})));
  EXPECT_TRUE(all_close(mx, f32({1, 2}).view({2, 1})));
  EXPECT_EQ(analyzer.nan_count(), 0);
}

TEST(MinMaxEncodingAnalyzer, Check25Errors) {
  MinMaxEncodingAnalyzer analyzer({});
  EXPECT_THROW(analyzer.compute_encodings(255, false), qs::StatisticsNotFoundError);
  analyzer.update_stats(f32({-1, 1}));
  EXPECT_THROW(analyzer.compute_encodings(0, false), c10::ValueError);
  EXPECT_THROW(analyzer.compute_dynamic_encodings(f32({-1, 1}), 0, true), c10::ValueError);
  analyzer.reset_stats();
  EXPECT_THROW(analyzer.compute_encodings(255, false), qs::StatisticsNotFoundError);

  MinMaxEncodingAnalyzer mismatched({3, 4});
  EXPECT_THROW(mismatched.update_stats(torch::zeros({2, 3, 5})), c10::Error);
  EXPECT_THROW(mismatched.compute_dynamic_encodings(torch::zeros({2, 3, 5}), 255, false),
               c10::Error);
}

// update_stats accumulates and returns this batch's statistics; compute_dynamic_encodings
// accumulates nothing (docs/quantization.md §8.1).
TEST(MinMaxEncodingAnalyzer, AccumulatesAcrossBatches) {
  MinMaxEncodingAnalyzer analyzer({});
  analyzer.update_stats(f32({-1, 1}));
  const auto batch = analyzer.update_stats(f32({0, 3}));
  EXPECT_TRUE(
      range_is(analyzer.compute_encodings_from_stats(*batch, 255, false), 0, 3));  // this batch
  EXPECT_TRUE(range_is(analyzer.compute_encodings(255, false), -1, 3));            // both batches

  EXPECT_TRUE(range_is(analyzer.compute_dynamic_encodings(f32({-10, 10}), 255, false), -10, 10));
  EXPECT_TRUE(range_is(analyzer.compute_encodings(255, false), -1, 3));
}

TEST(MinMaxEncodingAnalyzer, ResultsHaveTheStatisticsDtype) {
  MinMaxEncodingAnalyzer analyzer({});
  analyzer.update_stats(f32({-2, 1}).to(torch::kDouble));
  const auto [mn, mx] = analyzer.compute_encodings(255, true);
  EXPECT_EQ(mn.scalar_type(), torch::kDouble);
  EXPECT_EQ(mx.scalar_type(), torch::kDouble);
  EXPECT_NEAR(mn.item<double>(), -2, qs::testing::kSpecAtol);
  EXPECT_NEAR(mx.item<double>(), 1.984375, qs::testing::kSpecAtol);
}

TEST(MinMaxEncodingAnalyzer, CloneKeepsStatisticsButAccumulatesSeparately) {
  MinMaxEncodingAnalyzer analyzer({});
  analyzer.update_stats(f32({-1, 1}));
  const auto copy = analyzer.clone();
  copy->update_stats(f32({0, 5}));
  EXPECT_TRUE(range_is(analyzer.compute_encodings(255, false), -1, 1));
  EXPECT_TRUE(range_is(copy->compute_encodings(255, false), -1, 5));
}
