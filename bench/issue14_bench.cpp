// Every row of issue 14's table ("where real models spend time") in one process, each measure
// next to its baseline, at one intra-op thread. Prints Google Benchmark's table, then a summary
// of measure, time, baseline, ratio and target.
//
//   QDQ/...      one QuantizeDequantize module call (8-bit asymmetric per-tensor, calibrated,
//                NoGradGuard) on 64 floats; baseline torch::fake_quantize_per_tensor_affine on
//                the same 64 floats with the same scale and zero point.
//   Linear/...   batch 1 inference (NoGradGuard, eval): W8A8 QuantizedLinear (weights int8
//                symmetric per output channel, input and output int8 asymmetric per-tensor,
//                calibrated) against torch::nn::Linear of the same shape.
//   Net/...      the demo's network (apps/quantsim/net.cpp, compiled into this binary) on random
//                data of the demo's shapes ((N, 1, 28, 28) images, 10 classes). Float = the
//                same Net with empty quantizer slots (the demo's float model); W8A8 / W4A8 = a
//                QuantizationSimModel as the demo builds it (MinMax init; QAT: ranges trainable,
//                kTrainingRangeLearningWithTfInit), calibrated on 64 random images. Inference is
//                NoGradGuard + eval; a train step is train mode, zero_grad, cross-entropy
//                forward, backward and an SGD step over model->parameters() (for QAT these
//                include every quantizer's min and max). Torch = the same layers written with
//                torch::nn (no quantsim module at all), to show what the drop-in modules cost.
//   Analyze/...  calibration statistics on 8 batches of 4M floats ((256, 16384) each):
//                update_stats per batch, then compute_encodings (as calibration_bench's Analyze),
//                per-tensor and per-channel (256 channels on axis 0); baseline MinMax, and x.sum()
//                over the same batches for MinMax itself.
//   SqnrBits/... SQNR analyzer on 4096 floats (per-tensor, asymmetric): update_stats, then
//                compute_encodings with 2^bits - 1 steps, at 8, 16 and 20 bits. 24 bits (~1 min
//                per iteration before issue 14) only with QUANTSIM_BENCH_SQNR24=1; 32 bits is not
//                run (it does not finish).
//
// Each benchmark runs three untimed warm-up calls before its timed loop (SqnrBits from 20 bits:
// none, one call takes seconds).
//
//   build/bench/issue14_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <quantsim/quantsim.h>

#include "../apps/quantsim/net.h"
#include "bench_main.h"
#include "calibration_data.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace qs = quantsim;

namespace {

constexpr int kWarmUp = 3;

void one_thread(benchmark::State& state) { at::set_num_threads(static_cast<int>(state.range(0))); }

template <typename F>
void timed(benchmark::State& state, F&& step) {
  one_thread(state);
  for (int i = 0; i < kWarmUp; ++i) step();
  for (auto _ : state) step();
}

// --- One QuantizeDequantize call on 64 floats ---------------------------------------------------

const at::Tensor& small_input() {
  static const at::Tensor x = torch::randn({64});
  return x;
}

void BM_QdqModule(benchmark::State& state) {
  auto q = qs::affine::QuantizeDequantize({}, 8, false);
  torch::NoGradGuard no_grad;
  {
    auto calibrating = q->compute_encodings();
    q(small_input());
  }
  timed(state, [&] { benchmark::DoNotOptimize(q(small_input())); });
}

void BM_QdqTorch(benchmark::State& state) {
  const at::Tensor& x = small_input();
  const double lo = std::min(0.0, x.min().item<double>()),
               hi = std::max(0.0, x.max().item<double>());
  const double scale = (hi - lo) / 255;
  const int64_t zero_point = static_cast<int64_t>(std::nearbyint(-lo / scale));
  torch::NoGradGuard no_grad;
  timed(state, [&] {
    benchmark::DoNotOptimize(torch::fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255));
  });
}

// --- QuantizedLinear, batch 1 -------------------------------------------------------------------

void BM_Linear(benchmark::State& state, int64_t features, bool quantized) {
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({1, features});
  torch::NoGradGuard no_grad;
  if (quantized) {
    qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(features, features));
    linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    linear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({features, 1}, 8, true);
    linear->compute_encodings([&] { linear->forward(torch::randn({64, features})); });
    linear->eval();
    timed(state, [&] { benchmark::DoNotOptimize(linear->forward(x)); });
  } else {
    torch::nn::Linear linear(torch::nn::LinearOptions(features, features));
    linear->eval();
    timed(state, [&] { benchmark::DoNotOptimize(linear->forward(x)); });
  }
}

// --- The demo's network
// ---------------------------------------------------------------------------

