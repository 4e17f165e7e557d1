// FloatQuantizeDequantize (docs/quantization.md §7, §9.6) against the reference's values, its
// maxval_ieee table, and OCP FP8 values derived by hand from the OFP8 v1.0 (2023) encoding tables.

#include <quantsim/analyzers/min_max.h>
#include <quantsim/floating/functional.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/logging.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "testing/printing.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::floating::FloatFormat;
using qs::floating::FloatQuantizeDequantize;
using qs::floating::FloatQuantizeDequantizeImpl;
using qs::floating::FloatQuantizerOptions;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::printed;
using qs::testing::scalar;

namespace {

using Shape = std::vector<int64_t>;

FloatQuantizeDequantize e4m3_with_minmax(Shape shape = {}) {
  return FloatQuantizeDequantize(FloatQuantizerOptions(4, 3).encoding_analyzer(
      std::make_shared<qs::MinMaxEncodingAnalyzer>(std::move(shape))));
}

/// Every non-negative finite value of an OCP FP8 format, decoded as OFP8 v1.0 defines it:
/// exponent field 0 is subnormal, 0.m * 2^(1 - bias); field f > 0 is 1.m * 2^(f - bias).
/// `reserved(f, m)` marks the inf/NaN codes. Computed in double, independently of the quantizer.
template <typename Reserved>
std::vector<double> ocp_values(int exponent_bits, int mantissa_bits, int bias, Reserved reserved) {
  std::vector<double> values;
  const int steps = 1 << mantissa_bits;
  for (int f = 0; f < (1 << exponent_bits); ++f) {
    for (int m = 0; m < steps; ++m) {
      if (reserved(f, m)) continue;
      const double frac = static_cast<double>(m) / steps;
      values.push_back(f == 0 ? std::ldexp(frac, 1 - bias) : std::ldexp(1.0 + frac, f - bias));
    }
  }
  return values;
}

at::Tensor qdq(FloatQuantizeDequantize& q, double v) { return q(torch::tensor({v}, at::kDouble)); }

}  // namespace

// ---- construction (docs/quantization.md §9.6) ---------------------------------------------------

// No arguments, exponent bits only, and dtype together with bits: TypeError/ValueError in the
// reference, no matching constructor here.
static_assert(!std::is_constructible_v<FloatQuantizeDequantizeImpl>);
static_assert(!std::is_constructible_v<FloatQuantizeDequantizeImpl, int>);
static_assert(!std::is_constructible_v<FloatQuantizeDequantizeImpl, at::ScalarType, int>);
static_assert(!std::is_constructible_v<FloatQuantizeDequantizeImpl, at::ScalarType, int, int>);
static_assert(!std::is_constructible_v<FloatQuantizerOptions, int>);
static_assert(std::is_constructible_v<FloatQuantizeDequantizeImpl, int, int>);
static_assert(std::is_constructible_v<FloatQuantizeDequantizeImpl, at::ScalarType>);

TEST(FloatQuantizer, Check34ConstructorErrors) {
  EXPECT_THROW((void)FloatQuantizeDequantize(torch::kFloat), c10::ValueError);
  EXPECT_THROW((void)FloatQuantizeDequantize(torch::kDouble), c10::ValueError);
  EXPECT_THROW((void)FloatQuantizeDequantize(torch::kInt), c10::ValueError);
  EXPECT_THROW(FloatQuantizeDequantize(0, 3), c10::ValueError);
  EXPECT_THROW(FloatQuantizeDequantize(9, 3), c10::ValueError);
  EXPECT_THROW(FloatQuantizeDequantize(4, -1), c10::ValueError);
  EXPECT_THROW(FloatQuantizeDequantize(4, 24), c10::ValueError);
  EXPECT_THROW(FloatQuantizeDequantize("E4M3FNUZ"), c10::ValueError);
  EXPECT_NO_THROW(FloatQuantizeDequantize(8, 23));
  EXPECT_NO_THROW(FloatQuantizeDequantize(1, 0));
}

