// The mixins' behaviour (docs/modules.md §1-§4, §7-§9) on Linear, Conv2d and Softmax.

#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/modules.h>
#include <quantsim/nn/register_quantized_module.h>

#include <gtest/gtest.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/serialize.h>

#include "testing/printing.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

#include <sstream>

namespace qs = quantsim;
using qs::testing::f32;
using qs::testing::f32_2d;

namespace {

/// Linear(2, 2) with weight [[1, 0.5], [2, -0.3]] and bias [0.1, -0.2].
qs::nn::QuantizedLinear small_linear() {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 2));
  torch::NoGradGuard no_grad;
  linear->weight.copy_(f32_2d({{1, 0.5}, {2, -0.3}}));
  linear->bias.copy_(f32({0.1, -0.2}));
  return linear;
}

}  // namespace

TEST(Mixin, EmptySlotsComputeTheFloatModule) {
  auto linear = small_linear();
  const auto x = at::randn({3, 2});
  const auto expected = torch::nn::functional::linear(x, linear->weight, linear->bias);
  EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), expected));
  EXPECT_EQ(linear->input_quantizers->size(), 1u);
  EXPECT_EQ(linear->output_quantizers->size(), 1u);
  EXPECT_EQ(linear->param_quantizers->keys(), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_FALSE(linear->input_quantizers[0]);
}

// Lazy weight initialization (docs/modules.md §2) with a weight of row maxima 1 and 2: 4-bit
// symmetric scales 1/7 and 2/7.
TEST(Mixin, ParameterQuantizerInitializesLazilyOnFirstCall) {
  auto linear = small_linear();
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 4, true);
  EXPECT_FALSE(linear->param_quantizers["weight"]->is_initialized());
  const auto x = f32_2d({{1, 2}, {-1, 0.5}});
  const auto y = linear(x);
  auto weight = linear->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>();
  ASSERT_TRUE(weight->is_initialized());
  EXPECT_TRUE(qs::testing::all_close(*weight->get_scale(), f32_2d({{0.14285713}, {0.28571427}})));
  // W_q = [[7, 4] * 1/7, [7, -1] * 2/7] (0.5 * 7 = 3.5 rounds half to even to 4).
  const auto w_q = f32_2d({{1, 4.0 / 7}, {2, -2.0 / 7}});
  EXPECT_TRUE(qs::testing::all_close(y, torch::nn::functional::linear(x, w_q, linear->bias), 1e-6));
  // The parameter table still holds the float weight.
  EXPECT_TRUE(qs::testing::bitwise_equal(linear->named_parameters()["weight"],
                                         f32_2d({{1, 0.5}, {2, -0.3}})));
}

TEST(Mixin, UninitializedInputQuantizerIsAnError) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  EXPECT_THROW(linear(at::ones({1, 2})), c10::Error);
}

TEST(Mixin, ComputeEncodingsObservesActivationsAndQuantizesParameters) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 4, true);
  const auto x = f32_2d({{1, 2}, {-1, 0.5}});
  const auto w_q = f32_2d({{1, 4.0 / 7}, {2, -2.0 / 7}});
  at::Tensor inside;
  {
    auto calibrating = linear->compute_encodings();
    EXPECT_TRUE(linear->is_calibrating());
    // Parameters are calibrated at entry.
    EXPECT_TRUE(linear->param_quantizers["weight"]->is_initialized());
    inside = linear(x);
    EXPECT_FALSE(linear->output_quantizers[0]->is_initialized());
  }
  // Float activations, quantized weight: no activation quantization inside the scope.
  EXPECT_TRUE(
      qs::testing::all_close(inside, torch::nn::functional::linear(x, w_q, linear->bias), 1e-6));
  auto in = linear->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
  auto out = linear->output_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
  ASSERT_TRUE(in->is_initialized() && out->is_initialized());
  EXPECT_EQ(in->min.item<float>(), -1.0f);
  EXPECT_EQ(in->max.item<float>(), 2.0f);
  EXPECT_EQ(out->min.item<float>(), std::min(inside.min().item<float>(), 0.0f));
  EXPECT_EQ(out->max.item<float>(), std::max(inside.max().item<float>(), 0.0f));

  // After calibration: y = oq(linear(iq(x), Wq, b)).
  const auto x_q = in->forward(x);
  const auto expected = out->forward(torch::nn::functional::linear(x_q, w_q, linear->bias));
  EXPECT_TRUE(qs::testing::all_close(linear(x), expected, 1e-6));
}

