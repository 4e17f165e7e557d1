// QuantizationSimModel: slots filled from the configuration, dataflow recorded from a hand-written
// forward (supergroups, model inputs, functional ops), quant schemes, calibration.

#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/nn/convert.h>
#include <quantsim/nn/custom.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/quantsim_model.h>

#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <fstream>
#include <stdexcept>

namespace qs = quantsim;

namespace {

/// conv -> bn -> relu -> pool -> flatten (a view) -> fc, written as a C++ model is.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv",
                           qs::nn::QuantizedConv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)));
    bn = register_module("bn", qs::nn::FakeQuantizedBatchNorm2d(4));
    relu = register_module("relu", qs::nn::FakeQuantizedReLU());
    pool = register_module("pool", qs::nn::FakeQuantizedMaxPool2d(2));
    fc = register_module("fc", qs::nn::QuantizedLinear(4 * 4 * 4, 10));
  }
  at::Tensor forward(const at::Tensor& x) { return fc(pool(relu(bn(conv(x)))).flatten(1)); }
  qs::nn::QuantizedConv2d conv{nullptr};
  qs::nn::FakeQuantizedBatchNorm2d bn{nullptr};
  qs::nn::FakeQuantizedReLU relu{nullptr};
  qs::nn::FakeQuantizedMaxPool2d pool{nullptr};
  qs::nn::QuantizedLinear fc{nullptr};
};
TORCH_MODULE(Net);

/// Two branches joined by an add, a functional op feeding a module, a Linear whose output feeds
/// two modules, and a module the forward never calls.
struct BranchesImpl : torch::nn::Module {
  BranchesImpl() {
    for (auto* linear : {&lin1, &lin2, &lin3, &lin4, &unused}) {
      *linear = qs::nn::QuantizedLinear(4, 4);
    }
    register_module("lin1", lin1);
    register_module("lin2", lin2);
    register_module("lin3", lin3);
    register_module("lin4", lin4);
    register_module("unused", unused);
    register_module("add", add);
    register_module("add2", add2);
    register_module("relu", relu);
    register_module("relu2", relu2);
  }
  at::Tensor forward(const at::Tensor& x) {
    auto joined = lin3(relu(add(lin1(x), lin2(torch::relu(x)))));
    auto c = lin4(x);
    return add2(relu2(c), c) + joined;
  }
  qs::nn::QuantizedLinear lin1{nullptr}, lin2{nullptr}, lin3{nullptr}, lin4{nullptr},
      unused{nullptr};
  qs::nn::custom::QuantizedAdd add, add2;
  qs::nn::FakeQuantizedReLU relu, relu2;
};
TORCH_MODULE(Branches);

bool filled(const qs::nn::QuantizerSlot& slot) { return static_cast<bool>(slot); }

std::shared_ptr<qs::affine::QuantizeDequantizeImpl> qdq(const qs::nn::QuantizerSlot& slot) {
  return slot.as<qs::affine::QuantizeDequantizeImpl>();
}

const qs::SimModule& find(const qs::QuantizationSimModel& sim, const std::string& name) {
  for (const auto& module : sim.modules()) {
    if (module.name == name) return module;
  }
  throw std::out_of_range("no module " + name);
}

}  // namespace

