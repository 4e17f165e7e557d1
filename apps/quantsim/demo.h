#pragma once

/// `quantsim demo`: the Fashion-MNIST quantization study. Trains a small CNN (or reuses its cached
/// checkpoint), quantizes it post-training to W8A8 and W4A8 with each analyzer, fine-tunes W4A8
/// with quantization-aware training, and writes a table, report.json, report.html and the
/// encodings of the best W8A8 and W4A8 models.

#include <cstdint>
#include <ostream>
#include <string>

namespace quantsim::apps {

/// Settings of the demo, as the command line gives them.
struct DemoOptions {
  /// Directory of the four Fashion-MNIST IDX files. Default: /usr/share/datasets/fashion-mnist.
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  /// Where the checkpoint cache, report and encodings go (created). Default: quantsim-demo.
  std::string out_dir = "quantsim-demo";
  /// Training epochs of the float model; 0 means the mode's default (kFullEpochs, or
  /// kQuickEpochs with `quick`).
  int64_t epochs = 0;
  /// Quantization-aware training epochs of W4A8; -1 means the mode's default.
  int64_t qat_epochs = -1;
  /// Intra-op threads of torch (at::set_num_threads), at most max_threads() (the command line
  /// rejects more). Default: the hardware's concurrency.
  int64_t threads = 0;
  /// CI mode: a subset of the data, one training epoch, a short QAT.
  bool quick = false;
  /// Train the float model even when a cached checkpoint matches the settings.
  bool retrain = false;
  /// Seeds weight initialisation and data shuffling. Default: 1.
  uint64_t seed = 1;
  /// Local ranks to start (`--nproc`): float training, calibration and QAT run data-parallel on
  /// c10d, each rank on its shard, rank 0 alone writing files (docs/distributed.md §7). A process
  /// started with WORLD_SIZE set (by torchrun, or by --nproc) is one rank. Default: 1.
  int64_t nproc = 1;
  /// Print where the time goes (`--timing`): per training step, and with several ranks the wait
  /// for the slowest rank and average_gradients; per calibration, the forward passes, the
  /// statistics merge and the ranges (docs/distributed.md §6).
  bool timing = false;

  static constexpr int64_t kFullEpochs = 4;
  static constexpr int64_t kQuickEpochs = 1;
  static constexpr int64_t kFullQatEpochs = 1;
  static constexpr int64_t kQuickQatEpochs = 1;
  /// Training and test examples used with `quick` (the full run uses all 60 000 and 10 000).
  static constexpr int64_t kQuickTrain = 6000;
  static constexpr int64_t kQuickTest = 2000;

  int64_t resolved_epochs() const {
    return epochs > 0 ? epochs : quick ? kQuickEpochs : kFullEpochs;
  }
  int64_t resolved_qat_epochs() const {
    return qat_epochs >= 0 ? qat_epochs : quick ? kQuickQatEpochs : kFullQatEpochs;
  }
  int64_t resolved_threads() const;
  /// The hardware's concurrency (std::thread::hardware_concurrency, 1 when unknown).
  static int64_t max_threads();
};

/// Runs the whole study, writing progress and the result table to `out`. Returns the process
/// exit status (0). Errors (missing data, unwritable output directory) are exceptions.
int run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace quantsim::apps
