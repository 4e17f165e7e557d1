// Bandwidth of the affine quantization kernels against Tensor::copy_ (the memory-bandwidth
// limit) and torch's own fake-quantize ops, all measured in this run on 64 MiB float32 tensors
// at 1 and 2 threads. Prints Google Benchmark's table, then a summary of ratios to copy_ with
// the targets of the issue.
//
//   build/bench/quantizer_bench                      # everything, ~1 minute
//   build/bench/quantizer_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   build/bench/quantizer_bench --benchmark_filter=QDQ

#include <quantsim/quantsim.h>

#include "bench_main.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

namespace qs = quantsim;

namespace {

constexpr int64_t kRows = 4096, kCols = 4096;  // 16M float32 = 64 MiB
constexpr double kBytes = kRows * kCols * sizeof(float);

const at::Tensor& input() {
  static const at::Tensor x = torch::randn({kRows, kCols});
  return x;
}

// Throughput counter: the tensor's size read once and written once per iteration, so that
// every op is comparable with copy_ (an op that moves more data shows a lower figure).
void set_counters(benchmark::State& state) {
  state.counters["GB/s"] =
      benchmark::Counter(2 * kBytes, benchmark::Counter::kIsIterationInvariantRate);
}

void use_threads(benchmark::State& state) { at::set_num_threads(static_cast<int>(state.range(0))); }

void BM_Copy(benchmark::State& state) {
  use_threads(state);
  auto out = torch::empty_like(input());
  for (auto _ : state) out.copy_(input());
  set_counters(state);
}

void BM_TorchFakeQuantPerTensor(benchmark::State& state) {
  use_threads(state);
  for (auto _ : state)
    benchmark::DoNotOptimize(torch::fake_quantize_per_tensor_affine(input(), 0.02, 10, 0, 255));
  set_counters(state);
}

void BM_TorchFakeQuantPerChannel(benchmark::State& state) {
  use_threads(state);
  const auto s = torch::rand({kRows}) * 0.02 + 0.01;
  const auto z = torch::zeros({kRows}, torch::kInt);
  for (auto _ : state)
    benchmark::DoNotOptimize(torch::fake_quantize_per_channel_affine(input(), s, z, 0, -128, 127));
  set_counters(state);
}

// Encodings of the three granularities on the (4096, 4096) input.
struct Encoding {
  at::Tensor scale, offset;
  std::vector<int64_t> block;
};
Encoding encoding(const std::string& granularity) {
  if (granularity == "per_tensor") return {torch::tensor(0.02f), torch::tensor(-10.f), {}};
  if (granularity == "per_channel")
    return {torch::rand({kRows, 1}) * 0.02 + 0.01, torch::zeros({kRows, 1}), {}};
  if (granularity == "per_channel_last")
    return {torch::rand({kCols}) * 0.02 + 0.01, torch::zeros({kCols}), {}};
  return {torch::rand({kRows, kCols / 64}) * 0.02 + 0.01,
          torch::zeros({kRows, kCols / 64}),
          {1, 64}};  // blockwise
}

void BM_QDQ(benchmark::State& state, const std::string& granularity) {
  use_threads(state);
  const auto e = encoding(granularity);
  for (auto _ : state)
    benchmark::DoNotOptimize(
        qs::affine::quantize_dequantize(input(), e.scale, e.offset, -128, 127, e.block));
  set_counters(state);
}

void BM_Q(benchmark::State& state, const std::string& granularity) {
  use_threads(state);
  const auto e = encoding(granularity);
  for (auto _ : state)
    benchmark::DoNotOptimize(qs::affine::quantize(input(), e.scale, e.offset, -128, 127, e.block));
  set_counters(state);
}

void BM_DQ(benchmark::State& state, const std::string& granularity) {
  use_threads(state);
  const auto e = encoding(granularity);
  const auto q = torch::round(input() * 20).clamp(-128, 127);
  for (auto _ : state)
    benchmark::DoNotOptimize(qs::affine::dequantize(q, e.scale, e.offset, e.block));
  set_counters(state);
}

// Forward + backward through a QuantizeDequantize module with learnable min/max, gradients to
// the input and to both range parameters (quantization-aware training).
void BM_QDQ_TrainStep(benchmark::State& state, const std::string& granularity) {
  use_threads(state);
  std::vector<int64_t> shape;
  std::vector<int64_t> block;
  if (granularity == "per_channel") shape = {kRows, 1};
  if (granularity == "blockwise") shape = {kRows, kCols / 64}, block = {1, 64};
  auto q = qs::affine::QuantizeDequantize(
      qs::affine::QuantizerOptions(shape, 8, false).block_size(block));
  q->set_range(-2.0, 2.5);
  auto x = input().clone().requires_grad_();
  const auto g = torch::randn_like(x);
  for (auto _ : state) {
    auto y = q(x);
    y.backward(g);
    x.mutable_grad()
        .reset();  // a fresh gradient each step, as an optimiser's zero_grad(set_to_none)
    q->min.mutable_grad().reset();
    q->max.mutable_grad().reset();
  }
  set_counters(state);
}

void register_all() {
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  threads(benchmark::RegisterBenchmark("Copy", BM_Copy));
  threads(benchmark::RegisterBenchmark("TorchFakeQuant/per_tensor", BM_TorchFakeQuantPerTensor));
  threads(benchmark::RegisterBenchmark("TorchFakeQuant/per_channel", BM_TorchFakeQuantPerChannel));
  for (const char* g : {"per_tensor", "per_channel", "per_channel_last", "blockwise"}) {
    threads(benchmark::RegisterBenchmark((std::string("QDQ/") + g).c_str(), BM_QDQ, g));
  }
  for (const char* g : {"per_tensor", "per_channel"}) {
    threads(benchmark::RegisterBenchmark((std::string("Q/") + g).c_str(), BM_Q, g));
    threads(benchmark::RegisterBenchmark((std::string("DQ/") + g).c_str(), BM_DQ, g));
  }
  for (const char* g : {"per_tensor", "per_channel", "blockwise"}) {
    threads(benchmark::RegisterBenchmark((std::string("QDQ_TrainStep/") + g).c_str(),
                                         BM_QDQ_TrainStep, g));
  }
}

void print_summary(const quantsim::bench::RunTimes& times) {
  struct Target {
    const char* name;
    double target;
  };
  const Target rows[] = {{"QDQ/per_tensor", 0.85},
                         {"QDQ/per_channel", 0.75},
                         {"QDQ/per_channel_last", 0.75},
                         {"QDQ/blockwise", 0.75},
                         {"Q/per_tensor", 0.0},
                         {"Q/per_channel", 0.0},
                         {"DQ/per_tensor", 0.0},
                         {"DQ/per_channel", 0.0},
                         {"QDQ_TrainStep/per_tensor", 0.3},
                         {"QDQ_TrainStep/per_channel", 0.3},
                         {"QDQ_TrainStep/blockwise", 0.3},
                         {"TorchFakeQuant/per_tensor", 0.0},
                         {"TorchFakeQuant/per_channel", 0.0}};
  std::printf("\nSummary: time of Tensor::copy_ / time of the op (1.0 = memory-bandwidth limit)\n");
  std::printf("%-28s %9s %9s %8s\n", "op", "1 thread", "2 threads", "target");
  for (const auto& row : rows) {
    std::printf("%-28s", row.name);
    for (int t : {1, 2}) {
      const double op = times.time(row.name, t), copy = times.time("Copy", t);
      if (op > 0 && copy > 0) {
        std::printf(" %9.2f", copy / op);
      } else {
        std::printf(" %9s", "-");
      }
    }
    if (row.target > 0) std::printf("   >= %.2f", row.target);
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  return quantsim::bench::run_main(argc, argv, "quantizer_bench", register_all, print_summary);
}