TEST(QuantizationSimModel, DefaultConfigOnAHandWrittenForward) {
  Net net;
  const auto sample = at::randn({2, 1, 8, 8});
  qs::QuantizationSimModel sim(net.ptr(), [&] { net(sample); });

  ASSERT_EQ(sim.modules().size(), 5u);
  EXPECT_EQ(find(sim, "conv").type, "Conv2d");
  EXPECT_EQ(find(sim, "bn").type, "BatchNorm2d");
  EXPECT_EQ(find(sim, "fc").type, "Linear");
  // The recorded dataflow: fc reads pool's output through a flatten view.
  EXPECT_EQ(find(sim, "fc").producers[0],
            std::vector<const qs::nn::BaseQuantizationMixin*>{find(sim, "pool").module});
  EXPECT_EQ(find(sim, "conv").producers[0],
            std::vector<const qs::nn::BaseQuantizationMixin*>{nullptr});
  EXPECT_EQ(find(sim, "conv").consumers, std::vector<int64_t>{1});
  EXPECT_EQ(find(sim, "fc").consumers, std::vector<int64_t>{0});

  // The model input is quantized; Conv -> BatchNorm -> ReLU is one supergroup (only ReLU's output
  // quantized); every other output is quantized and feeds the next module unquantized.
  EXPECT_TRUE(filled(net->conv->input_quantizers[0]));
  EXPECT_FALSE(filled(net->conv->output_quantizers[0]));
  EXPECT_FALSE(filled(net->bn->input_quantizers[0]));
  EXPECT_FALSE(filled(net->bn->output_quantizers[0]));
  EXPECT_FALSE(filled(net->relu->input_quantizers[0]));
  EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
  EXPECT_TRUE(filled(net->pool->output_quantizers[0]));
  EXPECT_FALSE(filled(net->fc->input_quantizers[0]));
  EXPECT_TRUE(filled(net->fc->output_quantizers[0]));

  // Weights 8-bit symmetric per output channel; biases and batch-norm parameters float.
  auto conv_weight = qdq(net->conv->param_quantizers["weight"]);
  ASSERT_NE(conv_weight, nullptr);
  EXPECT_EQ(conv_weight->shape(), (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_EQ(conv_weight->bitwidth(), 8);
  EXPECT_TRUE(conv_weight->symmetric());
  EXPECT_EQ(qdq(net->fc->param_quantizers["weight"])->shape(), (std::vector<int64_t>{10, 1}));
  EXPECT_FALSE(filled(net->conv->param_quantizers["bias"]));
  EXPECT_FALSE(filled(net->fc->param_quantizers["bias"]));
  EXPECT_FALSE(filled(net->bn->param_quantizers["weight"]));
  EXPECT_FALSE(filled(net->bn->param_quantizers["bias"]));

  // Activations 8-bit asymmetric per tensor, MinMax, frozen ranges (post-training).
  auto act = qdq(net->relu->output_quantizers[0]);
  EXPECT_EQ(act->shape(), std::vector<int64_t>{});
  EXPECT_EQ(act->bitwidth(), 8);
  EXPECT_FALSE(act->symmetric());
  EXPECT_NE(std::dynamic_pointer_cast<qs::MinMaxEncodingAnalyzer>(act->encoding_analyzer()),
            nullptr);
  EXPECT_FALSE(act->min.requires_grad());
  EXPECT_FALSE(conv_weight->max.requires_grad());
}

TEST(QuantizationSimModel, RecordingLeavesTheModelAsItWas) {
  Net net;
  net->train();
  const auto running_mean = net->bn->running_mean.clone();
  qs::QuantizationSimModel sim(net.ptr(), [&] { net(at::randn({2, 1, 8, 8}) + 3); });
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(net->bn->is_training());
  EXPECT_TRUE(net->bn->running_mean.equal(running_mean));
}

TEST(QuantizationSimModel, BranchesFunctionalOpsAndUncalledModules) {
  Branches model;
  qs::QuantizationSimModel sim(model.ptr(), [&] { model(at::randn({3, 4})); });
  // Model inputs and a functional op's result are quantized where a module reads them.
  EXPECT_TRUE(filled(model->lin1->input_quantizers[0]));
  EXPECT_TRUE(filled(model->lin2->input_quantizers[0]));
  EXPECT_TRUE(filled(model->lin4->input_quantizers[0]));
  // Both inputs of the add come from quantized Linear outputs; Add -> ReLU is a supergroup.
  EXPECT_FALSE(filled(model->add->input_quantizers[0]));
  EXPECT_FALSE(filled(model->add->input_quantizers[1]));
  EXPECT_FALSE(filled(model->add->output_quantizers[0]));
  EXPECT_TRUE(filled(model->relu->output_quantizers[0]));
  EXPECT_TRUE(filled(model->lin1->output_quantizers[0]));
  EXPECT_FALSE(filled(model->lin3->input_quantizers[0]));
  // lin4 -> relu2 matches Gemm -> Relu, but lin4's output also feeds add2: not fused.
  EXPECT_EQ(find(sim, "lin4").consumers, std::vector<int64_t>{2});
  EXPECT_TRUE(filled(model->lin4->output_quantizers[0]));
  EXPECT_FALSE(filled(model->add2->input_quantizers[0]));
  EXPECT_FALSE(filled(model->add2->input_quantizers[1]));
  // A module the forward never calls: configured by op type alone.
  EXPECT_FALSE(find(sim, "unused").called);
  EXPECT_FALSE(filled(model->unused->input_quantizers[0]));
  EXPECT_TRUE(filled(model->unused->output_quantizers[0]));
  EXPECT_TRUE(filled(model->unused->param_quantizers["weight"]));
}

TEST(QuantizationSimModel, QuantSchemesChooseAnalyzersAndTrainability) {
  struct Case {
    qs::QuantScheme scheme;
    const char* name;
    bool trainable;
  };
  const Case cases[] = {
      {qs::QuantScheme::kPostTrainingTf, "post_training_tf", false},
      {qs::QuantScheme::kPostTrainingTfEnhanced, "post_training_tf_enhanced", false},
      {qs::QuantScheme::kPostTrainingPercentile, "post_training_percentile", false},
      {qs::QuantScheme::kTrainingRangeLearningWithTfInit, "training_range_learning_with_tf_init",
       true},
      {qs::QuantScheme::kTrainingRangeLearningWithTfEnhancedInit,
       "training_range_learning_with_tf_enhanced_init", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(qs::quant_scheme_from_string(c.name), c.scheme);
    EXPECT_EQ(qs::to_string(c.scheme), c.name);
    Net net;
    qs::QuantizationSimModel sim(
        net.ptr(),
        [&] {
          net(at::randn({1, 1, 8, 8}));
        },
        qs::SimOptions()
            .quant_scheme(c.scheme)
            .default_param_bw(4)
            .default_output_bw(16)
            .percentile(99.5));
    auto weight = qdq(net->conv->param_quantizers["weight"]);
    auto act = qdq(net->fc->output_quantizers[0]);
    EXPECT_EQ(weight->bitwidth(), 4);
    EXPECT_EQ(act->bitwidth(), 16);
    EXPECT_EQ(weight->min.requires_grad(), c.trainable);
    EXPECT_EQ(act->max.requires_grad(), c.trainable);
    const auto& analyzer = act->encoding_analyzer();
    switch (c.scheme) {
      case qs::QuantScheme::kPostTrainingPercentile: {
        auto percentile = std::dynamic_pointer_cast<qs::PercentileEncodingAnalyzer>(analyzer);
        ASSERT_NE(percentile, nullptr);
        EXPECT_EQ(percentile->percentile(), 99.5);
        break;
      }
      case qs::QuantScheme::kPostTrainingTfEnhanced:
      case qs::QuantScheme::kTrainingRangeLearningWithTfEnhancedInit:
        EXPECT_NE(std::dynamic_pointer_cast<qs::SqnrEncodingAnalyzer>(analyzer), nullptr);
        break;
      default:
        EXPECT_NE(std::dynamic_pointer_cast<qs::MinMaxEncodingAnalyzer>(analyzer), nullptr);
    }
  }
  EXPECT_THROW(qs::quant_scheme_from_string("tf"), c10::ValueError);
}

TEST(QuantizationSimModel, ComputeEncodingsInitializesEveryQuantizer) {
  torch::manual_seed(0);
  Net net;
  net->eval();
  const auto data = at::randn({16, 1, 8, 8});
  qs::QuantizationSimModel sim(net.ptr(), [&] { net(data.slice(0, 0, 2)); });
  at::Tensor expected;
  {
    at::NoGradGuard no_grad;
    auto float_model = sim.modules();  // keep the structure; compare with all quantizers removed
    std::vector<qs::nn::QuantizerRemoval> removals;
    for (auto& m : float_model) removals.push_back(m.module->remove_all_quantizers());
    expected = net(data);
  }
  sim.compute_encodings([&] { net(data); });
  for (const auto& module : sim.modules()) {
    for (auto* slots : {&module.module->input_quantizers, &module.module->output_quantizers,
                        &module.module->param_quantizers}) {
      for (const auto& quantizer : (*slots)->unique_quantizers()) {
        EXPECT_TRUE(quantizer->is_initialized()) << module.name << " " << slots->name();
      }
    }
  }
  at::NoGradGuard no_grad;
  const auto actual = net(data);
  EXPECT_FALSE(actual.equal(expected));  // quantized
  EXPECT_LT((actual - expected).abs().max().item<float>(), 0.1f);
}

TEST(QuantizationSimModel, ConfigFileSettingsApply) {
  auto config = qs::QuantsimConfig::parse(nlohmann::json::parse(R"({
    "defaults": {"ops": {"is_output_quantized": "True"},
                 "params": {"is_quantized": "True", "is_symmetric": "False"},
                 "per_channel_quantization": "False"},
    "params": {"bias": {"is_quantized": "True"}},
    "op_type": {"Relu": {"encoding_constraints": {"min": 0.0, "max": 6.0}},
                "Gemm": {"is_output_quantized": "False", "per_channel_quantization": "True"},
                "MaxPool2d": {"is_input_quantized": "True"}},
    "supergroups": [],
    "model_input": {"is_input_quantized": "False"},
    "model_output": {"is_output_quantized": "True"}
  })"));
  Net net;
  const auto data = at::randn({2, 1, 8, 8});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(data); }, qs::SimOptions().config(config));
  EXPECT_FALSE(filled(net->conv->input_quantizers[0]));  // model_input off
  // No supergroups; conv -> bn is folded whatever the file says: the conv's output setting
  // moves to the batch norm's output (docs/quantization.md §11).
  EXPECT_FALSE(filled(net->conv->output_quantizers[0]));
  EXPECT_TRUE(filled(net->bn->output_quantizers[0]));
  EXPECT_TRUE(filled(net->relu->output_quantizers[0]));
  EXPECT_TRUE(filled(net->pool->input_quantizers[0]));  // is_input_quantized
  EXPECT_TRUE(filled(net->fc->output_quantizers[0]));   // Gemm off, but the model output
  auto conv_weight = qdq(net->conv->param_quantizers["weight"]);
  EXPECT_EQ(conv_weight->shape(), std::vector<int64_t>{});  // per-tensor by default
  EXPECT_FALSE(conv_weight->symmetric());
  EXPECT_EQ(qdq(net->fc->param_quantizers["weight"])->shape(), (std::vector<int64_t>{10, 1}));
  EXPECT_TRUE(filled(net->fc->param_quantizers["bias"]));
  EXPECT_FALSE(filled(net->bn->param_quantizers["weight"]));  // folded: float
  // encoding_constraints: the range is set and frozen, calibration leaves it alone.
  auto relu = qdq(net->relu->output_quantizers[0]);
  EXPECT_TRUE(relu->is_initialized());
  EXPECT_FALSE(relu->overwrite_allowed());
  sim.compute_encodings([&] { net(data * 100); });
  EXPECT_EQ(relu->min.item<float>(), 0.0f);
  EXPECT_EQ(relu->max.item<float>(), 6.0f);
}

TEST(QuantizationSimModel, TransposedConvWeightsArePerChannelOnAxisOne) {
  qs::nn::FakeQuantizedConvTranspose2d deconv(torch::nn::ConvTranspose2dOptions(2, 6, 3));
  qs::QuantizationSimModel sim(deconv.ptr(), [&] { deconv(at::randn({1, 2, 5, 5})); });
  EXPECT_EQ(find(sim, "").type, "ConvTranspose2d");
  EXPECT_EQ(qdq(deconv->param_quantizers["weight"])->shape(), (std::vector<int64_t>{1, 6, 1, 1}));
}

TEST(QuantizationSimModel, Errors) {
  auto plain = std::make_shared<torch::nn::Module>();
  EXPECT_THROW(qs::QuantizationSimModel(plain, [] {}), c10::Error);
  Net net;
  EXPECT_THROW(qs::QuantizationSimModel(
                   net.ptr(), [] {}, qs::SimOptions().default_param_bw(0)),
               c10::ValueError);
  EXPECT_THROW(qs::QuantizationSimModel(
                   net.ptr(), [] {}, qs::SimOptions().default_output_bw(33)),
               c10::ValueError);
  // A failing recorded pass puts the quantizers it took out back.
  auto mine = qs::affine::QuantizeDequantize({}, 8, false);
  net->conv->output_quantizers[0] = mine;
  EXPECT_THROW(qs::QuantizationSimModel(net.ptr(),
                                        [&] {
                                          net(at::randn({1, 3, 8, 8}));
                                        }),
               c10::Error);
  EXPECT_EQ(net->conv->output_quantizers[0].get(), mine.ptr());
}

TEST(QuantizationSimModel, ExportLoadAndSaveRoundTripsThroughASecondSimulation) {
  torch::manual_seed(1);
  Net net;
  net->eval();
  const auto data = at::randn({8, 1, 8, 8});
  Net copy;  // the same float model
  {
    at::NoGradGuard no_grad;
    auto source = net->named_parameters();
    for (auto& p : copy->named_parameters()) p.value().copy_(source[p.key()]);
    auto source_buffers = net->named_buffers();
    for (auto& b : copy->named_buffers()) b.value().copy_(source_buffers[b.key()]);
  }
  copy->eval();
  const auto options =
      qs::SimOptions().quant_scheme(qs::QuantScheme::kPostTrainingTfEnhanced).default_param_bw(4);
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(data); }, options);
  sim.compute_encodings([&] { net(data); });
  const std::string dir = ::testing::TempDir() + "quantsim_model_test";
  sim.export_encodings(dir, "net", qs::EncodingVersion::k1_0_0);
  sim.save(dir + "/net.pt");
  at::NoGradGuard no_grad;
  const auto expected = net(data);

  // The exported file names its settings.
  std::ifstream file(dir + "/net.encodings");
  const auto exported = nlohmann::json::parse(file);
  EXPECT_EQ(exported["version"], "1.0.0");
  EXPECT_EQ(exported["quantizer_args"],
            nlohmann::json({{"quant_scheme", "post_training_tf_enhanced"},
                            {"param_bitwidth", 4},
                            {"activation_bitwidth", 8},
                            {"dtype", "int"},
                            {"is_symmetric", true},
                            {"per_channel_quantization", true}}));

  // A copy of the float model, simulated the same way, takes the encodings and reproduces the
  // simulated outputs bit for bit; so does one restored from the saved state.
  qs::QuantizationSimModel sim2(
      copy.ptr(), [&] { copy(data); }, options);
  sim2.load_encodings(dir + "/net_torch.encodings");
  EXPECT_TRUE(copy(data).equal(expected));

  Net fresh;
  qs::QuantizationSimModel sim3(
      fresh.ptr(), [&] { fresh(data); }, options);
  sim3.load(dir + "/net.pt");
  fresh->eval();
  EXPECT_TRUE(fresh(data).equal(expected));
}

