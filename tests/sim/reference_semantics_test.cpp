// Whole-model semantics of the reference's config files (docs/quantization.md §11): batch-norm
// folding whatever the configuration says, supergroups matched with folded batch norms skipped,
// parameters asymmetric unless configured, and one `.encodings` entry per tensor.
//
// The reference cannot run here, so each case asserts the quantizer layout the reference's
// configurator produces (read from its sources, cited in docs/quantization.md §11) and that the
// simulated model's output equals, bit for bit, the float model with those same quantizers
// applied by hand (docs/reliability.md §2).

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/nn/custom.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/quantsim_model.h>

#include <gtest/gtest.h>
#include <torch/nn/functional.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

namespace qs = quantsim;
namespace F = torch::nn::functional;
using nlohmann::json;

namespace {

// The reference's default configuration, aimet_common/quantsim_config/default_config.json
// (quic/aimet, TrainingExtensions/common/src/python/aimet_common/quantsim_config/, commit
// 108b8c5f), verbatim: per-channel off, no parameter symmetry given, supergroups Conv+Relu,
// Add+Relu, Gemm+Relu and nothing about batch norms.
const char* const kReferenceDefaultConfig = R"({"defaults": {
	"ops": {
		"is_output_quantized": "True"
	},
	"params": {
		"is_quantized": "True"
	},
	"strict_symmetric": "False",
	"unsigned_symmetric": "True"
},
"params": {
	"bias": {
		"is_quantized": "False"
	}
},
"op_type": {},
"supergroups": [
	{
		"op_list": ["Conv", "Relu"]
	},
	{
		"op_list": ["Add", "Relu"]
	},
	{
		"op_list": ["Gemm", "Relu"]
	}
],
"model_input": {
	"is_input_quantized": "True"
},
"model_output": {}}
)";

json reference_default() { return json::parse(kReferenceDefaultConfig); }

qs::QuantsimConfig config_of(const json& config) {
  return qs::QuantsimConfig::parse(config, "reference config");
}

bool filled(const qs::nn::QuantizerSlot& slot) { return static_cast<bool>(slot); }

std::shared_ptr<qs::affine::QuantizeDequantizeImpl> qdq(const qs::nn::QuantizerSlot& slot) {
  auto quantizer = slot.as<qs::affine::QuantizeDequantizeImpl>();
  if (quantizer == nullptr) throw std::logic_error("empty or non-affine slot");
  return quantizer;
}

at::Tensor apply(const qs::nn::QuantizerSlot& slot, const at::Tensor& x) {
  return qdq(slot)->forward(x);
}

void randomize_batch_norm(torch::nn::Module& bn, int64_t channels) {
  at::NoGradGuard no_grad;
  auto params = bn.named_parameters(false);
  params["weight"].copy_(at::rand({channels}) + 0.5);
  params["bias"].copy_(at::randn({channels}));
  auto buffers = bn.named_buffers(false);
  buffers["running_mean"].copy_(at::randn({channels}));
  buffers["running_var"].copy_(at::rand({channels}) + 0.5);
}

at::Tensor batch_norm_eval(torch::nn::Module& bn, const at::Tensor& x) {
  auto params = bn.named_parameters(false);
  auto buffers = bn.named_buffers(false);
  return F::batch_norm(x, buffers["running_mean"], buffers["running_var"],
                       F::BatchNormFuncOptions()
                           .weight(params["weight"])
                           .bias(params["bias"])
                           .training(false)
                           .eps(1e-5));
}

/// conv -> bn (eval) -> relu.
struct ConvBnReluImpl : torch::nn::Module {
  ConvBnReluImpl() {
    conv = register_module(
        "conv", qs::nn::FakeQuantizedConv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)));
    bn = register_module("bn", qs::nn::FakeQuantizedBatchNorm2d(4));
    relu = register_module("relu", qs::nn::FakeQuantizedReLU());
    randomize_batch_norm(*bn, 4);
    eval();
  }
  at::Tensor forward(const at::Tensor& x) { return relu(bn(conv(x))); }
  qs::nn::FakeQuantizedConv2d conv{nullptr};
  qs::nn::FakeQuantizedBatchNorm2d bn{nullptr};
  qs::nn::FakeQuantizedReLU relu{nullptr};
};
TORCH_MODULE(ConvBnRelu);

