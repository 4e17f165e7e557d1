// The Python examples of the reference's "Quantized Modules" page (AIMET v2), in C++ (DESIGN.md's
// API contract; docs/modules.md): they compile, run and behave as that page says.

#include <quantsim/quantsim.h>

#include <gtest/gtest.h>
#include <torch/data.h>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;

namespace {

auto calibration_loader() {
  auto dataset = torch::data::datasets::TensorDataset(torch::randn({32, 5}))
                     .map(torch::data::transforms::Stack<torch::data::TensorExample>());
  return torch::data::make_data_loader(std::move(dataset), /*batch_size=*/8);
}

}  // namespace

TEST(ApiContract, PerChannelWeightQuantizationOfALinear) {
  qs::nn::QuantizedLinear qlinear(torch::nn::LinearOptions(/*in=*/5, /*out=*/10));
  qlinear->param_quantizers["weight"] =
      qs::affine::QuantizeDequantize({10, 1}, /*bitwidth=*/8, /*symmetric=*/true);
  qlinear->output_quantizers[0] = qs::affine::QuantizeDequantize({1}, 8, false);
  auto loader = calibration_loader();
  {
    auto calibrating = qlinear->compute_encodings();
    for (auto& batch : *loader) qlinear(batch.data);
  }
  EXPECT_TRUE(qlinear->output_quantizers[0]->is_initialized());
  EXPECT_TRUE(qlinear->param_quantizers["weight"]->is_initialized());
  auto weight = qlinear->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>();
  EXPECT_EQ(weight->get_scale()->sizes(), (std::vector<int64_t>{10, 1}));

  // The callable form, and a std::vector shape with an int literal bitwidth.
  std::vector<int64_t> shape{1};
  qlinear->input_quantizers[0] = qs::affine::QuantizeDequantize(shape, 8, false);
  qlinear->compute_encodings([&] {
    for (auto& b : *loader) qlinear(b.data);
  });
  EXPECT_TRUE(qlinear->input_quantizers[0]->is_initialized());
}

TEST(ApiContract, MultiplyQuantizingItsOutputAndSecondInput) {
  qs::nn::custom::QuantizedMultiply qmul;
  qmul->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  qmul->input_quantizers[1] = qs::affine::QuantizeDequantize({}, 8, false);
  const auto x = torch::randn({4, 3}), y = torch::randn({4, 3});
  qmul->compute_encodings([&] { qmul(x, y); });
  auto iq = qmul->input_quantizers[1].as<qs::affine::QuantizeDequantizeImpl>();
  auto oq = qmul->output_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
  EXPECT_TRUE(qs::testing::bitwise_equal(qmul(x, y), oq->forward(x * iq->forward(y))));
}

TEST(ApiContract, OneQuantizerSharedByBothInputsOfAnAdd) {
  qs::nn::custom::QuantizedAdd qadd;
  auto quantizer = qs::affine::QuantizeDequantize({}, 8, false);
  qadd->input_quantizers[0] = quantizer;
  qadd->input_quantizers[1] = quantizer;
  const auto a = qs::testing::f32({-1, 0.5}), b = qs::testing::f32({2, 3});
  qadd->compute_encodings([&] { qadd(a, b); });
  // The shared quantizer observed both inputs.
  EXPECT_EQ(quantizer->min.item<float>(), -1.0f);
  EXPECT_EQ(quantizer->max.item<float>(), 3.0f);
  EXPECT_TRUE(qs::testing::bitwise_equal(qadd(a, b), quantizer(a) + quantizer(b)));
}

TEST(ApiContract, HoldersTakeTheFloatOptionsAndGenericCodeReachesTheSlots) {
  qs::nn::FakeQuantizedConvTranspose2d deconv(torch::nn::ConvTranspose2dOptions(4, 3, 2).stride(2));
  std::shared_ptr<torch::nn::Module> module = deconv.ptr();
  auto* mixin = dynamic_cast<qs::nn::BaseQuantizationMixin*>(module.get());
  ASSERT_NE(mixin, nullptr);
  mixin->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  EXPECT_TRUE(deconv->output_quantizers[0]);
  EXPECT_THROW(deconv(torch::randn({1, 4, 5, 5})), c10::Error);  // uninitialized
  deconv->output_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>()->set_range(-1, 1);
  EXPECT_EQ(deconv(torch::randn({1, 4, 5, 5})).sizes(), (std::vector<int64_t>{1, 3, 10, 10}));
}