TEST(Mixin, CalibrationUnwoundByAnExceptionSetsNothing) {
  auto linear = small_linear();
  linear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  try {
    auto calibrating = linear->compute_encodings();
    linear(at::ones({1, 2}));
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(linear->is_calibrating());
  EXPECT_FALSE(linear->output_quantizers[0]->is_initialized());
}

TEST(Mixin, FrozenQuantizersKeepTheirRangeAndQuantizeDuringCalibration) {
  auto linear = small_linear();
  auto frozen = qs::affine::QuantizeDequantize({}, 8, false);
  frozen->set_range(-1, 1);
  frozen->allow_overwrite(false);
  linear->input_quantizers[0] = frozen;
  const auto x = f32_2d({{4, -3}});
  at::Tensor inside;
  linear->compute_encodings([&] { inside = linear(x); });
  EXPECT_EQ(frozen->min.item<float>(), -1.0f);
  EXPECT_TRUE(qs::testing::bitwise_equal(
      inside, torch::nn::functional::linear(frozen->forward(x), linear->weight, linear->bias)));
}

TEST(Mixin, QuantizersAreSubmodulesWithStateDictKeys) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 8, true);
  std::vector<std::string> keys;
  for (const auto& p : linear->named_parameters()) keys.push_back(p.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"weight", "bias", "input_quantizers.0.min",
                                            "input_quantizers.0.max", "param_quantizers.weight.min",
                                            "param_quantizers.weight.max"}));
  linear->input_quantizers[0] = nullptr;
  linear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  keys.clear();
  for (const auto& p : linear->named_parameters()) keys.push_back(p.key());
  EXPECT_EQ(keys[2], "output_quantizers.0.min");
  EXPECT_THROW(linear->param_quantizers["weights"], c10::IndexError);
  EXPECT_THROW(linear->input_quantizers[1], c10::IndexError);
}

TEST(Mixin, SaveLoadRoundTripReproducesTheOutput) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 8, true);
  const auto x = at::randn({4, 2});
  linear->compute_encodings([&] { linear(x); });
  const auto expected = linear(x);

  std::stringstream archive;
  torch::save(linear, archive);
  auto restored = small_linear();
  restored->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  restored->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  restored->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 8, true);
  torch::load(restored, archive);
  EXPECT_TRUE(restored->output_quantizers[0]->is_initialized());
  EXPECT_TRUE(qs::testing::bitwise_equal(restored(x), expected));
}

