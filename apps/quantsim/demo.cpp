#include "demo.h"

#include "fashion_mnist.h"
#include "net.h"
#include "progress.h"
#include "report.h"
#include "training.h"

#include "testing/onnxruntime.h"

#include <quantsim/distributed.h>
#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/sim/encodings_io.h>
#include <quantsim/sim/quantsim_model.h>
#include <quantsim/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>

namespace quantsim::apps {
namespace {

// Calibration examples (the first of the training set, which is already shuffled).
constexpr int64_t kCalibrationExamples = 2000;
constexpr int64_t kQuickCalibrationExamples = 1000;
// Reference percentile of the Percentile analyzer: clips the 0.01% most extreme values.
constexpr double kPercentile = 99.99;
// Adam learning rate of QAT: small, the weights only need to adapt to the 4-bit grid.
constexpr double kQatLearningRate = 1e-4;
// Bumped whenever the checkpoint's content changes meaning, to invalidate old caches.
constexpr int kCheckpointFormat = 1;
// How long a rank waits for its peers (rendezvous and each collective). Every rank does the same
// work between two collectives (at most an evaluation of the test set), so a long wait means a
// peer hangs. A rank that dies is noticed at once (its sockets close); only a hung one this late.
constexpr std::chrono::minutes kRankTimeout{5};
// Test-only failure injection of the data-parallel run, "RANK:PHASE:STEP" (PHASE `train` or
// `qat`, STEP counted from 0): that rank throws after that step's backward, before averaging
// (tests/apps/demo_ranks_test.cpp).
constexpr const char* kInjectFailureVariable = "QUANTSIM_DEMO_INJECT_FAILURE";

struct Analyzer {
  const char* name;
  QuantScheme scheme;
};
const Analyzer kAnalyzers[] = {{"MinMax", QuantScheme::kPostTrainingTf},
                               {"Percentile", QuantScheme::kPostTrainingPercentile},
                               {"SQNR", QuantScheme::kPostTrainingTfEnhanced}};

struct Bitwidths {
  const char* name;
  int64_t weights;
  int64_t activations;
};
const Bitwidths kW8A8{"W8A8", 8, 8};
const Bitwidths kW4A8{"W4A8", 4, 8};

// FNV-1a, 64 bits: a stable hash of the settings (std::hash may differ between builds).
uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string hex(uint64_t value) {
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << value;
  return s.str();
}

// Seconds since `start` on the steady clock.
double seconds_since(double start) { return Progress::steady_seconds() - start; }

std::string milliseconds(double seconds) { return format_fixed(1000.0 * seconds, 2) + " ms"; }

// A 64-bit fingerprint of every parameter's and buffer's bytes (FNV-1a), to check that ranks hold
// the same model.
int64_t fingerprint(const torch::nn::Module& module, uint64_t hash) {
  const auto add = [&hash](const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) {
      hash ^= bytes[i];
      hash *= 0x100000001b3ULL;
    }
  };
  for (const auto& p : module.parameters()) add(p);
  for (const auto& b : module.buffers()) add(b);
  return static_cast<int64_t>(hash);
}

// Where the steps of one data-parallel training went (--timing).
struct StepTimes {
  int64_t steps = 0;
  double waiting = 0.0;    // for the slowest rank to finish its backward (a barrier)
  double averaging = 0.0;  // average_gradients: the all-reduces
};

// The failure QUANTSIM_DEMO_INJECT_FAILURE asks for, if any.
struct InjectedFailure {
  int rank = -1;
  std::string phase;
  int64_t step = -1;

