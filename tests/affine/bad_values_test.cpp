// Bad values given to affine quantizers (issue 9 §3, docs/reliability.md §3): each is refused with
// a c10::ValueError that names the value, or gives a finite, documented encoding; never NaN, never
// a quantizer that accepts a value and then fails on every forward.

#include <quantsim/affine/encoding.h>
#include <quantsim/affine/functional.h>
#include <quantsim/affine/grid.h>
#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/errors.h>
#include <quantsim/nn/modules.h>
#include <quantsim/tensor.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using nlohmann::json;
using qs::affine::Grid;
using qs::affine::Quantize;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizerOptions;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::scalar;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr float kFloatMax = std::numeric_limits<float>::max();
constexpr double kEps = std::numeric_limits<float>::epsilon();  // 2^-23

/// The message of the c10::ValueError that `run` throws; a failure if it throws nothing or
/// another kind.
template <typename Run>
std::string value_error_of(Run&& run) {
  try {
    run();
  } catch (const c10::ValueError& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected c10::ValueError, got: " << qs::message_of(e);
    return {};
  }
  ADD_FAILURE() << "expected c10::ValueError, nothing was thrown";
  return {};
}

::testing::AssertionResult mentions(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << part << "\" not in: " << message;
}

bool all_finite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

/// The quantizer's range after calibrating on x.
std::pair<at::Tensor, at::Tensor> calibrated_on(QuantizeDequantize q, const at::Tensor& x) {
  {
    auto calibrating = q->compute_encodings();
    q(x);
  }
  return {q->min.detach().clone(), q->max.detach().clone()};
}

json legacy(double min, double max, int64_t bitwidth, const char* symmetric) {
  return json::array({{{"min", min},
                       {"max", max},
                       {"scale", 0.0},
                       {"offset", 0},
                       {"bitwidth", bitwidth},
                       {"dtype", "int"},
                       {"is_symmetric", symmetric}}});
}

}  // namespace

// ---- 1-bit symmetric grids ----------------------------------------------------------------------

TEST(OneBitSymmetric, IsRefusedAtConstructionNamingTheBitwidth) {
  // Today's NaN: the signed 1-bit grid [-1, 0] calibrates with a division by floor(1/2) = 0.
  EXPECT_TRUE(mentions(value_error_of([] { QuantizeDequantize({}, 1, true); }), "bitwidth 1"));
  EXPECT_TRUE(mentions(value_error_of([] { Quantize({}, 1, true); }), "bitwidth 1"));
  EXPECT_TRUE(mentions(value_error_of([] { QuantizeDequantize({}, -1, 0, true); }), "[-1, 0]"));
  EXPECT_TRUE(mentions(value_error_of([] {
                         QuantizeDequantize(QuantizerOptions({}, 8, true).grid(Grid{0, 1}));
                       }),
                       "[0, 1]"));
  EXPECT_TRUE(mentions(value_error_of([] {
                         qs::affine::GroupedBlockQuantizeDequantize({2, 1}, 1, true, 4, {1, 4});
                       }),
                       "bitwidth 1"));
}

TEST(OneBitSymmetric, AsymmetricOneBitStaysUsable) {
  QuantizeDequantize q({}, 1, false);  // [0, 1]: two levels, 0 and the scale
  const auto x = f32({-1.0, 0.25, 2.0});
  calibrated_on(q, x);
  EXPECT_TRUE(bitwise_equal(q->max.detach(), scalar(2.0)));
  EXPECT_TRUE(bitwise_equal(q->get_scale().value(), scalar(3.0)));
  EXPECT_TRUE(all_finite(q(x)));
}

TEST(OneBitSymmetric, SetBitwidthAndLegacyImportRefuseItAndChangeNothing) {
  QuantizeDequantize q({}, 8, true);
  q->set_range(-1.28, 1.27);
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_bitwidth(1); }), "bitwidth 1"));
  EXPECT_EQ(q->qmin(), -128);
  EXPECT_EQ(q->qmax(), 127);
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_legacy_encodings(legacy(-1, 0, 1, "True")); }),
                       "bitwidth 1"));
  EXPECT_EQ(q->qmin(), -128);
  EXPECT_TRUE(q->symmetric());
  EXPECT_TRUE(bitwise_equal(q->min.detach(), scalar(-1.28)));
}