/// The conv -> bn -> relu layout the reference gives with its default configuration: the conv's
/// output moves to the batch norm, where the Conv+Relu supergroup (matched through the folded
/// batch norm) leaves it float; batch-norm input and parameters float; the relu output and the
/// model input quantized.
void expect_folded_layout(ConvBnRelu& net) {
  EXPECT_TRUE(filled(net->conv->input_quantizers[0]));
  EXPECT_FALSE(filled(net->conv->output_quantizers[0]));
  EXPECT_TRUE(filled(net->conv->param_quantizers["weight"]));
  EXPECT_FALSE(filled(net->conv->param_quantizers["bias"]));
  EXPECT_FALSE(filled(net->bn->input_quantizers[0]));
  EXPECT_FALSE(filled(net->bn->output_quantizers[0]));
  EXPECT_FALSE(filled(net->bn->param_quantizers["weight"]));
  EXPECT_FALSE(filled(net->bn->param_quantizers["bias"]));
  EXPECT_FALSE(filled(net->relu->input_quantizers[0]));
  EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
}

/// The float conv -> bn -> relu with the simulation's quantizers applied by hand.
at::Tensor by_hand(ConvBnRelu& net, const at::Tensor& x) {
  const auto& conv = net->conv;
  const auto input = apply(conv->input_quantizers[0], x);
  const auto weight = apply(conv->param_quantizers["weight"], conv->weight);
  const auto y = F::conv2d(input, weight, F::Conv2dFuncOptions().bias(conv->bias).padding(1));
  return apply(net->relu->output_quantizers[0], at::relu(batch_norm_eval(*net->bn, y)));
}

std::set<std::string> keys(const json& object) {
  std::set<std::string> names;
  for (const auto& item : object.items()) names.insert(item.key());
  return names;
}