  static InjectedFailure from_env() {
    InjectedFailure f;
    const char* value = std::getenv(kInjectFailureVariable);
    if (value == nullptr) return f;
    std::istringstream in(value);
    std::string rank, step;
    if (!std::getline(in, rank, ':') || !std::getline(in, f.phase, ':') ||
        !std::getline(in, step) || rank.empty() || step.empty()) {
      QS_THROW(c10::ValueError, kInjectFailureVariable, "='", value,
               "' is not RANK:PHASE:STEP (e.g. 1:qat:3)");
    }
    f.rank = std::stoi(rank);
    f.step = std::stoll(step);
    return f;
  }
};

// One simulated configuration, kept alive until the best ones are exported.
struct Simulation {
  Net model{nullptr};
  std::unique_ptr<QuantizationSimModel> sim;
  ConfigResult result;
};

std::vector<LayerSqnr> weight_sqnr(const QuantizationSimModel& sim) {
  torch::NoGradGuard no_grad;
  std::vector<LayerSqnr> layers;
  for (const SimModule& m : sim.modules()) {
    auto& slots = *m.module->param_quantizers;
    if (!slots.contains("weight")) continue;
    auto quantizer = slots.at("weight");
    if (!quantizer || !quantizer->is_initialized()) continue;
    at::Tensor w = m.module->as_module().named_parameters(/*recurse=*/false)["weight"];
    at::Tensor noise = (w - quantizer->fake_quantize(w)).pow(2).sum();
    const double signal = w.pow(2).sum().item<double>();
    const double error = noise.item<double>();
    layers.push_back({m.name, error > 0 ? 10.0 * std::log10(signal / error)
                                        : std::numeric_limits<double>::infinity()});
  }
  return layers;
}

class Demo {
 public:
  Demo(const DemoOptions& options, std::ostream& out,
       c10::intrusive_ptr<c10d::ProcessGroup> group = {})
      : options_(options),
        out_(out),
        group_(std::move(group)),
        inject_(group_ ? InjectedFailure::from_env() : InjectedFailure{}) {}

  int run() {
    const double start = Progress::steady_seconds();
    at::set_num_threads(static_cast<int>(threads()));
    if (writes_files()) std::filesystem::create_directories(options_.out_dir);

    FashionMnist data = load_fashion_mnist(options_.data_dir);
    if (options_.quick) {
      data.train = data.train.head(DemoOptions::kQuickTrain);
      data.test = data.test.head(DemoOptions::kQuickTest);
    }
    calibration_ =
        data.train.head(options_.quick ? kQuickCalibrationExamples : kCalibrationExamples);
    sample_ = normalize_images(data.train.images.narrow(0, 0, 8));
    out_ << "quantsim " << kVersion << " demo: Fashion-MNIST, " << data.train.size()
         << " training / " << data.test.size() << " test images, " << threads() << " threads";
    if (group_) out_ << " x " << world_size() << " ranks";
    out_ << ", output in " << options_.out_dir << "\n";

    Net net = float_model(data.train);
    report_.float_accuracy = evaluate(*net, data.test, out_, "evaluate float");
    out_ << "float test accuracy " << format_fixed(report_.float_accuracy, 2) << "%\n";

    std::vector<Simulation> sims;
    for (const Bitwidths& bits : {kW8A8, kW4A8}) {
      for (const Analyzer& analyzer : kAnalyzers) {
        sims.push_back(post_training(net, bits, analyzer, data.test));
      }
    }
    if (options_.resolved_qat_epochs() > 0) {
      sims.push_back(quantization_aware_training(net, sims, data));
    }
    for (const auto& s : sims) report_.results.push_back(s.result);

    // Every rank holds the same models and encodings; rank 0 alone writes them and the report,
    // once every rank has got here (a rank that failed makes this fail on the others: no file).
    if (group_) check_ranks_agree(net, sims);
    if (!writes_files()) return 0;
    for (const Bitwidths& bits : {kW8A8, kW4A8}) {
      const int best = best_result(report_, bits.name);
      if (best < 0) continue;
      std::string prefix = bits.name;
      std::transform(prefix.begin(), prefix.end(), prefix.begin(), ::tolower);
      export_onnx(sims[best], report_.results[best], prefix, data.test);
    }

    report_.version = kVersion;
    report_.settings = settings(data);
    report_.total_seconds = Progress::steady_seconds() - start;
    write_report(report_, options_.out_dir);

    out_ << "\n" << format_table(report_) << "\n";
    const auto path = [&](const std::string& file) {
      return (std::filesystem::path(options_.out_dir) / file).string();
    };
    out_ << "wrote " << path("report.html") << ", " << path("report.json");
    for (const auto& file : report_.encodings_files) out_ << ", " << path(file);
    out_ << "\ntotal " << format_fixed(report_.total_seconds, 1) << " s\n";
    return 0;
  }

 private:
  int world_size() const { return group_ ? group_->getSize() : 1; }
  int rank() const { return group_ ? group_->getRank() : 0; }
  bool writes_files() const { return rank() == 0; }
  // Ranks on one machine share its cores: the default is split between them.
  int64_t threads() const {
    return options_.threads > 0 ? options_.threads
                                : std::max<int64_t>(1, options_.resolved_threads() / world_size());
  }
  // This rank's contiguous share of `data` (calibration); every rank gets the same count (the
  // remainder is left out).
  Dataset shard(const Dataset& data) const {
    if (!group_) return data;
    const int64_t n = data.size() / world_size();
    return Dataset{data.images.narrow(0, rank() * n, n), data.labels.narrow(0, rank() * n, n)};
  }

