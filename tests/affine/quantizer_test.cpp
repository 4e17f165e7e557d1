// Affine quantizer modules (docs/quantization.md §1, §4, §9) against the reference's values.
//
// Expected values were printed by the reference (AIMET v2) on the same inputs; each section names
// the docs/quantization.md section it checks.

#include <quantsim/affine/functional.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "testing/printing.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::affine::Quantize;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizeDequantizeImpl;
using qs::affine::QuantizeImpl;
using qs::affine::QuantizerOptions;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::f32_2d;
using qs::testing::printed;
using qs::testing::scalar;

namespace {

using Shape = std::vector<int64_t>;

}  // namespace

// ---- constructor errors (docs/quantization.md §9.1) ---------------------------------------------

// The reference's TypeErrors (missing or unknown arguments) are compile errors in C++.
// (shape, qmin, qmax) without `symmetric` must not compile: an implicit int -> bool conversion of
// qmax would otherwise turn it into (shape, bitwidth=qmin, symmetric=true).
template <typename Impl>
constexpr bool kRejectsIncompleteArguments =
    !std::is_constructible_v<Impl> && !std::is_constructible_v<Impl, Shape> &&
    !std::is_constructible_v<Impl, Shape, int> && !std::is_constructible_v<Impl, Shape, int, int> &&
    !std::is_constructible_v<Impl, Shape, int64_t, int64_t> &&
    !std::is_constructible_v<Impl, Shape, int, int, bool, std::nullptr_t>;
static_assert(kRejectsIncompleteArguments<QuantizeImpl>);
static_assert(kRejectsIncompleteArguments<QuantizeDequantizeImpl>);
static_assert(!std::is_constructible_v<QuantizerOptions, Shape, int, int>);
static_assert(std::is_constructible_v<QuantizeImpl, Shape, int, bool>);
static_assert(std::is_constructible_v<QuantizeImpl, Shape, int, int, bool>);
static_assert(std::is_constructible_v<QuantizeDequantizeImpl, Shape, int, bool>);
static_assert(std::is_constructible_v<QuantizeDequantizeImpl, Shape, int, int, bool>);

TEST(AffineQuantizer, Check2InvalidGridThrowsValueError) {
  EXPECT_THROW(QuantizeImpl({1, 10}, 127, -128, true), c10::ValueError);
  EXPECT_THROW(QuantizeImpl({1, 10}, 127, 127, true), c10::ValueError);
  EXPECT_THROW(QuantizeDequantizeImpl({1, 10}, 127, -128, true), c10::ValueError);
  EXPECT_THROW(QuantizeDequantizeImpl({1, 10}, 127, 127, true), c10::ValueError);
  EXPECT_THROW(Quantize({1, 10}, 127, 127, true), c10::ValueError);
  EXPECT_NO_THROW(QuantizeImpl({1, 10}, 8, true));
  EXPECT_NO_THROW(QuantizeImpl({1, 10}, -128, 127, true));
  EXPECT_NO_THROW(QuantizeDequantize({1, 10}, 8, true));
  EXPECT_NO_THROW(QuantizeDequantize({1, 10}, -128, 127, true));
}

TEST(AffineQuantizer, BracedShapesAndVectorVariablesConstruct) {
  const Shape shape{10, 1};
  const int bitwidth = 8;
  QuantizeDequantize a({}, 8, false), b({10, 1}, 8, true), c(shape, bitwidth, true);
  EXPECT_EQ(a->shape(), Shape{});
  EXPECT_EQ(b->shape(), shape);
  EXPECT_EQ(c->shape(), shape);
  EXPECT_EQ(c->qmin(), -128);
  EXPECT_EQ(c->qmax(), 127);
}

// ---- bitwidth / signed translation (docs/quantization.md §1) ------------------------------------

TEST(AffineQuantizer, Check3BitwidthAndSignedGettersAndSetters) {
  QuantizeDequantizeImpl q({}, 0, 15, false);
  EXPECT_EQ(q.bitwidth(), 4);
  EXPECT_FALSE(q.is_signed());

  q.set_signed(true);
  EXPECT_EQ(q.qmin(), -8);
  EXPECT_EQ(q.qmax(), 7);
  EXPECT_EQ(q.bitwidth(), 4);

  q.set_bitwidth(5.0);  // an integral floating value is accepted, as in the reference
  EXPECT_EQ(q.qmin(), -16);
  EXPECT_EQ(q.qmax(), 15);
  EXPECT_TRUE(q.is_signed());

  EXPECT_THROW(q.set_bitwidth(0.1), c10::TypeError);  // TypeError in the reference
  EXPECT_THROW(q.set_bitwidth(0), c10::ValueError);   // ValueError
  EXPECT_EQ(q.qmin(), -16);                           // failed setters change nothing
  EXPECT_EQ(q.qmax(), 15);
}

