// Everyday calls that once failed to compile or surprised: each test is first a compile test
// (the call as a user writes it), then checks what the call does.

#include <quantsim/quantsim.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace qs = quantsim;

TEST(EverydayCalls, SlotsIndexedByAnyIntegerType) {
  qs::nn::custom::QuantizedAdd qadd;
  for (size_t i = 0; i < qadd->input_quantizers->size(); ++i) {
    qadd->input_quantizers[i] = qs::affine::QuantizeDequantize({}, 8, false);
  }
  const int64_t last = 1;
  const unsigned first = 0;
  EXPECT_TRUE(qadd->input_quantizers[last]);
  EXPECT_TRUE(qadd->input_quantizers[first]);
  EXPECT_TRUE(qadd->input_quantizers[0]);
  EXPECT_NE(qadd->input_quantizers[size_t{0}].get(), qadd->input_quantizers[size_t{1}].get());

  EXPECT_THROW(qadd->input_quantizers[size_t{2}], c10::IndexError);
  EXPECT_THROW(qadd->input_quantizers[-1], c10::IndexError);
  try {
    qadd->input_quantizers[std::numeric_limits<size_t>::max()];
    FAIL() << "an index beyond int64_t was accepted";
  } catch (const c10::IndexError& e) {
    // The index as the user gave it, not wrapped to a negative number.
    EXPECT_NE(std::string(e.what()).find("input_quantizers[18446744073709551615]: the module has "
                                         "2 slots"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(qadd->input_quantizers->at(size_t{5}), c10::IndexError);
}

TEST(EverydayCalls, AffineAccessorsThroughASlot) {
  qs::nn::QuantizedLinear qlinear(torch::nn::LinearOptions(4, 3));
  qlinear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  EXPECT_FALSE(qlinear->output_quantizers[0]->get_min().has_value());  // uninitialized

  qlinear->output_quantizers[0]->set_range(-1.0, 1.0);
  EXPECT_EQ(qlinear->output_quantizers[0]->bitwidth(), 8);
  EXPECT_EQ(qlinear->output_quantizers[0]->qmin(), 0);
  EXPECT_EQ(qlinear->output_quantizers[0]->qmax(), 255);
  EXPECT_FALSE(qlinear->output_quantizers[0]->symmetric());
  // docs/quantization.md eq. (4)/(5): s = fp32(2/255), o = round(-1/s) = -127, so the
  // grid-aligned range is [s * -127, s * 128].
  const float scale = 2.0f / 255.0f;
  EXPECT_EQ(qlinear->output_quantizers[0]->get_scale()->item<float>(), scale);
  EXPECT_EQ(qlinear->output_quantizers[0]->get_offset()->item<float>(), -127.0f);
  EXPECT_EQ(qlinear->output_quantizers[0]->get_min()->item<float>(), scale * -127.0f);
  EXPECT_EQ(qlinear->output_quantizers[0]->get_max()->item<float>(), scale * 128.0f);

  // The same through the concrete type agrees.
  auto qdq = qlinear->output_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
  EXPECT_TRUE(qdq->get_min()->equal(*qlinear->output_quantizers[0]->get_min()));
}

TEST(EverydayCalls, AffineAccessorOnAFloatQuantizerIsATypeError) {
  qs::nn::QuantizedLinear qlinear(torch::nn::LinearOptions(4, 3));
  qlinear->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  EXPECT_EQ(qlinear->output_quantizers[0]->bitwidth(), 16);
  try {
    qlinear->output_quantizers[0]->get_min();
    FAIL() << "get_min() on a float quantizer did not throw";
  } catch (const c10::TypeError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("FloatQuantizeDequantize"), std::string::npos) << message;
    EXPECT_NE(message.find("is not an affine quantizer: get_min()"), std::string::npos) << message;
  }
  EXPECT_THROW(qlinear->output_quantizers[0]->set_range(-1.0, 1.0), c10::TypeError);
  EXPECT_THROW(qlinear->output_quantizers[0]->qmin(), c10::TypeError);
}

TEST(EverydayCalls, LoadEncodingsFromAStringLiteralPath) {
  qs::nn::QuantizedLinear source(torch::nn::LinearOptions(4, 3));
  source->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  source->output_quantizers[0]->set_range(-2.0, 3.0);
  const auto dir = std::filesystem::path(::testing::TempDir()) / "everyday_calls";
  qs::export_encodings(*source, dir.string(), "linear");

  qs::nn::QuantizedLinear target(torch::nn::LinearOptions(4, 3));
  target->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  qs::load_encodings(*target, "linear_torch.encodings");
  std::filesystem::current_path(previous);
  EXPECT_TRUE(
      target->output_quantizers[0]->get_min()->equal(*source->output_quantizers[0]->get_min()));
  EXPECT_TRUE(
      target->output_quantizers[0]->get_max()->equal(*source->output_quantizers[0]->get_max()));
}
