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

namespace {

// min_max_histogram_fused == min_max_reference and histogram_reference; histogram_fused with an
// `active` mask == the reference's rows where active, 0 elsewhere.
void expect_fused_pass_agrees(const at::Tensor& x, std::vector<int64_t> params, int64_t bins,
                              const at::Tensor& lo, const at::Tensor& hi) {
  SCOPED_TRACE(::testing::Message()
               << "x " << x.sizes() << " strides " << x.strides() << " params "
               << at::IntArrayRef(params) << " bins " << bins << " dtype " << x.scalar_type());
  const auto fused = k::min_max_histogram_fused(x, params, lo, hi, bins);
  const auto ref = k::min_max_reference(x, params);
  EXPECT_TRUE(torch::equal(fused.stats.min, ref.min));
  EXPECT_TRUE(torch::equal(fused.stats.max, ref.max));
  EXPECT_TRUE(torch::equal(fused.stats.finite_min, ref.finite_min));
  EXPECT_TRUE(torch::equal(fused.stats.finite_max, ref.finite_max));
  EXPECT_EQ(fused.stats.nan_count, ref.nan_count);
  EXPECT_EQ(fused.stats.min.scalar_type(), x.scalar_type());
  const auto ref_hist = k::histogram_reference(x, params, lo, hi, bins);
  EXPECT_TRUE(torch::equal(fused.histogram, ref_hist));
  EXPECT_TRUE(torch::equal(k::histogram_fused(x, params, lo, hi, bins), ref_hist));
  const auto active = torch::arange(lo.numel()).reshape(lo.sizes()) % 3 != 1;
  const auto masked = k::histogram_fused(x, params, lo, hi, bins, active);
  EXPECT_TRUE(torch::equal(
      masked, torch::where(active.reshape({-1, 1}), ref_hist, torch::zeros_like(ref_hist))));
}

}  // namespace

