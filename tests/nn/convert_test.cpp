// quantsim::nn::convert on libtorch containers: structure, names and parameters kept, float
// output reproduced bit-exactly, kept modules, and the errors naming a module's path and type.

#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/convert.h>
#include <quantsim/nn/modules.h>
#include <quantsim/nn/register_quantized_module.h>

#include <c10/util/Type.h>
#include <gtest/gtest.h>
#include <torch/nn.h>

#include "testing/tolerance.h"

#include <string>
#include <tuple>
#include <typeinfo>
#include <vector>

namespace qs = quantsim;
namespace nn = torch::nn;

// Named namespace: the messages show the demangled type name.
namespace convert_test {

/// A float leaf with no quantized module registered.
struct SquashImpl : nn::Cloneable<SquashImpl> {
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return x / (1 + x.abs()); }
};
TORCH_MODULE(Squash);

/// A module of the user's holding a float Linear through its holder.
struct FloatBlockImpl : nn::Module {
  FloatBlockImpl() : fc(register_module("fc", nn::Linear(4, 4))) {}
  at::Tensor forward(const at::Tensor& x) { return fc(x); }
  nn::Linear fc;
};
TORCH_MODULE(FloatBlock);

/// The same block written with quantized modules (as with quantsim::nn::drop_in).
struct QuantizedBlockImpl : nn::Module {
  QuantizedBlockImpl() : fc(register_module("fc", qs::nn::QuantizedLinear(4, 4))) {}
  at::Tensor forward(const at::Tensor& x) { return fc(x); }
  qs::nn::QuantizedLinear fc;
};
TORCH_MODULE(QuantizedBlock);

/// A float module whose registered quantized class has a template forward, which AnyModule (so
/// Sequential) cannot call.
struct ScaleImpl : nn::Cloneable<ScaleImpl> {
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return x * 2; }
};
TORCH_MODULE(Scale);
struct TemplatedScaleImpl : ScaleImpl {
  TemplatedScaleImpl(qs::nn::FromFloat, const ScaleImpl& float_module) : ScaleImpl(float_module) {}
  template <typename T>
  T forward(T x) {
    return x * 3;
  }
};

}  // namespace convert_test

namespace {

using convert_test::FloatBlock;
using convert_test::QuantizedBlock;
using convert_test::Scale;
using convert_test::Squash;

static_assert(qs::nn::detail::IsAnyModuleCompatible<qs::nn::QuantizedConv2dImpl>::value);
static_assert(qs::nn::detail::IsAnyModuleCompatible<qs::nn::FakeQuantizedLSTMImpl>::value);
static_assert(!qs::nn::detail::IsAnyModuleCompatible<convert_test::TemplatedScaleImpl>::value);
static_assert(!qs::nn::detail::IsAnyModuleCompatible<nn::SequentialImpl>::value);

/// The message of the error `f` throws, which must be exactly an `Error` (c10::Error, not one of
/// its subclasses, is the reference's RuntimeError); "" when it throws none.
template <typename Error, typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const c10::Error& error) {
    EXPECT_EQ(c10::demangle(typeid(error).name()), c10::demangle_type<Error>())
        << error.what_without_backtrace();
    return error.what_without_backtrace();
  }
  return "";
}

/// Names of a model's parameters / buffers and their TensorImpls.
std::vector<std::pair<std::string, const c10::TensorImpl*>> tensors(const nn::Module& model) {
  std::vector<std::pair<std::string, const c10::TensorImpl*>> out;
  for (const auto& p : model.named_parameters()) {
    out.emplace_back(p.key(), p.value().unsafeGetTensorImpl());
  }
  for (const auto& b : model.named_buffers()) {
    out.emplace_back("buffer " + b.key(), b.value().unsafeGetTensorImpl());
  }
  return out;
}

/// Child names of every container, depth first ("" for the root).
std::vector<std::string> container_layout(const nn::Module& module, const std::string& path = "") {
  std::vector<std::string> out{path};
  for (const auto& child : module.named_children()) {
    const auto child_path = path.empty() ? child.key() : path + "." + child.key();
    if (dynamic_cast<const qs::nn::BaseQuantizationMixin*>(child.value().get())) {
      out.push_back(child_path + " (quantized)");
    } else {
      for (auto& name : container_layout(*child.value(), child_path)) out.push_back(name);
    }
  }
  return out;
}

