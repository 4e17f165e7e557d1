// Fused statistics kernels == their normative references: per-parameter min/max (NaN excluded,
// +-inf included), NaN counts, and histogram counts binned exactly as torch.histc, over random
// shapes, parameter layouts, memory orders, dtypes, and NaN/inf mixes.

#include "kernels/statistics.h"
#include "testing/random.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <random>

namespace k = quantsim::kernels;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void expect_min_max_agree(const at::Tensor& x, std::vector<int64_t> params) {
  SCOPED_TRACE(::testing::Message() << "x " << x.sizes() << " strides " << x.strides() << " params "
                                    << at::IntArrayRef(params) << " dtype " << x.scalar_type());
  const auto fused = k::min_max_fused(x, params);
  const auto ref = k::min_max_reference(x, params);
  // Values compare with ==: the sign of a zero extreme depends on visiting order in both.
  EXPECT_TRUE(torch::equal(fused.min, ref.min));
  EXPECT_TRUE(torch::equal(fused.max, ref.max));
  EXPECT_TRUE(torch::equal(fused.finite_min, ref.finite_min));
  EXPECT_TRUE(torch::equal(fused.finite_max, ref.finite_max));
  EXPECT_EQ(fused.nan_count, ref.nan_count);
  EXPECT_EQ(fused.min.scalar_type(), x.scalar_type());
}

void expect_histograms_agree(const at::Tensor& x, std::vector<int64_t> params, int64_t bins) {
  const auto stats = k::min_max_reference(x, params);
  // Ranges inside the data, so that the end-bin rule is exercised for finite values too.
  const auto lo = stats.finite_min * 0.8 + stats.finite_max * 0.2;
  const auto hi = stats.finite_min * 0.1 + stats.finite_max * 0.9 + 1e-3;
  SCOPED_TRACE(::testing::Message()
               << "x " << x.sizes() << " params " << at::IntArrayRef(params) << " bins " << bins);
  EXPECT_TRUE(torch::equal(k::histogram_fused(x, params, lo, hi, bins),
                           k::histogram_reference(x, params, lo, hi, bins)));
}

}  // namespace

TEST(StatisticsKernels, RandomSweep) {
  std::mt19937 rng(7);
  torch::manual_seed(7);
  for (int trial = 0; trial < 30; ++trial) {
    const auto layout = quantsim::testing::random_layout(rng, 17);
    const auto& params = layout.params;
    auto x = quantsim::testing::with_memory_order(
        quantsim::testing::noisy_randn(layout.shape, trial % 3 == 0 ? 0.0 : 0.1), layout.order);
    if (trial % 4 == 1) x = x.to(torch::kDouble);
    if (trial % 4 == 2) x = x.to(torch::kHalf);
    expect_min_max_agree(x, params);
    // Rows without finite values have no histogram range; keep the histogram sweep finite-rich.
    if (torch::isfinite(x).all().item<bool>())
      expect_histograms_agree(x.to(torch::kFloat), params, 1 + rng() % 64);
  }
}

TEST(StatisticsKernels, LargeInputsAcrossThreadsAndLayouts) {
  const auto x = quantsim::testing::noisy_randn({64, 300, 33}, 0.01);
  for (auto params :
       std::vector<std::vector<int64_t>>{{}, {64, 1, 1}, {33}, {300, 1}, {64, 300, 33}}) {
    for (int threads : {1, 2}) {
      at::set_num_threads(threads);
      expect_min_max_agree(x, params);
      expect_min_max_agree(x.transpose(0, 2).contiguous().transpose(0, 2), params);
    }
  }
  const auto finite = torch::randn({64, 300, 33});
  for (auto params : std::vector<std::vector<int64_t>>{{}, {64, 1, 1}, {33}}) {
    expect_histograms_agree(finite, params, 2048);
    expect_histograms_agree(finite, params, 10);
  }
}

TEST(StatisticsKernels, HistogramBinEdgesAndInfinities) {
  // Values exactly on float32 bin edges, one ulp either side, the range ends, and +-inf/NaN.
  const float lo = -1.3f, hi = 2.9f;
  const int64_t bins = 7;
  const float w = (hi - lo) / bins;
  std::vector<float> v{lo, hi, kInf, -kInf, kNaN, -5.f, 5.f};
  for (int i = 0; i <= bins; ++i) {
    const float edge = lo + w * static_cast<float>(i);
    v.push_back(edge);
    v.push_back(std::nextafter(edge, -kInf));
    v.push_back(std::nextafter(edge, kInf));
  }
  const auto x = torch::tensor(v);
  const auto h = k::histogram_fused(x, {}, torch::tensor(lo), torch::tensor(hi), bins);
  const auto r = k::histogram_reference(x, {}, torch::tensor(lo), torch::tensor(hi), bins);
  EXPECT_TRUE(torch::equal(h, r)) << h << r;
  EXPECT_EQ(h.sum().item<double>(), static_cast<double>(v.size() - 1));  // all but the NaN
  const auto m = k::min_max_fused(x, {});
  EXPECT_EQ(m.min.item<float>(), -kInf);
  EXPECT_EQ(m.max.item<float>(), kInf);
  EXPECT_EQ(m.finite_min.item<float>(), -5.f);
  EXPECT_EQ(m.finite_max.item<float>(), 5.f);
  EXPECT_EQ(m.nan_count, 1);
}

TEST(StatisticsKernels, HistogramAgreesWithTorchHistcOnRandomData) {
  torch::manual_seed(11);
  for (int64_t bins : {1, 10, 2048}) {
    const auto x = torch::randn({20000});
    const float lo = x.min().item<float>(), hi = x.max().item<float>();
    const auto h = k::histogram_fused(x, {}, torch::tensor(lo), torch::tensor(hi), bins);
    EXPECT_TRUE(torch::equal(h[0], at::histc(x, bins, lo, hi).to(torch::kDouble))) << bins;
  }
}

TEST(StatisticsKernels, AllNaNAndEmptySlices) {
  const auto x = torch::full({2, 5}, kNaN);
  const auto m = k::min_max_fused(x, {2, 1});
  EXPECT_TRUE(torch::equal(m.min, torch::full({2, 1}, kInf)));
  EXPECT_TRUE(torch::equal(m.finite_max, torch::full({2, 1}, -kInf)));
  EXPECT_EQ(m.nan_count, 10);
  const auto e = k::min_max_fused(torch::empty({0, 3}), {3});
  EXPECT_TRUE(torch::equal(e.min, torch::full({3}, kInf)));
  EXPECT_THROW(k::min_max_fused(torch::randn({2, 3}), {4}), c10::Error);
}
