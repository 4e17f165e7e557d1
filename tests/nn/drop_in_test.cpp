// quantsim::nn::drop_in: a model written against torch::nn becomes a simulation model by changing
// its namespace alias; without quantizers it computes the float model bit-exactly, with
// quantizers it equals the quantize-dequantize composition assembled by hand.

#include <quantsim/affine/functional.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/drop_in.h>

#include <gtest/gtest.h>
#include <torch/nn.h>

#include "testing/tolerance.h"

#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace qs = quantsim;

// The model, written once against whatever `nn` names: Conv2d, BatchNorm2d, ReLU and MaxPool2d in
// a Sequential, then Flatten, functional relu and Linear, with init from nn::init.
#define QS_SMALL_CNN                                                                      \
  struct SmallCnnImpl : nn::Module {                                                      \
    SmallCnnImpl()                                                                        \
        : features(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::BatchNorm2d(4), \
                   nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2))),                   \
          fc(nn::LinearOptions(4 * 4 * 4, 10)) {                                          \
      register_module("features", features);                                              \
      register_module("flatten", flatten);                                                \
      register_module("fc", fc);                                                          \
      nn::init::normal_(fc->bias, 0.0, 0.5);                                              \
    }                                                                                     \
    at::Tensor forward(const at::Tensor& x) {                                             \
      return fc(nn::functional::relu(flatten(features->forward(x))));                     \
    }                                                                                     \
    nn::Sequential features;                                                              \
    nn::Flatten flatten;                                                                  \
    nn::Linear fc{nullptr};                                                               \
  };                                                                                      \
  TORCH_MODULE(SmallCnn)

namespace float_net {
namespace nn = torch::nn;
QS_SMALL_CNN;
}  // namespace float_net

namespace sim_net {
namespace nn = quantsim::nn::drop_in;
QS_SMALL_CNN;
}  // namespace sim_net

namespace {

namespace drop_in = qs::nn::drop_in;

// Holders of the table's rows are the quantized classes (Quantized<Name> where the table has one).
static_assert(std::is_same_v<drop_in::Conv2d, qs::nn::QuantizedConv2d>);
static_assert(std::is_same_v<drop_in::Conv2dImpl, qs::nn::QuantizedConv2dImpl>);
static_assert(std::is_same_v<drop_in::Linear, qs::nn::QuantizedLinear>);
static_assert(std::is_same_v<drop_in::BatchNorm2d, qs::nn::FakeQuantizedBatchNorm2d>);
static_assert(std::is_same_v<drop_in::ReLU, qs::nn::FakeQuantizedReLU>);
static_assert(std::is_same_v<drop_in::LSTM, qs::nn::FakeQuantizedLSTM>);
// The float modules quantsim adds, and the custom ops.
static_assert(std::is_same_v<drop_in::Hardswish, qs::nn::FakeQuantizedHardswish>);
static_assert(std::is_same_v<drop_in::ChannelShuffle, qs::nn::FakeQuantizedChannelShuffle>);
static_assert(std::is_same_v<drop_in::HardswishOptions, qs::nn::HardswishOptions>);
static_assert(std::is_same_v<drop_in::custom::Add, qs::nn::custom::QuantizedAdd>);
static_assert(
    std::is_same_v<drop_in::custom::GroupNorm, qs::nn::custom::FakeQuantizedAimetGroupNorm>);
static_assert(
    std::is_same_v<drop_in::custom::ChannelShuffle, qs::nn::custom::FakeQuantizedChannelShuffle>);
static_assert(std::is_same_v<drop_in::custom::RoiAlignOptions, qs::nn::custom::RoiAlignOptions>);
// Everything else is torch::nn's own.
static_assert(std::is_same_v<drop_in::Conv2dOptions, torch::nn::Conv2dOptions>);
static_assert(std::is_same_v<drop_in::Module, torch::nn::Module>);
static_assert(std::is_same_v<drop_in::Sequential, torch::nn::Sequential>);
static_assert(std::is_same_v<drop_in::ModuleList, torch::nn::ModuleList>);
static_assert(std::is_same_v<drop_in::MultiheadAttention, torch::nn::MultiheadAttention>);
static_assert(
    std::is_same_v<decltype(&drop_in::functional::relu), decltype(&torch::nn::functional::relu)>);
static_assert(std::is_same_v<drop_in::functional::ReLUFuncOptions, torch::nn::ReLUOptions>);

std::set<std::string> keys(const torch::OrderedDict<std::string, at::Tensor>& dict) {
  const auto names = dict.keys();  // a copy: begin and end must come from one vector
  return {names.begin(), names.end()};
}

/// The simulation model with the float model's parameters and buffers (copied, by name).
sim_net::SmallCnn sim_copy_of(const float_net::SmallCnn& float_model) {
  sim_net::SmallCnn sim;
  torch::NoGradGuard no_grad;
  auto parameters = sim->named_parameters();
  for (const auto& p : float_model->named_parameters()) parameters[p.key()].copy_(p.value());
  auto buffers = sim->named_buffers();
  for (const auto& b : float_model->named_buffers()) buffers[b.key()].copy_(b.value());
  return sim;
}

/// x quantize-dequantized with the quantizer's encoding, through the functional op.
at::Tensor qdq(const qs::affine::QuantizeDequantize& quantizer, const at::Tensor& x) {
  return qs::affine::quantize_dequantize(x, *quantizer->get_scale(), *quantizer->get_offset(),
                                         quantizer->qmin(), quantizer->qmax());
}

class DropIn : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    float_model = float_net::SmallCnn();
    sim = sim_copy_of(float_model);
    x = at::randn({5, 1, 8, 8});
  }

  float_net::SmallCnn float_model{nullptr};
  sim_net::SmallCnn sim{nullptr};
  at::Tensor x;
};