TEST(FloatQuantizer, FormatsFromDtypesAndNames) {
  FloatQuantizeDequantize fp16(torch::kHalf), bf16(torch::kBFloat16);
  EXPECT_TRUE(fp16->is_float16());
  EXPECT_FALSE(fp16->is_bfloat16());
  EXPECT_EQ(fp16->exponent_bits(), 5);
  EXPECT_EQ(fp16->mantissa_bits(), 10);
  EXPECT_EQ(fp16->bitwidth(), 16);
  EXPECT_TRUE(bf16->is_bfloat16());
  EXPECT_EQ(bf16->exponent_bits(), 8);
  EXPECT_EQ(bf16->mantissa_bits(), 7);
  EXPECT_TRUE(FloatQuantizeDequantize(5, 10)->is_float16());
  EXPECT_TRUE(FloatQuantizeDequantize("float16")->is_float16());
  EXPECT_TRUE(FloatQuantizeDequantize("bfloat16")->is_bfloat16());
  const std::string name = "E4M3";
  FloatQuantizeDequantize e4m3(name);
  EXPECT_EQ(e4m3->format().maxval, 240.0);
  EXPECT_FALSE(e4m3->format().bias.has_value());
  FloatQuantizeDequantize fn("E4M3FN");
  EXPECT_EQ(fn->bitwidth(), 8);
  EXPECT_EQ(fn->format().maxval, 448.0);
  EXPECT_EQ(fn->format().bias, c10::optional<int64_t>(7));
  FloatQuantizeDequantize e5m2("E5M2");
  EXPECT_EQ(e5m2->format().maxval, 57344.0);
  EXPECT_EQ(e5m2->format().bias, c10::optional<int64_t>(15));
  EXPECT_FALSE(e5m2->is_float16());
}

TEST(FloatQuantizer, MaxvalIeeeTable) {
  // docs/quantization.md eq. (F1).
  EXPECT_EQ(qs::floating::maxval_ieee(5, 10), 65504.0);
  EXPECT_EQ(static_cast<float>(qs::floating::maxval_ieee(8, 7)), 3.3895314e38f);
  EXPECT_EQ(static_cast<float>(qs::floating::maxval_ieee(8, 7)),
            static_cast<float>(std::numeric_limits<c10::BFloat16>::max()));
  EXPECT_EQ(qs::floating::maxval_ieee(4, 3), 240.0);
  EXPECT_EQ(qs::floating::maxval_ieee(5, 2), 57344.0);
  EXPECT_EQ(qs::floating::maxval_ieee(3, 4), 15.5);
  EXPECT_EQ(qs::floating::maxval_ieee(2, 1), 3.0);
}

TEST(FloatQuantizer, NoParametersSoAlwaysInitialized) {
  FloatQuantizeDequantize q(4, 3);
  EXPECT_TRUE(q->is_initialized());
  EXPECT_TRUE(q->parameters().empty());
  EXPECT_FALSE(q->maxval.defined());
  EXPECT_TRUE(q->buffers().empty());
  auto calibrated = e4m3_with_minmax({2, 1});
  EXPECT_TRUE(calibrated->is_initialized());
  ASSERT_TRUE(calibrated->maxval.defined());
  EXPECT_TRUE(bitwise_equal(calibrated->maxval, torch::full({2, 1}, 240.f)));
  EXPECT_EQ(calibrated->buffers().size(), 1u);
}

TEST(FloatQuantizer, PrettyPrint) {
  EXPECT_EQ(printed(*FloatQuantizeDequantize(4, 3)),
            "FloatQuantizeDequantize(exponent_bits=4, mantissa_bits=3)");
  EXPECT_EQ(printed(*FloatQuantizeDequantize(torch::kBFloat16)),
            "FloatQuantizeDequantize(exponent_bits=8, mantissa_bits=7)");
  EXPECT_EQ(printed(*FloatQuantizeDequantize("E4M3FN")),
            "FloatQuantizeDequantize(exponent_bits=4, mantissa_bits=3, format=E4M3FN)");
}

// ---- calibration (docs/quantization.md §9.6) ----------------------------------------------------

TEST(FloatQuantizer, Check34Calibration) {
  auto q = e4m3_with_minmax();
  {
    auto calibrating = q->compute_encodings();
    // Inside the scope the batch is quantized with its own max(|min|, |max|) = 3.
    EXPECT_TRUE(all_close(q(f32({-3, 1, 2.5})), f32({-3, 1, 2.4000001})));
  }
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(3.0)));
  EXPECT_TRUE(all_close(q(f32({-3, 1, 2.5, 0.3, 5})), f32({-3, 1, 2.4000001, 0.30000001, 3})));
  EXPECT_EQ(q->get_encoding()->bitwidth(), 8);
  EXPECT_EQ(q->get_encoding()->mapping(), "float");
  EXPECT_EQ(*q->get_legacy_encodings(),
            nlohmann::json::parse(R"([{"bitwidth": 8, "dtype": "float"}])"));
}

