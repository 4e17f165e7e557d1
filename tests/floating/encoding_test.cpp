// FloatEncoding (docs/quantization.md §10.2): mapping, bitwidth, granularity, to(),
// quantize/dequantize, legacy.

#include <quantsim/floating/encoding.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::floating::FloatEncoding;
using qs::testing::bitwise_equal;
using qs::testing::scalar;

TEST(FloatEncoding, MappingBitwidthAndLegacyFormat) {
  const FloatEncoding enc(/*mantissa_bits=*/3, /*exponent_bits=*/4, scalar(3.0));
  EXPECT_EQ(enc.mapping(), "float");
  EXPECT_EQ(enc.bitwidth(), 8);
  EXPECT_EQ(enc.mantissa_bits(), 3);
  EXPECT_EQ(enc.exponent_bits(), 4);
  // Legacy [{"bitwidth": 8, "dtype": "float"}], as the reference.
  EXPECT_EQ(enc.to_legacy_format(),
            nlohmann::json::parse(R"([{"bitwidth": 8, "dtype": "float"}])"));
  EXPECT_EQ(FloatEncoding(10, 5).to_legacy_format(),
            nlohmann::json::parse(R"([{"bitwidth": 16, "dtype": "float"}])"));
}

TEST(FloatEncoding, GranularityFollowsMaxvalShape) {
  EXPECT_EQ(FloatEncoding(3, 4).granularity(), "pertensor");
  EXPECT_EQ(FloatEncoding(3, 4, scalar(1.0)).granularity(), "pertensor");
  EXPECT_EQ(FloatEncoding(3, 4, torch::ones({1})).granularity(), "pertensor");
  EXPECT_EQ(FloatEncoding(3, 4, torch::ones({4})).granularity(), "perchannel");
  EXPECT_EQ(FloatEncoding(3, 4, torch::ones({4, 1})).granularity(), "perchannel");
}

TEST(FloatEncoding, ToCastsMaxvalAndRejectsNonFloatingDtypes) {
  auto enc = std::make_shared<FloatEncoding>(3, 4, scalar(3.0));
  EXPECT_EQ(enc->to(c10::nullopt, at::kFloat), enc);  // nothing changes: the very object
  auto enc64 = std::dynamic_pointer_cast<FloatEncoding>(enc->to(c10::nullopt, at::kDouble));
  ASSERT_TRUE(enc64);
  EXPECT_EQ(enc64->maxval().scalar_type(), at::kDouble);
  EXPECT_EQ(enc64->maxval().item<double>(), 3.0);
  EXPECT_EQ(enc64->bitwidth(), 8);
  EXPECT_THROW(enc->to(c10::nullopt, at::kByte), c10::Error);
  EXPECT_THROW(enc->to(c10::nullopt, at::kInt), c10::Error);
  // Without maxval there is nothing to cast, but an integer dtype is still an error.
  auto bare = std::make_shared<FloatEncoding>(3, 4);
  EXPECT_EQ(bare->to(c10::nullopt, at::kDouble), bare);
  EXPECT_THROW(bare->to(c10::nullopt, at::kLong), c10::Error);
}

TEST(FloatEncoding, QuantizeAndDequantizeAreNotImplemented) {
  const FloatEncoding enc(3, 4, scalar(3.0));
  EXPECT_THROW(enc.quantize(torch::ones({2})), c10::NotImplementedError);
  EXPECT_THROW(enc.dequantize(torch::ones({2})), c10::NotImplementedError);
}

TEST(FloatEncoding, CopyCloneDetachKeepFormatAndValues) {
  const auto maxval = torch::tensor({1.f, 2.f}).requires_grad_();
  const FloatEncoding enc(3, 4, maxval);
  auto copy = std::dynamic_pointer_cast<FloatEncoding>(enc.copy());
  EXPECT_TRUE(copy->maxval().is_same(maxval));
  auto cloned = std::dynamic_pointer_cast<FloatEncoding>(enc.clone());
  EXPECT_FALSE(cloned->maxval().is_same(maxval));
  EXPECT_TRUE(cloned->maxval().requires_grad());  // clone keeps the graph
  EXPECT_TRUE(bitwise_equal(cloned->maxval().detach(), maxval.detach()));
  auto detached = std::dynamic_pointer_cast<FloatEncoding>(enc.detach());
  EXPECT_FALSE(detached->maxval().requires_grad());
  EXPECT_EQ(detached->bitwidth(), 8);
}

TEST(FloatEncoding, DtypeExistsOnlyForHalfAndBFloat16) {
  EXPECT_EQ(FloatEncoding(10, 5).dtype(), at::kHalf);
  EXPECT_EQ(FloatEncoding(7, 8).dtype(), at::kBFloat16);
  EXPECT_THROW(FloatEncoding(3, 4).dtype(), c10::Error);
}

TEST(FloatEncoding, RejectsIntegerMaxval) {
  EXPECT_THROW(FloatEncoding(3, 4, torch::ones({2}, at::kInt)), c10::Error);
}