TEST(AffineQuantizer, Check3NonStandardGrids) {
  QuantizeDequantizeImpl odd({}, -1, 14, false);
  EXPECT_THROW(odd.bitwidth(), c10::Error);
  EXPECT_THROW(odd.is_signed(), c10::Error);

  // [0, 0xff7f] is unsigned but not a power-of-two grid: no bitwidth, yet one can be set.
  QuantizeDequantizeImpl wide({}, 0, 0xff7f, false);
  EXPECT_THROW(wide.bitwidth(), c10::Error);
  wide.set_bitwidth(16);
  EXPECT_EQ(wide.qmin(), 0);
  EXPECT_EQ(wide.qmax(), 65535);

  // Strict symmetric [-127, 127]: neither signed nor unsigned pattern, so the setter fails too.
  QuantizeDequantizeImpl strict({}, -127, 127, true);
  EXPECT_THROW(strict.bitwidth(), c10::Error);
  EXPECT_THROW(strict.set_bitwidth(8), c10::Error);
}

TEST(AffineQuantizer, Check3BitwidthIncrementAndSignedFlip) {
  QuantizeDequantizeImpl u4({}, 0, 15, false);
  u4.set_bitwidth(u4.bitwidth() + 1);
  EXPECT_EQ(u4.qmin(), 0);
  EXPECT_EQ(u4.qmax(), 31);

  QuantizeDequantizeImpl s4({}, -8, 7, true);
  s4.set_bitwidth(s4.bitwidth() + 1);
  EXPECT_EQ(s4.qmin(), -16);
  EXPECT_EQ(s4.qmax(), 15);

  QuantizeDequantizeImpl u8({}, 0, 255, false);
  u8.set_signed(true);
  EXPECT_EQ(u8.qmin(), -128);
  EXPECT_EQ(u8.qmax(), 127);

  QuantizeDequantizeImpl s8({}, -128, 127, true);
  s8.set_signed(false);
  EXPECT_EQ(s8.qmin(), 0);
  EXPECT_EQ(s8.qmax(), 255);
}

// ---- identity grid ------------------------------------------------------------------------------

namespace {

struct GridCase {
  int64_t qmin, qmax;
  bool symmetric;
  int64_t bitwidth;  // every listed grid is standard: signed iff symmetric
};

constexpr GridCase kIdentityGrids[] = {{0, 15, false, 4},     {0, 255, false, 8},
                                       {0, 65535, false, 16}, {-8, 7, true, 4},
                                       {-128, 127, true, 8},  {-32768, 32767, true, 16}};

/// The quantizer built by every constructor spelling of DESIGN.md.
template <typename Holder>
std::vector<std::pair<std::string, Holder>> every_spelling(const GridCase& c) {
  return {
      {"(shape, bitwidth, symmetric)", Holder(Shape{}, c.bitwidth, c.symmetric)},
      {"(shape, qmin, qmax, symmetric)", Holder(Shape{}, c.qmin, c.qmax, c.symmetric)},
      {"QuantizerOptions(shape, bitwidth, symmetric)",
       Holder(QuantizerOptions(Shape{}, c.bitwidth, c.symmetric))},
      {"QuantizerOptions(shape, qmin, qmax, symmetric)",
       Holder(QuantizerOptions(Shape{}, c.qmin, c.qmax, c.symmetric))},
  };
}

at::Tensor output_values(const at::Tensor& y) { return y; }
at::Tensor output_values(const qs::QuantizedTensor& y) { return y.tensor(); }

template <typename Holder>
void expect_identity_grid() {
  for (const auto& c : kIdentityGrids) {
    const auto x = torch::arange(c.qmin, c.qmax + 1, torch::kFloat);
    for (auto& [spelling, q] : every_spelling<Holder>(c)) {
      SCOPED_TRACE(::testing::Message() << printed(*q) << " built as " << spelling);
      ASSERT_EQ(q->qmin(), c.qmin);
      ASSERT_EQ(q->qmax(), c.qmax);
      {
        auto calibrating = q->compute_encodings();
        q(x);
      }
      EXPECT_TRUE(bitwise_equal(q->min, scalar(c.qmin)));
      EXPECT_TRUE(bitwise_equal(q->max, scalar(c.qmax)));
      EXPECT_TRUE(bitwise_equal(*q->get_scale(), scalar(1)));
      EXPECT_TRUE(bitwise_equal(*q->get_offset(), scalar(0)));
      EXPECT_TRUE(bitwise_equal(output_values(q(x)), x));
    }
  }
}

}  // namespace

TEST(AffineQuantizer, Check4IdentityGridQuantize) { expect_identity_grid<Quantize>(); }
TEST(AffineQuantizer, Check4IdentityGridQuantizeDequantize) {
  expect_identity_grid<QuantizeDequantize>();
}

// ---- set_range(-1, 1), 8-bit asymmetric: float32 offset -127 (docs/quantization.md §4) ----------

