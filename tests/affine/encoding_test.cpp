// AffineEncoding and its legacy export format (docs/quantization.md §10.1), against the reference's
// values.
#include <quantsim/affine/encoding.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::affine::AffineEncoding;
using qs::affine::Grid;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::kSpecAtol;

namespace {

at::Tensor scalar(float v) { return torch::tensor(v); }

double item(const at::Tensor& t) { return t.item<double>(); }

}  // namespace

// ---- check 24 ----------------------------------------------------------------------------------

TEST(AffineEncoding, UnsignedEightBitWithOffset) {
  // (scale 1, offset -5, bitwidth 8)
  const AffineEncoding enc(scalar(1.f), scalar(-5.f), Grid::from_bitwidth(8, /*signed=*/false));
  EXPECT_EQ(item(enc.min()), -5.0);
  EXPECT_EQ(item(enc.max()), 250.0);
  EXPECT_EQ(enc.dtype(), at::kByte);
  EXPECT_EQ(enc.granularity(), "pertensor");
  EXPECT_EQ(enc.mapping(), "affine");
  EXPECT_EQ(enc.num_steps(), 255);
  EXPECT_FALSE(enc.symmetry());
  EXPECT_EQ(enc.bitwidth(), 8);
  EXPECT_FALSE(enc.is_signed());
  EXPECT_EQ(enc.qmin(), 0);
  EXPECT_EQ(enc.qmax(), 255);
}

TEST(AffineEncoding, SignedSymmetric) {
  // (1, 0, 8, signed, symmetry)
  const AffineEncoding enc(scalar(1.f), scalar(0.f), Grid::from_bitwidth(8, /*signed=*/true),
                           /*symmetry=*/true);
  EXPECT_EQ(item(enc.min()), -128.0);
  EXPECT_EQ(item(enc.max()), 127.0);
  EXPECT_EQ(enc.dtype(), at::kChar);
  EXPECT_TRUE(enc.symmetry());
  EXPECT_TRUE(enc.is_signed());
  EXPECT_EQ(enc.num_steps(), 255);
}

TEST(AffineEncoding, UnsignedSymmetric) {
  // (0.5, 0, 8, unsigned, symmetry)
  const AffineEncoding enc(scalar(0.5f), scalar(0.f), Grid::from_bitwidth(8, /*signed=*/false),
                           /*symmetry=*/true);
  EXPECT_EQ(item(enc.min()), 0.0);
  EXPECT_EQ(item(enc.max()), 127.5);
  EXPECT_EQ(enc.dtype(), at::kByte);
  EXPECT_TRUE(enc.symmetry());
}

TEST(AffineEncoding, ToNonFloatingDtypeThrows) {
  const auto enc =
      std::make_shared<AffineEncoding>(scalar(1.f), scalar(-5.f), Grid::from_bitwidth(8, false));
  EXPECT_THROW(enc->to(c10::nullopt, at::kByte), c10::Error);
  EXPECT_THROW(enc->to(c10::nullopt, at::kInt), c10::Error);
  EXPECT_THROW(enc->to(at::Device(at::kCPU), at::kLong), c10::Error);
}

TEST(AffineEncoding, GranularityFollowsScaleShape) {
  const auto enc_of = [](std::vector<int64_t> shape, std::vector<int64_t> block_size = {}) {
    return AffineEncoding(torch::ones(shape), torch::zeros(shape), Grid{-128, 127}, true,
                          std::move(block_size));
  };
  EXPECT_EQ(enc_of({10, 1}).granularity(), "perchannel");
  EXPECT_EQ(enc_of({10}).granularity(), "perchannel");
  EXPECT_EQ(enc_of({1}).granularity(), "perchannel");  // not per-tensor (docs/quantization.md §3)
  EXPECT_EQ(enc_of({1, 10, 1, 1}).granularity(), "perchannel");
  EXPECT_EQ(enc_of({}).granularity(), "pertensor");
  EXPECT_EQ(enc_of({4, 3}).granularity(), "unknown");
  EXPECT_EQ(enc_of({4, 3}, {1, 2}).granularity(), "blockwise");
  EXPECT_EQ(enc_of({4, 1}, {1, 8}).granularity(), "blockwise");
}

// ---- the rest of docs/quantization.md §10.1 -----------------------------------------------------