  // Each rank trains on its share of every epoch's shuffled order with its share of the batch:
  // together the single-process batches, their gradients averaged (TrainSchedule::world_size).
  void data_parallel(TrainSchedule& schedule) const {
    schedule.rank = rank();
    schedule.world_size = world_size();
    schedule.batch_size = std::max<int64_t>(1, schedule.batch_size / world_size());
  }

  TrainSchedule float_schedule() const {
    TrainSchedule schedule;
    schedule.epochs = options_.resolved_epochs();
    schedule.seed = options_.seed;
    return schedule;
  }

  TrainSchedule qat_schedule() const {
    TrainSchedule schedule;
    schedule.epochs = options_.resolved_qat_epochs();
    schedule.learning_rate = kQatLearningRate;
    schedule.weight_decay = 0.0;  // would pull the quantizer ranges towards zero
    schedule.seed = options_.seed + 1;
    return schedule;
  }

  nlohmann::json checkpoint_key(const Dataset& train) const {
    nlohmann::json key = {{"format", kCheckpointFormat},
                          {"net", NetOptions{}.to_json()},
                          {"schedule", float_schedule().to_json()},
                          {"train_examples", train.size()},
                          {"seed", options_.seed}};
    // Data-parallel training (BatchNorm over each rank's part of the batch, other threads, other
    // rounding) gives another model. Absent for one process, whose key (and cached checkpoint)
    // is unchanged.
    if (world_size() > 1) key["world_size"] = world_size();
    return key;
  }

  // The trained float model: from the cache when a checkpoint of the same settings is there, else
  // trained. With several ranks, rank 0 alone looks for the checkpoint and tells the others; they
  // receive its parameters, or all train data-parallel (each rank its share of every batch,
  // gradients averaged) and rank 0 saves the result.
  Net float_model(const Dataset& train_data) {
    const std::string key = checkpoint_key(train_data).dump();
    const std::string name = "float-" + hex(fnv1a(key)) + ".pt";
    const std::string path = (std::filesystem::path(options_.out_dir) / name).string();
    torch::manual_seed(options_.seed);
    Net net;
    bool cached = writes_files() && !options_.retrain && std::filesystem::exists(path) &&
                  load_checkpoint(net, path);
    if (group_) cached = rank_zero_says(cached);
    if (cached) {
      report_.cached_checkpoint = name;
      if (group_) distributed::broadcast_state(*net.ptr(), group_);
      net->eval();
      return net;
    }
    TrainSchedule schedule = float_schedule();
    std::function<void()> after_backward;
    if (group_) {
      distributed::broadcast_state(*net.ptr(), group_);  // one starting point
      data_parallel(schedule);
    }
    StepTimes times;
    if (group_ || options_.timing) after_backward = step_hook(*net.ptr(), "train", times);
    const TrainResult trained =
        train(*net, net->parameters(), train_data, schedule, out_, "train", after_backward);
    if (group_) same_buffers_as_rank_zero(*net.ptr());
    report_.float_training_seconds = trained.seconds;
    print_step_times("train", trained, times);
    if (!writes_files()) return net;
    // Saved atomically: an interrupted run (or a full disk) never leaves a truncated checkpoint
    // to be reused.
    save_state(*net, path);
    out_ << "float model: trained in " << format_fixed(trained.seconds, 1) << " s, saved " << path
         << "\n";
    return net;
  }

  // Loads the cached checkpoint into `net`; when it cannot (checked against the net: a corrupt or
  // foreign file), says why and leaves `net` freshly initialised, as before the attempt.
  bool load_checkpoint(Net& net, const std::string& path) {
    try {
      load_state(*net, path);
      out_ << "float model: loaded " << path << " (--retrain trains it again)\n";
      return true;
    } catch (const std::exception& e) {
      out_ << "float model: cannot load " << path << " (" << message_of(e) << "), training\n";
      torch::manual_seed(options_.seed);
      net = Net();
      return false;
    }
  }

  // Rank 0's `value` on every rank (one broadcast).
  bool rank_zero_says(bool value) const {
    std::vector<at::Tensor> flag{at::full({1}, value ? 1 : 0, at::kLong)};
    distributed::wait_for(group_->broadcast(flag), *group_, "demo: cached checkpoint decision");
    return flag[0].item<int64_t>() != 0;
  }