TEST(AffineQuantizer, Check5SetRangeForwardQuantizeAndQuantizeDequantize) {
  const auto x = f32({-1.2, -1, -0.5, 0, 0.3, 0.999, 1.5});

  QuantizeDequantize qdq({}, 8, false);
  qdq->set_range(-1, 1);
  EXPECT_TRUE(bitwise_equal(*qdq->get_scale(), scalar(0.007843137718737125)));
  EXPECT_TRUE(bitwise_equal(*qdq->get_offset(), scalar(-127)));
  EXPECT_TRUE(all_close(
      qdq(x), f32({-0.99607849, -0.99607849, -0.50196081, 0, 0.29803923, 0.99607849, 1.00392163})));

  Quantize q({}, 8, false);
  q->set_range(-1, 1);
  const auto y = q(x);
  EXPECT_TRUE(bitwise_equal(y.tensor(), f32({0, 0, 63, 127, 165, 254, 255})));
  const auto repr = y.quantized_repr();
  EXPECT_EQ(repr.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(bitwise_equal(repr, torch::tensor({0, 0, 63, 127, 165, 254, 255}, torch::kUInt8)));
}

// ---- calibration (docs/quantization.md §8.2, §9.3) ----------------------------------------------

TEST(AffineQuantizer, Check6CalibrationSymmetric) {
  const auto x = f32({-2, 1});
  QuantizeDequantize q({}, 8, true);
  q->compute_encodings([&] { q(x); });
  EXPECT_TRUE(all_close(q->min, scalar(-2)));
  EXPECT_TRUE(all_close(q->max, scalar(1.984375)));
  EXPECT_TRUE(all_close(*q->get_min(), scalar(-2)));
  EXPECT_TRUE(all_close(*q->get_max(), scalar(1.984375)));
  EXPECT_TRUE(all_close(*q->get_scale(), scalar(0.015625)));
  EXPECT_TRUE(bitwise_equal(*q->get_offset(), scalar(0)));
  EXPECT_TRUE(all_close(q(x), f32({-2, 1})));
}

TEST(AffineQuantizer, Check6CalibrationAsymmetric) {
  const auto x = f32({-2, 1});
  for (const bool use_quantize : {false, true}) {
    SCOPED_TRACE(use_quantize ? "Quantize" : "QuantizeDequantize");
    std::shared_ptr<qs::affine::AffineQuantizerBase> base;
    if (use_quantize) {
      Quantize q({}, 8, false);
      q->compute_encodings([&] { q(x); });
      base = q.ptr();
    } else {
      QuantizeDequantize q({}, 8, false);
      q->compute_encodings([&] { q(x); });
      base = q.ptr();
    }
    EXPECT_TRUE(all_close(base->min, scalar(-2)));
    EXPECT_TRUE(all_close(base->max, scalar(1)));
    EXPECT_TRUE(all_close(*base->get_min(), scalar(-2)));
    EXPECT_TRUE(all_close(*base->get_max(), scalar(1)));
    EXPECT_TRUE(all_close(*base->get_scale(), scalar(0.0117647061)));
    EXPECT_TRUE(bitwise_equal(*base->get_offset(), scalar(-170)));
  }
}

TEST(AffineQuantizer, Check7ZeroIsAlwaysInTheRange) {
  const auto x = f32({0.5, 2});
  QuantizeDequantize asym({}, 8, false);
  asym->compute_encodings([&] { asym(x); });
  EXPECT_TRUE(all_close(asym->min, scalar(0)));
  EXPECT_TRUE(all_close(asym->max, scalar(2)));
  EXPECT_TRUE(all_close(*asym->get_scale(), scalar(0.0078431377)));
  EXPECT_TRUE(bitwise_equal(*asym->get_offset(), scalar(0)));

  QuantizeDequantize sym({}, 8, true);
  sym->compute_encodings([&] { sym(x); });
  EXPECT_TRUE(all_close(sym->min, scalar(-2.01574802)));
  EXPECT_TRUE(all_close(sym->max, scalar(2)));
  EXPECT_TRUE(all_close(*sym->get_min(), scalar(-2.01574802)));
  EXPECT_TRUE(all_close(*sym->get_max(), scalar(2)));
  EXPECT_TRUE(all_close(*sym->get_scale(), scalar(0.015748031)));
}

// ---- multi-batch standalone calibration (docs/quantization.md §9.3) -----------------------------

TEST(AffineQuantizer, Check8EachBatchIsQuantizedWithItsOwnRangeWhileCalibrating) {
  QuantizeDequantize q({}, 8, false);
  at::Tensor second;
  {
    auto calibrating = q->compute_encodings();
    q(f32({-1, 1}));
    second = q(f32({0, 3}));
    EXPECT_FALSE(q->is_initialized());  // the range is set only when the scope closes
  }
  EXPECT_TRUE(all_close(second, f32({0, 3})));
  EXPECT_TRUE(q->is_initialized());
  EXPECT_TRUE(all_close(q->min, scalar(-1)));
  EXPECT_TRUE(all_close(q->max, scalar(3)));
}

// ---- QuantizeDequantize == Quantize then dequantize (docs/quantization.md §2) -------------------

TEST(AffineQuantizer, Check18QuantizeDequantizeEqualsQuantizeThenDequantize) {
  const auto x = torch::arange(-200, 200, torch::kFloat) / 100;
  for (const Shape& shape : {Shape{}, Shape{1}}) {
    for (const bool symmetric : {false, true}) {
      SCOPED_TRACE(::testing::Message() << at::IntArrayRef(shape) << " symmetric " << symmetric);
      QuantizeDequantize qdq(shape, 8, symmetric);
      Quantize q(shape, 8, symmetric);
      {
        auto c1 = qdq->compute_encodings();
        auto c2 = q->compute_encodings();
        qdq(x);
        q(x);
      }
      EXPECT_TRUE(bitwise_equal(qdq(x), q(x).dequantize().tensor()));
    }
  }
}

// ---- per-channel Quantize -----------------------------------------------------------------------
// The check's first line (its setup) is lost. What the numbers fix: a per-channel quantizer of
// shape (2, 1), 8-bit symmetric, calibrated on a 2x4 input whose row maxima are 4.1 and 5.6
// (min = -128/127 * max). The input below is a reconstruction: every element lies well inside the
// rounding cell that the reference's integers imply (|x/s - round(x/s)| <= 0.33), so the expected
// numbers do not depend on which point of the cell the reference used.

TEST(AffineQuantizer, Check9PerChannelQuantize) {
  const auto x = f32_2d({{-1.2, 4.1, -0.23, 2.3}, {0.22, 5.6, -1.0, -0.09}});
  Quantize q({2, 1}, 8, true);
  q->compute_encodings([&] { q(x); });
  EXPECT_TRUE(all_close(q->min, f32_2d({{-4.13228321}, {-5.64409447}})));
  EXPECT_TRUE(all_close(q->max, f32_2d({{4.1}, {5.6}})));
  EXPECT_TRUE(all_close(*q->get_min(), f32_2d({{-4.13228321}, {-5.64409447}})));
  EXPECT_TRUE(all_close(*q->get_max(), f32_2d({{4.1}, {5.6}})));

  const auto y = q(x);
  const auto repr = y.quantized_repr();
  EXPECT_EQ(repr.scalar_type(), torch::kInt8);
  EXPECT_TRUE(
      bitwise_equal(repr, torch::tensor({{-37, 127, -7, 71}, {5, 127, -23, -2}}, torch::kInt8)));
  EXPECT_TRUE(
      all_close(y.dequantize().tensor(), f32_2d({{-1.19448817, 4.1, -0.22598425, 2.29212594},
                                                 {0.22047244, 5.6, -1.01417327, -0.08818898}})));
}

// ---- gradient gating (docs/quantization.md §6) --------------------------------------------------

TEST(AffineQuantizer, Check14BackwardInsideCalibrationLeavesRangeGradsUndefined) {
  const auto data = torch::arange(-200, 200, torch::kFloat).view({4, 100}) / 100;
  for (const bool initialized : {false, true}) {
    for (const bool symmetric : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "initialized " << initialized << " symmetric " << symmetric);
      QuantizeDequantize qdq({}, 8, symmetric);
      Quantize q({}, 8, symmetric);
      if (initialized) {
        qdq->set_range(-1, 1);
        q->set_range(-1, 1);
      }
      const auto x = data.clone().requires_grad_(true);
      {
        auto c1 = qdq->compute_encodings();
        auto c2 = q->compute_encodings();
        const auto y = qdq(x) + q(x).tensor();
        y.backward(torch::ones_like(y));
      }
      EXPECT_FALSE(qdq->min.grad().defined());
      EXPECT_FALSE(qdq->max.grad().defined());
      EXPECT_FALSE(q->min.grad().defined());
      EXPECT_FALSE(q->max.grad().defined());
      EXPECT_TRUE(x.grad().defined());  // the input gradient still flows

      // Outside calibration the same backward reaches min and max.
      const auto y = qdq(x) + q(x).tensor();
      y.backward(torch::ones_like(y));
      EXPECT_TRUE(qdq->min.grad().defined());
      EXPECT_TRUE(qdq->max.grad().defined());
      EXPECT_TRUE(q->min.grad().defined());
      EXPECT_TRUE(q->max.grad().defined());
    }
  }
}

