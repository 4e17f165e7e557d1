// quantsim::export_onnx (include/quantsim/onnx/export.h): a model with quantizers (called
// through the quantsim operator library, as the quantizer modules do while tracing) exported as
// a QDQ graph that ONNX Runtime runs to quantsim's outputs, and as a float graph with the tensor
// each quantizer quantizes; unsupported ops are errors that write nothing.

#include <quantsim/affine/quantizer.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/nn/modules/custom_elementwise.h>
#include <quantsim/onnx/export.h>
#include <quantsim/ops.h>

#include "testing/files.h"
#include "testing/onnxruntime.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

namespace {

namespace qs = quantsim;
namespace nn = torch::nn;
namespace F = torch::nn::functional;
using qs::testing::OrtOptimization;

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "quantsim_export_test";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// What a quantizer module's forward records while tracing once the tracing hook is in:
/// quantsim::quantize_dequantize with the encoding computed from its min/max.
at::Tensor qdq(const qs::affine::QuantizeDequantize& q, const at::Tensor& x) {
  return qs::ops::quantize_dequantize(x, *q->get_scale(), *q->get_offset(), q->qmin(), q->qmax(),
                                      q->block_size());
}

/// Conv (per-channel 8-bit weights) -> ReLU -> Linear (4-bit blockwise weights), with 8-bit
/// asymmetric activations: input, conv output and linear output.
struct QNetImpl : nn::Module {
  QNetImpl()
      : conv(register_module("conv", nn::Conv2d(nn::Conv2dOptions(2, 4, 3).padding(1)))),
        fc(register_module("fc", nn::Linear(4 * 4 * 4, 6))),
        input_q(register_module("input_q", qs::affine::QuantizeDequantize({}, 8, false))),
        conv_w_q(
            register_module("conv_w_q", qs::affine::QuantizeDequantize({4, 1, 1, 1}, 8, true))),
        conv_out_q(register_module("conv_out_q", qs::affine::QuantizeDequantize({}, 8, false))),
        fc_w_q(register_module(
            "fc_w_q", qs::affine::QuantizeDequantize(
                          qs::affine::QuantizerOptions({6, 4}, 4, true).block_size({1, 16})))),
        fc_out_q(register_module("fc_out_q", qs::affine::QuantizeDequantize({}, 8, false))) {
    torch::manual_seed(11);
    input_q->set_range(-3, 3);
    conv_out_q->set_range(0, 2.5);
    fc_out_q->set_range(-1.5, 1.2);
    const auto w_abs = conv->weight.detach().abs().amax({1, 2, 3}, true);
    conv_w_q->set_range(-w_abs, w_abs);
    const auto fc_abs = fc->weight.detach().abs().view({6, 4, 16}).amax(2);
    fc_w_q->set_range(-fc_abs, fc_abs);
  }
  at::Tensor forward(const at::Tensor& input) {
    auto x = qdq(input_q, input);
    x = F::conv2d(x, qdq(conv_w_q, conv->weight),
                  F::Conv2dFuncOptions().bias(conv->bias).padding(1));
    x = qdq(conv_out_q, torch::relu(x));
    x = F::linear(x.flatten(1), qdq(fc_w_q, fc->weight), fc->bias);
    return qdq(fc_out_q, x);
  }
  nn::Conv2d conv;
  nn::Linear fc;
  qs::affine::QuantizeDequantize input_q, conv_w_q, conv_out_q, fc_w_q, fc_out_q;
};
TORCH_MODULE(QNet);

::onnx::ModelProto load(const std::string& path) {
  ::onnx::ModelProto model;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

std::set<std::string> tensor_names(const ::onnx::GraphProto& graph) {
  std::set<std::string> names;
  for (const auto& i : graph.input()) names.insert(i.name());
  for (const auto& i : graph.initializer()) names.insert(i.name());
  for (const auto& n : graph.node()) names.insert(n.output().begin(), n.output().end());
  return names;
}

}  // namespace

TEST(OnnxExport, QdqGraphRunsToQuantsimsOutputsInOnnxRuntime) {
  QS_REQUIRE_ONNXRUNTIME();
  QNet net;
  net->eval();
  const auto qdq_path = temp_path("qnet_qdq.onnx"), float_path = temp_path("qnet.onnx");
  torch::manual_seed(5);
  const auto x2 = torch::randn({2, 2, 4, 4}) * 2, x5 = torch::randn({5, 2, 4, 4}) * 2;
  const auto x256 = torch::randn({256, 2, 4, 4}) * 2;
  qs::export_onnx(net, x2, qs::OnnxExportOptions().qdq_path(qdq_path).float_path(float_path));
  const auto outputs = qs::testing::run_in_onnxruntime(
      qdq_path, {{{"input", x2}}, {{"input", x5}}, {{"input", x256}}}, OrtOptimization::kDisabled);
  torch::NoGradGuard no_grad;
  // The output is on fc_out_q's grid; the runtime's Gemm sums in another order, so an element
  // whose sum lies within its rounding error of a rounding tie may land one step away.
  const double step = net->fc_out_q->get_scale()->item<double>();
  for (const auto& [ort, x] :
       {std::make_pair(outputs[0].at(0), x2), std::make_pair(outputs[1].at(0), x5),
        std::make_pair(outputs[2].at(0), x256)}) {
    const auto expected = net->forward(x);
    ASSERT_EQ(ort.sizes(), expected.sizes());
    const auto diff = (ort - expected).abs();
    if (std::getenv("QUANTSIM_REPORT_DIFFS") != nullptr) {
      std::printf("qnet QDQ batch %ld: %ld of %ld elements differ, max |diff| %.3g (step %.3g)\n",
                  static_cast<long>(x.size(0)), static_cast<long>((diff > 0).sum().item<int64_t>()),
                  static_cast<long>(expected.numel()), diff.max().item<double>(), step);
    }
    EXPECT_LE(diff.max().item<double>(), step * 1.0001);
    EXPECT_LE((diff > 0).sum().item<int64_t>(), expected.numel() / 20) << "more than 5% differ";
  }
}

TEST(OnnxExport, FloatGraphNamesTheTensorEachQuantizerQuantizes) {
  QNet net;
  net->eval();
  const auto float_path = temp_path("qnet_float.onnx");
  const auto quantized = qs::export_onnx(net, torch::randn({2, 2, 4, 4}),
                                         qs::OnnxExportOptions().float_path(float_path));
  const auto model = load(float_path);
  const auto names = tensor_names(model.graph());
  std::set<std::string> quantizers;
  for (const auto& [quantizer, tensor] : quantized) {
    quantizers.insert(quantizer);
    EXPECT_EQ(names.count(tensor), 1u) << quantizer << " -> " << tensor;
  }
  EXPECT_EQ(quantizers,
            (std::set<std::string>{"conv_out_q", "conv_w_q", "fc_out_q", "fc_w_q", "input_q"}));
  EXPECT_EQ(quantized.at("input_q"), "input");
  EXPECT_EQ(quantized.at("conv_w_q"), "conv.weight");
  EXPECT_EQ(quantized.at("fc_w_q"), "fc.weight");
  EXPECT_EQ(quantized.at("fc_out_q"), "output");
  // The float graph has no quantization nodes; its initializers are the parameters, by name.
  for (const auto& node : model.graph().node()) {
    EXPECT_NE(node.op_type(), "QuantizeLinear");
    EXPECT_NE(node.op_type(), "DequantizeLinear");
  }
  std::set<std::string> initializers;
  for (const auto& i : model.graph().initializer()) initializers.insert(i.name());
  for (const char* name : {"conv.weight", "conv.bias", "fc.weight", "fc.bias"}) {
    EXPECT_EQ(initializers.count(name), 1u) << name;
  }
}

TEST(OnnxExport, UnsupportedOpIsAnErrorNamingOpAndModuleAndWritesNothing) {
  nn::Sequential model(nn::Linear(4, 3),
                       nn::Functional([](const at::Tensor& x) { return torch::cumsum(x, 1); }));
  model->eval();
  const auto path = temp_path("unsupported.onnx");
  qs::testing::write_text(path, "an earlier export");
  std::string message;
  try {
    qs::export_onnx(model, torch::randn({2, 4}), qs::OnnxExportOptions().qdq_path(path));
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  }
  EXPECT_NE(message.find("aten::cumsum"), std::string::npos) << message;
  EXPECT_NE(message.find("after module `0`"), std::string::npos) << message;
  EXPECT_EQ(qs::testing::read_file(path), "an earlier export");
}

namespace {

/// quantsim's own quantized modules (the quantizers record their operator while tracing).
struct SimNetImpl : nn::Module {
  SimNetImpl()
      : conv(register_module(
            "conv", qs::nn::FakeQuantizedConv2d(nn::Conv2dOptions(3, 8, 3).stride(2).padding(1)))),
        fc(register_module("fc", qs::nn::QuantizedLinear(nn::LinearOptions(8 * 4 * 4, 10)))) {
    conv->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    conv->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    conv->param_quantizers["weight"] = qs::affine::QuantizeDequantize({8, 1, 1, 1}, 8, true);
    fc->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    fc->param_quantizers["weight"] = qs::affine::QuantizeDequantize(
        qs::affine::QuantizerOptions({10, 4}, 4, true).block_size({1, 32}));
  }
  at::Tensor forward(const at::Tensor& x) {
    return fc->forward(torch::relu(conv->forward(x)).flatten(1));
  }
  qs::nn::FakeQuantizedConv2d conv;
  qs::nn::QuantizedLinear fc;
};
TORCH_MODULE(SimNet);

}  // namespace

TEST(OnnxExport, QuantizedModulesExportAndRunInOnnxRuntime) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(21);
  SimNet net;
  net->eval();
  const auto calibration = torch::randn({32, 3, 8, 8});
  {
    auto conv_calibrating = net->conv->compute_encodings();
    auto fc_calibrating = net->fc->compute_encodings();
    torch::NoGradGuard no_grad;
    net->forward(calibration);
  }
  const auto qdq_path = temp_path("simnet_qdq.onnx"), float_path = temp_path("simnet.onnx");
  const auto quantized =
      qs::export_onnx(net, torch::randn({2, 3, 8, 8}),
                      qs::OnnxExportOptions().qdq_path(qdq_path).float_path(float_path));
  EXPECT_EQ(quantized.at("conv.input_quantizers.0"), "input");
  EXPECT_EQ(quantized.count("conv.output_quantizers.0"), 1u);
  EXPECT_EQ(quantized.at("fc.output_quantizers.0"), "output");
  const auto x = torch::randn({64, 3, 8, 8});
  const auto output = qs::testing::run_in_onnxruntime(
      qdq_path, qs::testing::OrtInputs{{"input", x}}, OrtOptimization::kDisabled);
  torch::NoGradGuard no_grad;
  const auto expected = net->forward(x);
  const auto diff = (output.at(0) - expected).abs();
  const double step = net->fc->output_quantizers[0]->get_scale()->item<double>();
  if (std::getenv("QUANTSIM_REPORT_DIFFS") != nullptr) {
    std::printf("simnet QDQ: %ld of %ld elements differ, max |diff| %.3g (step %.3g)\n",
                static_cast<long>((diff > 0).sum().item<int64_t>()),
                static_cast<long>(expected.numel()), diff.max().item<double>(), step);
  }
  EXPECT_LE(diff.max().item<double>(), step * 1.0001);
  EXPECT_LE((diff > 0).sum().item<int64_t>(), expected.numel() / 20) << "more than 5% differ";
}