  // After data-parallel training the parameters are identical, but BatchNorm's running
  // statistics were updated by each rank's own batches: rank 0's are kept everywhere, as torch's
  // DistributedDataParallel does (broadcast_buffers), so that every rank holds the saved model.
  void same_buffers_as_rank_zero(torch::nn::Module& model) const {
    distributed::broadcast_state(model, group_);
  }

  // Runs after every backward of `phase`'s training: with several ranks, averages the gradients
  // (weights and quantizer ranges) across them; with --timing, times that in `times`.
  std::function<void()> step_hook(torch::nn::Module& model, const std::string& phase,
                                  StepTimes& times) {
    return [this, &model, phase, &times] {
      const int64_t step = times.steps++;
      if (!group_) return;
      if (inject_.rank == rank() && inject_.phase == phase && inject_.step == step) {
        QS_THROW(c10::Error, "injected failure (", kInjectFailureVariable, "=", inject_.rank, ":",
                 phase, ":", step, ") on rank ", rank(), " of ", world_size());
      }
      double start = Progress::steady_seconds();
      if (options_.timing) {
        // Waiting for the slower rank apart, so that the averaging times the all-reduce alone.
        distributed::wait_for(group_->barrier(), *group_, phase + ": barrier");
        times.waiting += seconds_since(start);
        start = Progress::steady_seconds();
      }
      distributed::average_gradients(model, group_);
      times.averaging += seconds_since(start);
    };
  }

  void print_step_times(const std::string& phase, const TrainResult& trained,
                        const StepTimes& times) {
    if (!options_.timing || times.steps == 0) return;
    const double n = static_cast<double>(times.steps);
    out_ << "timing " << phase << ": " << times.steps << " steps of "
         << milliseconds(trained.seconds / n) << " (rank 0, " << world_size() << " x " << threads()
         << " threads)";
    if (group_) {
      out_ << ", of which waiting for the slowest rank " << milliseconds(times.waiting / n)
           << ", average_gradients " << milliseconds(times.averaging / n);
    }
    out_ << "\n";
  }

  // Every rank must hold the same models (float, and each simulation with its encodings): one
  // MIN and one MAX all-reduce of their fingerprints. Also the point every rank must reach before
  // rank 0 writes anything.
  void check_ranks_agree(const Net& net, const std::vector<Simulation>& sims) const {
    uint64_t hash = 0xcbf29ce484222325ULL;
    hash = static_cast<uint64_t>(fingerprint(*net, hash));
    for (const auto& s : sims) hash = static_cast<uint64_t>(fingerprint(*s.model, hash));
    std::vector<at::Tensor> low{at::full({1}, static_cast<int64_t>(hash), at::kLong)};
    std::vector<at::Tensor> high{low[0].clone()};
    c10d::AllreduceOptions min;
    min.reduceOp = c10d::ReduceOp::MIN;
    c10d::AllreduceOptions max;
    max.reduceOp = c10d::ReduceOp::MAX;
    distributed::wait_for(group_->allreduce(low, min), *group_, "demo: final agreement");
    distributed::wait_for(group_->allreduce(high, max), *group_, "demo: final agreement");
    if (low[0].item<int64_t>() != high[0].item<int64_t>()) {
      QS_THROW(c10::Error, "demo: the ranks' models differ at the end (rank ", rank(), " of ",
               world_size(), "); nothing written");
    }
  }