TEST(AffineQuantizer, Check14NoGradForwardRecordsNothing) {
  const auto x = (torch::arange(-200, 200, torch::kFloat) / 100).requires_grad_(true);
  for (const bool symmetric : {false, true}) {
    QuantizeDequantize qdq({}, 8, symmetric);
    Quantize q({}, 8, symmetric);
    qdq->set_range(-1, 1);
    q->set_range(-1, 1);
    at::Tensor y;
    {
      torch::NoGradGuard no_grad;
      y = qdq(x) + q(x).tensor();
    }
    EXPECT_FALSE(y.requires_grad());
    const auto z = y + x;
    z.backward(torch::ones_like(z));
    EXPECT_FALSE(qdq->min.grad().defined());
    EXPECT_FALSE(qdq->max.grad().defined());
    EXPECT_FALSE(q->min.grad().defined());
    EXPECT_FALSE(q->max.grad().defined());
  }
}

// ---- uninitialized quantizer (docs/quantization.md §9.2) ----------------------------------------

TEST(AffineQuantizer, Check15UninitializedGettersAreEmptyAndForwardThrows) {
  const auto x = f32({-1, 0.5, 2});
  QuantizeDequantize qdq({}, 8, true);
  Quantize q({2, 1}, 8, false);
  for (qs::affine::AffineQuantizerBase* base :
       {static_cast<qs::affine::AffineQuantizerBase*>(qdq.get()),
        static_cast<qs::affine::AffineQuantizerBase*>(q.get())}) {
    EXPECT_FALSE(base->is_initialized());
    EXPECT_FALSE(base->get_min().has_value());
    EXPECT_FALSE(base->get_max().has_value());
    EXPECT_FALSE(base->get_scale().has_value());
    EXPECT_FALSE(base->get_offset().has_value());
    EXPECT_EQ(base->get_encoding(), nullptr);
    EXPECT_EQ(base->get_affine_encoding(), nullptr);
    EXPECT_FALSE(base->get_legacy_encodings().has_value());
  }
  EXPECT_THROW(qdq(x), c10::Error);
  EXPECT_THROW(q(f32_2d({{-1, 0.5, 2}, {1, 2, 3}})), c10::Error);
}