// ---- set_range: NaN, inf, values beyond float32, empty ranges -----------------------------------

TEST(SetRange, NonFiniteValuesAreRefusedNamingTheValue) {
  for (const bool symmetric : {false, true}) {
    QuantizeDequantize q({}, 8, symmetric);
    EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(kNan, 1.0); }), "`min` must be finite"));
    EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(-1.0, kInf); }), "got inf"));
    EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(-kInf, 1.0); }), "got -inf"));
    EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(-1.0, 1e39); }), "1e+39"));
    EXPECT_FALSE(q->is_initialized());  // nothing was set
  }
  // Per channel: the message names the element.
  QuantizeDequantize q({3, 1}, 8, true);
  const auto message = value_error_of([&] {
    q->set_range(torch::tensor({-1.f, -1.f, -1.f}).view({3, 1}),
                 torch::tensor({1.f, NAN, 1.f}).view({3, 1}));
  });
  EXPECT_TRUE(mentions(message, "`max` must be finite, got nan at index 1"));
  EXPECT_FALSE(q->is_initialized());
}

TEST(SetRange, ZeroRangeBecomesTheRangeOfCalibratingZeros) {
  // Today (0, 0) gives scale 0 and NaN outputs. The reference's MinMax calibration of an
  // all-zero tensor gives asym (0, 255 EPS), sym (-128 EPS, 127 EPS): set_range does the same.
  for (const bool symmetric : {false, true}) {
    QuantizeDequantize q({}, 8, symmetric);
    q->set_range(0.0, 0.0);
    QuantizeDequantize calibrated({}, 8, symmetric);
    const auto [mn, mx] = calibrated_on(calibrated, torch::zeros({4}));
    EXPECT_TRUE(bitwise_equal(q->min.detach(), mn));
    EXPECT_TRUE(bitwise_equal(q->max.detach(), mx));
    EXPECT_TRUE(bitwise_equal(q->get_scale().value(), scalar(kEps)));
    EXPECT_TRUE(bitwise_equal(q(f32({0.0, -1.0, 1.0})), symmetric
                                                            ? f32({0.0, -128 * kEps, 127 * kEps})
                                                            : f32({0.0, 0.0, 255 * kEps})));
  }
  // Only the zero channel of a per-channel range is widened.
  QuantizeDequantize q({2, 1}, 8, false);
  q->set_range(torch::tensor({0.f, -1.f}).view({2, 1}), torch::tensor({0.f, 1.f}).view({2, 1}));
  EXPECT_TRUE(bitwise_equal(q->max.detach().flatten(), f32({255 * kEps, 1.0})));
  EXPECT_TRUE(all_finite(q(torch::randn({2, 5}))));
}

TEST(SetRange, EmptyAndTooWideRangesAreRefused) {
  QuantizeDequantize q({}, 8, false);
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(0.5, 0.5); }),
                       "the range [0.5, 0.5] has no width"));
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_range(-3e38, 3e38); }),
                       "the range [-3e+38, 3e+38] is too wide for float32"));
  EXPECT_FALSE(q->is_initialized());
  // The widest usable range: max - min = FLT_MAX.
  q->set_range(-kFloatMax / 2, kFloatMax / 2);
  EXPECT_TRUE(all_finite(q(f32({-1e38, 0.0, 1e38}))));
}

// ---- legacy encodings ---------------------------------------------------------------------------

TEST(LegacyEncodings, AsymmetricZeroRangeImportsAsCalibratedZeros) {
  QuantizeDequantize q({}, 8, true);
  q->set_legacy_encodings(legacy(0.0, 0.0, 8, "False"));
  EXPECT_EQ(q->qmin(), 0);
  EXPECT_FALSE(q->symmetric());
  EXPECT_TRUE(bitwise_equal(q->min.detach(), scalar(0.0)));
  EXPECT_TRUE(bitwise_equal(q->max.detach(), scalar(255 * kEps)));
  EXPECT_TRUE(bitwise_equal(q->get_offset().value(), scalar(0.0)));
  EXPECT_TRUE(bitwise_equal(q(f32({0.0, 1.0})), f32({0.0, 255 * kEps})));
}