TEST(QuantizationSimModel, ConvertedSequentialIsRecordedLikeAHandWrittenForward) {
  torch::nn::Sequential float_model(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)),
                                    torch::nn::BatchNorm2d(4), torch::nn::ReLU(),
                                    torch::nn::Flatten(), torch::nn::Linear(4 * 6 * 6, 3));
  auto model = qs::nn::convert(float_model);
  const auto x = at::randn({2, 1, 8, 8});
  qs::QuantizationSimModel sim(model.ptr(), [&] { model->forward(x); });
  ASSERT_EQ(sim.modules().size(), 5u);
  auto module = [&](const std::string& name) { return find(sim, name).module; };
  EXPECT_EQ(find(sim, "0").type, "Conv2d");
  EXPECT_EQ(find(sim, "4").producers[0],
            std::vector<const qs::nn::BaseQuantizationMixin*>{module("3")});
  EXPECT_TRUE(filled(module("0")->input_quantizers[0]));
  EXPECT_FALSE(filled(module("0")->output_quantizers[0]));  // Conv -> BatchNorm -> ReLU
  EXPECT_FALSE(filled(module("1")->output_quantizers[0]));
  EXPECT_TRUE(filled(module("2")->output_quantizers[0]));
  EXPECT_FALSE(filled(module("4")->input_quantizers[0]));
  EXPECT_TRUE(filled(module("4")->output_quantizers[0]));
  // Shared parameters: the simulation quantizes the float model's own weight.
  EXPECT_TRUE(model->ptr(0)->named_parameters()["weight"].is_same(
      float_model->ptr(0)->named_parameters()["weight"]));
}