TEST(Mixin, CloneIsTheQuantizedTypeWithIndependentQuantizers) {
  auto linear = small_linear();
  auto shared = qs::affine::QuantizeDequantize({}, 8, false);
  shared->set_range(-1, 1);
  linear->input_quantizers[0] = shared;
  linear->output_quantizers[0] = shared;
  auto copy = std::dynamic_pointer_cast<qs::nn::QuantizedLinearImpl>(linear->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_NE(copy->input_quantizers[0].get(), shared.ptr());
  EXPECT_EQ(copy->input_quantizers[0].get(), copy->output_quantizers[0].get());
  EXPECT_NE(copy->weight.data_ptr(), linear->weight.data_ptr());
  const auto x = at::randn({3, 2});
  EXPECT_TRUE(qs::testing::bitwise_equal(copy->forward(x), linear(x)));
  copy->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>()->set_range(-2, 2);
  EXPECT_EQ(shared->min.item<float>(), -1.0f);
}

TEST(Mixin, PrettyPrintShowsTheQuantizedClassAndItsQuantizers) {
  qs::nn::FakeQuantizedLinear linear(torch::nn::LinearOptions(5, 10));
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({10, 1}, 8, true);
  EXPECT_EQ(qs::testing::printed(*linear),
            "quantsim::nn::FakeQuantizedLinear(in_features=5, out_features=10, bias=true)(\n"
            "  (input_quantizers): ModuleList\n"
            "  (output_quantizers): ModuleList\n"
            "  (param_quantizers): ModuleDict(\n"
            "    (weight): QuantizeDequantize(shape=[10, 1], qmin=-128, qmax=127, "
            "symmetric=true)\n"
            "  )\n"
            ")");
}

TEST(Mixin, WorksInsideSequentialAndAnyModule) {
  qs::nn::FakeQuantizedConv2d conv(torch::nn::Conv2dOptions(2, 3, 3).padding(1));
  qs::nn::FakeQuantizedReLU relu;
  torch::nn::Sequential model(conv, relu);
  const auto x = at::randn({1, 2, 5, 5});
  EXPECT_TRUE(qs::testing::bitwise_equal(model->forward(x), at::relu(conv(x))));
  torch::nn::AnyModule any(
      qs::nn::FakeQuantizedConvTranspose2d(torch::nn::ConvTranspose2dOptions(3, 2, 2).stride(2)));
  EXPECT_EQ(any.forward(model->forward(x)).sizes(), (std::vector<int64_t>{1, 2, 10, 10}));
  auto cloned = model->clone();
  EXPECT_NE(std::dynamic_pointer_cast<qs::nn::FakeQuantizedConv2dImpl>(
                std::dynamic_pointer_cast<torch::nn::SequentialImpl>(cloned)->ptr(0)),
            nullptr);
}

// Quantize and QuantizeDequantize quantizers give identical outputs (docs/modules.md §2).
TEST(Mixin, QuantizeAndQuantizeDequantizeQuantizersAgree) {
  auto run = [](bool use_quantize) {
    torch::manual_seed(0);
    qs::nn::QuantizedConv2d conv(torch::nn::Conv2dOptions(2, 3, 3));
    auto make = [&](std::vector<int64_t> shape,
                    bool symmetric) -> std::shared_ptr<qs::QuantizerBase> {
      if (use_quantize) return qs::affine::Quantize(shape, 8, symmetric).ptr();
      return qs::affine::QuantizeDequantize(shape, 8, symmetric).ptr();
    };
    conv->input_quantizers[0] = make({}, false);
    conv->output_quantizers[0] = make({}, false);
    conv->param_quantizers["weight"] = make({3, 1, 1, 1}, true);
    const auto x = at::randn({2, 2, 6, 6});
    conv->compute_encodings([&] { conv(x); });
    return conv(x);
  };
  EXPECT_TRUE(qs::testing::bitwise_equal(run(true), run(false)));
}

TEST(Mixin, RemovedQuantizersComeBackWhenTheScopeEnds) {
  auto linear = small_linear();
  auto in = qs::affine::QuantizeDequantize({}, 8, false);
  auto out = qs::affine::QuantizeDequantize({}, 8, false);
  auto w = qs::affine::QuantizeDequantize({}, 8, true);
  linear->input_quantizers[0] = in;
  linear->output_quantizers[0] = out;
  linear->param_quantizers["weight"] = w;
  const auto x = at::randn({4, 2});
  linear->compute_encodings([&] { linear(x); });
  namespace F = torch::nn::functional;
  const auto w_q = w->forward(linear->weight);
  {
    auto removed = linear->remove_input_quantizers({0});
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), out(F::linear(x, w_q, linear->bias))));
  }
  {
    auto removed = linear->remove_param_quantizers({"weight"});
    EXPECT_TRUE(
        qs::testing::bitwise_equal(linear(x), out(F::linear(in(x), linear->weight, linear->bias))));
  }
  {
    auto removed = linear->remove_output_quantizers();
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), F::linear(in(x), w_q, linear->bias)));
  }
  EXPECT_TRUE(linear->input_quantizers[0] && linear->output_quantizers[0] &&
              linear->param_quantizers["weight"]);
  linear->remove_all_quantizers().dismiss();
  EXPECT_FALSE(linear->input_quantizers[0] || linear->param_quantizers["weight"]);
}