TEST(AffineQuantizer, Check15EmptyCalibrationScopeChangesNothing) {
  QuantizeDequantize fresh({}, 8, true);
  { auto calibrating = fresh->compute_encodings(); }
  EXPECT_FALSE(fresh->is_initialized());
  EXPECT_FALSE(fresh->get_min().has_value());

  QuantizeDequantize set({}, 8, false);
  set->set_range(-0.5, 2);
  const auto min = set->min.detach().clone(), max = set->max.detach().clone();
  { auto calibrating = set->compute_encodings(); }
  EXPECT_TRUE(set->is_initialized());
  EXPECT_TRUE(bitwise_equal(set->min, min));
  EXPECT_TRUE(bitwise_equal(set->max, max));
}

TEST(AffineQuantizer, GettersStayEmptyInsideCalibrationOfAnUninitializedQuantizer) {
  QuantizeDequantize q({}, 8, true);
  {
    auto calibrating = q->compute_encodings();
    EXPECT_TRUE(q->is_calibrating());
    q(f32({-1, 2}));
    EXPECT_FALSE(q->get_min().has_value());
    EXPECT_FALSE(q->get_scale().has_value());
  }
  EXPECT_FALSE(q->is_calibrating());
  EXPECT_TRUE(q->get_min().has_value());
}

// ---- calibration guard: exceptions and the callable form ----------------------------------------

TEST(AffineQuantizer, ExceptionInsideCalibrationLeavesTheQuantizerAsItWas) {
  const auto x = f32({-3, 5});
  QuantizeDequantize fresh({}, 8, false);
  EXPECT_THROW(
      {
        auto calibrating = fresh->compute_encodings();
        fresh(x);
        throw std::runtime_error("data loader failed");
      },
      std::runtime_error);
  EXPECT_FALSE(fresh->is_initialized());
  EXPECT_FALSE(fresh->is_calibrating());

  QuantizeDequantize set({}, 8, false);
  set->set_range(-1, 1);
  const auto min = set->min.detach().clone(), max = set->max.detach().clone();
  EXPECT_THROW(set->compute_encodings([&] {
    set(x);
    throw std::runtime_error("data loader failed");
  }),
               std::runtime_error);
  EXPECT_TRUE(set->is_initialized());
  EXPECT_FALSE(set->is_calibrating());
  EXPECT_TRUE(bitwise_equal(set->min, min));
  EXPECT_TRUE(bitwise_equal(set->max, max));

  // The quantizer calibrates normally afterwards: no statistics leak from the failed scope.
  set->compute_encodings([&] { set(f32({-0.5, 0.25})); });
  EXPECT_TRUE(all_close(set->min, scalar(-0.5)));
  EXPECT_TRUE(all_close(set->max, scalar(0.25)));
}

TEST(AffineQuantizer, CallableCalibrationMatchesTheScopedForm) {
  const auto x1 = f32({-1, 0.5}), x2 = f32({0.25, 3});
  QuantizeDequantize scoped({}, 8, false), callable({}, 8, false);
  {
    auto calibrating = scoped->compute_encodings();
    scoped(x1);
    scoped(x2);
  }
  callable->compute_encodings([&] {
    callable(x1);
    callable(x2);
  });
  EXPECT_TRUE(callable->is_initialized());
  EXPECT_TRUE(all_close(callable->min, scalar(-1)));
  EXPECT_TRUE(all_close(callable->max, scalar(3)));
  EXPECT_TRUE(bitwise_equal(callable->min, scoped->min));
  EXPECT_TRUE(bitwise_equal(callable->max, scoped->max));
}

// ---- allow_overwrite(false) (docs/quantization.md §9.3) -----------------------------------------

