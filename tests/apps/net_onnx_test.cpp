// The demo's network exported to ONNX (quantsim::export_onnx) as a W8A8 simulation and run in
// ONNX Runtime: with graph optimizations disabled the QDQ graph computes quantsim's outputs; with
// every optimization on (ORT's integer kernels) the difference is recorded, not asserted.

#include "apps/quantsim/net.h"

#include <quantsim/onnx/export.h>
#include <quantsim/sim/quantsim_model.h>

#include "testing/onnxruntime.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace quantsim::apps {
namespace {

using quantsim::testing::OrtOptimization;

TEST(NetOnnx, W8A8QdqGraphRunsToTheSimulatedOutputs) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(0);
  auto net = std::make_shared<NetImpl>();
  {
    // Batch statistics that are not the identity, as after training.
    torch::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 4; ++i) net->forward(torch::randn({64, 1, 28, 28}));
  }
  net->eval();
  const auto sample = torch::randn({2, 1, 28, 28});
  QuantizationSimModel sim(net, [&] { net->forward(sample); });
  const auto calibration = torch::randn({128, 1, 28, 28});
  sim.compute_encodings([&] { net->forward(calibration); });

  const auto dir = std::filesystem::temp_directory_path() / "quantsim_net_onnx_test";
  std::filesystem::create_directories(dir);
  const auto qdq_path = (dir / "w8a8_qdq.onnx").string();
  const auto start = std::chrono::steady_clock::now();
  const auto quantized = export_onnx(
      *net,
      [&](const std::vector<at::Tensor>& x) { return std::vector<at::Tensor>{net->forward(x[0])}; },
      {sample}, OnnxExportOptions().qdq_path(qdq_path).float_path((dir / "w8a8.onnx").string()));
  const double export_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(quantized.size(), 5u);

  const auto x = torch::randn({256, 1, 28, 28});
  const auto exact = quantsim::testing::run_in_onnxruntime(
      qdq_path, quantsim::testing::OrtInputs{{"input", x}}, OrtOptimization::kDisabled);
  const auto fused = quantsim::testing::run_in_onnxruntime(
      qdq_path, quantsim::testing::OrtInputs{{"input", x}}, OrtOptimization::kAll);
  torch::NoGradGuard no_grad;
  const auto expected = net->forward(x);
  const auto diff = (exact.at(0) - expected).abs();
  const auto fused_diff = (fused.at(0) - expected).abs();
  std::printf(
      "demo net W8A8: export %.2f s; ORT without optimizations: %ld of %ld logits differ (max "
      "%.3g, step %.3g); with all optimizations: %ld differ (max %.3g), argmax agrees on %ld of "
      "%ld\n",
      export_seconds, static_cast<long>((diff > 0).sum().item<int64_t>()),
      static_cast<long>(expected.numel()), diff.max().item<double>(),
      net->fc2->output_quantizers[0]->get_scale()->item<double>(),
      static_cast<long>((fused_diff > 0).sum().item<int64_t>()), fused_diff.max().item<double>(),
      static_cast<long>((fused.at(0).argmax(1) == expected.argmax(1)).sum().item<int64_t>()),
      static_cast<long>(x.size(0)));
  // The logits are on the output quantizer's grid: at most one step apart where the runtime's
  // conv/Gemm summation order moves a value across a rounding tie, on few elements.
  const double step = net->fc2->output_quantizers[0]->get_scale()->item<double>() * 1.0001;
  EXPECT_LE(diff.max().item<double>(), step);
  EXPECT_LE((diff > 0).sum().item<int64_t>(), expected.numel() / 20);
}

}  // namespace
}  // namespace quantsim::apps