TEST(LegacyEncodings, RangesBeyondFloat32AreRefusedLeavingTheQuantizerUnchanged) {
  QuantizeDequantize q({}, 8, true);
  q->set_range(-1.28, 1.27);
  EXPECT_TRUE(
      mentions(value_error_of([&] { q->set_legacy_encodings(legacy(-3e38, 3e38, 4, "False")); }),
               "legacy encodings: the range [-3e+38, 3e+38] is too wide"));
  EXPECT_TRUE(
      mentions(value_error_of([&] { q->set_legacy_encodings(legacy(2.0, 2.0, 4, "False")); }),
               "legacy encodings: the range [2, 2] has no width"));
  EXPECT_EQ(q->qmin(), -128);
  EXPECT_TRUE(q->symmetric());
  EXPECT_TRUE(bitwise_equal(q->min.detach(), scalar(-1.28)));
  EXPECT_TRUE(bitwise_equal(q->max.detach(), scalar(1.27)));
}

TEST(LegacyEncodings, ModuleImportAppliesTheSameRules) {
  // The path load_encodings takes: a module's import of a legacy encodings entry.
  qs::nn::QuantizedLinear linear(4, 2);
  linear->param_quantizers["weight"] = QuantizeDequantize({}, 8, true);
  auto weight = linear->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>();
  linear->import_param_encodings({{"weight", legacy(0.0, 0.0, 8, "False")}});
  EXPECT_TRUE(bitwise_equal(weight->max.detach(), scalar(255 * kEps)));
  EXPECT_TRUE(all_finite(linear(torch::randn({3, 4}))));
  EXPECT_TRUE(
      mentions(value_error_of([&] {
                 linear->import_param_encodings({{"weight", legacy(-3e38, 3e38, 8, "True")}});
               }),
               "is too wide for float32"));
  EXPECT_TRUE(bitwise_equal(weight->max.detach(), scalar(255 * kEps)));  // unchanged
  EXPECT_FALSE(weight->symmetric());
}

TEST(SavedState, UnusableRangesAreRefusedAndZeroRangesWidened) {
  // Today a saved NaN or too-wide range loads as it is and every forward gives NaN.
  const auto saved = [](double mn, double mx) {
    QuantizeDequantize q({}, 8, false);
    {
      torch::NoGradGuard no_grad;  // in place, as training or a user's edit would
      q->min.fill_(mn);
      q->max.fill_(mx);
    }
    std::stringstream bytes;
    torch::save(q, bytes);
    return bytes.str();
  };
  for (const auto& [mn, mx, part] :
       {std::tuple<double, double, const char*>{kNan, 1.0, "`min` must be finite, got nan"},
        {-3e38, 3e38, "the range [-3e+38, 3e+38] is too wide for float32"},
        {2.0, 2.0, "has no width"}}) {
    QuantizeDequantize fresh({}, 8, false);
    std::stringstream bytes(saved(mn, mx));
    const auto message = value_error_of([&] { torch::load(fresh, bytes); });
    EXPECT_TRUE(mentions(message, "the saved range is unusable: "));
    EXPECT_TRUE(mentions(message, part));
    EXPECT_FALSE(fresh->is_initialized());  // nothing loaded
    EXPECT_TRUE(bitwise_equal(fresh->max.detach(), scalar(1.0)));
  }
  QuantizeDequantize fresh({}, 8, false);
  std::stringstream bytes(saved(0.0, 0.0));
  torch::load(fresh, bytes);
  EXPECT_TRUE(fresh->is_initialized());
  EXPECT_TRUE(bitwise_equal(fresh->max.detach(), scalar(255 * kEps)));
  EXPECT_TRUE(all_finite(fresh(f32({0.0, 1.0}))));
}

TEST(SetRange, ChecksKeepTheCallersPrecision) {
  // A quantizer cast to float64 stores float64 ranges as given; the checks run in float32.
  QuantizeDequantize q({}, 8, false);
  q->to(torch::kDouble);
  q->set_range(torch::tensor(-0.1, torch::kDouble), torch::tensor(0.1, torch::kDouble));
  EXPECT_EQ(q->min.item<double>(), -0.1);
  EXPECT_EQ(q->max.item<double>(), 0.1);
}