TEST_F(DropIn, SameParameterAndBufferNamesAsTheFloatModel) {
  EXPECT_EQ(keys(sim->named_parameters()), keys(float_model->named_parameters()));
  EXPECT_EQ(keys(sim->named_buffers()), keys(float_model->named_buffers()));
  EXPECT_EQ(keys(sim->named_parameters()).count("features.0.weight"), 1u);
}

TEST_F(DropIn, ModulesAreTheQuantizedOnes) {
  EXPECT_NE(sim->features[0]->as<qs::nn::QuantizedConv2dImpl>(), nullptr);
  EXPECT_NE(sim->features[1]->as<qs::nn::FakeQuantizedBatchNorm2dImpl>(), nullptr);
  EXPECT_NE(sim->features[2]->as<qs::nn::FakeQuantizedReLUImpl>(), nullptr);
  EXPECT_NE(sim->features[3]->as<qs::nn::FakeQuantizedMaxPool2dImpl>(), nullptr);
  EXPECT_NE(dynamic_cast<qs::nn::BaseQuantizationMixin*>(sim->flatten.ptr().get()), nullptr);
  EXPECT_NE(dynamic_cast<qs::nn::BaseQuantizationMixin*>(sim->fc.ptr().get()), nullptr);
  EXPECT_EQ(float_model->features[0]->as<qs::nn::QuantizedConv2dImpl>(), nullptr);
}

TEST_F(DropIn, WithoutQuantizersTrainingStepIsBitExact) {
  auto x_float = x.clone().requires_grad_();
  auto x_sim = x.clone().requires_grad_();
  const auto y_float = float_model(x_float);
  const auto y_sim = sim(x_sim);
  EXPECT_TRUE(qs::testing::bitwise_equal(y_sim, y_float));
  y_float.square().sum().backward();
  y_sim.square().sum().backward();
  EXPECT_TRUE(qs::testing::bitwise_equal(x_sim.grad(), x_float.grad()));
  auto sim_parameters = sim->named_parameters();
  for (const auto& p : float_model->named_parameters()) {
    SCOPED_TRACE(p.key());
    EXPECT_TRUE(qs::testing::bitwise_equal(sim_parameters[p.key()].grad(), p.value().grad()));
  }
  // Batch norm updated its running statistics the same way.
  auto sim_buffers = sim->named_buffers();
  for (const auto& b : float_model->named_buffers()) {
    SCOPED_TRACE(b.key());
    EXPECT_TRUE(qs::testing::bitwise_equal(sim_buffers[b.key()], b.value()));
  }
}