TEST(FloatQuantizer, CalibrationMaxvalCoversAllBatches) {
  auto q = e4m3_with_minmax();
  q->compute_encodings([&] {
    q(f32({-1, 0.5}));
    q(f32({2, -4}));
    q(torch::empty({0}));  // no statistics, no error
  });
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(4.0)));
}

TEST(FloatQuantizer, CalibrationWithoutBatchesKeepsMaxval) {
  auto q = e4m3_with_minmax();
  { auto calibrating = q->compute_encodings(); }
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(240.0)));
}

TEST(FloatQuantizer, Check17AllowOverwriteFalseFreezesMaxval) {
  auto q = e4m3_with_minmax();
  const auto x = f32({-3, 1, 2.5});
  q->compute_encodings([&] { q(x); });
  const auto before = q->maxval.clone();
  q->allow_overwrite(false);
  q->compute_encodings([&] { q(10 * x); });
  EXPECT_TRUE(bitwise_equal(q->maxval, before));
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(3.0)));
}

TEST(FloatQuantizer, ExceptionInsideCalibrationLeavesMaxvalUnchanged) {
  auto q = e4m3_with_minmax();
  EXPECT_THROW(
      {
        auto calibrating = q->compute_encodings();
        q(f32({-7, 5}));
        throw std::runtime_error("data loader failed");
      },
      std::runtime_error);
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(240.0)));
  EXPECT_FALSE(q->is_calibrating());
}

TEST(FloatQuantizer, CalibrationWithoutAnalyzerIsANoOp) {
  FloatQuantizeDequantize q(4, 3);
  const auto x = f32({-300, 2.5});
  at::Tensor inside;
  q->compute_encodings([&] { inside = q(x); });
  // The format's own maxval 240 applies inside and after the scope.
  EXPECT_TRUE(bitwise_equal(inside, q(x)));
  EXPECT_EQ(inside[0].item<float>(), -240.f);
  EXPECT_FALSE(q->maxval.defined());
}

TEST(FloatQuantizer, PerChannelCalibration) {
  auto q = e4m3_with_minmax({2, 1});
  q->compute_encodings([&] { q(torch::tensor({{-1.f, 0.5f}, {4.f, -2.f}})); });
  EXPECT_TRUE(bitwise_equal(q->maxval, torch::tensor({{1.f}, {4.f}})));
  // Each row saturates at its own maxval. Within the reference tolerance 1e-6 only: the grid's
  // scale 2^(e - M - B) comes from the float32 bias B of (F3), so the top value is maxval to ~1 ulp
  // (as check 34's 3 for input 5), e.g. 3.9999993 for maxval 4.
  const auto y = q(torch::tensor({{5.f, -5.f}, {5.f, -5.f}}));
  EXPECT_TRUE(all_close(y, torch::tensor({{1.f, -1.f}, {4.f, -4.f}})));
}

// ---- forward ---------------------------------------------------------------------------------

TEST(FloatQuantizer, Float16AndBFloat16AreTheCastRoundTrip) {
  torch::manual_seed(0);
  auto x = torch::randn({1000}) * 1000;
  x = torch::cat({x, torch::randn({1000}) * 1e-6, f32({0, -0.0, 65504, 65520, 1e6, -1e6})});
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    FloatQuantizeDequantize q(dtype);
    EXPECT_TRUE(bitwise_equal(q(x), x.to(dtype).to(at::kFloat))) << dtype;
    const auto x64 = x.to(at::kDouble);
    EXPECT_TRUE(bitwise_equal(q(x64), x64.to(dtype).to(at::kDouble))) << dtype;
  }
  EXPECT_TRUE(bitwise_equal(FloatQuantizeDequantize("float16")(x), x.to(at::kHalf).to(at::kFloat)));
}