TEST(SetRange, MinAboveMaxIsStoredAsTheReferenceDoes) {
  QuantizeDequantize q({}, 8, false);
  q->set_range(1.0, -1.0);
  EXPECT_TRUE(bitwise_equal(q->min.detach(), scalar(1.0)));
  EXPECT_TRUE(q->get_scale().value().item<float>() < 0);
  EXPECT_TRUE(all_finite(q(f32({-2.0, -0.5, 0.0, 0.5, 2.0}))));
}

// ---- calibration on infinite data ---------------------------------------------------------------

TEST(Calibration, DataHoldingBothInfinitiesIsRefusedNamingTheQuantizer) {
  // MinMax clips -inf/+inf to -/+FLT_MAX (as the reference); the scale of that range overflows,
  // which the reference turns into a NaN encoding.
  const auto x = f32({-kInf, 1.0, kInf});
  for (const bool symmetric : {false, true}) {
    QuantizeDequantize q({}, 8, symmetric);
    {  // module-level calibration only observes; the range is set when the scope ends
      const auto message = value_error_of([&] {
        auto calibrating = q->compute_encodings();
        q->observe_only(x);
      });
      EXPECT_TRUE(mentions(message, "QuantizeDequantize(shape=[], qmin="));
      EXPECT_TRUE(mentions(message,
                           "the calibrated range is unusable: the range [-3.40282e+38, "
                           "3.40282e+38] is too wide for float32"));
    }
    EXPECT_FALSE(q->is_initialized());
    // A standalone quantizer quantizes each batch with that batch's own range.
    const auto message = value_error_of([&] {
      auto calibrating = q->compute_encodings();
      q(x);
    });
    EXPECT_TRUE(mentions(message, "calibration batch of shape [3] gives an unusable range"));
    EXPECT_FALSE(q->is_initialized());
  }
  // Symmetrically one infinity is enough: delta = max(inf / 127, 1 / 128) makes both ends infinite.
  QuantizeDequantize sym({}, 8, true);
  EXPECT_TRUE(mentions(value_error_of([&] {
                         auto calibrating = sym->compute_encodings();
                         sym->observe_only(f32({-1.0, kInf}));
                       }),
                       "is too wide for float32"));
  EXPECT_FALSE(sym->is_initialized());
  // One infinity is fine asymmetrically: (-1, FLT_MAX), as the reference.
  QuantizeDequantize q({}, 8, false);
  calibrated_on(q, f32({-1.0, kInf}));
  EXPECT_TRUE(bitwise_equal(q->max.detach(), scalar(kFloatMax)));
  EXPECT_TRUE(all_finite(q(f32({-1.0, 0.0, 1e30}))));
}

// ---- grids beyond float64 -----------------------------------------------------------------------

TEST(Grid, BitwidthsBeyondFloat64AreRefusedAtEveryEntryPoint) {
  // Today bitwidth 63 is accepted and every forward throws "not exactly representable".
  EXPECT_TRUE(mentions(value_error_of([] { QuantizeDequantize({}, 63, false); }),
                       "`bitwidth` must be in [1, 53] for an unsigned grid, got 63"));
  EXPECT_TRUE(mentions(value_error_of([] { Quantize({}, 63, true); }),
                       "`bitwidth` must be in [1, 54] for a signed grid, got 63"));
  EXPECT_TRUE(mentions(value_error_of([] { QuantizerOptions({}, 54, false); }), "got 54"));
  QuantizeDequantize q({}, 8, false);
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_bitwidth(63); }), "got 63"));
  EXPECT_TRUE(mentions(value_error_of([&] { q->set_legacy_encodings(legacy(-1, 1, 63, "False")); }),
                       "got 63"));
  EXPECT_EQ(q->qmax(), 255);
  EXPECT_TRUE(mentions(value_error_of([] {
                         qs::affine::GroupedBlockQuantizeDequantize({2, 1}, 4, true, 63, {1, 4});
                       }),
                       "`decompressed_bw` must be in [4, 54], got 63"));
}