TEST(Mixin, KernelReceivesQuantizedTensorsAndItsOutputIsDequantized) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::Quantize({}, 8, false);
  linear->output_quantizers[0] = qs::affine::Quantize({}, 8, false);
  linear->param_quantizers["weight"] = qs::affine::Quantize({2, 1}, 8, true);
  const auto x = at::randn({5, 2});
  linear->compute_encodings([&] { linear(x); });
  const auto fake = linear(x);

  int calls = 0;
  linear->set_kernel([&](const qs::nn::KernelArgs& args) {
    ++calls;
    EXPECT_NE(args.inputs.at(0).encoding(), nullptr);
    EXPECT_NE(args.parameters.at("weight").encoding(), nullptr);
    EXPECT_EQ(args.parameters.at("bias").encoding(), nullptr);
    const auto y = torch::nn::functional::linear(args.real_input(0), args.real_parameter("weight"),
                                                 args.real_parameter("bias"));
    return qs::QuantizedTensor(args.output_encoding->quantize(y), args.output_encoding);
  });
  EXPECT_TRUE(qs::testing::all_close(linear(x), fake, 1e-6));
  EXPECT_EQ(calls, 1);
  linear->compute_encodings([&] { linear(x); });  // calibration takes the fake path
  EXPECT_EQ(calls, 1);
  linear->set_kernel(nullptr);  // forces the fake path over a class default
  qs::nn::QuantizedLinearImpl::set_default_kernel(
      [&](const qs::nn::KernelArgs&) -> qs::QuantizedTensor {
        throw std::logic_error("not called");
      });
  EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), fake));
  linear->reset_kernel();
  EXPECT_THROW(linear(x), std::logic_error);
  qs::nn::QuantizedLinearImpl::set_default_kernel(nullptr);
}

TEST(Registry, FromModuleSharesParametersAndPrefersTheQuantizationMixin) {
  torch::nn::Linear linear(3, 2);
  auto quantized = qs::nn::from_module(linear);
  auto* q = dynamic_cast<qs::nn::QuantizedLinearImpl*>(quantized.get());
  ASSERT_NE(q, nullptr);
  {
    torch::NoGradGuard no_grad;
    linear->weight.fill_(0.25);  // in place: seen by both
  }
  EXPECT_TRUE(qs::testing::bitwise_equal(q->weight, linear->weight));
  linear->weight = at::zeros({2, 3});  // re-assignment: not seen
  EXPECT_EQ(q->weight[0][0].item<float>(), 0.25f);
  EXPECT_NE(
      dynamic_cast<qs::nn::FakeQuantizedReLUImpl*>(qs::nn::from_module(torch::nn::ReLU()).get()),
      nullptr);
  EXPECT_THROW(qs::nn::from_module(quantized), c10::Error);
}

namespace {
struct ScaleImpl : torch::nn::Cloneable<ScaleImpl> {
  ScaleImpl() { reset(); }
  void reset() override { weight = register_parameter("weight", at::full({1}, 2.0)); }
  at::Tensor forward(const at::Tensor& x) { return x * weight; }
  at::Tensor weight;
};
}  // namespace

TEST(Registry, UnregisteredModulesNameTheTypeAndTheRegistrationLine) {
  try {
    qs::nn::from_module(std::make_shared<ScaleImpl>());
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("ScaleImpl"), std::string::npos) << message;
    EXPECT_NE(message.find("quantsim::nn::register_quantized_module<"), std::string::npos);
  }
  qs::nn::register_quantized_module<ScaleImpl>();
  auto quantized = qs::nn::from_module(std::make_shared<ScaleImpl>());
  auto* q = dynamic_cast<qs::nn::FakeQuantizationMixin<ScaleImpl>*>(quantized.get());
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->input_quantizers->size(), 1u);
  q->param_quantizers["weight"] = qs::affine::QuantizeDequantize({}, 2, false);
  q->param_quantizers["weight"].as<qs::affine::QuantizeDequantizeImpl>()->set_range(0, 3);
  // weight 2 on the grid {0, 1, 2, 3}: stays 2; input 1.4 -> 1.4 * 2.
  EXPECT_FLOAT_EQ(q->forward(at::full({1}, 1.4)).item<float>(), 2.8f);
}

