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
// How long a rank waits for its peers (rendezvous and each collective): the other ranks wait in a
// broadcast while rank 0 trains the float model. A rank that dies is noticed at once (its sockets
// close); only a rank that hangs is noticed this late.
constexpr std::chrono::minutes kRankTimeout{30};

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
      : options_(options), out_(out), group_(std::move(group)) {}

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

    // Every rank holds the same encodings; rank 0 alone writes them and the report.
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
  // This rank's contiguous share of `data`; every rank gets the same count (the remainder is
  // left out), so that every rank takes the same number of steps.
  Dataset shard(const Dataset& data) const {
    if (!group_) return data;
    const int64_t n = data.size() / world_size();
    return Dataset{data.images.narrow(0, rank() * n, n), data.labels.narrow(0, rank() * n, n)};
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
    return {{"format", kCheckpointFormat},
            {"net", NetOptions{}.to_json()},
            {"schedule", float_schedule().to_json()},
            {"train_examples", train.size()},
            {"seed", options_.seed}};
  }

  // The trained float model. With several ranks, rank 0 loads or trains it and the others receive
  // its parameters.
  Net float_model(const Dataset& train_data) {
    if (!group_) return float_model_of_this_process(train_data);
    Net net{nullptr};
    if (rank() == 0) {
      net = float_model_of_this_process(train_data);
    } else {
      torch::manual_seed(options_.seed);
      net = Net();
      net->eval();
    }
    distributed::broadcast_state(*net.ptr(), group_);
    return net;
  }

  // The trained float model: from the cache when a checkpoint of the same settings is there.
  Net float_model_of_this_process(const Dataset& train_data) {
    const std::string key = checkpoint_key(train_data).dump();
    const std::string name = "float-" + hex(fnv1a(key)) + ".pt";
    const std::string path = (std::filesystem::path(options_.out_dir) / name).string();
    torch::manual_seed(options_.seed);
    Net net;
    if (!options_.retrain && std::filesystem::exists(path)) {
      try {
        // Checked against the net: a corrupt or foreign file is an error naming it.
        load_state(*net, path);
        report_.cached_checkpoint = name;
        out_ << "float model: loaded " << path << " (--retrain trains it again)\n";
        net->eval();
        return net;
      } catch (const std::exception& e) {
        out_ << "float model: cannot load " << path << " (" << message_of(e) << "), training\n";
        torch::manual_seed(options_.seed);
        net = Net();
      }
    }
    const TrainResult trained =
        train(*net, net->parameters(), train_data, float_schedule(), out_, "train");
    report_.float_training_seconds = trained.seconds;
    // Saved atomically: an interrupted run (or a full disk) never leaves a truncated checkpoint
    // to be reused.
    save_state(*net, path);
    out_ << "float model: trained in " << format_fixed(trained.seconds, 1) << " s, saved " << path
         << "\n";
    return net;
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
    const auto calibrate = [&, data = shard(calibration_)] {
      forward_batches(*model, data, data.size(), out_, "calibrate " + label);
    };
    if (group_) {
      s.sim->compute_encodings(calibrate, group_);  // the same encodings on every rank
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
    // Data-parallel: each rank trains on its shard with its share of the batch, and the gradients
    // (weights and quantizer ranges) are averaged before every step.
    TrainSchedule schedule = qat_schedule();
    std::function<void()> average;
    if (group_) {
      schedule.batch_size = std::max<int64_t>(1, schedule.batch_size / world_size());
      average = [this, model = s.model] { distributed::average_gradients(*model.ptr(), group_); };
    }
    const TrainResult trained = train(*s.model, s.model->parameters(), shard(data.train), schedule,
                                      out_, "QAT W4A8", average);
    s.result.training_seconds = trained.seconds;
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