TEST(AffineQuantizer, Check17AllowOverwriteFalseFreezesTheRange) {
  const auto x = torch::arange(-200, 200, torch::kFloat) / 100;
  for (const bool symmetric : {false, true}) {
    QuantizeDequantize q({}, 8, symmetric);
    q->compute_encodings([&] { q(x); });
    const auto min = q->min.detach().clone(), max = q->max.detach().clone();

    q->allow_overwrite(false);
    at::Tensor inside;
    {
      auto calibrating = q->compute_encodings();
      EXPECT_FALSE(q->is_calibrating());
      inside = q(10 * x);
    }
    EXPECT_TRUE(bitwise_equal(q->min, min));
    EXPECT_TRUE(bitwise_equal(q->max, max));
    // The forward is not wrapped: it uses the frozen range, not the batch's.
    EXPECT_TRUE(bitwise_equal(inside, q(10 * x)));
  }

  QuantizeDequantize fresh({}, 8, false);
  fresh->allow_overwrite(false);
  auto calibrating = fresh->compute_encodings();
  EXPECT_THROW(fresh(x), c10::Error);  // uninitialized and not calibrating
}

// ---- pretty_print -------------------------------------------------------------------------------

TEST(AffineQuantizer, PrettyPrint) {
  std::ostringstream holder;
  holder << QuantizeDequantize({10, 1}, 8, true);
  EXPECT_EQ(holder.str(), "QuantizeDequantize(shape=[10, 1], qmin=-128, qmax=127, symmetric=true)");
  EXPECT_EQ(printed(*Quantize({}, 0, 15, false)),
            "Quantize(shape=[], qmin=0, qmax=15, symmetric=false)");
}

// ---- encoding analyzer shape (docs/quantization.md §9.1) ----------------------------------------

TEST(AffineQuantizer, AnalyzerShapeMustExpandToTheQuantizerShape) {
  const auto make = [](Shape analyzer_shape) {
    return QuantizeDequantize(QuantizerOptions({10, 11}, 8, true)
                                  .encoding_analyzer(std::make_shared<qs::MinMaxEncodingAnalyzer>(
                                      std::move(analyzer_shape))));
  };
  EXPECT_THROW(make({12}), c10::Error);
  torch::manual_seed(0);
  const auto x = torch::randn({30, 10, 11});
  for (Shape ok : {Shape{10, 11}, Shape{11}, Shape{10, 1}, Shape{1}}) {
    SCOPED_TRACE(::testing::Message() << "analyzer shape " << at::IntArrayRef(ok));
    auto q = make(ok);
    q->compute_encodings([&] { q(x); });
    EXPECT_TRUE(q->is_initialized());
    EXPECT_EQ(q->min.sizes(), at::IntArrayRef({10, 11}));
  }
}

// ---- dtypes and empty tensors -------------------------------------------------------------------

TEST(AffineQuantizer, ReducedPrecisionInputsComputeInFloat32) {
  // docs/quantization.md §5: 8-bit QDQ is not stable in float16/bfloat16, so it runs in float32 and
  // casts back.
  const auto x = torch::linspace(-1.3, 1.6, 97, torch::kFloat);
  for (const auto dtype : {torch::kHalf, torch::kBFloat16}) {
    SCOPED_TRACE(::testing::Message() << dtype);
    for (const bool symmetric : {false, true}) {
      QuantizeDequantize q({}, 8, symmetric);
      q->set_range(-1, 1);
      const auto xr = x.to(dtype);
      const auto y = q(xr);
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_TRUE(bitwise_equal(y, q(xr.to(torch::kFloat)).to(dtype)));
    }
    Quantize q({}, 8, true);
    q->set_range(-1, 1);
    const auto y = q(x.to(dtype));
    EXPECT_EQ(y.tensor().scalar_type(), dtype);
    // Computed in the input dtype: the integers may differ from float32's by one step at most.
    EXPECT_TRUE(all_close(y.tensor(), q(x.to(dtype).to(torch::kFloat)).tensor().to(dtype), 1.0));
  }
}

TEST(AffineQuantizer, Float64InputKeepsItsDtype) {
  const auto x = f32({-1.2, -1, -0.5, 0, 0.3, 0.999, 1.5}).to(torch::kDouble);
  QuantizeDequantize qdq({}, 8, false);
  qdq->set_range(-1, 1);
  const auto y = qdq(x);
  EXPECT_EQ(y.scalar_type(), torch::kDouble);
  EXPECT_TRUE(all_close(
      y, f32({-0.99607849, -0.99607849, -0.50196081, 0, 0.29803923, 0.99607849, 1.00392163})));
  Quantize q({}, 8, false);
  q->set_range(-1, 1);
  const auto yq = q(x);
  EXPECT_EQ(yq.tensor().scalar_type(), torch::kDouble);
  EXPECT_TRUE(bitwise_equal(yq.quantized_repr(),
                            torch::tensor({0, 0, 63, 127, 165, 254, 255}, torch::kUInt8)));

  // Calibration on float64 data yields the same float32 range.
  QuantizeDequantize cal({}, 8, true);
  cal->compute_encodings([&] { cal(f32({-2, 1}).to(torch::kDouble)); });
  EXPECT_EQ(cal->min.scalar_type(), torch::kFloat);
  EXPECT_TRUE(all_close(cal->max, scalar(1.984375)));
}