  Simulation simulate(const Net& net, const Bitwidths& bits, QuantScheme scheme,
                      const std::string& label) {
    Simulation s;
    s.model = Net(std::dynamic_pointer_cast<NetImpl>(net->clone()));
    TORCH_CHECK(s.model, "Net::clone() did not return a NetImpl");
    NetImpl* model = s.model.get();
    s.sim = std::make_unique<QuantizationSimModel>(
        s.model.ptr(),
        [model, sample = sample_] {
          torch::NoGradGuard no_grad;
          model->forward(sample);
        },
        SimOptions()
            .quant_scheme(scheme)
            .default_param_bw(bits.weights)
            .default_output_bw(bits.activations)
            .percentile(kPercentile));
    const double start = Progress::steady_seconds();
    double waiting = 0.0;
    const auto calibrate = [&, data = shard(calibration_)] {
      forward_batches(*model, data, data.size(), out_, "calibrate " + label);
      if (group_ && options_.timing) {
        // Waiting for the slower rank apart, so that the merge times the collectives alone.
        const double barrier = Progress::steady_seconds();
        distributed::wait_for(group_->barrier(), *group_, "calibrate " + label + ": barrier");
        waiting = seconds_since(barrier);
      }
    };
    if (group_ && options_.timing) {
      // What QuantizationSimModel::compute_encodings(calibrate, group_) does, with its times.
      distributed::CalibrationTimes times;
      distributed::compute_encodings(*model, calibrate, group_, &times);
      out_ << "timing calibrate " << label << ": forward " << milliseconds(times.forward - waiting)
           << ", waiting for the slowest rank " << milliseconds(waiting)
           << ", synchronize_statistics " << milliseconds(times.synchronize) << ", ranges "
           << milliseconds(times.ranges) << "\n";
    } else if (group_) {
      s.sim->compute_encodings(calibrate, group_);  // the same encodings on every rank
    } else if (options_.timing) {
      double forward = 0.0;
      s.sim->compute_encodings([&] {
        const double begin = Progress::steady_seconds();
        calibrate();
        forward = seconds_since(begin);
      });
      out_ << "timing calibrate " << label << ": forward " << milliseconds(forward) << ", ranges "
           << milliseconds(seconds_since(start) - forward) << "\n";
    } else {
      s.sim->compute_encodings(calibrate);
    }
    s.result.calibration_seconds = Progress::steady_seconds() - start;
    s.result.scheme = bits.name;
    s.result.quant_scheme = to_string(scheme);
    return s;
  }

  Simulation post_training(const Net& net, const Bitwidths& bits, const Analyzer& analyzer,
                           const Dataset& test) {
    const std::string label = std::string(bits.name) + " " + analyzer.name;
    Simulation s = simulate(net, bits, analyzer.scheme, label);
    s.result.analyzer = analyzer.name;
    const double start = Progress::steady_seconds();
    s.result.accuracy = evaluate(*s.model, test, out_, "evaluate " + label);
    s.result.evaluation_seconds = Progress::steady_seconds() - start;
    s.result.weight_sqnr = weight_sqnr(*s.sim);
    return s;
  }

  // W4A8 with trainable ranges, initialised by the analyzer that did better post-training.
  Simulation quantization_aware_training(const Net& net, const std::vector<Simulation>& sims,
                                         const FashionMnist& data) {
    double min_max = -1, sqnr = -1;
    for (const auto& s : sims) {
      if (s.result.scheme != kW4A8.name) continue;
      if (s.result.analyzer == "MinMax") min_max = s.result.accuracy;
      if (s.result.analyzer == "SQNR") sqnr = s.result.accuracy;
    }
    const bool sqnr_init = sqnr > min_max;
    const QuantScheme scheme = sqnr_init ? QuantScheme::kTrainingRangeLearningWithTfEnhancedInit
                                         : QuantScheme::kTrainingRangeLearningWithTfInit;
    const std::string analyzer = sqnr_init ? "QAT (SQNR init)" : "QAT (MinMax init)";
    Simulation s = simulate(net, kW4A8, scheme, std::string("W4A8 ") + analyzer);
    s.result.analyzer = analyzer;

    // The model's parameters include every quantizer's min and max, trainable in this scheme.
    // Data-parallel: each rank trains on its share of every batch, and the gradients (weights and
    // quantizer ranges) are averaged before every step.
    TrainSchedule schedule = qat_schedule();
    if (group_) data_parallel(schedule);
    StepTimes times;
    std::function<void()> after_backward;
    if (group_ || options_.timing) after_backward = step_hook(*s.model.ptr(), "qat", times);
    const TrainResult trained = train(*s.model, s.model->parameters(), data.train, schedule, out_,
                                      "QAT W4A8", after_backward);
    if (group_) same_buffers_as_rank_zero(*s.model.ptr());
    s.result.training_seconds = trained.seconds;
    print_step_times("QAT W4A8", trained, times);
    const double start = Progress::steady_seconds();
    s.result.accuracy = evaluate(*s.model, data.test, out_, "evaluate W4A8 " + analyzer);
    s.result.evaluation_seconds = Progress::steady_seconds() - start;
    s.result.weight_sqnr = weight_sqnr(*s.sim);
    return s;
  }