TEST(AffineEncoding, DtypeIsTheSmallestIntegerTypeHoldingTheGrid) {
  const auto dtype_of = [](int64_t qmin, int64_t qmax) {
    return AffineEncoding(scalar(1.f), scalar(0.f), Grid{qmin, qmax}).dtype();
  };
  EXPECT_EQ(dtype_of(0, 255), at::kByte);
  EXPECT_EQ(dtype_of(0, 15), at::kByte);
  EXPECT_EQ(dtype_of(-128, 127), at::kChar);
  EXPECT_EQ(dtype_of(-8, 7), at::kChar);
  EXPECT_EQ(dtype_of(-127, 127), at::kChar);
  EXPECT_EQ(dtype_of(0, 256), at::kShort);
  EXPECT_EQ(dtype_of(-129, 127), at::kShort);
  EXPECT_EQ(dtype_of(-32768, 32767), at::kShort);
  EXPECT_EQ(dtype_of(0, 65535), at::kInt);  // no uint16 in torch: the reference says int32
  EXPECT_EQ(dtype_of(-32769, 32767), at::kInt);
}

TEST(AffineEncoding, EmptyGridIsAValueError) {
  EXPECT_THROW(AffineEncoding(scalar(1.f), scalar(0.f), Grid{5, 5}), c10::ValueError);
  EXPECT_THROW(AffineEncoding(scalar(1.f), scalar(0.f), Grid{127, -128}), c10::ValueError);
}

TEST(AffineEncoding, RejectsInconsistentTensors) {
  EXPECT_THROW(AffineEncoding(torch::ones({3}), torch::zeros({4}), Grid{0, 255}), c10::Error);
  EXPECT_THROW(AffineEncoding(torch::ones({3}, torch::kLong), torch::zeros({3}), Grid{0, 255}),
               c10::Error);
  EXPECT_THROW(AffineEncoding(at::Tensor(), scalar(0.f), Grid{0, 255}), c10::Error);
  EXPECT_THROW(AffineEncoding(torch::ones({2, 2}), torch::zeros({2, 2}), Grid{0, 255}, false, {2}),
               c10::Error);
  // An offset that broadcasts to the scale's shape is fine.
  EXPECT_NO_THROW(AffineEncoding(torch::ones({3, 1}), scalar(0.f), Grid{0, 255}));
}

TEST(AffineEncoding, MinMaxPerChannel) {
  // Per-channel 8-bit symmetric scales 1/128 and 4/127 (the reference's values).
  const AffineEncoding enc(torch::tensor({{0.0078125f}, {4.f / 127.f}}), torch::zeros({2, 1}),
                           Grid{-128, 127}, true);
  EXPECT_TRUE(all_close(enc.min(), torch::tensor({{-1.f}, {-4.031496048f}})));
  EXPECT_TRUE(all_close(enc.max(), torch::tensor({{0.9921875f}, {4.f}})));
}

TEST(AffineEncoding, ToReturnsItselfWhenNothingChanges) {
  const std::shared_ptr<qs::EncodingBase> enc =
      std::make_shared<AffineEncoding>(scalar(0.1f), scalar(-3.f), Grid{0, 255});
  EXPECT_EQ(enc->to(c10::nullopt, c10::nullopt), enc);
  EXPECT_EQ(enc->to(at::Device(at::kCPU), at::kFloat), enc);

  // An encoding not owned by a shared_ptr cannot hand out itself: it gives an equal copy.
  const AffineEncoding local(scalar(0.1f), scalar(-3.f), Grid{0, 255});
  const auto copy = std::dynamic_pointer_cast<AffineEncoding>(local.to(c10::nullopt, at::kFloat));
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->scale().is_same(local.scale()));
}

TEST(AffineEncoding, ToCastsScaleAndOffset) {
  const auto enc = std::make_shared<AffineEncoding>(scalar(0.25f), scalar(-3.f), Grid{0, 15}, false,
                                                    std::vector<int64_t>{});
  const auto cast = std::dynamic_pointer_cast<AffineEncoding>(enc->to(c10::nullopt, at::kDouble));
  ASSERT_TRUE(cast);
  EXPECT_NE(cast.get(), enc.get());
  EXPECT_EQ(cast->scale().scalar_type(), at::kDouble);
  EXPECT_EQ(cast->offset().scalar_type(), at::kDouble);
  EXPECT_EQ(item(cast->scale()), 0.25);
  EXPECT_EQ(item(cast->offset()), -3.0);
  EXPECT_EQ(cast->grid(), (Grid{0, 15}));
  // The original is untouched.
  EXPECT_EQ(enc->scale().scalar_type(), at::kFloat);
}