TEST(FloatQuantizer, E4M3GridOfTheReference) {
  // ieee(4, 3): bias B = 8 at maxval 240 (F3), so values are 1.m * 2^(e - 8), e in [1, 15], and
  // subnormals k * 2^(1 - 3 - 8) = k * 2^-10.
  FloatQuantizeDequantize q("E4M3");
  const auto x = f32({240, 250, 1e9, -1e9, 232, 1.0625, 1.1875, std::ldexp(1.0, -10),
                      std::ldexp(1.0, -11), 3 * std::ldexp(1.0, -11), 0});
  const auto expected =
      f32({240, 240, 240, -240, 224, 1.0, 1.25, std::ldexp(1.0, -10), 0, std::ldexp(1.0, -9), 0});
  // 232 is the midpoint of 224 (1.110b * 2^7) and 240 (1.111b * 2^7): ties to the even 224.
  EXPECT_TRUE(bitwise_equal(q(x), expected));
}

TEST(FloatQuantizer, E4M3FNEveryCodeIsAFixedPointAndMidpointsRoundToEven) {
  // OFP8 v1.0 E4M3: bias 7, only S.1111.111 is reserved (NaN).
  const auto values = ocp_values(4, 3, 7, [](int f, int m) { return f == 15 && m == 7; });
  ASSERT_EQ(values.size(), 127u);  // 0 and 126 positive finite values
  EXPECT_EQ(values.back(), 448.0);
  EXPECT_EQ(values[1], std::ldexp(1.0, -9));
  FloatQuantizeDequantize q("E4M3FN");
  const auto codes = torch::tensor(values, at::kDouble);
  EXPECT_TRUE(bitwise_equal(q(codes), codes));
  EXPECT_TRUE(bitwise_equal(q(-codes), -codes));
  // A midpoint goes to the neighbour whose last mantissa bit is 0: code index even (the
  // mantissa counts up by one per index, also across the subnormal/normal boundary).
  std::vector<double> mids, expected;
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    mids.push_back((values[i] + values[i + 1]) / 2);
    expected.push_back(i % 2 == 0 ? values[i] : values[i + 1]);
  }
  EXPECT_TRUE(
      bitwise_equal(q(torch::tensor(mids, at::kDouble)), torch::tensor(expected, at::kDouble)));
}

TEST(FloatQuantizer, E4M3FNHandValues) {
  FloatQuantizeDequantize q("E4M3FN");
  // 448 representable; 464 and 470 saturate to 448 (470 would round up to 480 otherwise);
  // inf saturates; 2^-9 is the smallest subnormal and 2^-10 the tie between it and 0 (to 0);
  // 1.0625 is the tie between 1 and 1.125 (to 1.0); 0.0146484375 the tie between the largest
  // subnormal 0.875 * 2^-6 and the smallest normal 2^-6 (to the even 2^-6).
  const double inf = std::numeric_limits<double>::infinity();
  const auto x = f32({448, 464, 470, -1e6, inf, -inf, std::ldexp(1.0, -9), std::ldexp(1.0, -10),
                      1.0625, 0.0146484375, 300});
  const auto expected =
      f32({448, 448, 448, -448, 448, -448, std::ldexp(1.0, -9), 0, 1.0, std::ldexp(1.0, -6), 288});
  EXPECT_TRUE(bitwise_equal(q(x), expected));
  EXPECT_TRUE(std::isnan(q(f32({NAN}))[0].item<float>()));
  // Signed zero survives.
  EXPECT_TRUE(std::signbit(q(f32({-0.0}))[0].item<float>()));
  EXPECT_TRUE(std::signbit(q(f32({-std::ldexp(1.0, -11)}))[0].item<float>()));
}

TEST(FloatQuantizer, E5M2EveryCodeIsAFixedPointAndHandValues) {
  // OFP8 v1.0 E5M2: bias 15, exponent field 31 reserved for inf/NaN.
  const auto values = ocp_values(5, 2, 15, [](int f, int) { return f == 31; });
  ASSERT_EQ(values.size(), 124u);
  EXPECT_EQ(values.back(), 57344.0);
  FloatQuantizeDequantize q("E5M2");
  const auto codes = torch::tensor(values, at::kDouble);
  EXPECT_TRUE(bitwise_equal(q(codes), codes));
  // 61440 is the tie between 57344 and 65536 (overflow): saturates. 2^-16 is the smallest
  // subnormal; 3 * 2^-17 the tie between 2^-16 (mantissa 01) and 2^-15 (10): to 2^-15.
  const auto x = f32({61440, 1e9, std::ldexp(1.0, -16), std::ldexp(1.0, -17),
                      3 * std::ldexp(1.0, -17), 1.125, 1.375});
  const auto expected =
      f32({57344, 57344, std::ldexp(1.0, -16), 0, std::ldexp(1.0, -15), 1.0, 1.5});
  EXPECT_TRUE(bitwise_equal(q(x), expected));
}