/// ModuleDict{features: Sequential(conv, bn, relu, pool, flatten), heads: ModuleList(
/// Sequential(linear, tanh), ModuleDict{fc: linear, inner: ModuleList(linear)})}. (A Sequential
/// cannot hold a container directly: AnyModule needs a non-template forward.)
nn::ModuleDict nested_model() {
  torch::manual_seed(3);
  nn::Sequential features(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::BatchNorm2d(4),
                          nn::ReLU(), nn::MaxPool2d(2), nn::Flatten());
  nn::ModuleDict head_dict(std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>{
      {"fc", nn::Linear(64, 10).ptr()}, {"inner", nn::ModuleList(nn::Linear(10, 3)).ptr()}});
  nn::ModuleList heads(nn::Sequential(nn::Linear(64, 10), nn::Tanh()), head_dict);
  return nn::ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>>{
      {"features", features.ptr()}, {"heads", heads.ptr()}});
}

/// The nested model's forward; `Linear` is the class its linear layers have (float or
/// quantized): their forward is not virtual.
template <typename Linear>
std::vector<at::Tensor> run(nn::ModuleDict& model, const at::Tensor& x) {
  auto features = model["features"]->as<nn::SequentialImpl>()->forward(x);
  auto heads = model["heads"]->as<nn::ModuleListImpl>();
  auto first = heads->ptr(0)->as<nn::SequentialImpl>()->forward(features);
  auto dict = heads->ptr(1)->as<nn::ModuleDictImpl>();
  auto second = (*dict)["fc"]->as<Linear>()->forward(features);
  auto third = (*dict)["inner"]->as<nn::ModuleListImpl>()->ptr(0)->as<Linear>()->forward(second);
  return {first, second, third};
}

TEST(Convert, NestedContainersKeepStructureNamesAndParameters) {
  auto model = nested_model();
  auto converted = qs::nn::convert(model);
  EXPECT_NE(converted.ptr(), model.ptr());
  EXPECT_EQ(converted->keys(), model->keys());

  // Same containers and names, every leaf quantized.
  EXPECT_EQ(container_layout(*converted),
            (std::vector<std::string>{
                "", "features", "features.0 (quantized)", "features.1 (quantized)",
                "features.2 (quantized)", "features.3 (quantized)", "features.4 (quantized)",
                "heads", "heads.0", "heads.0.0 (quantized)", "heads.0.1 (quantized)", "heads.1",
                "heads.1.fc (quantized)", "heads.1.inner", "heads.1.inner.0 (quantized)"}));
  auto features = converted["features"]->as<nn::SequentialImpl>();
  EXPECT_NE(features->ptr(0)->as<qs::nn::QuantizedConv2dImpl>(), nullptr);
  EXPECT_NE(features->ptr(1)->as<qs::nn::FakeQuantizedBatchNorm2dImpl>(), nullptr);
  EXPECT_NE(features->ptr(2)->as<qs::nn::FakeQuantizedReLUImpl>(), nullptr);
  EXPECT_NE(features->ptr(3)->as<qs::nn::FakeQuantizedMaxPool2dImpl>(), nullptr);
  EXPECT_NE(features->ptr(4)->as<qs::nn::FakeQuantizedFlattenImpl>(), nullptr);
  // The Sequential holds each quantized module as an AnyModule of its own type.
  EXPECT_EQ(features->begin()->type_info(), typeid(qs::nn::QuantizedConv2dImpl));

  // Parameters and buffers: same names, the same tensors.
  EXPECT_EQ(tensors(*converted), tensors(*model));
  // conv 2, batch norm 2 + 3 buffers, three linear layers 2 each.
  EXPECT_EQ(tensors(*converted).size(), 13u);

  // The original is untouched.
  EXPECT_EQ(model["features"]->as<nn::SequentialImpl>()->ptr(0)->as<qs::nn::QuantizedConv2dImpl>(),
            nullptr);
}