  // The best configuration of a bitwidth as ONNX (docs/onnx.md §6): <prefix>.onnx,
  // <prefix>.encodings keyed by its tensors, <prefix>_qdq.onnx and <prefix>_torch.encodings; then,
  // when ONNX Runtime is here, the QDQ model's accuracy on the test images in the runtime, as
  // written and with its integer kernels (one Node process each, batches of 1,000).
  void export_onnx(Simulation& s, ConfigResult& result, const std::string& prefix,
                   const Dataset& test) {
    s.model->eval();
    NetImpl* model = s.model.get();
    const auto forward = [model](const std::vector<at::Tensor>& x) {
      return std::vector<at::Tensor>{model->forward(x[0])};
    };
    double start = Progress::steady_seconds();
    s.sim->export_onnx(options_.out_dir, prefix, {sample_.narrow(0, 0, 1)}, forward);
    result.onnx_export_seconds = Progress::steady_seconds() - start;
    result.onnx_qdq_file = prefix + "_qdq.onnx";
    for (const char* suffix : {".onnx", ".encodings", "_qdq.onnx", "_torch.encodings"}) {
      report_.encodings_files.push_back(prefix + suffix);
    }
    out_ << "exported " << result.name() << " to ONNX in "
         << format_fixed(result.onnx_export_seconds, 2) << " s\n";
    if (!testing::onnxruntime_available()) {
      out_ << "ONNX Runtime not evaluated: " << testing::onnxruntime_unavailable_reason() << "\n";
      return;
    }
    start = Progress::steady_seconds();
    std::vector<testing::OrtInputs> batches;
    constexpr int64_t kBatch = 1000;
    for (int64_t i = 0; i < test.size(); i += kBatch) {
      const int64_t n = std::min(kBatch, test.size() - i);
      batches.push_back({{"input", normalize_images(test.images.narrow(0, i, n))}});
    }
    const auto qdq_path = (std::filesystem::path(options_.out_dir) / result.onnx_qdq_file).string();
    const auto accuracy = [&](testing::OrtOptimization optimization) {
      const auto outputs = testing::run_in_onnxruntime(qdq_path, batches, optimization);
      int64_t correct = 0;
      for (size_t b = 0; b < outputs.size(); ++b) {
        const auto labels =
            test.labels.narrow(0, static_cast<int64_t>(b) * kBatch, outputs[b].at(0).size(0));
        correct += (outputs[b].at(0).argmax(1) == labels).sum().item<int64_t>();
      }
      return 100.0 * static_cast<double>(correct) / static_cast<double>(test.size());
    };
    result.runtime_accuracy = accuracy(testing::OrtOptimization::kDisabled);
    // --quick (the README's test command) stays quick: the graph as written only.
    if (!options_.quick) {
      result.runtime_integer_accuracy = accuracy(testing::OrtOptimization::kAll);
    }
    result.runtime_evaluation_seconds = Progress::steady_seconds() - start;
    out_ << result.name() << " in ONNX Runtime: " << format_fixed(result.runtime_accuracy, 2)
         << "% as written";
    if (result.runtime_integer_accuracy >= 0) {
      out_ << ", " << format_fixed(result.runtime_integer_accuracy, 2)
           << "% on its integer kernels";
    }
    out_ << " (simulated " << format_fixed(result.accuracy, 2) << "%; "
         << format_fixed(result.runtime_evaluation_seconds, 1) << " s)\n";
  }

  nlohmann::json settings(const FashionMnist& data) const {
    return {{"data", options_.data_dir},
            {"quick", options_.quick},
            {"threads", threads()},
            {"world_size", world_size()},
            {"seed", options_.seed},
            {"train_examples", data.train.size()},
            {"test_examples", data.test.size()},
            {"calibration_examples", calibration_.size()},
            {"percentile", kPercentile},
            {"net", NetOptions{}.to_json()},
            {"float_training", float_schedule().to_json()},
            {"qat", qat_schedule().to_json()},
            {"weights", "symmetric, per output channel"},
            {"activations", "asymmetric, per tensor"}};
  }

  const DemoOptions& options_;
  std::ostream& out_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  InjectedFailure inject_;
  Report report_;
  Dataset calibration_;
  at::Tensor sample_;
};

}  // namespace

int run_demo(const DemoOptions& options, std::ostream& out) {
  // A process started with WORLD_SIZE set (by `--nproc` or torchrun) is one rank of a
  // data-parallel run; only rank 0 prints.
  if (std::getenv("WORLD_SIZE") == nullptr) return Demo(options, out).run();
  auto group = distributed::init_process_group_from_env(kRankTimeout);
  if (group->getRank() == 0) return Demo(options, out, group).run();
  std::ostream silent(nullptr);
  return Demo(options, silent, group).run();
}

}  // namespace quantsim::apps