TEST(AffineQuantizer, EmptyTensorsPassThrough) {
  const auto empty = torch::empty({0, 3});
  QuantizeDequantize qdq({}, 8, false);
  Quantize q({}, 8, true);
  {
    auto c1 = qdq->compute_encodings();
    auto c2 = q->compute_encodings();
    EXPECT_EQ(qdq(empty).sizes(), empty.sizes());
    EXPECT_EQ(q(empty).tensor().sizes(), empty.sizes());
  }
  EXPECT_FALSE(qdq->is_initialized());  // nothing was observed
  EXPECT_FALSE(q->is_initialized());

  {
    auto calibrating = qdq->compute_encodings();
    qdq(empty);
    qdq(f32({-1, 2}));
    qdq(empty);
  }
  EXPECT_TRUE(all_close(qdq->min, scalar(-1)));
  EXPECT_TRUE(all_close(qdq->max, scalar(2)));
  EXPECT_EQ(qdq(empty).sizes(), empty.sizes());
  q->set_range(-1, 1);
  EXPECT_EQ(q(empty).tensor().sizes(), empty.sizes());

  // An empty batch inside calibration records no gradient for min/max either.
  const auto e = torch::empty({0}).requires_grad_(true);
  {
    auto calibrating = qdq->compute_encodings();
    const auto y = qdq(e);
    y.sum().backward();
  }
  EXPECT_FALSE(qdq->min.grad().defined());
  EXPECT_FALSE(qdq->max.grad().defined());
}

// ---- gradients of min/max (docs/quantization.md eq. (11)) ---------------------------------------

namespace {

/// Autograd's (d loss/d min, d loss/d max) for loss = sum(w * q(x)).
std::pair<at::Tensor, at::Tensor> autograd_range_grads(QuantizeDequantize& q, const at::Tensor& x,
                                                       const at::Tensor& w) {
  q->zero_grad();
  (q(x) * w).sum().backward();
  return {q->min.grad().clone(), q->max.grad().clone()};
}

/// loss = sum(w * q(x)) in float64 without recording gradients.
double loss_of(QuantizeDequantize& q, const at::Tensor& x, const at::Tensor& w) {
  torch::NoGradGuard no_grad;
  return (q(x) * w).sum().item<double>();
}

/// Central finite difference of the loss with respect to element `i` of `param` (min or max).
/// The step actually applied is read back from the float32 parameter.
double finite_difference(QuantizeDequantize& q, at::Tensor& param, int64_t i, double h,
                         const at::Tensor& x, const at::Tensor& w) {
  torch::NoGradGuard no_grad;
  auto flat = param.view({-1});
  const auto original = flat[i].clone();
  flat[i] += h;
  const double up_value = flat[i].item<double>();
  const double up = loss_of(q, x, w);
  flat[i].copy_(original);
  flat[i] -= h;
  const double down_value = flat[i].item<double>();
  const double down = loss_of(q, x, w);
  flat[i].copy_(original);
  return (up - down) / (up_value - down_value);
}

}  // namespace

// A true finite difference of the loss equals the straight-through gradient only where the
// estimator and the function agree. For QuantizeDequantize with no element clamped:
//   loss = sum(w * round(x/s) * s)  (the offset cancels), d loss/d s = sum(w * round(x/s)),
// while eq. (10)'s ds = sum(w * (round(x/s) - x/s)). Choosing w orthogonal to x makes the two
// equal, so the check measures min/max gradients exactly; x sits 0.2 steps off the grid so that no
// rounding flips for the perturbation used (it moves x/s by < 0.05).
TEST(AffineQuantizer, RangeGradientsMatchFiniteDifferences) {
  struct Case {
    bool symmetric;
    double min, max;
  };
  for (const Case c : {Case{false, -1.0, 1.5}, Case{true, -1.28, 1.27}}) {
    SCOPED_TRACE(c.symmetric ? "symmetric" : "asymmetric");
    QuantizeDequantize q({}, 8, c.symmetric);
    q->set_range(c.min, c.max);
    const double s = q->get_scale()->item<double>();
    const double o = q->get_offset()->item<double>();
    // Grid points well inside [qmin, qmax] after the offset, shifted by 0.2 of a step.
    const auto k = torch::tensor({-97, -60, -33, -8, 0, 5, 21, 47, 88, 101, 120}, torch::kDouble);
    ASSERT_TRUE(((k - o) > q->qmin() + 2).all().item<bool>());
    ASSERT_TRUE(((k - o) < q->qmax() - 2).all().item<bool>());
    const auto x = (k + 0.2) * s;
    auto w =
        torch::tensor({0.3, -1.1, 0.7, 2.0, -0.4, 1.3, -0.9, 0.5, 1.7, -1.5, 0.8}, torch::kDouble);
    w = 100 * (w - (w * x).sum() / (x * x).sum() * x);  // orthogonal to x; scaled up so that
                                                        // the gradient is far above FD noise

    const auto [dmin, dmax] = autograd_range_grads(q, x, w);
    const double fd_min = finite_difference(q, q->min, 0, 1e-3, x, w);
    const double fd_max = finite_difference(q, q->max, 0, 1e-3, x, w);
    ASSERT_GT(std::abs(fd_min), 0.05);  // a non-trivial gradient
    EXPECT_NEAR(dmin.item<double>(), fd_min, 2e-3 * std::abs(fd_min));
    EXPECT_NEAR(dmax.item<double>(), fd_max, 2e-3 * std::abs(fd_max));
    if (c.symmetric) EXPECT_FLOAT_EQ(dmin.item<float>(), -dmax.item<float>());
  }
}