TEST(AffineEncoding, CopyCloneDetach) {
  const auto scale = scalar(0.1f).requires_grad_();
  const auto offset = scalar(-2.f).requires_grad_();
  const AffineEncoding enc(scale, offset, Grid{0, 255}, false);

  const auto copy = std::dynamic_pointer_cast<AffineEncoding>(enc.copy());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->scale().is_same(scale));  // shallow: same tensors
  EXPECT_TRUE(copy->offset().is_same(offset));

  const auto clone = std::dynamic_pointer_cast<AffineEncoding>(enc.clone());
  ASSERT_TRUE(clone);
  EXPECT_FALSE(clone->scale().is_same(scale));
  ASSERT_TRUE(clone->scale().grad_fn());
  EXPECT_NE(clone->scale().grad_fn()->name().find("Clone"), std::string::npos);
  ASSERT_TRUE(clone->offset().grad_fn());
  EXPECT_TRUE(bitwise_equal(clone->scale(), scale));
  // Gradients reach the original tensors through the clone.
  (clone->scale() * 3 + clone->offset()).backward();
  EXPECT_EQ(item(scale.grad()), 3.0);
  EXPECT_EQ(item(offset.grad()), 1.0);

  const auto detached = std::dynamic_pointer_cast<AffineEncoding>(enc.detach());
  ASSERT_TRUE(detached);
  EXPECT_FALSE(detached->scale().requires_grad());
  EXPECT_FALSE(detached->offset().requires_grad());
  EXPECT_TRUE(bitwise_equal(detached->scale(), scale.detach()));
}

TEST(AffineEncoding, QuantizeAndDequantizeCastToTheInputDtype) {
  // The reference's QuantizedTensor numbers with the encoding built directly (scale 0.1, 8-bit
  // signed).
  const AffineEncoding enc(scalar(0.1f), scalar(0.f), Grid{-128, 127}, true);
  const auto x = torch::tensor({{2.57, -2.312}, {0.153, 0.205}}, torch::kDouble);
  const auto q = enc.quantize(x);
  EXPECT_EQ(q.scalar_type(), at::kDouble);
  EXPECT_TRUE(bitwise_equal(q, torch::tensor({{26., -23.}, {2., 2.}}, torch::kDouble)));
  const auto dq = enc.dequantize(q);
  EXPECT_EQ(dq.scalar_type(), at::kDouble);
  EXPECT_TRUE(all_close(dq, torch::tensor({{2.6, -2.3}, {0.2, 0.2}})));
}

// ---- legacy format (docs/quantization.md §10.1) -------------------------------------------------

TEST(AffineEncodingLegacy, SymmetricEightBit) {
  // A symmetric 8-bit encoding of scale 0.01 (the reference's values).
  const AffineEncoding enc(scalar(0.01f), scalar(0.f), Grid::from_bitwidth(8, true), true);
  const auto legacy = enc.to_legacy_format();
  ASSERT_TRUE(legacy.is_array());
  ASSERT_EQ(legacy.size(), 1u);
  const auto& d = legacy[0];
  EXPECT_EQ(d.size(), 7u);  // exactly min, max, scale, offset, bitwidth, dtype, is_symmetric
  EXPECT_NEAR(d.at("min").get<double>(), -1.28, kSpecAtol);
  EXPECT_NEAR(d.at("max").get<double>(), 1.27, kSpecAtol);
  EXPECT_NEAR(d.at("scale").get<double>(), 0.01, kSpecAtol);
  EXPECT_TRUE(d.at("offset").is_number_integer());
  EXPECT_EQ(d.at("offset").get<int64_t>(), -128);
  EXPECT_TRUE(d.at("bitwidth").is_number_integer());
  EXPECT_EQ(d.at("bitwidth").get<int64_t>(), 8);
  EXPECT_EQ(d.at("dtype"), "int");
  EXPECT_EQ(d.at("is_symmetric"), "True");
}