std::set<std::string> names(const json& entries) {
  std::set<std::string> result;
  for (const auto& entry : entries) result.insert(entry.at("name").get<std::string>());
  return result;
}

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("reference_semantics_" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST(ReferenceSemantics, ConvBatchNormReluWithTheReferenceDefaultConfig) {
  torch::manual_seed(0);
  ConvBnRelu net;
  const auto x = at::randn({2, 2, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, qs::SimOptions().config(config_of(reference_default())));
  expect_folded_layout(net);
  // Parameters asymmetric per tensor (the file gives no symmetry), activations asymmetric.
  auto weight = qdq(net->conv->param_quantizers["weight"]);
  EXPECT_EQ(weight->shape(), std::vector<int64_t>{});
  EXPECT_EQ(weight->bitwidth(), 8);
  EXPECT_FALSE(weight->symmetric());
  EXPECT_FALSE(qdq(net->relu->output_quantizers[0])->symmetric());
  EXPECT_EQ(sim.quantizer_args()["is_symmetric"], false);
  EXPECT_EQ(sim.quantizer_args()["per_channel_quantization"], false);

  sim.compute_encodings([&] { net(x); });
  at::NoGradGuard no_grad;
  const auto data = at::randn({3, 2, 6, 6});
  EXPECT_TRUE(net(data).equal(by_hand(net, data)));
}

TEST(ReferenceSemantics, ConvBatchNormReluWithPerChannelOn) {
  torch::manual_seed(1);
  ConvBnRelu net;
  auto config = reference_default();
  config["defaults"]["per_channel_quantization"] = "True";
  const auto x = at::randn({2, 2, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, qs::SimOptions().config(config_of(config)));
  expect_folded_layout(net);
  auto weight = qdq(net->conv->param_quantizers["weight"]);
  EXPECT_EQ(weight->shape(), (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_FALSE(weight->symmetric());
  // The reference reports the per-channel flag as the symmetry when params give none.
  EXPECT_EQ(sim.quantizer_args()["is_symmetric"], true);

  sim.compute_encodings([&] { net(x); });
  at::NoGradGuard no_grad;
  const auto data = at::randn({3, 2, 6, 6});
  EXPECT_TRUE(net(data).equal(by_hand(net, data)));
}

TEST(ReferenceSemantics, W4WithPostTrainingTfEnhanced) {
  torch::manual_seed(2);
  ConvBnRelu net;
  const auto x = at::randn({2, 2, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); },
      qs::SimOptions()
          .config(config_of(reference_default()))
          .default_param_bw(4)
          .quant_scheme(qs::QuantScheme::kPostTrainingTfEnhanced));
  expect_folded_layout(net);
  auto weight = qdq(net->conv->param_quantizers["weight"]);
  EXPECT_EQ(weight->bitwidth(), 4);
  EXPECT_NE(std::dynamic_pointer_cast<qs::SqnrEncodingAnalyzer>(weight->encoding_analyzer()),
            nullptr);
  auto output = qdq(net->relu->output_quantizers[0]);
  EXPECT_EQ(output->bitwidth(), 8);
  EXPECT_NE(std::dynamic_pointer_cast<qs::SqnrEncodingAnalyzer>(output->encoding_analyzer()),
            nullptr);

  sim.compute_encodings([&] { net(x); });
  EXPECT_TRUE(weight->is_initialized());
  at::NoGradGuard no_grad;
  const auto data = at::randn({3, 2, 6, 6});
  EXPECT_TRUE(net(data).equal(by_hand(net, data)));

  // The exported entries: the model input, the relu output and the conv weight (4-bit).
  const auto dir = fresh_dir("w4");
  sim.export_encodings(dir.string(), "net");
  const auto exported = read_json(dir / "net.encodings");
  EXPECT_EQ(keys(exported["activation_encodings"]),
            (std::set<std::string>{"conv.input_0", "relu.output_0"}));
  EXPECT_EQ(keys(exported["param_encodings"]), std::set<std::string>{"conv.weight"});
  EXPECT_EQ(exported["param_encodings"]["conv.weight"][0]["bitwidth"], 4);
  EXPECT_EQ(exported["param_encodings"]["conv.weight"][0]["is_symmetric"], "False");
  EXPECT_EQ(exported["quantizer_args"]["quant_scheme"], "post_training_tf_enhanced");
}

TEST(ReferenceSemantics, RangeLearningSchemesAreReportedByTheirInitialization) {
  // extract_global_quantizer_args reports training_range_learning_with_tf(_enhanced)_init as
  // post_training_tf(_enhanced).
  const std::pair<qs::QuantScheme, const char*> cases[] = {
      {qs::QuantScheme::kTrainingRangeLearningWithTfInit, "post_training_tf"},
      {qs::QuantScheme::kTrainingRangeLearningWithTfEnhancedInit, "post_training_tf_enhanced"},
      {qs::QuantScheme::kPostTrainingPercentile, "post_training_percentile"}};
  for (const auto& [scheme, reported] : cases) {
    ConvBnRelu net;
    qs::QuantizationSimModel sim(
        net.ptr(),
        [&] {
          net(at::randn({1, 2, 6, 6}));
        },
        qs::SimOptions().quant_scheme(scheme));
    EXPECT_EQ(sim.quantizer_args()["quant_scheme"], reported);
  }
}

TEST(ReferenceSemantics, QuantsimDefaultConfigKeepsItsBatchNormLayout) {
  // quantsim's own default spells the folding out with Conv+BatchNormalization(+Relu)
  // supergroups; with the reference's rule the result is the same.
  ConvBnRelu net;
  qs::QuantizationSimModel sim(net.ptr(), [&] { net(at::randn({1, 2, 6, 6})); });
  expect_folded_layout(net);
  EXPECT_EQ(qdq(net->conv->param_quantizers["weight"])->shape(),
            (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_TRUE(qdq(net->conv->param_quantizers["weight"])->symmetric());
}

TEST(ReferenceSemantics, OpTypeOverridesOfAFoldedPair) {
  // Without a Relu supergroup the conv's output setting lands on the batch norm's output, whatever
  // the batch norm's own op type says; the quantizer keeps the batch norm's symmetry; batch-norm
  // parameters stay float even when configured quantized.
  auto config = reference_default();
  config["supergroups"] = json::array();
  config["op_type"] = {
      {"BatchNormalization",
       {{"is_output_quantized", "False"}, {"params", {{"weight", {{"is_quantized", "True"}}}}}}},
      {"Conv", {{"is_symmetric", "True"}}}};
  {
    ConvBnRelu net;
    qs::QuantizationSimModel sim(
        net.ptr(),
        [&] {
          net(at::randn({1, 2, 6, 6}));
        },
        qs::SimOptions().config(config_of(config)));
    EXPECT_TRUE(filled(net->conv->input_quantizers[0]));
    EXPECT_TRUE(qdq(net->conv->input_quantizers[0])->symmetric());  // the Conv op type's
    EXPECT_FALSE(filled(net->conv->output_quantizers[0]));
    ASSERT_TRUE(filled(net->bn->output_quantizers[0]));
    EXPECT_FALSE(qdq(net->bn->output_quantizers[0])->symmetric());
    EXPECT_FALSE(filled(net->bn->param_quantizers["weight"]));
    EXPECT_FALSE(filled(net->bn->input_quantizers[0]));
    EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
  }
  config["op_type"] = {{"Conv", {{"is_output_quantized", "False"}}}};
  {
    ConvBnRelu net;
    qs::QuantizationSimModel sim(
        net.ptr(),
        [&] {
          net(at::randn({1, 2, 6, 6}));
        },
        qs::SimOptions().config(config_of(config)));
    EXPECT_FALSE(filled(net->conv->output_quantizers[0]));
    EXPECT_FALSE(filled(net->bn->output_quantizers[0]));  // the conv's "False", moved
    EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
  }
}

TEST(ReferenceSemantics, BatchNormInTrainingModeIsFoldedToo) {
  // The reference's rule looks at the graph only, not at the batch norm's mode.
  ConvBnRelu net;
  net->train();
  qs::QuantizationSimModel sim(
      net.ptr(),
      [&] {
        net(at::randn({2, 2, 6, 6}));
      },
      qs::SimOptions().config(config_of(reference_default())));
  expect_folded_layout(net);
  EXPECT_TRUE(net->bn->is_training());
}

namespace {

/// Pairs the reference does not fold, each followed by nothing: a grouped transposed conv, a
/// batch norm before a conv, a conv whose output also feeds another module, a Conv3d ->
/// BatchNorm3d (other connected-graph types in the reference), a conv read through a view; and
/// two it does fold: Linear -> BatchNorm1d and Conv1d -> BatchNorm1d.
struct PairsImpl : torch::nn::Module {
  PairsImpl() {
    deconv = register_module("deconv", qs::nn::FakeQuantizedConvTranspose2d(
                                           torch::nn::ConvTranspose2dOptions(4, 4, 1).groups(2)));
    deconv_bn = register_module("deconv_bn", qs::nn::FakeQuantizedBatchNorm2d(4));
    first_bn = register_module("first_bn", qs::nn::FakeQuantizedBatchNorm2d(4));
    after_bn = register_module("after_bn", qs::nn::FakeQuantizedConv2d(4, 4, 1));
    shared = register_module("shared", qs::nn::FakeQuantizedConv2d(4, 4, 1));
    shared_bn = register_module("shared_bn", qs::nn::FakeQuantizedBatchNorm2d(4));
    shared_other = register_module("shared_other", qs::nn::FakeQuantizedReLU());
    conv3d = register_module("conv3d", qs::nn::FakeQuantizedConv3d(4, 4, 1));
    bn3d = register_module("bn3d", qs::nn::FakeQuantizedBatchNorm3d(4));
    viewed = register_module("viewed", qs::nn::FakeQuantizedConv2d(4, 4, 4));
    viewed_bn = register_module("viewed_bn", qs::nn::FakeQuantizedBatchNorm1d(4));
    linear = register_module("linear", qs::nn::FakeQuantizedLinear(4, 4));
    linear_bn = register_module("linear_bn", qs::nn::FakeQuantizedBatchNorm1d(4));
    conv1d = register_module("conv1d", qs::nn::FakeQuantizedConv1d(4, 4, 1));
    conv1d_bn = register_module("conv1d_bn", qs::nn::FakeQuantizedBatchNorm1d(4));
  }
  at::Tensor forward(const at::Tensor& x) {  // x: (N, 4, 4, 4)
    auto a = deconv_bn(deconv(x));
    auto b = after_bn(first_bn(x));
    auto s = shared(x);
    auto c = shared_bn(s) + shared_other(s);
    auto d = bn3d(conv3d(x.unsqueeze(2)));
    auto e = viewed_bn(viewed(x).flatten(1));
    auto f = linear_bn(linear(x.mean({2, 3})));
    auto g = conv1d_bn(conv1d(x.flatten(2)));
    return a.sum() + b.sum() + c.sum() + d.sum() + e.sum() + f.sum() + g.sum();
  }
  qs::nn::FakeQuantizedConvTranspose2d deconv{nullptr};
  qs::nn::FakeQuantizedBatchNorm2d deconv_bn{nullptr}, first_bn{nullptr}, shared_bn{nullptr};
  qs::nn::FakeQuantizedConv2d after_bn{nullptr}, shared{nullptr}, viewed{nullptr};
  qs::nn::FakeQuantizedReLU shared_other{nullptr};
  qs::nn::FakeQuantizedConv3d conv3d{nullptr};
  qs::nn::FakeQuantizedBatchNorm3d bn3d{nullptr};
  qs::nn::FakeQuantizedBatchNorm1d viewed_bn{nullptr}, linear_bn{nullptr}, conv1d_bn{nullptr};
  qs::nn::FakeQuantizedLinear linear{nullptr};
  qs::nn::FakeQuantizedConv1d conv1d{nullptr};
};
TORCH_MODULE(Pairs);

}  // namespace

TEST(ReferenceSemantics, WhichPairsFold) {
  Pairs net;
  net->eval();
  auto config = reference_default();
  config["supergroups"] = json::array();
  config["model_input"] = json::object();
  qs::QuantizationSimModel sim(
      net.ptr(),
      [&] {
        net(at::randn({2, 4, 4, 4}));
      },
      qs::SimOptions().config(config_of(config)));
  const auto not_folded = [](const char* what, const auto& conv, const auto& bn) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(filled(conv->output_quantizers[0]));
    EXPECT_TRUE(filled(bn->output_quantizers[0]));
    EXPECT_TRUE(filled(bn->param_quantizers["weight"]));
    EXPECT_FALSE(filled(bn->param_quantizers["bias"]));  // the "bias" rule, as everywhere
  };
  not_folded("grouped ConvTranspose2d", net->deconv, net->deconv_bn);
  not_folded("output shared", net->shared, net->shared_bn);
  not_folded("Conv3d -> BatchNorm3d", net->conv3d, net->bn3d);
  not_folded("read through a view", net->viewed, net->viewed_bn);
  // A batch norm before a conv is not folded by the configurator either.
  EXPECT_TRUE(filled(net->first_bn->output_quantizers[0]));
  EXPECT_TRUE(filled(net->first_bn->param_quantizers["weight"]));
  const auto folded = [](const char* what, const auto& conv, const auto& bn) {
    SCOPED_TRACE(what);
    EXPECT_FALSE(filled(conv->output_quantizers[0]));
    EXPECT_TRUE(filled(bn->output_quantizers[0]));
    EXPECT_FALSE(filled(bn->input_quantizers[0]));
    EXPECT_FALSE(filled(bn->param_quantizers["weight"]));
  };
  folded("Linear -> BatchNorm1d", net->linear, net->linear_bn);
  folded("Conv1d -> BatchNorm1d", net->conv1d, net->conv1d_bn);
}

namespace {

/// A residual block: stem conv+relu, then conv-bn-relu-conv-bn added to the stem's output by a
/// custom::Add, then relu.
struct ResidualImpl : torch::nn::Module {
  ResidualImpl() {
    auto conv = [](int64_t in) {
      return qs::nn::FakeQuantizedConv2d(torch::nn::Conv2dOptions(in, 4, 3).padding(1));
    };
    conv0 = register_module("conv0", conv(2));
    relu0 = register_module("relu0", qs::nn::FakeQuantizedReLU());
    conv1 = register_module("conv1", conv(4));
    bn1 = register_module("bn1", qs::nn::FakeQuantizedBatchNorm2d(4));
    relu1 = register_module("relu1", qs::nn::FakeQuantizedReLU());
    conv2 = register_module("conv2", conv(4));
    bn2 = register_module("bn2", qs::nn::FakeQuantizedBatchNorm2d(4));
    register_module("add", add);
    relu = register_module("relu", qs::nn::FakeQuantizedReLU());
    randomize_batch_norm(*bn1, 4);
    randomize_batch_norm(*bn2, 4);
    eval();
  }
  at::Tensor forward(const at::Tensor& x) {
    auto a = relu0(conv0(x));
    auto b = bn2(conv2(relu1(bn1(conv1(a)))));
    return relu(add(b, a));
  }
  qs::nn::FakeQuantizedConv2d conv0{nullptr}, conv1{nullptr}, conv2{nullptr};
  qs::nn::FakeQuantizedReLU relu0{nullptr}, relu1{nullptr}, relu{nullptr};
  qs::nn::FakeQuantizedBatchNorm2d bn1{nullptr}, bn2{nullptr};
  qs::nn::custom::QuantizedAdd add;
};
TORCH_MODULE(Residual);

at::Tensor conv_by_hand(const qs::nn::FakeQuantizedConv2d& conv, const at::Tensor& x) {
  return F::conv2d(x, apply(conv->param_quantizers["weight"], conv->weight),
                   F::Conv2dFuncOptions().bias(conv->bias).padding(1));
}

}  // namespace

TEST(ReferenceSemantics, ResidualBlockWithCustomAdd) {
  torch::manual_seed(3);
  Residual net;
  const auto x = at::randn({2, 2, 5, 5});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, qs::SimOptions().config(config_of(reference_default())));
  EXPECT_EQ(std::find_if(sim.modules().begin(), sim.modules().end(),
                         [](const qs::SimModule& m) { return m.name == "add"; })
                ->type,
            "Add");
  // Conv+Relu at the stem; Conv+Relu through bn1; conv2's output moves to bn2; Add+Relu.
  EXPECT_TRUE(filled(net->conv0->input_quantizers[0]));
  EXPECT_FALSE(filled(net->conv0->output_quantizers[0]));
  EXPECT_TRUE(filled(net->relu0->output_quantizers[0]));
  EXPECT_FALSE(filled(net->conv1->input_quantizers[0]));
  EXPECT_FALSE(filled(net->conv1->output_quantizers[0]));
  EXPECT_FALSE(filled(net->bn1->output_quantizers[0]));
  EXPECT_FALSE(filled(net->bn1->param_quantizers["weight"]));
  EXPECT_TRUE(filled(net->relu1->output_quantizers[0]));
  EXPECT_FALSE(filled(net->conv2->output_quantizers[0]));
  EXPECT_TRUE(filled(net->bn2->output_quantizers[0]));
  EXPECT_FALSE(filled(net->bn2->input_quantizers[0]));
  EXPECT_FALSE(filled(net->bn2->param_quantizers["weight"]));
  EXPECT_FALSE(filled(net->add->input_quantizers[0]));
  EXPECT_FALSE(filled(net->add->input_quantizers[1]));
  EXPECT_FALSE(filled(net->add->output_quantizers[0]));
  EXPECT_FALSE(filled(net->relu->input_quantizers[0]));
  EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
  for (const auto& conv : {net->conv0, net->conv1, net->conv2}) {
    EXPECT_TRUE(filled(conv->param_quantizers["weight"]));
    EXPECT_FALSE(filled(conv->param_quantizers["bias"]));
  }

  sim.compute_encodings([&] { net(x); });
  at::NoGradGuard no_grad;
  const auto data = at::randn({3, 2, 5, 5});
  const auto a =
      apply(net->relu0->output_quantizers[0],
            at::relu(conv_by_hand(net->conv0, apply(net->conv0->input_quantizers[0], data))));
  const auto h = apply(net->relu1->output_quantizers[0],
                       at::relu(batch_norm_eval(*net->bn1, conv_by_hand(net->conv1, a))));
  const auto b = apply(net->bn2->output_quantizers[0],
                       batch_norm_eval(*net->bn2, conv_by_hand(net->conv2, h)));
  const auto expected = apply(net->relu->output_quantizers[0], at::relu(b + a));
  EXPECT_TRUE(net(data).equal(expected));

  const auto dir = fresh_dir("residual");
  sim.export_encodings(dir.string(), "res");
  const auto exported = read_json(dir / "res.encodings");
  EXPECT_EQ(keys(exported["activation_encodings"]),
            (std::set<std::string>{"conv0.input_0", "relu0.output_0", "relu1.output_0",
                                   "bn2.output_0", "relu.output_0"}));
  EXPECT_EQ(keys(exported["param_encodings"]),
            (std::set<std::string>{"conv0.weight", "conv1.weight", "conv2.weight"}));
}

namespace {

/// A depthwise conv whose output is quantized and read by an AvgPool whose input is quantized:
/// one tensor, two slots. `pool_first` registers the pool before the conv (named_modules order).
struct DepthwisePoolImpl : torch::nn::Module {
  explicit DepthwisePoolImpl(bool pool_first) {
    if (pool_first) register_module("pool", pool);
    register_module("dw", dw);
    if (!pool_first) register_module("pool", pool);
  }
  at::Tensor forward(const at::Tensor& x) { return pool(dw(x)); }
  qs::nn::FakeQuantizedConv2d dw{torch::nn::Conv2dOptions(4, 4, 3).groups(4).padding(1)};
  qs::nn::FakeQuantizedAvgPool2d pool{2};
};
TORCH_MODULE(DepthwisePool);

qs::QuantsimConfig pool_input_quantized() {
  auto config = reference_default();
  config["op_type"] = {{"AveragePool", {{"is_input_quantized", "True"}}}};
  return config_of(config);
}

}  // namespace

TEST(ReferenceSemantics, OneEncodingEntryPerTensor) {
  torch::manual_seed(4);
  DepthwisePool net(/*pool_first=*/false);
  const auto x = at::randn({2, 4, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, qs::SimOptions().config(pool_input_quantized()));
  // Both slots stay in the forward pass, as in the reference.
  ASSERT_TRUE(filled(net->dw->output_quantizers[0]));
  ASSERT_TRUE(filled(net->pool->input_quantizers[0]));
  sim.compute_encodings([&] { net(x); });
  {
    at::NoGradGuard no_grad;
    const auto data = at::randn({3, 4, 6, 6});
    const auto& dw = net->dw;
    const auto y = F::conv2d(apply(dw->input_quantizers[0], data),
                             apply(dw->param_quantizers["weight"], dw->weight),
                             F::Conv2dFuncOptions().bias(dw->bias).padding(1).groups(4));
    const auto pooled =
        F::avg_pool2d(apply(net->pool->input_quantizers[0], apply(dw->output_quantizers[0], y)),
                      F::AvgPool2dFuncOptions(2));
    EXPECT_TRUE(net(data).equal(apply(net->pool->output_quantizers[0], pooled)));
  }

  const auto dir = fresh_dir("depthwise");
  sim.export_encodings(dir.string(), "v061");
  const auto v061 = read_json(dir / "v061.encodings");
  // The pool's input is written after the conv's output: its entry is the tensor's.
  EXPECT_EQ(keys(v061["activation_encodings"]),
            (std::set<std::string>{"dw.input_0", "pool.input_0", "pool.output_0"}));
  EXPECT_EQ(v061["activation_encodings"]["pool.input_0"],
            json(*net->pool->input_quantizers[0]->get_legacy_encodings()));
  // The torch layout keeps every slot (it is what load_encodings reads back).
  const auto torch_layout = read_json(dir / "v061_torch.encodings");
  EXPECT_TRUE(torch_layout["activation_encodings"]["dw"].contains("output"));
  EXPECT_TRUE(torch_layout["activation_encodings"]["pool"].contains("input"));

  sim.export_encodings(dir.string(), "v100", qs::EncodingVersion::k1_0_0);
  const auto v100 = read_json(dir / "v100.encodings");
  EXPECT_EQ(names(v100["activation_encodings"]),
            (std::set<std::string>{"dw.input_0", "pool.input_0", "pool.output_0"}));
  EXPECT_EQ(v100["activation_encodings"].size(), 3u);
}

TEST(ReferenceSemantics, TheEntryWrittenLastIsKept) {
  // With the pool registered first, the reference writes the pool's input before the conv's
  // output, which then names the tensor.
  DepthwisePool net(/*pool_first=*/true);
  const auto x = at::randn({2, 4, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, qs::SimOptions().config(pool_input_quantized()));
  sim.compute_encodings([&] { net(x); });
  const auto dir = fresh_dir("pool_first");
  sim.export_encodings(dir.string(), "net");
  EXPECT_EQ(keys(read_json(dir / "net.encodings")["activation_encodings"]),
            (std::set<std::string>{"dw.input_0", "dw.output_0", "pool.output_0"}));
}