// The chain of eq. (11) from the backend's (ds, do) to (dmin, dmax), including clamped elements and
// the asymmetric offset path through ste_round: the backend gradients are taken from the
// functional op at the quantizer's own scale/offset, and the partial derivatives of
//   s(min, max) = (max - min) / n,   o~(min, max) = min / s - qmin   (ste_round = identity)
// by central finite differences in float64.
TEST(AffineQuantizer, RangeGradientsFollowTheChainRule) {
  struct Case {
    bool symmetric;
    Shape shape;
    at::Tensor min, max;
  };
  const std::vector<Case> cases = {
      {false, {}, scalar(-1.0), scalar(1.5)},
      {true, {}, scalar(-1.0), scalar(1.5)},
      {false, {2, 1}, f32_2d({{-1.0}, {-0.25}}), f32_2d({{1.5}, {2.0}})},
      {true, {2, 1}, f32_2d({{-1.0}, {-0.25}}), f32_2d({{1.5}, {2.0}})},
  };
  torch::manual_seed(0);
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << (c.symmetric ? "symmetric " : "asymmetric ") << at::IntArrayRef(c.shape));
    QuantizeDequantize q(c.shape, 8, c.symmetric);
    q->set_range(c.min, c.max);
    // Some elements beyond the range on both sides, so that the offset gradient is not zero.
    const auto x = torch::linspace(-2.5, 3.5, 2 * 13, torch::kDouble).view({2, 13});
    const auto w = torch::randn({2, 13}, torch::kDouble);
    const auto [dmin, dmax] = autograd_range_grads(q, x, w);

    // Backend gradients at the quantizer's encoding.
    const auto scale = q->get_scale()->detach().requires_grad_(true);
    const auto offset = q->get_offset()->detach().requires_grad_(true);
    (qs::affine::quantize_dequantize(x, scale, offset, q->qmin(), q->qmax()) * w).sum().backward();
    const auto ds = scale.grad().to(torch::kDouble);
    const auto d_offset = offset.grad().to(torch::kDouble);
    ASSERT_GT(d_offset.abs().sum().item<double>(), 0);

    const double n = static_cast<double>(q->qmax() - q->qmin());
    const auto scale_of = [&](const at::Tensor& mn, const at::Tensor& mx) { return (mx - mn) / n; };
    const auto offset_of = [&](const at::Tensor& mn, const at::Tensor& mx) {
      return c.symmetric ? torch::zeros_like(mn) : mn / scale_of(mn, mx) - q->qmin();
    };
    const auto mn = q->min.detach().to(torch::kDouble), mx = q->max.detach().to(torch::kDouble);
    const double h = 1e-6;
    auto expected_dmin = torch::zeros_like(mn), expected_dmax = torch::zeros_like(mx);
    for (int64_t i = 0; i < mn.numel(); ++i) {
      const auto bump =
          torch::zeros_like(mn).view({-1}).index_fill_(0, torch::tensor(i), h).view(mn.sizes());
      const auto chain = [&](const at::Tensor& mn_up, const at::Tensor& mx_up,
                             const at::Tensor& mn_down, const at::Tensor& mx_down) {
        const auto d_s = (scale_of(mn_up, mx_up) - scale_of(mn_down, mx_down)) / (2 * h);
        const auto d_o = (offset_of(mn_up, mx_up) - offset_of(mn_down, mx_down)) / (2 * h);
        return (ds * d_s + d_offset * d_o).sum();
      };
      expected_dmin.view({-1})[i] = chain(mn + bump, mx, mn - bump, mx);
      expected_dmax.view({-1})[i] = chain(mn, mx + bump, mn, mx - bump);
    }
    EXPECT_TRUE(all_close(dmin, expected_dmin, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(dmax, expected_dmax, 1e-4, 1e-4));

    // The closed form, docs/quantization.md eq. (11).
    const auto s = scale_of(mn, mx);
    const auto common = ds + d_offset * (-mn / (s * s));
    const auto closed_dmin = c.symmetric ? -ds / n : common * (-1 / n) + d_offset / s;
    const auto closed_dmax = c.symmetric ? ds / n : common * (1 / n);
    EXPECT_TRUE(all_close(dmin, closed_dmin, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(dmax, closed_dmax, 1e-4, 1e-4));
  }
}
