// Graph capture for the ONNX exporter (src/onnx/capture.h): parameters as named constants,
// requires_grad restored, quantizers as one node each, batch-dependent constants found and a
// data-dependent trace refused.

#include <quantsim/affine/functional.h>
#include <quantsim/ops.h>

#include "onnx/capture.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace qs = quantsim;
using qs::onnx_export::capture;

namespace {

std::vector<std::string> op_kinds(const torch::jit::Graph& graph) {
  std::vector<std::string> kinds;
  for (const auto* node : graph.nodes()) {
    if (node->kind() != torch::jit::prim::Constant) kinds.emplace_back(node->kind().toQualString());
  }
  return kinds;
}

std::vector<std::string> parameter_inputs(const qs::onnx_export::CapturedGraph& captured) {
  std::vector<std::string> names;
  for (const auto* node : captured.graph->nodes()) {
    for (const auto* input : node->inputs()) {
      const auto found = captured.parameter_names.find(input);
      if (found != captured.parameter_names.end()) names.push_back(found->second);
    }
  }
  return names;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

}  // namespace

TEST(OnnxCapture, ParametersAreNamedConstantsAndKeepRequiresGrad) {
  torch::nn::Sequential model(torch::nn::Linear(4, 3), torch::nn::ReLU(), torch::nn::Linear(3, 2));
  model->at<torch::nn::LinearImpl>(2).bias.requires_grad_(false);
  const auto captured = capture(*model,
                                [&](const std::vector<at::Tensor>& x) {
                                  return std::vector<at::Tensor>{model->forward(x[0])};
                                },
                                {torch::randn({2, 4})});
  EXPECT_EQ(
      op_kinds(*captured.graph),
      (std::vector<std::string>{"aten::t", "aten::addmm", "aten::relu", "aten::t", "aten::addmm"}));
  EXPECT_EQ(parameter_inputs(captured),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(captured.input_names, std::vector<std::string>{"input"});
  EXPECT_EQ(captured.output_names, std::vector<std::string>{"output"});
  EXPECT_TRUE(captured.batch_dependent.empty());
  EXPECT_TRUE(model->at<torch::nn::LinearImpl>(0).weight.requires_grad());
  EXPECT_TRUE(model->at<torch::nn::LinearImpl>(2).weight.requires_grad());
  EXPECT_FALSE(model->at<torch::nn::LinearImpl>(2).bias.requires_grad());
}

TEST(OnnxCapture, RequiresGradIsRestoredWhenTheForwardThrows) {
  torch::nn::Linear linear(4, 3);
  EXPECT_NE(error_of([&] {
              capture(*linear,
                      [&](const std::vector<at::Tensor>& x) -> std::vector<at::Tensor> {
                        linear->forward(x[0]);
                        TORCH_CHECK(false, "the forward failed");
                      },
                      {torch::randn({2, 4})});
            }).find("the forward failed"),
            std::string::npos);
  EXPECT_TRUE(linear->weight.requires_grad());
  EXPECT_TRUE(linear->bias.requires_grad());
  EXPECT_FALSE(torch::jit::tracer::isTracing());
}

// A weight's quantizer stays one node over the weight's constant (not folded into a constant);
// the scale computed from constants is folded.
TEST(OnnxCapture, QuantizersAreOneNodeEachAndNotFolded) {
  torch::nn::Linear linear(4, 3);
  const auto scale = torch::full({3, 1}, 0.02f), offset = torch::zeros({3, 1});
  const auto captured = capture(
      *linear,
      [&](const std::vector<at::Tensor>& x) {
        const auto w = qs::ops::quantize_dequantize(linear->weight, scale * 2, offset, -128, 127);
        const auto y = torch::nn::functional::linear(x[0], w, linear->bias);
        return std::vector<at::Tensor>{
            qs::ops::quantize_dequantize(y, torch::tensor(0.1f), torch::tensor(-3.f), 0, 255)};
      },
      {torch::randn({2, 4})});
  EXPECT_EQ(op_kinds(*captured.graph),
            (std::vector<std::string>{"quantsim::quantize_dequantize", "aten::t", "aten::addmm",
                                      "quantsim::quantize_dequantize"}));
  EXPECT_EQ(parameter_inputs(captured), (std::vector<std::string>{"weight", "bias"}));
}

TEST(OnnxCapture, BatchSizeBakedIntoAShapeIsFound) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(1, 2, 3));
  const auto captured = capture(*conv,
                                [&](const std::vector<at::Tensor>& x) {
                                  const auto y = conv->forward(x[0]);
                                  return std::vector<at::Tensor>{y.view({y.size(0), -1})};
                                },
                                {torch::randn({2, 1, 5, 5})});
  ASSERT_EQ(captured.batch_dependent.size(), 1u);
  const auto& [value, positions] = *captured.batch_dependent.begin();
  EXPECT_EQ(value->node()->kind(), torch::jit::prim::Constant);
  EXPECT_EQ(positions, std::vector<size_t>{0});
}

TEST(OnnxCapture, DataDependentTraceIsAnErrorNamingTheModule) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 3).bias(false));
  const auto message = error_of([&] {
    capture(*linear,
            [&](const std::vector<at::Tensor>& x) {
              const auto y = linear->forward(x[0]);
              return std::vector<at::Tensor>{y.sum().item<float>() > 0 ? y.relu() : y.tanh()};
            },
            {torch::ones({2, 4})});
  });
  EXPECT_NE(message.find("the trace depends on the input data"), std::string::npos) << message;
  // Which branch the first trace takes depends on the weights' sign; either way the node is
  // located after the Linear whose parameters are the model's own.
  EXPECT_NE(message.find(", after the model's own parameters, differs between batch sizes 2 and 3"),
            std::string::npos)
      << message;
}