TEST(Encodings, ExportAndImportFollowTheSlots) {
  auto linear = small_linear();
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, true);
  linear->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>()->set_range(-1.28, 1.27);
  const auto exported = linear->export_input_encodings();
  ASSERT_TRUE(exported[0].has_value());
  EXPECT_EQ((*exported[0])[0]["offset"], -128);
  EXPECT_FALSE(linear->export_output_encodings()[0].has_value());

  auto other = small_linear();
  other->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, true);
  other->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, true);
  other->import_input_encodings({{"0", *exported[0]}});
  EXPECT_FLOAT_EQ(
      other->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>()->get_min()->item<float>(),
      -1.28f);
  // An entry for an empty slot: error when strict, skipped otherwise.
  EXPECT_THROW(linear->import_output_encodings({{"0", *exported[0]}}), c10::Error);
  linear->import_output_encodings({{"0", *exported[0]}}, qs::nn::ImportOptions().strict(false));
  // A missing entry empties the slot unless partial.
  other->import_output_encodings(nlohmann::json::object(), qs::nn::ImportOptions().partial(false));
  EXPECT_FALSE(other->output_quantizers[0]);
  EXPECT_THROW(other->import_input_encodings({{"7", *exported[0]}}), c10::IndexError);
}

TEST(Mixin, InferenceReusesTheQuantizedWeightUntilSomethingChanges) {
  namespace F = torch::nn::functional;
  auto linear = small_linear();
  auto w = qs::affine::QuantizeDequantize({2, 1}, 8, true);
  linear->param_quantizers["weight"] = w;
  const auto x = at::randn({3, 2});
  auto expected = [&] { return F::linear(x, w->forward(linear->weight), linear->bias); };
  {
    torch::NoGradGuard no_grad;
    const auto first = linear(x);
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), first));
    linear->weight.mul_(2);  // an in-place edit (an optimizer step) invalidates
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), expected()));
    EXPECT_FALSE(qs::testing::bitwise_equal(linear(x), first));
    w->set_range(at::full({2, 1}, -0.5), at::full({2, 1}, 0.5));
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), expected()));
    w->set_bitwidth(3);  // a configuration change invalidates
    EXPECT_TRUE(qs::testing::bitwise_equal(linear(x), expected()));
    linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({2, 1}, 8, true);
    linear->param_quantizers["weight"]->compute_encodings([] {});
    EXPECT_FALSE(qs::testing::bitwise_equal(linear(x), expected()));
  }
  // With gradients the weight is quantized in the graph.
  linear->param_quantizers["weight"] = w;
  linear(x).sum().backward();
  ASSERT_TRUE(linear->weight.grad().defined());
  EXPECT_TRUE(w->max.grad().defined());
}

TEST(ModelCalibration, CalibratesEveryQuantizedModuleOfAModel) {
  qs::nn::FakeQuantizedLinear first(3, 4);
  qs::nn::FakeQuantizedReLU relu;
  qs::nn::QuantizedLinear second(4, 2);
  torch::nn::Sequential model(first, relu, second);
  first->param_quantizers["weight"] = qs::affine::QuantizeDequantize({4, 1}, 8, true);
  relu->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  second->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  const auto x = at::randn({5, 3});
  at::Tensor relu_out;
  {
    auto calibrating = qs::nn::compute_encodings(*model);
    relu_out = relu(first(x));
    second(relu_out);
  }
  EXPECT_TRUE(first->param_quantizers["weight"]->is_initialized());
  EXPECT_TRUE(relu->output_quantizers[0]->is_initialized());
  auto in = second->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
  EXPECT_EQ(in->max.item<float>(), relu_out.max().item<float>());
}