// The one-pass statistics of a batch on a given range (the observer's accumulated range), over
// random shapes, parameter layouts (channel outermost, innermost, in the middle, per element),
// memory orders, strides, dtypes, bin counts, and data with NaN and +-inf.
TEST(StatisticsKernels, MinMaxHistogramFusedMatchesReferences) {
  std::mt19937 rng(23);
  torch::manual_seed(23);
  for (int trial = 0; trial < 40; ++trial) {
    const auto layout = quantsim::testing::random_layout(rng, 17);
    auto x = quantsim::testing::with_memory_order(
        quantsim::testing::noisy_randn(layout.shape, trial % 3 == 0 ? 0.0 : 0.1), layout.order);
    if (trial % 5 == 1) x = x.to(torch::kDouble);
    if (trial % 5 == 2) x = x.to(torch::kHalf);
    if (trial % 5 == 3) x = x.to(torch::kBFloat16);
    const auto range = k::min_max_reference(x.to(torch::kFloat), layout.params);
    // Finite ranges inside the data (some values beyond both ends), or around it.
    auto lo = torch::nan_to_num(range.finite_min, 0.0, 0.0, 0.0).to(torch::kFloat);
    auto hi = torch::nan_to_num(range.finite_max, 0.0, 0.0, 0.0).to(torch::kFloat);
    if (trial % 2 == 0) {
      std::tie(lo, hi) = std::make_pair(lo * 0.7 + hi * 0.3, lo * 0.2 + hi * 0.8 + 1e-3);
    } else {
      std::tie(lo, hi) = std::make_pair(lo - 0.5, hi + 0.5);
    }
    expect_fused_pass_agrees(x, layout.params, 1 + rng() % 300, lo, hi);
  }
  // Long rows (the sub-histogram path), per tensor and per channel on either end, strided.
  const auto big = quantsim::testing::noisy_randn({64, 300, 33}, 0.01);
  for (auto params : std::vector<std::vector<int64_t>>{{}, {64, 1, 1}, {33}, {300, 1}}) {
    const auto range = k::min_max_reference(big, params);
    const auto lo = range.finite_min * 0.9, hi = range.finite_max * 0.9;
    for (int threads : {1, 2}) {
      at::set_num_threads(threads);
      for (int64_t bins : {1, 10, 2048}) {
        expect_fused_pass_agrees(big, params, bins, lo, hi);
        expect_fused_pass_agrees(big.transpose(0, 2).contiguous().transpose(0, 2), params, bins, lo,
                                 hi);
      }
    }
  }
  const auto wide = torch::randn({8, 70000});
  const auto wr = k::min_max_reference(wide, {8, 1});
  expect_fused_pass_agrees(wide, {8, 1}, 2048, wr.finite_min, wr.finite_max);
  expect_fused_pass_agrees(wide.t(), {8}, 2048, wr.finite_min.reshape({8}),
                           wr.finite_max.reshape({8}));
  expect_fused_pass_agrees(wide.slice(1, 0, 70000, 3), {8, 1}, 16, wr.finite_min, wr.finite_max);
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

// ---- SQNR candidate noise --------------------------------------------------------------------

namespace {

// Edges of the histogram observer (docs/quantization.md eq. (S2)): i * float32((hi - lo) / B) + lo.
at::Tensor observer_edges(const at::Tensor& lo, const at::Tensor& hi, int64_t bins) {
  const auto step = (hi - lo) / bins;
  return at::arange(bins + 1, lo.options()).unsqueeze(0) * step.unsqueeze(1) + lo.unsqueeze(1);
}

// Candidate grids shaped as the analyzer's (docs/quantization.md eq. (S6)): K scales x offsets in
// [-n, 0] clamped to the observed range (asymmetric), or K scales with offset floor(-n / 2)
// (symmetric).
std::pair<at::Tensor, at::Tensor> candidate_grid(const at::Tensor& mn, const at::Tensor& mx,
                                                 int64_t n, bool symmetric) {
  const double eps = std::numeric_limits<float>::epsilon();
  const auto min_v = at::clamp_max(mn, 0),
             max_v = at::maximum(at::clamp_min(mx, 0), min_v + eps * n);
  if (symmetric) {
    const auto max_delta = 2 * at::maximum(max_v, -min_v) / n;
    const auto deltas =
        (max_delta.unsqueeze(1) * at::arange(1, 102, mn.options()).unsqueeze(0) / 100)
            .clamp_min(eps);
    return {deltas, at::full({1, 1}, static_cast<double>(-((n + 1) / 2)), mn.options())};
  }
  const auto max_delta = (max_v - min_v) / n;
  const auto obs_off = at::round(min_v / max_delta);
  const auto obs_min = max_delta * obs_off, obs_max = obs_min + max_delta * n;
  const auto deltas = max_delta.unsqueeze(1) * at::arange(1, 18, mn.options()).unsqueeze(0) / 16;
  const auto grid = at::round(at::linspace(-n, 0, 20, mn.options()));
  const auto offsets =
      at::cat({grid.unsqueeze(0).expand({mn.size(0), 20}), obs_off.unsqueeze(1)}, 1);
  auto tmin = at::maximum(obs_min.view({-1, 1, 1}), deltas.unsqueeze(2) * offsets.unsqueeze(1));
  auto tmax = at::minimum(obs_max.view({-1, 1, 1}),
                          deltas.unsqueeze(2) * offsets.unsqueeze(1) + deltas.unsqueeze(2) * n);
  const auto d = ((tmax - tmin) / n).clamp_min(eps);
  return {d.reshape({mn.size(0), -1}), at::round(tmin / d).reshape({mn.size(0), -1})};
}

// First index of the row minimum of the noise rounded to float32, as the analyzer picks.
at::Tensor first_argmin(const at::Tensor& noise_in) {
  const auto noise = noise_in.to(torch::kFloat);
  const auto index = at::arange(noise.size(1), noise.options().dtype(at::kLong)).unsqueeze(0);
  return at::where(noise == noise.amin(1, true), index, noise.size(1)).amin(1);
}

// The fused noise agrees with the per-bin float32 reference within a relative 2e-5 per candidate
// and 2e-6 on the mean (the reference's own float32 summation error is of that order), and picks
// the same candidate.
void expect_sqnr_noise_agrees(const at::Tensor& data, int64_t bins, int64_t n, bool symmetric,
                              double gamma) {
  SCOPED_TRACE(::testing::Message() << "data " << data.sizes() << " bins " << bins << " n " << n
                                    << " symmetric " << symmetric << " gamma " << gamma);
  const auto mm = k::min_max_reference(data, {data.size(0), 1});
  const auto mn = mm.finite_min.reshape({-1}), mx = mm.finite_max.reshape({-1});
  const auto edges = observer_edges(mn, mx, bins);
  const auto hist = k::histogram_reference(data, {data.size(0), 1}, edges.select(1, 0),
                                           edges.select(1, bins), bins)
                        .to(torch::kFloat);
  const auto [deltas, offsets] = candidate_grid(mn, mx, n, symmetric);
  const auto fused = k::sqnr_noise_fused(hist, edges, deltas, offsets, n, gamma);
  const auto ref = k::sqnr_noise_reference(hist, edges, deltas, offsets, n, gamma);
  ASSERT_EQ(fused.sizes(), ref.sizes());
  const auto err = (fused - ref).abs() / ref.abs().clamp_min(1e-30);
  EXPECT_LE(err.max().item<double>(), 2e-5);
  EXPECT_LE(err.mean().item<double>(), 2e-6);
  EXPECT_TRUE(torch::equal(first_argmin(fused), first_argmin(ref)))
      << at::stack({fused.gather(1, first_argmin(fused).unsqueeze(1)).squeeze(1),
                    fused.gather(1, first_argmin(ref).unsqueeze(1)).squeeze(1),
                    ref.gather(1, first_argmin(fused).unsqueeze(1)).squeeze(1),
                    ref.gather(1, first_argmin(ref).unsqueeze(1)).squeeze(1)})
             .to(torch::kDouble);
}

}  // namespace

TEST(StatisticsKernels, SqnrNoiseAgreesWithReference) {
  torch::manual_seed(5);
  for (bool symmetric : {false, true}) {
    for (double gamma : {3.0, 1.0}) {
      expect_sqnr_noise_agrees(torch::randn({6, 5000}), 2048, 255, symmetric, gamma);
      expect_sqnr_noise_agrees(torch::rand({3, 20000}) * 4 - 1, 512, 15, symmetric, gamma);
      // Skewed, with outliers, and far from zero.
      auto skewed = torch::randn({4, 3000}).exp();
      skewed.index_put_({torch::indexing::Slice(), 0}, 50.0);
      expect_sqnr_noise_agrees(skewed, 2048, 255, symmetric, gamma);
      expect_sqnr_noise_agrees(torch::randn({2, 4000}) * 0.01 + 100, 128, 255, symmetric, gamma);
      expect_sqnr_noise_agrees(torch::randn({2, 37}), 64, 3, symmetric, gamma);
    }
  }
}

// Grids with more levels than bins (16 bits and up with 2048 bins, or few bins at 8 bits) take the
// per-bin path of the fused kernel, whose cost does not grow with the bitwidth; it agrees with the
// per-bin reference and picks its candidate up to 32 bits, where n = 2^32 - 1 rounds to 2^32 in
// float32 and the level 2^32 must not count as clipped (it did when the clipping bound was n + 1).
TEST(StatisticsKernels, SqnrNoiseOnWideGridsAgreesWithReference) {
  torch::manual_seed(6);
  for (int bits : {16, 20, 24, 32}) {
    const int64_t n = (int64_t{1} << bits) - 1;
    for (bool symmetric : {false, true}) {
      for (double gamma : {3.0, 1.0}) {
        expect_sqnr_noise_agrees(torch::randn({3, 4096}), 2048, n, symmetric, gamma);
        auto skewed = torch::randn({2, 3000}).exp();
        skewed.index_put_({torch::indexing::Slice(), 0}, 50.0);
        expect_sqnr_noise_agrees(skewed, 2048, n, symmetric, gamma);
        // (Data far from zero, as in SqnrNoiseAgreesWithReference, is left out: on grids this
        // fine the reference's own float32 differences (q + o) d - c_j lose three digits there.)
      }
    }
  }
  // 8 bits on 64 bins: more levels than bins as well.
  expect_sqnr_noise_agrees(torch::randn({4, 5000}), 64, 255, false, 3.0);
  expect_sqnr_noise_agrees(torch::randn({4, 5000}), 64, 255, true, 3.0);
}

// ---- Histogram merge ---------------------------------------------------------------------------

TEST(StatisticsKernels, MergeHistogramsMatchesReferenceExactly) {
  torch::manual_seed(9);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (int64_t bins : {1, 7, 2048}) {
      const int64_t h = 40;
      SCOPED_TRACE(::testing::Message() << "dtype " << dtype << " bins " << bins);
      auto cmin = (torch::randn({h}) * 3).to(dtype);
      auto cmax = cmin + torch::rand({h}).to(dtype) * 5;
      cmax.index_put_({torch::indexing::Slice(0, 4)}, cmin.slice(0, 0, 4));  // zero-width sources
      // A third keeps its range, a third grows on one side, a third on both.
      const auto which = torch::arange(h) % 3;
      auto umin = torch::where(which == 0, cmin, cmin - torch::rand({h}).to(dtype) * 4);
      auto umax = torch::where(which == 2, cmax + torch::rand({h}).to(dtype) * 7, cmax);
      umax.index_put_({torch::indexing::Slice(0, 2)}, cmax.slice(0, 0, 2) + 1);
      const auto hist = torch::randint(0, 1000, {h, bins}).to(torch::kDouble);
      const auto add = torch::randint(0, 1000, {h, bins}).to(torch::kDouble);
      const auto ref = k::merge_histograms_reference(add, hist, cmin, cmax, umin, umax);
      const auto fused = k::merge_histograms_fused(add.clone(), hist, cmin, cmax, umin, umax);
      EXPECT_TRUE(torch::equal(fused, ref)) << (fused - ref).abs().max();
      EXPECT_EQ(fused.sum().item<double>(), (add.sum() + hist.sum()).item<double>());
    }
  }
}