TEST(FloatQuantizer, InputDtypesAndEmptyTensors) {
  FloatQuantizeDequantize q("E4M3");
  const auto x = f32({-3, 1, 2.5, 0.3, 300});
  const auto expected = q(x);
  // Every E4M3 value is exact in float16, bfloat16 (4 significant bits) and float64.
  for (const auto dtype : {at::kHalf, at::kBFloat16, at::kDouble}) {
    const auto y = q(x.to(dtype));
    EXPECT_EQ(y.scalar_type(), dtype);
    EXPECT_TRUE(bitwise_equal(y.to(at::kFloat), expected)) << dtype;
  }
  for (FloatQuantizeDequantize quantizer :
       {FloatQuantizeDequantize("E4M3"), FloatQuantizeDequantize(torch::kHalf),
        e4m3_with_minmax()}) {
    const auto empty = quantizer->forward(torch::empty({0, 3}));
    EXPECT_EQ(empty.sizes(), (at::IntArrayRef{0, 3}));
  }
  auto calibrated = e4m3_with_minmax();
  calibrated->compute_encodings([&] { calibrated(torch::empty({0})); });
  EXPECT_TRUE(bitwise_equal(calibrated->maxval, scalar(240.0)));
  EXPECT_THROW(q(torch::ones({2}, at::kInt)), c10::Error);
}

TEST(FloatQuantizer, FunctionalMatchesTheModule) {
  torch::manual_seed(1);
  const auto x = torch::randn({64}) * 100;
  EXPECT_TRUE(bitwise_equal(qs::floating::quantize_dequantize(x, FloatFormat::ieee(4, 3)),
                            FloatQuantizeDequantize(4, 3)(x)));
}

// ---- gradient (straight-through inside [-maxval, maxval], docs/differences.md) ------------------

TEST(FloatQuantizer, StraightThroughGradientInsideZeroOutside) {
  FloatQuantizeDequantize q("E4M3");
  const auto x = f32({-300, -240, -3, 0, 0.3, 2.5, 240, 241, NAN}).requires_grad_();
  q(x).sum().backward();
  EXPECT_TRUE(bitwise_equal(x.grad(), f32({0, 1, 1, 1, 1, 1, 1, 0, 0})));

  auto calibrated = e4m3_with_minmax();
  calibrated->compute_encodings([&] { calibrated(f32({-3, 3})); });
  const auto y = f32({-4, -3, 2, 3, 3.5}).requires_grad_();
  (calibrated(y) * f32({1, 2, 3, 4, 5})).sum().backward();
  EXPECT_TRUE(bitwise_equal(y.grad(), f32({0, 2, 3, 4, 0})));
  EXPECT_FALSE(calibrated->maxval.requires_grad());
}

TEST(FloatQuantizer, CastFormatsHaveTheIdentityGradient) {
  FloatQuantizeDequantize q(torch::kHalf);
  const auto x = f32({-1e6, 1.5, 1e6}).requires_grad_();
  q(x).sum().backward();
  EXPECT_TRUE(bitwise_equal(x.grad(), f32({1, 1, 1})));
}

TEST(FloatQuantizer, PerChannelGradientIsReducedToTheInputShape) {
  auto q = e4m3_with_minmax({2, 1});
  q->compute_encodings([&] { q(torch::tensor({{1.f}, {4.f}})); });
  const auto x = f32({0.5, 2}).requires_grad_();  // broadcast against maxval (2, 1) -> (2, 2)
  q(x).sum().backward();
  // Row 0 (maxval 1): 0.5 inside, 2 outside; row 1 (maxval 4): both inside.
  EXPECT_TRUE(bitwise_equal(x.grad(), f32({2, 1})));
}

// ---- legacy encodings ------------------------------------------------------------------------