/// The demo's Net written with torch::nn: the same layers, no quantsim module.
class TorchNetImpl : public torch::nn::Module {
 public:
  TorchNetImpl() {
    namespace nn = torch::nn;
    const qs::apps::NetOptions o;
    const auto& c = o.channels;
    conv1 =
        register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, c[0], 3).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(c[0]));
    conv2 = register_module("conv2",
                            nn::Conv2d(nn::Conv2dOptions(c[0], c[1], 3).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(c[1]));
    conv3 = register_module("conv3",
                            nn::Conv2d(nn::Conv2dOptions(c[1], c[2], 3).padding(1).bias(false)));
    bn3 = register_module("bn3", nn::BatchNorm2d(c[2]));
    fc1 = register_module("fc1", nn::Linear(9 * c[2], o.hidden));
    fc2 = register_module("fc2", nn::Linear(o.hidden, 10));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = pool(relu(bn1(conv1(x))));
    h = pool(relu(bn2(conv2(h))));
    h = pool(relu(bn3(conv3(h))));
    return fc2(relu(fc1(flatten(h))));
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::ReLU relu;
  torch::nn::MaxPool2d pool{torch::nn::MaxPool2dOptions(2)};
  torch::nn::Flatten flatten;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TorchNet);

enum class Kind { kTorch, kFloat, kW8A8, kW4A8 };

/// A freshly seeded model of `kind`: for kW8A8 / kW4A8 with its QuantizationSimModel, calibrated
/// on 64 random images (ranges trainable when `qat`).
struct Model {
  Model(Kind kind, bool qat) {
    torch::manual_seed(0);
    if (kind == Kind::kTorch) {
      torch_net = TorchNet();
      return;
    }
    net = qs::apps::Net();
    if (kind == Kind::kFloat) return;
    const at::Tensor sample = torch::randn({8, 1, 28, 28});
    const at::Tensor calibration = torch::randn({64, 1, 28, 28});
    qs::apps::NetImpl* model = net.get();
    sim = std::make_unique<qs::QuantizationSimModel>(
        net.ptr(),
        [model, sample] {
          torch::NoGradGuard no_grad;
          model->forward(sample);
        },
        qs::SimOptions()
            .quant_scheme(qat ? qs::QuantScheme::kTrainingRangeLearningWithTfInit
                              : qs::QuantScheme::kPostTrainingTf)
            .default_param_bw(kind == Kind::kW4A8 ? 4 : 8)
            .default_output_bw(8));
    sim->compute_encodings([&] {
      torch::NoGradGuard no_grad;
      model->forward(calibration);
    });
  }
  torch::nn::Module& module() { return net ? static_cast<torch::nn::Module&>(*net) : *torch_net; }
  at::Tensor forward(const at::Tensor& x) { return net ? net->forward(x) : torch_net->forward(x); }

  qs::apps::Net net{nullptr};
  TorchNet torch_net{nullptr};
  std::unique_ptr<qs::QuantizationSimModel> sim;
};

void BM_NetInfer(benchmark::State& state, Kind kind, int64_t batch) {
  Model m(kind, /*qat=*/false);
  const at::Tensor x = torch::randn({batch, 1, 28, 28});
  m.module().eval();
  torch::NoGradGuard no_grad;
  timed(state, [&] { benchmark::DoNotOptimize(m.forward(x)); });
}

void BM_NetTrain(benchmark::State& state, Kind kind, int64_t batch) {
  Model m(kind, /*qat=*/true);
  const at::Tensor x = torch::randn({batch, 1, 28, 28});
  const at::Tensor y = torch::randint(10, {batch}, torch::kLong);
  m.module().train();
  // A small learning rate: the random labels must not drive weights or ranges anywhere odd.
  torch::optim::SGD optimizer(m.module().parameters(), torch::optim::SGDOptions(1e-4));
  timed(state, [&] {
    optimizer.zero_grad();
    at::Tensor loss = torch::nn::functional::cross_entropy(m.forward(x), y);
    loss.backward();
    optimizer.step();
  });
}

// --- Calibration statistics, 8 x 4M floats ------------------------------------------------------

using quantsim::bench::kBatches;
using quantsim::bench::kChannels;
const std::vector<at::Tensor>& batches() { return quantsim::bench::calibration_batches(); }

void BM_Sum(benchmark::State& state) {
  timed(state, [] {
    for (const auto& x : batches()) benchmark::DoNotOptimize(x.sum());
  });
}

