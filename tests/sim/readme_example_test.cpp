// The README's quick start, compiled and run: a model written against quantsim::nn::drop_in,
// simulated W4A8 with QuantizationSimModel, calibrated and exported.

#include <quantsim/quantsim.h>

#include <gtest/gtest.h>

#include <filesystem>
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
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(sample); }, qs::SimOptions().default_param_bw(4));
  sim.compute_encodings([&] {
    for (auto& batch : calibration) net(batch);
  });
  at::NoGradGuard no_grad;
  at::Tensor y = net(x);
  EXPECT_EQ(y.sizes(), float_y.sizes());
  EXPECT_FALSE(y.equal(float_y));
  static_assert(std::is_same_v<nn::Conv2d, qs::nn::QuantizedConv2d>);
  EXPECT_EQ(
      net->conv->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>()->bitwidth(),
      4);

  const auto dir = ::testing::TempDir() + "readme_example";
  sim.export_encodings(dir, "net");
  EXPECT_TRUE(std::filesystem::exists(dir + "/net.encodings"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/net_torch.encodings"));
}
