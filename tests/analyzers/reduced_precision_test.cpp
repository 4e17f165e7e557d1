// Calibration on float16 and bfloat16 data (issue 9 §3, docs/reliability.md §3): every analyzer
// gives exactly what it gives for the same values in float32 (float32 holds them exactly), in
// float32. Today MinMax fails ("clamp_max_scalar_cpu" not implemented for 'Half') and the
// histogram analyzers round their arithmetic to the input's dtype.
// Also: a symmetric range of one step is refused instead of computed as NaN.

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/errors.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::testing::bitwise_equal;
using qs::testing::f32;

namespace {

using MakeAnalyzer = std::function<std::shared_ptr<qs::EncodingAnalyzer>()>;

struct Named {
  std::string name;
  MakeAnalyzer make;
};

std::vector<Named> analyzers(std::vector<int64_t> shape) {
  return {
      {"MinMax", [=] { return std::make_shared<qs::MinMaxEncodingAnalyzer>(shape); }},
      {"Percentile100",
       [=] { return std::make_shared<qs::PercentileEncodingAnalyzer>(shape, 512, 100.0); }},
      {"Percentile99",
       [=] { return std::make_shared<qs::PercentileEncodingAnalyzer>(shape, 512, 99.0); }},
      {"Sqnr",
       [=] {
         return std::make_shared<qs::SqnrEncodingAnalyzer>(shape, qs::SqnrOptions().num_bins(256));
       }},
  };
}

/// (min, max) of an analyzer fed `batches` (each also asked for its dynamic range).
std::vector<at::Tensor> calibrate(qs::EncodingAnalyzer& analyzer,
                                  const std::vector<at::Tensor>& batches, int64_t num_steps,
                                  bool symmetric) {
  std::vector<at::Tensor> out;
  for (const auto& batch : batches) {
    const auto stats = analyzer.update_stats(batch);
    const auto dynamic = analyzer.compute_encodings_from_stats(*stats, num_steps, symmetric);
    out.push_back(dynamic.first);
    out.push_back(dynamic.second);
  }
  const auto range = analyzer.compute_encodings(num_steps, symmetric);
  out.push_back(range.first);
  out.push_back(range.second);
  return out;
}

/// Batches exactly representable in `dtype`: a wide one, one with a larger range (the histogram
/// merge), a constant one (the ±0.5 padding) and one holding ±inf and NaN.
std::vector<at::Tensor> batches_in(at::ScalarType dtype, at::IntArrayRef sizes) {
  torch::manual_seed(7);
  auto first = (torch::randn(sizes) * 3).to(dtype);
  auto second = (torch::randn(sizes) * 50 + 7).to(dtype);
  auto constant = torch::full(sizes, 0.1).to(dtype);
  auto special = (torch::randn(sizes) * 0.01).to(dtype);
  auto flat = special.view({-1});
  flat[0] = INFINITY;
  flat[1] = -INFINITY;
  flat[2] = NAN;
  return {first, second, constant, special};
}

std::vector<at::Tensor> widened(const std::vector<at::Tensor>& batches) {
  std::vector<at::Tensor> out;
  for (const auto& b : batches) out.push_back(b.to(at::kFloat));
  return out;
}

}  // namespace

TEST(ReducedPrecisionCalibration, EveryAnalyzerMatchesFloat32Exactly) {
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    for (const auto& shape : {std::vector<int64_t>{}, std::vector<int64_t>{3, 1}}) {
      const auto batches = batches_in(dtype, {3, 40});
      // The histogram analyzers reject a slice without a finite value; MinMax takes all four.
      for (const auto& [name, make] : analyzers(shape)) {
        const std::vector<at::Tensor> used =
            name == "MinMax" ? batches
                             : std::vector<at::Tensor>(batches.begin(), batches.begin() + 3);
        for (const bool symmetric : {false, true}) {
          SCOPED_TRACE(name + " " + c10::toString(dtype) + " shape " +
                       c10::str(at::IntArrayRef(shape)) + (symmetric ? " sym" : " asym"));
          auto reduced = make();
          auto reference = make();
          const auto got = calibrate(*reduced, used, 255, symmetric);
          const auto want = calibrate(*reference, widened(used), 255, symmetric);
          ASSERT_EQ(got.size(), want.size());
          for (size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].scalar_type(), at::kFloat) << "result " << i;
            EXPECT_TRUE(bitwise_equal(got[i], want[i])) << "result " << i;
          }
        }
      }
    }
  }
}

TEST(ReducedPrecisionCalibration, QuantizerCalibratedOnHalfEqualsFloat32) {
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    const auto x = (torch::randn({4, 16}) * 2).to(dtype);
    for (const bool symmetric : {false, true}) {
      qs::affine::QuantizeDequantize reduced({4, 1}, 8, symmetric);
      qs::affine::QuantizeDequantize reference({4, 1}, 8, symmetric);
      {
        auto calibrating = reduced->compute_encodings();
        const auto y = reduced(x);
        EXPECT_EQ(y.scalar_type(), dtype);
      }
      {
        auto calibrating = reference->compute_encodings();
        reference(x.to(at::kFloat));
      }
      EXPECT_TRUE(bitwise_equal(reduced->min.detach(), reference->min.detach()));
      EXPECT_TRUE(bitwise_equal(reduced->max.detach(), reference->max.detach()));
      // Forward on float16 data already worked; it still equals the float32 result rounded.
      EXPECT_TRUE(bitwise_equal(reduced(x), reference(x.to(at::kFloat)).to(dtype)));
    }
  }
}

TEST(SymmetricOneStep, AnalyzersRefuseInsteadOfReturningNaN) {
  // floor(1 / 2) = 0 positive steps: the reference divides by zero.
  const auto x = f32({-1.0, 0.5, 2.0});
  for (const auto& [name, make] : analyzers({})) {
    SCOPED_TRACE(name);
    auto analyzer = make();
    analyzer->update_stats(x);
    EXPECT_THROW(analyzer->compute_encodings(1, /*symmetric=*/true), c10::ValueError);
    EXPECT_THROW(analyzer->compute_dynamic_encodings(x, 1, /*symmetric=*/true), c10::ValueError);
    const auto asym = analyzer->compute_encodings(1, /*symmetric=*/false);
    EXPECT_TRUE(at::isfinite(asym.first).all().item<bool>());
    EXPECT_TRUE(at::isfinite(asym.second).all().item<bool>());
  }
}
