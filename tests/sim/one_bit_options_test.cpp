// QuantizationSimModel with 1-bit default bitwidths (issue 9 §3, docs/reliability.md §3):
// symmetric quantizers cannot have a 1-bit grid ([-1, 0] holds no positive value; the reference
// calibrates it to NaN), so the constructor refuses such options, naming the option and the
// module; asymmetric 1-bit quantizers stay usable.

#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/quantsim_model.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace qs = quantsim;

namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() { fc = register_module("fc", qs::nn::QuantizedLinear(4, 3)); }
  at::Tensor forward(const at::Tensor& x) { return fc(x); }
  qs::nn::QuantizedLinear fc{nullptr};
};
TORCH_MODULE(Tiny);

std::string value_error_of(const qs::SimOptions& options) {
  Tiny model;
  const auto x = torch::randn({2, 4});
  try {
    qs::QuantizationSimModel sim(
        model.ptr(), [&] { model(x); }, options);
  } catch (const c10::ValueError& e) {
    return e.what_without_backtrace();
  }
  ADD_FAILURE() << "expected c10::ValueError";
  return {};
}

}  // namespace

TEST(QuantizationSimModelOptions, OneBitSymmetricParametersAreRefused) {
  // Today: accepted, and the weight quantizer calibrates to NaN.
  const auto message = value_error_of(qs::SimOptions().default_param_bw(1));
  EXPECT_NE(message.find("`default_param_bw` 1"), std::string::npos) << message;
  EXPECT_NE(message.find("parameter \"weight\" of module \"fc\""), std::string::npos) << message;
}

TEST(QuantizationSimModelOptions, OneBitSymmetricActivationsAreRefused) {
  auto config = qs::QuantsimConfig::default_config();
  config.default_ops.is_symmetric = true;
  const auto message = value_error_of(qs::SimOptions().default_output_bw(1).config(config));
  EXPECT_NE(message.find("`default_output_bw` 1"), std::string::npos) << message;
}

TEST(QuantizationSimModelOptions, OneBitAsymmetricActivationsWork) {
  Tiny model;
  torch::manual_seed(3);
  const auto x = torch::randn({8, 4});
  qs::QuantizationSimModel sim(
      model.ptr(), [&] { model(x); }, qs::SimOptions().default_output_bw(1));
  sim.compute_encodings([&] { model(x); });
  const auto y = model(x);
  EXPECT_TRUE(at::isfinite(y).all().item<bool>());
  const auto& out = model->fc->output_quantizers[0];
  ASSERT_TRUE(static_cast<bool>(out));
  EXPECT_EQ(out->qmax(), 1);
}