TEST(FloatQuantizer, Check34LegacyImport) {
  FloatQuantizeDequantize q(4, 3);
  EXPECT_THROW(
      q->set_legacy_encodings(nlohmann::json::parse(R"([{"bitwidth": 8, "dtype": "float"}])")),
      c10::Error);
  EXPECT_EQ(q->exponent_bits(), 4);
  EXPECT_THROW(q->set_legacy_encodings(nlohmann::json::parse(R"([{"dtype": "float"}])")),
               c10::IndexError);  // the missing key: the reference's KeyError
  EXPECT_THROW(q->set_legacy_encodings(nlohmann::json::array()), c10::ValueError);
  q->set_legacy_encodings(nlohmann::json::parse(R"([{"bitwidth": 16, "dtype": "float"}])"));
  EXPECT_EQ(q->exponent_bits(), 5);
  EXPECT_EQ(q->mantissa_bits(), 10);
  EXPECT_TRUE(q->is_float16());
  EXPECT_EQ(*q->get_legacy_encodings(),
            nlohmann::json::parse(R"([{"bitwidth": 16, "dtype": "float"}])"));
}

/// The legacy float dict says only "16 bits": a quantizer already simulating a 16-bit format keeps
/// it, so that a bfloat16 simulation reloading its own export stays bfloat16 (the reference
/// selects E5M10 whatever the quantizer was, docs/differences.md); other formats become E5M10.
TEST(FloatQuantizer, SixteenBitLegacyImportKeepsBFloat16) {
  const auto legacy = nlohmann::json::parse(R"([{"bitwidth": 16, "dtype": "float"}])");
  FloatQuantizeDequantize bf16(torch::kBFloat16);
  const auto x = torch::tensor({1.00390625f, 3.14159274f, -65519.f, 1e-3f});
  const auto before = bf16(x);
  bf16->set_legacy_encodings(legacy);
  EXPECT_TRUE(bf16->is_bfloat16());
  EXPECT_TRUE(bitwise_equal(bf16(x), before));
  EXPECT_EQ(*bf16->get_legacy_encodings(), legacy);
  FloatQuantizeDequantize fp16(torch::kHalf);
  fp16->set_legacy_encodings(legacy);
  EXPECT_TRUE(fp16->is_float16());
  FloatQuantizeDequantize e5m2(5, 2);
  e5m2->set_legacy_encodings(legacy);
  EXPECT_TRUE(e5m2->is_float16());
}

// ---- clone and serialization -----------------------------------------------------------------