void BM_Analyze(benchmark::State& state, const std::string& kind, bool per_channel) {
  const std::vector<int64_t> shape =
      per_channel ? std::vector<int64_t>{kChannels, 1} : std::vector<int64_t>{};
  auto analyzer = quantsim::bench::make_analyzer(kind, shape);
  timed(state, [&] {
    analyzer->reset_stats();
    for (const auto& x : batches()) analyzer->update_stats(x);
    benchmark::DoNotOptimize(analyzer->compute_encodings(255, false));
  });
}

// --- SQNR calibration of 4096 floats by bitwidth ------------------------------------------------

void BM_SqnrBits(benchmark::State& state, int bits) {
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({4096});
  qs::SqnrEncodingAnalyzer analyzer({});
  const int64_t steps = (int64_t{1} << bits) - 1;
  const auto step = [&] {
    analyzer.reset_stats();
    analyzer.update_stats(x);
    benchmark::DoNotOptimize(analyzer.compute_encodings(steps, false));
  };
  one_thread(state);
  // Warm-up only where it is cheap: from 20 bits one call takes seconds.
  if (bits < 20) {
    for (int i = 0; i < kWarmUp; ++i) step();
  }
  for (auto _ : state) step();
}

bool run_sqnr24() {
  const char* env = std::getenv("QUANTSIM_BENCH_SQNR24");
  return env && std::string(env) == "1";
}

// --- Registration and summary -------------------------------------------------------------------

void register_all() {
  const auto add = [](benchmark::internal::Benchmark* b, benchmark::TimeUnit unit) {
    b->Arg(1)->UseRealTime()->Unit(unit);
    return b;
  };
  add(benchmark::RegisterBenchmark("QDQ/64/Module", BM_QdqModule), benchmark::kMicrosecond);
  add(benchmark::RegisterBenchmark("QDQ/64/TorchFakeQuantize", BM_QdqTorch),
      benchmark::kMicrosecond);
  for (int64_t n : {64, 256}) {
    for (bool quantized : {true, false}) {
      const std::string name = "Linear/" + std::to_string(n) + (quantized ? "/W8A8" : "/Float");
      add(benchmark::RegisterBenchmark(name.c_str(), BM_Linear, n, quantized),
          benchmark::kMicrosecond);
    }
  }
  struct KindName {
    Kind kind;
    const char* name;
  };
  for (int64_t batch : {1, 500}) {
    for (const KindName& k : {KindName{Kind::kW8A8, "W8A8"}, KindName{Kind::kFloat, "Float"},
                              KindName{Kind::kTorch, "Torch"}}) {
      const std::string name = "Net/Infer/" + std::to_string(batch) + "/" + k.name;
      add(benchmark::RegisterBenchmark(name.c_str(), BM_NetInfer, k.kind, batch),
          benchmark::kMillisecond);
    }
  }
  for (int64_t batch : {1, 128}) {
    for (const KindName& k : {KindName{Kind::kW8A8, "W8A8"}, KindName{Kind::kW4A8, "W4A8"},
                              KindName{Kind::kFloat, "Float"}, KindName{Kind::kTorch, "Torch"}}) {
      if (batch == 1 && k.kind == Kind::kW4A8) continue;
      const std::string name = "Net/Train/" + std::to_string(batch) + "/" + k.name;
      add(benchmark::RegisterBenchmark(name.c_str(), BM_NetTrain, k.kind, batch),
          benchmark::kMillisecond);
    }
  }
  add(benchmark::RegisterBenchmark("Sum", BM_Sum), benchmark::kMillisecond);
  for (const char* kind : {"MinMax", "Percentile", "Sqnr"}) {
    for (bool per_channel : {false, true}) {
      const std::string name =
          std::string("Analyze/") + kind + (per_channel ? "/per_channel" : "/per_tensor");
      add(benchmark::RegisterBenchmark(name.c_str(), BM_Analyze, kind, per_channel),
          benchmark::kMillisecond);
    }
  }
  std::vector<int> bits = {8, 16, 20};
  if (run_sqnr24()) bits.push_back(24);
  for (int b : bits) {
    const std::string name = "SqnrBits/" + std::to_string(b);
    // From 20 bits one iteration outlasts the minimum time: Google Benchmark runs just one.
    add(benchmark::RegisterBenchmark(name.c_str(), BM_SqnrBits, b), benchmark::kMillisecond);
  }
}