TEST(Grid, WidestGridsWork) {
  // [0, 2^53 - 1] and [-2^53, 2^53 - 1]: quantize-dequantize runs in float64.
  for (const auto& [bitwidth, symmetric] : {std::pair<int64_t, bool>{53, false}, {54, true}}) {
    QuantizeDequantize q({}, bitwidth, symmetric);
    q->set_range(-1.0, 1.0);
    const auto x = f32({-1.0, -0.5, 0.0, 0.25, 1.0});
    const auto y = q(x);
    EXPECT_TRUE(all_finite(y));
    EXPECT_TRUE(qs::testing::all_close(y, x, 1e-6, 0.0));
  }
  Quantize q({}, 53, false);  // needs a float64 input, as the reference's fp32 [0, 2^32-1]
  q->set_range(-1.0, 1.0);
  EXPECT_TRUE(all_finite(q(torch::tensor({-1.0, 1.0}, torch::kDouble)).tensor()));
  EXPECT_THROW(q(f32({1.0})), c10::Error);
}

TEST(Grid, ExplicitGridsBeyondFloat64AreRefusedWithoutOverflow) {
  const int64_t big = int64_t{1} << 62;
  // Today qmax - qmin = 2^63 overflows int64 (undefined behaviour), and the quantizer then fails
  // with a misleading "num_steps must be >= 1, got -9223372036854775808".
  EXPECT_TRUE(mentions(value_error_of([&] { QuantizeDequantize({}, -big, big, false); }),
                       "the grid [-4611686018427387904, 4611686018427387904] is not exactly "
                       "representable"));
  EXPECT_TRUE(mentions(value_error_of([&] {
                         QuantizeDequantize(QuantizerOptions({}, 8, false).grid(Grid{-big, big}));
                       }),
                       "[-2^53, 2^53]"));
  EXPECT_TRUE(mentions(value_error_of([&] {
                         (void)Grid{-big, big}.num_steps();
                       }),
                       "has more steps than int64 holds"));
  EXPECT_TRUE(mentions(value_error_of([&] {
                         qs::affine::AffineEncoding(scalar(1.0), scalar(0.0), Grid{-big, big});
                       }),
                       "not exactly representable"));
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  EXPECT_THROW(
      qs::affine::quantize_dequantize(f32({1.0}), scalar(1.0), scalar(0.0), lowest, lowest),
      c10::Error);
  EXPECT_THROW(qs::affine::quantize(f32({1.0}), scalar(1.0), scalar(0.0), -big, big), c10::Error);
  EXPECT_EQ((Grid::from_range(-(int64_t{1} << 53), int64_t{1} << 53).num_steps()),
            int64_t{1} << 54);
}

TEST(Grid, IntegersOfGridsBeyondInt32AreInt64) {
  // The reference names int32 for every grid beyond int16; the integers of [0, 2^40 - 1] would
  // overflow it (an undefined float -> int32 conversion).
  Quantize q({}, 40, false);
  q->set_range(0.0, 1.0);
  const auto codes = q(torch::tensor({0.0, 0.5, 1.0}, torch::kDouble)).quantized_repr();
  EXPECT_EQ(codes.scalar_type(), at::kLong);
  EXPECT_EQ(codes[2].item<int64_t>(), (int64_t{1} << 40) - 1);
  EXPECT_EQ((qs::affine::AffineEncoding(scalar(1.0), scalar(0.0), Grid{0, (int64_t{1} << 32) - 1})
                 .dtype()),
            at::kLong);
  EXPECT_EQ((qs::affine::AffineEncoding(scalar(1.0), scalar(0.0),
                                        Grid{-(int64_t{1} << 31), (int64_t{1} << 31) - 1})
                 .dtype()),
            at::kInt);
}

TEST(Grid, LegacyOffsetBeyondInt64IsAnErrorNotAnUndefinedConversion) {
  // 53 bits on [1, 1 + 2^-23]: offset = round(min / scale) ~ 2^53 * 2^23, beyond int64.
  QuantizeDequantize q({}, 53, false);
  q->set_range(1.0, 1.0 + kEps);
  EXPECT_TRUE(
      mentions(value_error_of([&] { (void)q->get_legacy_encodings(); }), "does not fit in int64"));
}