TEST(FloatQuantizer, CloneKeepsFormatMaxvalAndFlagsWithItsOwnAnalyzer) {
  auto q = e4m3_with_minmax();
  q->compute_encodings([&] { q(f32({-3, 2})); });
  q->allow_overwrite(false);
  auto copy = std::dynamic_pointer_cast<FloatQuantizeDequantizeImpl>(q->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(bitwise_equal(copy->maxval, scalar(3.0)));
  EXPECT_FALSE(copy->maxval.is_same(q->maxval));
  EXPECT_FALSE(copy->overwrite_allowed());
  EXPECT_NE(copy->encoding_analyzer(), q->encoding_analyzer());
  copy->allow_overwrite(true);
  copy->compute_encodings([&] { copy->forward(f32({10})); });
  EXPECT_TRUE(bitwise_equal(copy->maxval, scalar(10.0)));
  EXPECT_TRUE(bitwise_equal(q->maxval, scalar(3.0)));

  auto fn = std::dynamic_pointer_cast<FloatQuantizeDequantizeImpl>(
      FloatQuantizeDequantize("E4M3FN")->clone());
  EXPECT_EQ(fn->format().bias, c10::optional<int64_t>(7));
  EXPECT_FALSE(fn->maxval.defined());
}

TEST(FloatQuantizer, SaveLoadRoundTrip) {
  auto q = e4m3_with_minmax();
  q->compute_encodings([&] { q(f32({-3, 2})); });
  std::stringstream stream;
  torch::save(q, stream);

  // Into a quantizer of another format without maxval: format and maxval are restored.
  FloatQuantizeDequantize target(torch::kBFloat16);
  torch::load(target, stream);
  EXPECT_EQ(target->exponent_bits(), 4);
  EXPECT_EQ(target->mantissa_bits(), 3);
  ASSERT_TRUE(target->maxval.defined());
  EXPECT_TRUE(bitwise_equal(target->maxval, scalar(3.0)));
  const auto x = f32({-3, 1, 2.5, 0.3, 5});
  EXPECT_TRUE(bitwise_equal(target(x), q(x)));
  EXPECT_EQ(target->buffers().size(), 1u);

  // An archive without maxval removes the buffer.
  std::stringstream bare;
  torch::save(FloatQuantizeDequantize("E4M3FN"), bare);
  torch::load(target, bare);
  EXPECT_FALSE(target->maxval.defined());
  EXPECT_TRUE(target->buffers().empty());
  EXPECT_EQ(target->format().bias, c10::optional<int64_t>(7));
  EXPECT_EQ(target(f32({470}))[0].item<float>(), 448.f);
  // A clone after the loads agrees with the loaded state.
  auto copy = std::dynamic_pointer_cast<FloatQuantizeDequantizeImpl>(target->clone());
  EXPECT_FALSE(copy->maxval.defined());
}

TEST(FloatQuantizer, ModuleToMovesMaxval) {
  auto q = e4m3_with_minmax();
  q->to(at::kDouble);
  EXPECT_EQ(q->maxval.scalar_type(), at::kDouble);
  FloatQuantizeDequantize bare(4, 3);
  EXPECT_NO_THROW(bare->to(at::kDouble));
}

TEST(FloatQuantizer, NamedE5M2DiffersFromTheReferenceGridOnlyBelow2ToMinus14) {
  // ieee(5, 2) has bias 16 (F3), so its smallest step is 2^(1 - 2 - 16) = 2^-17; OCP E5M2's is
  // 2^-16. 2^-17 is a value of the former and a tie to 0 in the latter.
  FloatQuantizeDequantize ocp("E5M2"), reference(5, 2);
  const auto tiny = f32({std::ldexp(1.0, -17)});
  EXPECT_TRUE(bitwise_equal(reference(tiny), tiny));
  EXPECT_TRUE(bitwise_equal(ocp(tiny), f32({0})));
  torch::manual_seed(2);
  const auto x = torch::cat({torch::rand({500}) * 60000, torch::rand({500}) * 1e-3 + 6.2e-5});
  EXPECT_TRUE(bitwise_equal(ocp(x), reference(x)));  // x >= 6.2e-5 > 2^-14
}

// Issue 3: NaN is left out of the float quantizer's statistics and reported once per calibration;
// a batch with nothing usable is rejected naming the quantizer, and calibration goes on.
TEST(FloatQuantizer, NaNIsReportedOnceAndAnUnusableBatchNamesTheQuantizer) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::string> seen;
  qs::ScopedWarningHandler capture([&](const std::string& m) { seen.push_back(m); });
  auto q = e4m3_with_minmax();
  {
    auto calibrating = q->compute_encodings();
    q(f32({-3, nan, 1}));
    q(f32({nan, 2.5, nan}));
    try {
      q(f32({nan, nan}));
      ADD_FAILURE() << "expected c10::ValueError";
    } catch (const c10::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("FloatQuantizeDequantize(exponent_bits=4"),
                std::string::npos)
          << e.what();
    }
  }
  ASSERT_EQ(seen.size(), 1u);
  // 1 + 2: the rejected batch contributes nothing, not even its NaN count.
  EXPECT_NE(seen[0].find(" 3 NaN"), std::string::npos) << seen[0];
  EXPECT_EQ(q->maxval.item<float>(), 3.f);  // max(|-3|, |2.5|): the rejected batch left no trace
}

// Issue 9 §3: calibrating on float16 or bfloat16 data failed ("clamp_max_scalar_cpu" not
// implemented for 'Half') while forward worked; it now gives the maxval of the same values in
// float32, bit for bit, and the same outputs inside and after calibration.
TEST(FloatQuantizeDequantize, CalibratesOnReducedPrecisionDataAsOnFloat32) {
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    const auto x = (torch::randn({3, 8}) * 4).to(dtype);
    auto reduced = e4m3_with_minmax({3, 1});
    auto reference = e4m3_with_minmax({3, 1});
    at::Tensor inside_reduced, inside_reference;
    reduced->compute_encodings([&] { inside_reduced = reduced(x); });
    reference->compute_encodings([&] { inside_reference = reference(x.to(at::kFloat)); });
    EXPECT_TRUE(bitwise_equal(reduced->maxval, reference->maxval));
    EXPECT_EQ(inside_reduced.scalar_type(), dtype);
    EXPECT_TRUE(bitwise_equal(inside_reduced, inside_reference.to(dtype)));
    EXPECT_TRUE(bitwise_equal(reduced(x), reference(x.to(at::kFloat)).to(dtype)));
  }
}
