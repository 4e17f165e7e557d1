// Kernel path (docs/modules.md §4): with Quantize quantizers and a reference kernel (dequantize the
// inputs and parameters, run the float op, quantize onto the output encoding), every
// QuantizationMixin class of the table gives its fake-quantization output.

#include <quantsim/quantsim.h>

#include <gtest/gtest.h>

#include "testing/tolerance.h"

namespace qs = quantsim;

namespace {

/// Quantize quantizers in every slot, calibrated on `inputs`, then the fake-quantization output
/// compared with the output through `kernel`.
template <typename Holder, typename... Inputs>
void expect_kernel_matches_fake_path(Holder module, const qs::nn::Kernel& kernel,
                                     const Inputs&... inputs) {
  auto& mixin = static_cast<qs::nn::BaseQuantizationMixin&>(*module);
  for (size_t i = 0; i < mixin.input_quantizers->size(); ++i) {
    mixin.input_quantizers[static_cast<int64_t>(i)] = qs::affine::Quantize({}, 8, false);
  }
  mixin.output_quantizers[0] = qs::affine::Quantize({}, 8, false);
  for (const auto& name : mixin.param_quantizers->keys()) {
    mixin.param_quantizers[name] = qs::affine::Quantize({}, 8, true);
  }
  mixin.compute_encodings([&] { module(inputs...); });
  const auto fake = module(inputs...);
  module->set_kernel(kernel);
  const auto quantized = module(inputs...);
  EXPECT_TRUE(qs::testing::all_close(quantized, fake, 1e-5)) << *module;
  module->set_kernel(nullptr);
  EXPECT_TRUE(qs::testing::bitwise_equal(module(inputs...), fake));
}

/// The reference kernel of a one-input module: `op(real input, real parameters)`.
qs::nn::Kernel unary_kernel(std::function<at::Tensor(const qs::nn::KernelArgs&)> op) {
  return [op](const qs::nn::KernelArgs& args) {
    const auto y = op(args);
    return qs::QuantizedTensor(args.output_encoding->quantize(y), args.output_encoding);
  };
}

}  // namespace

TEST(Kernel, ActivationsAndNorms) {
  const auto x = torch::randn({4, 6});
  expect_kernel_matches_fake_path(
      qs::nn::QuantizedSoftmax(1),
      unary_kernel([](const qs::nn::KernelArgs& a) { return a.real_input(0).softmax(1); }), x);
  expect_kernel_matches_fake_path(
      qs::nn::QuantizedSigmoid(),
      unary_kernel([](const qs::nn::KernelArgs& a) { return a.real_input(0).sigmoid(); }), x);
  expect_kernel_matches_fake_path(
      qs::nn::QuantizedGELU(),
      unary_kernel([](const qs::nn::KernelArgs& a) { return at::gelu(a.real_input(0)); }), x);
  expect_kernel_matches_fake_path(qs::nn::QuantizedLayerNorm(torch::nn::LayerNormOptions({6})),
                                  unary_kernel([](const qs::nn::KernelArgs& a) {
                                    return at::layer_norm(a.real_input(0), {6},
                                                          a.real_parameter("weight"),
                                                          a.real_parameter("bias"));
                                  }),
                                  x);
  expect_kernel_matches_fake_path(
      qs::nn::QuantizedLinear(6, 3), unary_kernel([](const qs::nn::KernelArgs& a) {
        return at::linear(a.real_input(0), a.real_parameter("weight"), a.real_parameter("bias"));
      }),
      x);
}

TEST(Kernel, Convolutions) {
  expect_kernel_matches_fake_path(qs::nn::QuantizedConv1d(torch::nn::Conv1dOptions(2, 3, 3)),
                                  unary_kernel([](const qs::nn::KernelArgs& a) {
                                    return at::conv1d(a.real_input(0), a.real_parameter("weight"),
                                                      a.real_parameter("bias"));
                                  }),
                                  torch::randn({2, 2, 9}));
  expect_kernel_matches_fake_path(
      qs::nn::QuantizedConv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1)),
      unary_kernel([](const qs::nn::KernelArgs& a) {
        return at::conv2d(a.real_input(0), a.real_parameter("weight"), a.real_parameter("bias"), 1,
                          1);
      }),
      torch::randn({2, 2, 5, 5}));
  expect_kernel_matches_fake_path(qs::nn::QuantizedConv3d(torch::nn::Conv3dOptions(2, 3, 2)),
                                  unary_kernel([](const qs::nn::KernelArgs& a) {
                                    return at::conv3d(a.real_input(0), a.real_parameter("weight"),
                                                      a.real_parameter("bias"));
                                  }),
                                  torch::randn({1, 2, 4, 4, 4}));
}

TEST(Kernel, ElementwiseBinaryOps) {
  const auto x = torch::randn({3, 5}), y = torch::randn({3, 5});
  auto binary = [](auto op) {
    return unary_kernel(
        [op](const qs::nn::KernelArgs& a) { return op(a.real_input(0), a.real_input(1)); });
  };
  expect_kernel_matches_fake_path(qs::nn::custom::QuantizedAdd(),
                                  binary([](auto a, auto b) { return a + b; }), x, y);
  expect_kernel_matches_fake_path(qs::nn::custom::QuantizedMultiply(),
                                  binary([](auto a, auto b) { return a * b; }), x, y);
  expect_kernel_matches_fake_path(qs::nn::custom::QuantizedSubtract(),
                                  binary([](auto a, auto b) { return a - b; }), x, y);
}