TEST_F(DropIn, WithoutQuantizersEvaluationIsBitExact) {
  float_model(x);  // non-trivial running statistics
  sim(x);
  float_model->eval();
  sim->eval();
  const auto x2 = at::randn({3, 1, 8, 8}) * 4;
  EXPECT_TRUE(qs::testing::bitwise_equal(sim(x2), float_model(x2)));
}

TEST_F(DropIn, WithQuantizersEqualsTheHandAssembledModel) {
  float_model(x);
  sim(x);
  float_model->eval();
  sim->eval();

  // W8A8 by hand: the conv's input, weight (per channel) and output, ReLU's output, the linear
  // layer's weight (per channel) and output. Batch norm, pooling and flatten stay unquantized.
  auto conv = sim->features[0]->as<qs::nn::QuantizedConv2dImpl>();
  auto relu = sim->features[2]->as<qs::nn::FakeQuantizedReLUImpl>();
  qs::affine::QuantizeDequantize conv_in({}, 8, false), conv_out({}, 8, false),
      relu_out({}, 8, false), fc_out({}, 8, false);
  qs::affine::QuantizeDequantize conv_w({4, 1, 1, 1}, 8, true), fc_w({10, 1}, 8, true);
  conv_in->set_range(-2.5, 3.0);
  conv_out->set_range(-1.7, 2.2);
  relu_out->set_range(0.0, 1.9);
  fc_out->set_range(-2.0, 2.4);
  conv->input_quantizers[0] = conv_in;
  conv->param_quantizers["weight"] = conv_w;
  conv->output_quantizers[0] = conv_out;
  relu->output_quantizers[0] = relu_out;
  sim->fc->param_quantizers["weight"] = fc_w;
  sim->fc->output_quantizers[0] = fc_out;

  const auto x2 = at::randn({3, 1, 8, 8}) * 2;
  const auto actual = sim(x2);  // initializes the weight quantizers from the weights
  ASSERT_TRUE(conv_w->is_initialized());
  ASSERT_TRUE(fc_w->is_initialized());

  // The reference: the float model's own modules with quantize-dequantize applied around them.
  namespace F = torch::nn::functional;
  auto float_conv = float_model->features[0]->as<torch::nn::Conv2dImpl>();
  auto h = F::conv2d(qdq(conv_in, x2), qdq(conv_w, float_conv->weight),
                     F::Conv2dFuncOptions().bias(float_conv->bias).padding(1));
  h = qdq(conv_out, h);
  h = float_model->features[1]->as<torch::nn::BatchNorm2dImpl>()->forward(h);
  h = qdq(relu_out, at::relu(h));
  h = float_model->features[3]->as<torch::nn::MaxPool2dImpl>()->forward(h);
  h = F::relu(h.flatten(1));
  const auto expected =
      qdq(fc_out, F::linear(h, qdq(fc_w, float_model->fc->weight), float_model->fc->bias));

  EXPECT_TRUE(qs::testing::bitwise_equal(actual, expected));
  EXPECT_FALSE(qs::testing::bitwise_equal(actual, float_model(x2)));  // quantization did act
}

TEST(DropInExtras, FloatModulesQuantsimAddsAndCustomOps) {
  const auto x = at::randn({2, 4, 3, 3}) * 3;
  drop_in::Hardswish hardswish(drop_in::HardswishOptions{});
  EXPECT_TRUE(qs::testing::bitwise_equal(hardswish(x), qs::nn::Hardswish()(x)));
  drop_in::ChannelShuffle shuffle(2);
  EXPECT_TRUE(qs::testing::bitwise_equal(shuffle(x), qs::nn::ChannelShuffle(2)(x)));
  drop_in::custom::Add add;
  EXPECT_TRUE(qs::testing::bitwise_equal(add(x, x * 2), at::add(x, x * 2)));
  // Modules without a row are torch's float modules, in the same namespace.
  drop_in::Sequential seq(drop_in::Linear(3, 2), drop_in::Tanh());
  EXPECT_NE(seq[0]->as<qs::nn::QuantizedLinearImpl>(), nullptr);
  EXPECT_NE(seq[1]->as<qs::nn::FakeQuantizedTanhImpl>(), nullptr);
}

}  // namespace