// The weights' quantizers as nodes over the named weights: while tracing,
// BaseQuantizationMixin::quantized_parameter skips its cache of quantized parameters, which the
// trace would otherwise record as an anonymous, already quantized constant.
TEST(OnnxExport, ParameterQuantizersAreNodesOverNamedWeights) {
  torch::manual_seed(21);
  SimNet net;
  net->eval();
  {
    auto conv_calibrating = net->conv->compute_encodings();
    auto fc_calibrating = net->fc->compute_encodings();
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({32, 3, 8, 8}));
  }
  net->forward(torch::randn({2, 3, 8, 8}));  // fills the cache
  const auto quantized = qs::export_onnx(net, torch::randn({2, 3, 8, 8}),
                                         qs::OnnxExportOptions().float_path(temp_path("w.onnx")));
  EXPECT_EQ(quantized.at("conv.param_quantizers.weight"), "conv.weight");
  EXPECT_EQ(quantized.at("fc.param_quantizers.weight"), "fc.weight");
}

TEST(OnnxExport, UninitializedOrCalibratingQuantizerIsAnErrorNamingIt) {
  SimNet net;
  net->eval();
  const auto path = temp_path("uninitialized.onnx");
  std::filesystem::remove(path);
  const auto message = [&] {
    try {
      qs::export_onnx(net, torch::randn({2, 3, 8, 8}), qs::OnnxExportOptions().qdq_path(path));
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  EXPECT_NE(message().find("the quantizer `conv.input_quantizers.0` has no encoding"),
            std::string::npos)
      << message();
  {
    auto calibrating = net->conv->compute_encodings();
    EXPECT_NE(message().find("the quantizer `conv.input_quantizers.0` is calibrating"),
              std::string::npos)
        << message();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(OnnxExport, Float16QuantizerIsACastPairInOnnxRuntime) {
  QS_REQUIRE_ONNXRUNTIME();
  qs::nn::FakeQuantizedLinear linear(nn::LinearOptions(8, 4));
  linear->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  linear->input_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kBFloat16);
  linear->eval();
  const auto path = temp_path("float16.onnx");
  const auto quantized =
      qs::export_onnx(linear, torch::randn({2, 8}), qs::OnnxExportOptions().qdq_path(path));
  EXPECT_EQ(quantized.size(), 2u);
  const auto x = torch::randn({16, 8}) * 100;
  const auto output = qs::testing::run_in_onnxruntime(path, qs::testing::OrtInputs{{"input", x}},
                                                      OrtOptimization::kDisabled);
  torch::NoGradGuard no_grad;
  const auto expected = linear->forward(x);
  // Both are float16 values; the Gemm's summation order may move a sum across a float16
  // rounding boundary: at most one float16 step (2^-10 relative) apart.
  const auto diff = (output.at(0) - expected).abs();
  EXPECT_TRUE((diff <= expected.abs() * std::ldexp(1.0, -10) + 1e-30).all().item<bool>());
  EXPECT_EQ(output.at(0).to(at::kHalf).to(at::kFloat).equal(output.at(0)), true);
}

/// A quantizer that reads no parameter (float16/bfloat16 without a maxval: a cast) is named by its
/// module path like every other: the traced node carries the quantizer that computed it.
TEST(OnnxExport, ParameterlessFloatQuantizersAreNamedByTheirModulePath) {
  qs::nn::FakeQuantizedLinear linear(nn::LinearOptions(8, 4));
  linear->input_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kBFloat16);
  linear->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  linear->param_quantizers["weight"] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  linear->eval();
  const auto quantized = qs::export_onnx(linear, torch::randn({2, 8}),
                                         qs::OnnxExportOptions().float_path(temp_path("f16.onnx")));
  EXPECT_EQ(quantized, (std::map<std::string, std::string>{{"input_quantizers.0", "input"},
                                                           {"output_quantizers.0", "output"},
                                                           {"param_quantizers.weight", "weight"}}));
}

/// One quantizer module in two slots is called twice: two nodes of the same quantizer, whose ONNX
/// node and tensor names must still be unique (the checker refuses the graph otherwise).
TEST(OnnxExport, QuantizerCalledTwiceHasUniqueNodeNames) {
  qs::nn::custom::QuantizedAdd add;
  qs::affine::QuantizeDequantize shared({}, 8, false);
  shared->set_range(-4, 4);
  qs::floating::FloatQuantizeDequantize half(torch::kHalf);
  add->input_quantizers[0] = shared;
  add->input_quantizers[1] = shared;
  add->output_quantizers[0] = half;
  add->eval();
  const auto path = temp_path("shared_qdq.onnx");
  std::remove(path.c_str());
  const auto quantized = qs::export_onnx(
      *add.ptr(),
      [&](const std::vector<at::Tensor>& x) {
        return std::vector<at::Tensor>{add->forward(x[0], x[1])};
      },
      {torch::randn({2, 3}), torch::randn({2, 3})}, qs::OnnxExportOptions().qdq_path(path));
  EXPECT_EQ(quantized.at("output_quantizers.0"), "output");
  // One quantizer, one path (named_modules() lists the shared module once, at its first slot).
  EXPECT_EQ(quantized.count("input_quantizers.0"), 1u);
  EXPECT_EQ(quantized.count("input_quantizers.1"), 0u);
  const auto model = load(path);
  std::set<std::string> outputs;
  int64_t quantize_nodes = 0;
  for (const auto& node : model.graph().node()) {
    for (const auto& output : node.output()) EXPECT_TRUE(outputs.insert(output).second) << output;
    quantize_nodes += node.op_type() == "QuantizeLinear";
  }
  EXPECT_EQ(quantize_nodes, 2);
}