TEST(AffineEncodingLegacy, PerChannelIsOneDictPerChannelRowMajor) {
  // Per-channel symmetric export (the reference's values).
  const AffineEncoding enc(torch::tensor({{0.0078125f}, {4.f / 127.f}}), torch::zeros({2, 1}),
                           Grid{-128, 127}, true);
  const auto legacy = enc.to_legacy_format();
  ASSERT_EQ(legacy.size(), 2u);
  EXPECT_NEAR(legacy[0].at("min").get<double>(), -1.0, kSpecAtol);
  EXPECT_NEAR(legacy[0].at("max").get<double>(), 0.9921875, kSpecAtol);
  EXPECT_NEAR(legacy[0].at("scale").get<double>(), 0.0078125, kSpecAtol);
  EXPECT_EQ(legacy[0].at("offset").get<int64_t>(), -128);
  EXPECT_NEAR(legacy[1].at("min").get<double>(), -4.031496048, kSpecAtol);
  EXPECT_NEAR(legacy[1].at("max").get<double>(), 4.0, kSpecAtol);
  EXPECT_NEAR(legacy[1].at("scale").get<double>(), 0.031496063, kSpecAtol);
  EXPECT_EQ(legacy[1].at("offset").get<int64_t>(), -128);
  for (const auto& d : legacy) {
    EXPECT_EQ(d.at("bitwidth").get<int64_t>(), 8);
    EXPECT_EQ(d.at("dtype"), "int");
    EXPECT_EQ(d.at("is_symmetric"), "True");
  }
}

TEST(AffineEncodingLegacy, FileSamples) {
  // docs/quantization.md §10.1: a 4-bit symmetric weight (legacy offset = 0 + qmin = -8) ...
  const AffineEncoding weight(scalar(0.026796795427799225f), scalar(0.f), Grid{-8, 7}, true);
  const auto w = weight.to_legacy_format().at(0);
  EXPECT_NEAR(w.at("min").get<double>(), -0.2143743634223938, kSpecAtol);
  EXPECT_NEAR(w.at("max").get<double>(), 0.18757757544517517, kSpecAtol);
  EXPECT_NEAR(w.at("scale").get<double>(), 0.026796795427799225, kSpecAtol);
  EXPECT_EQ(w.at("offset").get<int64_t>(), -8);
  EXPECT_EQ(w.at("bitwidth").get<int64_t>(), 4);
  EXPECT_EQ(w.at("is_symmetric"), "True");
  // ... and an 8-bit asymmetric activation (qmin = 0: the offset is unchanged).
  const AffineEncoding act(scalar(0.0013817904982715845f), scalar(-114.f), Grid{0, 255}, false);
  const auto a = act.to_legacy_format().at(0);
  EXPECT_NEAR(a.at("min").get<double>(), -0.15752412378787994, kSpecAtol);
  EXPECT_NEAR(a.at("max").get<double>(), 0.1948324590921402, kSpecAtol);
  EXPECT_NEAR(a.at("scale").get<double>(), 0.0013817904982715845, kSpecAtol);
  EXPECT_EQ(a.at("offset").get<int64_t>(), -114);
  EXPECT_EQ(a.at("bitwidth").get<int64_t>(), 8);
  EXPECT_EQ(a.at("is_symmetric"), "False");
}

TEST(AffineEncodingLegacy, ComputedInTheEncodingsDtype) {
  // min = (offset + qmin) * scale in float64 for a float64 encoding, not via float32.
  const AffineEncoding enc(torch::tensor(0.1, torch::kDouble), torch::tensor(0., torch::kDouble),
                           Grid{-128, 127}, true);
  const auto d = enc.to_legacy_format().at(0);
  EXPECT_EQ(d.at("min").get<double>(), -128.0 * 0.1);
  EXPECT_EQ(d.at("max").get<double>(), 127.0 * 0.1);
  EXPECT_EQ(d.at("scale").get<double>(), 0.1);
}

TEST(AffineEncodingLegacy, NonStandardGridHasNoBitwidth) {
  // Strict symmetric [-127, 127] has no bitwidth, so its legacy export raises
  // (docs/quantization.md §1).
  const AffineEncoding enc(scalar(0.01f), scalar(0.f), Grid{-127, 127}, true);
  EXPECT_THROW(enc.to_legacy_format(), c10::Error);
}