void print_summary(const qs::bench::RunTimes& times) {
  const auto t = [&](const std::string& name) { return times.time(name, 1); };
  const auto row = [](const char* measure, double time, double baseline, const char* unit,
                      const char* target) {
    if (time <= 0 || baseline <= 0) {
      std::printf("%-52s %12s %12s %8s  %s\n", measure, "-", "-", "-", target);
      return;
    }
    std::printf("%-52s %9.3g %-2s %9.3g %-2s %7.2fx  %s\n", measure, time, unit, baseline, unit,
                time / baseline, target);
  };
  // RunTimes holds each time in the unit its benchmark was registered with.
  std::printf("\nSummary (issue 14), 1 thread: measure, time, baseline, time/baseline, target\n");
  row("QDQ module call, 64 floats / torch fake_quantize", t("QDQ/64/Module"),
      t("QDQ/64/TorchFakeQuantize"), "us", "<= 3 us");
  row("W8A8 QuantizedLinear 64x64, batch 1 / float Linear", t("Linear/64/W8A8"),
      t("Linear/64/Float"), "us", "<= 2.5x");
  row("W8A8 QuantizedLinear 256x256, batch 1 / float", t("Linear/256/W8A8"), t("Linear/256/Float"),
      "us", "<= 1.5x");
  row("Net, batch 1, inference, W8A8 / float", t("Net/Infer/1/W8A8"), t("Net/Infer/1/Float"), "ms",
      "<= 1.2x");
  row("Net, batch 1, QAT train step W8A8 / float", t("Net/Train/1/W8A8"), t("Net/Train/1/Float"),
      "ms", "<= 1.3x");
  row("Net, batch 128, QAT train step W8A8 / float", t("Net/Train/128/W8A8"),
      t("Net/Train/128/Float"), "ms", "<= 1.05x");
  row("Net, batch 128, QAT train step W4A8 / float", t("Net/Train/128/W4A8"),
      t("Net/Train/128/Float"), "ms", "<= 1.05x");
  row("Net, batch 500, inference, W8A8 / float", t("Net/Infer/500/W8A8"), t("Net/Infer/500/Float"),
      "ms", "<= 1.02x");
  row("Percentile stats per-tensor / MinMax", t("Analyze/Percentile/per_tensor"),
      t("Analyze/MinMax/per_tensor"), "ms", "<= 2x");
  row("SQNR stats per-tensor / MinMax", t("Analyze/Sqnr/per_tensor"),
      t("Analyze/MinMax/per_tensor"), "ms", "<= 2x");
  row("Percentile stats per-channel (256) / MinMax", t("Analyze/Percentile/per_channel"),
      t("Analyze/MinMax/per_channel"), "ms", "<= 2.5x");
  row("SQNR stats per-channel (256) / MinMax", t("Analyze/Sqnr/per_channel"),
      t("Analyze/MinMax/per_channel"), "ms", "<= 2.5x");
  // Issue 14 states this row as a speed: sum's time / MinMax's time (target >= 0.9).
  for (const char* g : {"per_tensor", "per_channel"}) {
    const double minmax = t(std::string("Analyze/MinMax/") + g), sum = t("Sum");
    const std::string measure = std::string("MinMax stats ") + g + " (ratio = sum/MinMax)";
    if (minmax > 0 && sum > 0) {
      std::printf("%-52s %9.3g %-2s %9.3g %-2s %7.2fx  %s\n", measure.c_str(), minmax, "ms", sum,
                  "ms", sum / minmax, ">= 0.9x");
    }
  }
  row("SQNR 4096 floats, 16-bit / 8-bit", t("SqnrBits/16"), t("SqnrBits/8"), "ms", "<= 2x");
  row("SQNR 4096 floats, 20-bit / 8-bit", t("SqnrBits/20"), t("SqnrBits/8"), "ms", "<= 2x");
  if (run_sqnr24()) {
    row("SQNR 4096 floats, 24-bit / 8-bit", t("SqnrBits/24"), t("SqnrBits/8"), "ms", "<= 2x");
  } else {
    std::printf("SQNR 24-bit: not run (QUANTSIM_BENCH_SQNR24=1 runs it); 32-bit: never run.\n");
  }
  std::printf("Drop-in overhead (no quantizer): Net float / torch::nn net\n");
  row("  batch 1 inference", t("Net/Infer/1/Float"), t("Net/Infer/1/Torch"), "ms", "");
  row("  batch 1 train step", t("Net/Train/1/Float"), t("Net/Train/1/Torch"), "ms", "");
  row("  batch 128 train step", t("Net/Train/128/Float"), t("Net/Train/128/Torch"), "ms", "");
  row("  batch 500 inference", t("Net/Infer/500/Float"), t("Net/Infer/500/Torch"), "ms", "");
}

}  // namespace

int main(int argc, char** argv) {
  // The calibration batches are created (and paged in) by Sum's untimed warm-up, after
  // run_main's mallopt.
  return qs::bench::run_main(argc, argv, "issue14_bench", register_all, print_summary);
}
