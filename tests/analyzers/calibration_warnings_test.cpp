// Non-finite data during a quantizer's calibration (issue 3): NaN is reported once per
// calibration through the replaceable warning hook; a batch without usable values is an error
// naming the quantizer, and the statistics of the other batches are kept.

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/logging.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::testing::all_close;
using qs::testing::f32;
using qs::testing::scalar;

namespace {

const double kNan = std::nan("");
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<std::shared_ptr<qs::EncodingAnalyzer>> analyzers() {
  return {std::make_shared<qs::MinMaxEncodingAnalyzer>(std::vector<int64_t>{}),
          std::make_shared<qs::PercentileEncodingAnalyzer>(std::vector<int64_t>{}, 64, 100),
          std::make_shared<qs::SqnrEncodingAnalyzer>(std::vector<int64_t>{},
                                                     qs::SqnrOptions().num_bins(64))};
}

size_t count_containing(const std::vector<std::string>& messages, const std::string& text) {
  size_t n = 0;
  for (const auto& m : messages) n += m.find(text) != std::string::npos;
  return n;
}

}  // namespace

TEST(CalibrationWarnings, NanIsReportedOnceWithTheTotalCount) {
  for (const auto& analyzer : analyzers()) {
    std::vector<std::string> seen;
    qs::ScopedWarningHandler capture([&](const std::string& m) { seen.push_back(m); });
    qs::affine::QuantizeDequantize q(
        qs::affine::QuantizerOptions({}, 8, false).encoding_analyzer(analyzer));
    q->compute_encodings([&] {
      q(f32({-1, kNan, 2, kNan}));
      q(f32({0, 1}));
      q(f32({kNan, 3, kNan, kNan}));
    });
    EXPECT_EQ(count_containing(seen, "NaN"), 1u);
    EXPECT_EQ(count_containing(seen, "5 NaN"), 1u);
    EXPECT_EQ(count_containing(seen, "QuantizeDequantize"), 1u);
    EXPECT_TRUE(q->is_initialized());
    EXPECT_TRUE(std::isfinite(q->min.item<float>()) && std::isfinite(q->max.item<float>()));

    // The next calibration starts counting afresh; clean data warns about nothing.
    seen.clear();
    q->compute_encodings([&] { q(f32({-1, 2})); });
    EXPECT_TRUE(seen.empty());
  }
}

TEST(CalibrationWarnings, DefaultHandlerIsRestored) {
  std::vector<std::string> seen;
  {
    qs::ScopedWarningHandler capture([&](const std::string& m) { seen.push_back(m); });
    qs::warn("inside");
  }
  qs::warn("outside (goes to TORCH_WARN)");
  EXPECT_EQ(seen, std::vector<std::string>{"inside"});
}

TEST(CalibrationWarnings, BatchWithoutUsableValuesNamesTheQuantizerAndKeepsStatistics) {
  // MinMax rejects only-NaN batches; the histogram analyzers also only-inf ones.
  const std::vector<at::Tensor> bad = {f32({kNan, kNan}), f32({kInf, kNan}), f32({kInf, kNan})};
  const auto all = analyzers();
  for (size_t i = 0; i < all.size(); ++i) {
    qs::affine::QuantizeDequantize q(
        qs::affine::QuantizerOptions({}, 8, false).encoding_analyzer(all[i]));
    {
      auto calibrating = q->compute_encodings();
      q(f32({-1, 2}));
      try {
        q(bad[i]);
        ADD_FAILURE() << "expected c10::ValueError, analyzer " << i;
      } catch (const c10::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("QuantizeDequantize(shape=[], qmin=0, qmax=255"),
                  std::string::npos)
            << e.what();
      }
      q(f32({0, 3}));
    }
    ASSERT_TRUE(q->is_initialized());
    if (i < 2) {  // MinMax and Percentile 100 give the observed range of the good batches
      EXPECT_TRUE(all_close(q->min, scalar(-1), 1e-5)) << i;
      EXPECT_TRUE(all_close(q->max, scalar(3), 1e-5)) << i;
    } else {
      EXPECT_GE(q->min.item<float>(), -1.01f);
      EXPECT_LE(q->max.item<float>(), 3.2f);
    }
  }
}