TEST(Convert, WithoutQuantizersOutputsAreBitExact) {
  auto model = nested_model();
  auto converted = qs::nn::convert(model);
  const auto x = at::randn({3, 1, 8, 8});
  const auto expected = run<nn::LinearImpl>(model, x);
  const auto actual = run<qs::nn::QuantizedLinearImpl>(converted, x);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_TRUE(qs::testing::bitwise_equal(actual[i], expected[i])) << "output " << i;
  }
}

TEST(Convert, QuantizersOfTheConvertedModelActOnItOnly) {
  auto model = nested_model();
  auto converted = qs::nn::convert(model);
  // (AnyModule::ptr<T>, so Sequential::ptr<T>, does not compile for the mixins: their forward is
  // declared in a base class.)
  auto conv = std::dynamic_pointer_cast<qs::nn::QuantizedConv2dImpl>(
      converted["features"]->as<nn::SequentialImpl>()->ptr(0));
  ASSERT_NE(conv, nullptr);
  conv->param_quantizers["weight"] = qs::affine::QuantizeDequantize({4, 1, 1, 1}, 2, true);
  const auto x = at::randn({3, 1, 8, 8});
  auto float_features = model["features"]->as<nn::SequentialImpl>();
  auto features = converted["features"]->as<nn::SequentialImpl>();
  const auto weight = float_features->ptr<nn::Conv2dImpl>(0)->weight.clone();
  EXPECT_FALSE(qs::testing::bitwise_equal(features->forward(x), float_features->forward(x)));
  // 2-bit weights were simulated; the shared float weight itself is unchanged.
  EXPECT_TRUE(qs::testing::bitwise_equal(conv->weight, weight));
}

TEST(Convert, KeepsQuantizedModulesAndQuantizersAndTrainingMode) {
  qs::nn::QuantizedLinear quantized(3, 3);
  qs::affine::QuantizeDequantize quantizer({}, 4, false);
  quantizer->set_range(-1.0, 1.0);
  nn::Sequential model(nn::Linear(3, 3), quantized, quantizer, nn::ReLU());
  model->eval();
  auto converted = qs::nn::convert(model);
  EXPECT_EQ(converted->ptr(1), quantized.ptr());
  EXPECT_EQ(converted->ptr(2), quantizer.ptr());
  EXPECT_NE(converted->ptr(0)->as<qs::nn::QuantizedLinearImpl>(), nullptr);
  EXPECT_FALSE(converted->is_training());
  for (const auto& child : converted->children()) EXPECT_FALSE(child->is_training());
  const auto x = at::randn({4, 3});
  EXPECT_TRUE(qs::testing::bitwise_equal(converted->forward(x), model->forward(x)));
}

TEST(Convert, ModuleReachedTwiceBecomesOneQuantizedModule) {
  nn::Linear shared(3, 3);
  nn::ModuleList model(shared, nn::ReLU(), shared);
  auto converted = qs::nn::convert(model);
  EXPECT_EQ(converted->ptr(0), converted->ptr(2));
  EXPECT_NE(converted->ptr(0)->as<qs::nn::QuantizedLinearImpl>(), nullptr);
}

TEST(Convert, DefaultForwardArgumentsStillWorkInSequential) {
  // ConvTranspose2d's forward(input, output_size = nullopt) declares FORWARD_HAS_DEFAULT_ARGS.
  torch::manual_seed(5);
  // LSTM's forward(input, hx = nullopt) too. (2, 2, 3, 3) -> (2, 3, 7, 7) -> (2, 3, 49) -> LSTM.
  nn::Sequential model(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2, 3, 3).stride(2)),
                       nn::Flatten(nn::FlattenOptions().start_dim(2)),
                       nn::LSTM(nn::LSTMOptions(49, 4).batch_first(true)));
  auto converted = qs::nn::convert(model);
  EXPECT_NE(converted->ptr(0)->as<qs::nn::FakeQuantizedConvTranspose2dImpl>(), nullptr);
  EXPECT_NE(converted->ptr(2)->as<qs::nn::FakeQuantizedLSTMImpl>(), nullptr);
  const auto x = at::randn({2, 2, 3, 3});
  using LstmResult = std::tuple<at::Tensor, std::tuple<at::Tensor, at::Tensor>>;
  const auto expected = model->forward<LstmResult>(x);
  const auto actual = converted->forward<LstmResult>(x);
  EXPECT_EQ(std::get<0>(actual).sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(qs::testing::bitwise_equal(std::get<0>(actual), std::get<0>(expected)));
  EXPECT_TRUE(qs::testing::bitwise_equal(std::get<0>(std::get<1>(actual)),
                                         std::get<0>(std::get<1>(expected))));
  // One argument through AnyModule: the quantized ConvTranspose2d fills the default too.
  EXPECT_TRUE(
      qs::testing::bitwise_equal(converted->begin()->forward(x), model->begin()->forward(x)));
}

