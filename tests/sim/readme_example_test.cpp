// The README's quick start, compiled and run: a model written against quantsim::nn::drop_in,
// simulated W8A8 with QuantizationSimModel, calibrated and exported; then its module by hand.

#include <quantsim/quantsim.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <type_traits>

namespace qs = quantsim;
namespace nn = qs::nn::drop_in;  // was `namespace nn = torch::nn;`

namespace {

struct NetImpl : nn::Module {
  NetImpl() {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1)));
    bn = register_module("bn", nn::BatchNorm2d(8));
    relu = register_module("relu", nn::ReLU());
    fc = register_module("fc", nn::Linear(8 * 6 * 6, 10));
  }
  at::Tensor forward(const at::Tensor& x) { return fc(relu(bn(conv(x))).flatten(1)); }
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::ReLU relu{nullptr};
  nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

}  // namespace

TEST(ReadmeExample, QuickStartRuns) {
  torch::manual_seed(0);
  const auto sample = at::randn({2, 1, 6, 6});
  const std::vector<at::Tensor> calibration = {at::randn({4, 1, 6, 6}), at::randn({4, 1, 6, 6})};
  const auto x = at::randn({3, 1, 6, 6});

  Net net;
  net->eval();
  at::Tensor float_y;
  {
    at::NoGradGuard no_grad;
    float_y = net(x);  // computes exactly the float model until configured
  }
  qs::QuantizationSimModel sim(net.ptr(), [&] { net(sample); });  // W8A8 by default
  sim.compute_encodings([&] {
    for (auto& batch : calibration) net(batch);
  });
  at::NoGradGuard no_grad;
  at::Tensor y = net(x);
  EXPECT_EQ(y.sizes(), float_y.sizes());
  EXPECT_FALSE(y.equal(float_y));
  static_assert(std::is_same_v<nn::Conv2d, qs::nn::QuantizedConv2d>);
  EXPECT_EQ(net->conv->param_quantizers["weight"]->bitwidth(), 8);
  EXPECT_EQ(net->fc->output_quantizers[0]->bitwidth(), 8);

  const auto dir = ::testing::TempDir() + "readme_example";
  sim.export_encodings(dir, "net");
  EXPECT_TRUE(std::filesystem::exists(dir + "/net.encodings"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/net_torch.encodings"));
}

TEST(ReadmeExample, OneModuleByHand) {
  torch::manual_seed(0);
  const std::vector<at::Tensor> batches = {at::randn({2, 3, 8, 8}), at::randn({2, 3, 8, 8})};
  qs::nn::QuantizedConv2d qconv(torch::nn::Conv2dOptions(3, 8, 3));
  qconv->param_quantizers["weight"] = qs::affine::QuantizeDequantize({8, 1, 1, 1}, 4, true);
  qconv->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  qconv->compute_encodings([&] {
    for (auto& x : batches) qconv(x);
  });
  float lo = qconv->output_quantizers[0]->get_min()->item<float>();

  // MinMax calibration saw the conv with 4-bit weights; its grid-aligned minimum is the
  // smallest output rounded to the grid (docs/quantization.md eq. (4)/(5)): within half a step.
  at::NoGradGuard no_grad;
  const auto weight = qconv->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>();
  float smallest = 0;  // an asymmetric range always contains zero
  for (auto& x : batches) {
    const auto y = at::conv2d(x, weight->forward(qconv->weight), qconv->bias);
    smallest = std::min(smallest, y.min().item<float>());
  }
  const float step = qconv->output_quantizers[0]->get_scale()->item<float>();
  EXPECT_LT(smallest, -step);
  EXPECT_LE(std::abs(lo - smallest), step / 2 * 1.0001f);
}
