// W8A8 fake-quantized modules against their float modules, measured in the same run (issue 4):
// weights per-channel int8 symmetric, activations (input and output) int8 asymmetric
// per-tensor, calibrated once before timing.
//
//   Linear: batch 64, 1024 -> 1024.   Conv2d: 64 -> 64 channels, 3x3, padding 1, batch 8, 56x56.
//
// "Forward" runs under NoGradGuard (inference); "Train" is forward + backward of y.sum() with
// gradients to the parameters, the input and, for the quantized module, the quantizers' ranges.
// The input requires grad, as the input of every layer but a network's first does: the
// quantized module needs the input gradient anyway (its input quantizer's range is learned from
// it), so a float baseline without it would skip one of the three matmuls.
//
//   build/bench/module_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <quantsim/quantsim.h>

#include "bench_main.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <string>

namespace qs = quantsim;

namespace {

void use_threads(benchmark::State& state) { at::set_num_threads(static_cast<int>(state.range(0))); }

/// W8A8 quantizers in every slot of `module`, calibrated on `x`.
void quantize_w8a8(qs::nn::BaseQuantizationMixin& module, const at::Tensor& x,
                   std::vector<int64_t> weight_shape) {
  module.input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  module.output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  module.param_quantizers["weight"] = qs::affine::QuantizeDequantize(weight_shape, 8, true);
  auto& callable = module.as_module();
  module.compute_encodings([&] {
    if (auto* linear = dynamic_cast<qs::nn::QuantizedLinearImpl*>(&callable)) linear->forward(x);
    if (auto* conv = dynamic_cast<qs::nn::QuantizedConv2dImpl*>(&callable)) conv->forward(x);
  });
}

template <typename Module>
void run(benchmark::State& state, Module& module, const at::Tensor& input, bool train) {
  use_threads(state);
  const auto x = train ? input.detach().requires_grad_() : input;
  for (auto _ : state) {
    if (train) {
      auto y = module->forward(x);
      y.sum().backward();
      x.mutable_grad().reset();  // as an optimizer's zero_grad(set_to_none) would
    } else {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(module->forward(x));
    }
  }
}

const at::Tensor& linear_input() {
  static const at::Tensor x = torch::randn({64, 1024});
  return x;
}

const at::Tensor& conv_input() {
  static const at::Tensor x = torch::randn({8, 64, 56, 56});
  return x;
}

void BM_Linear(benchmark::State& state, bool quantized, bool train) {
  torch::manual_seed(0);
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(1024, 1024));
  if (quantized) quantize_w8a8(*linear, linear_input(), {1024, 1});
  run(state, linear, linear_input(), train);
}

void BM_Conv2d(benchmark::State& state, bool quantized, bool train) {
  torch::manual_seed(0);
  qs::nn::QuantizedConv2d conv(torch::nn::Conv2dOptions(64, 64, 3).padding(1));
  if (quantized) quantize_w8a8(*conv, conv_input(), {64, 1, 1, 1});
  run(state, conv, conv_input(), train);
}

void register_all() {
  for (const char* op : {"Linear", "Conv2d"}) {
    for (const bool train : {false, true}) {
      for (const bool quantized : {false, true}) {
        const std::string name =
            std::string(op) + (train ? "/Train" : "/Forward") + (quantized ? "/W8A8" : "/Float");
        auto* bench = std::string(op) == "Linear"
                          ? benchmark::RegisterBenchmark(name.c_str(), BM_Linear, quantized, train)
                          : benchmark::RegisterBenchmark(name.c_str(), BM_Conv2d, quantized, train);
        bench->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
      }
    }
  }
}

void print_summary(const qs::bench::RunTimes& times) {
  struct Row {
    const char* name;
    double target;
  };
  const Row rows[] = {{"Linear/Forward", 1.15},
                      {"Linear/Train", 1.3},
                      {"Conv2d/Forward", 1.15},
                      {"Conv2d/Train", 1.3}};
  std::printf("\nSummary: time of the W8A8 module / time of the float module\n");
  std::printf("%-16s %9s %9s %8s\n", "op", "1 thread", "2 threads", "target");
  for (const auto& row : rows) {
    std::printf("%-16s", row.name);
    for (int t : {1, 2}) {
      const double q = times.time(std::string(row.name) + "/W8A8", t);
      const double f = times.time(std::string(row.name) + "/Float", t);
      if (q > 0 && f > 0) {
        std::printf(" %9.2f", q / f);
      } else {
        std::printf(" %9s", "-");
      }
    }
    std::printf("   <= %.2f\n", row.target);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return qs::bench::run_main(argc, argv, "module_bench", register_all, print_summary);
}