TEST(Convert, UnregisteredLeafNamesItsPathTypeAndRegistration) {
  auto model = nested_model();
  model["heads"]->as<nn::ModuleListImpl>()->ptr(0)->as<nn::SequentialImpl>()->push_back(Squash());
  // The reference's RuntimeError, as from_module raises it.
  const auto message = error_message<c10::Error>([&] { qs::nn::convert(model); });
  EXPECT_NE(message.find("\"heads.0.2\""), std::string::npos) << message;
  EXPECT_NE(message.find("convert_test::SquashImpl"), std::string::npos) << message;
  EXPECT_NE(message.find("quantsim::nn::register_quantized_module<convert_test::SquashImpl>();"),
            std::string::npos)
      << message;
  // The root itself.
  EXPECT_NE(error_message<c10::Error>([] { qs::nn::convert(Squash()); }).find("the model itself"),
            std::string::npos);
}

TEST(Convert, ModulesOfTheUsersAreKeptOnlyWithoutFloatLeaves) {
  QuantizedBlock quantized_block;
  nn::ModuleList model(quantized_block, nn::Linear(4, 4));
  auto converted = qs::nn::convert(model);
  EXPECT_EQ(converted->ptr(0), quantized_block.ptr());

  nn::ModuleList float_model{nn::ReLU(), FloatBlock()};
  const auto message = error_message<c10::Error>([&] { qs::nn::convert(float_model); });
  EXPECT_NE(message.find("\"1.fc\" (torch::nn::LinearImpl)"), std::string::npos) << message;
  EXPECT_NE(message.find("inside \"1\" (convert_test::FloatBlockImpl)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("quantsim::nn::drop_in"), std::string::npos) << message;
}

TEST(Convert, QuantizedModuleThatAnyModuleCannotHoldFailsOnlyInSequential) {
  qs::nn::register_quantized_module<convert_test::ScaleImpl, convert_test::TemplatedScaleImpl>();
  // In a ModuleList no AnyModule is needed.
  auto list = qs::nn::convert(nn::ModuleList(Scale()));
  EXPECT_NE(list->ptr(0)->as<convert_test::TemplatedScaleImpl>(), nullptr);
  // In a Sequential it is a clear error, not a compile failure.
  const auto message =
      error_message<c10::TypeError>([] { qs::nn::convert(nn::Sequential(nn::ReLU(), Scale())); });
  EXPECT_NE(message.find("\"1\" cannot stay in a Sequential"), std::string::npos) << message;
  EXPECT_NE(message.find("convert_test::TemplatedScaleImpl cannot be held by torch::nn::AnyModule"),
            std::string::npos)
      << message;
}

TEST(Convert, ToAnyModuleOfAnUnregisteredType) {
  const auto message = error_message<c10::TypeError>(
      [] { qs::nn::to_any_module(std::make_shared<nn::ReLUImpl>()); });
  EXPECT_NE(message.find("torch::nn::ReLUImpl is not a quantized module type"), std::string::npos)
      << message;
  auto any = qs::nn::to_any_module(qs::nn::from_module(nn::ReLU()));
  EXPECT_EQ(any.type_info(), typeid(qs::nn::FakeQuantizedReLUImpl));
}

}  // namespace
