// Calibration cost of each encoding analyzer: a QuantizeDequantize quantizer calibrated on 8
// batches of 4M float32 values, per-tensor and per-channel (256 channels on axis 0), next to a
// plain `x.sum()` over the same batches (one read pass: the bandwidth limit of any statistic)
// measured in the same run. Prints Google Benchmark's table, then a summary.
//
//   build/bench/calibration_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <quantsim/quantsim.h>

#include "calibration_data.h"
#include "run_times.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <malloc.h>

#include <cstdio>
#include <string>

namespace qs = quantsim;

namespace {

using quantsim::bench::kBatches;
using quantsim::bench::kChannels;
const std::vector<at::Tensor>& batches() { return quantsim::bench::calibration_batches(); }

void use_threads(benchmark::State& state) { at::set_num_threads(static_cast<int>(state.range(0))); }

void BM_Sum(benchmark::State& state) {
  use_threads(state);
  for (auto _ : state) {
    for (const auto& x : batches()) benchmark::DoNotOptimize(x.sum());
  }
}

void BM_Calibrate(benchmark::State& state, const std::string& kind, bool per_channel) {
  use_threads(state);
  const std::vector<int64_t> shape =
      per_channel ? std::vector<int64_t>{kChannels, 1} : std::vector<int64_t>{};
  auto q = qs::affine::QuantizeDequantize(
      qs::affine::QuantizerOptions(shape, 8, false)
          .encoding_analyzer(quantsim::bench::make_analyzer(kind, shape)));
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto calibrating = q->compute_encodings();
    for (const auto& x : batches()) benchmark::DoNotOptimize(q(x));
  }
}

// Statistics alone: update_stats on every batch, then the final (min, max), as module-level
// calibration uses an activation quantizer's analyzer (observe only, no per-batch output).
void BM_Analyze(benchmark::State& state, const std::string& kind, bool per_channel) {
  use_threads(state);
  const std::vector<int64_t> shape =
      per_channel ? std::vector<int64_t>{kChannels, 1} : std::vector<int64_t>{};
  auto analyzer = quantsim::bench::make_analyzer(kind, shape);
  for (auto _ : state) {
    analyzer->reset_stats();
    for (const auto& x : batches()) analyzer->update_stats(x);
    benchmark::DoNotOptimize(analyzer->compute_encodings(255, false));
  }
}

void register_all() {
  auto threads = [](benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  threads(benchmark::RegisterBenchmark("Sum", BM_Sum));
  for (const char* kind : {"MinMax", "Percentile", "Sqnr"}) {
    for (bool per_channel : {false, true}) {
      const std::string name =
          std::string("Calibrate/") + kind + (per_channel ? "/per_channel" : "/per_tensor");
      threads(benchmark::RegisterBenchmark(name.c_str(), BM_Calibrate, kind, per_channel));
      const std::string analyze =
          std::string("Analyze/") + kind + (per_channel ? "/per_channel" : "/per_tensor");
      threads(benchmark::RegisterBenchmark(analyze.c_str(), BM_Analyze, kind, per_channel));
    }
  }
}

void print_summary(const quantsim::bench::RunTimes& times) {
  std::printf("\nSummary: calibration on %ld batches of 4M floats\n", static_cast<long>(kBatches));
  std::printf("%-32s %22s %22s\n", "", "1 thread", "2 threads");
  std::printf("%-32s %22s %22s\n", "analyzer", "sum/time  time/MinMax", "sum/time  time/MinMax");
  for (const char* mode : {"Analyze", "Calibrate"}) {
    for (const char* kind : {"MinMax", "Percentile", "Sqnr"}) {
      for (const char* g : {"per_tensor", "per_channel"}) {
        const std::string name = std::string(mode) + "/" + kind + "/" + g;
        std::printf("%-32s", name.c_str());
        for (int t : {1, 2}) {
          const double op = times.time(name, t), sum = times.time("Sum", t);
          const double minmax = times.time(std::string(mode) + "/MinMax/" + g, t);
          if (op > 0 && sum > 0 && minmax > 0) {
            std::printf(" %9.2f %12.2f", sum / op, op / minmax);
          } else {
            std::printf(" %22s", "-");
          }
        }
        std::printf("\n");
      }
    }
  }
  std::printf(
      "Analyze: update_stats on each batch + compute_encodings. Calibrate: a quantizer's\n"
      "compute_encodings scope, whose forward also quantizes each batch with its own range.\n");
  std::printf("Targets: MinMax sum/time >= 0.8; Percentile and Sqnr time/MinMax <= 2.\n");
}

}  // namespace

int main(int argc, char** argv) {
  // Page faults are expensive on this machine: keep freed large blocks inside the process.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  std::printf(
      "calibration_bench: glibc mallopt keeps large blocks (M_MMAP_THRESHOLD=M_TRIM_THRESHOLD=1 "
      "GiB)\n");
  benchmark::Initialize(&argc, argv);
  batches();  // create (and page in) the data before anything is timed
  register_all();
  quantsim::bench::RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(reporter.times);
  benchmark::Shutdown();
  return 0;
}
