#include "cli.h"

#include "launcher.h"

#include <quantsim/errors.h>
#include <quantsim/version.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

namespace quantsim::apps {

int64_t DemoOptions::max_threads() {
  return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
}

int64_t DemoOptions::resolved_threads() const { return threads > 0 ? threads : max_threads(); }

namespace {

// An integer of at least `min`, with a message that says so (CLI's ranges print 1.8e308).
CLI::Validator at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        int64_t n = 0;
        if (!CLI::detail::lexical_cast(value, n) || n < min) {
          return "must be an integer >= " + std::to_string(min) + ", got " + value;
        }
        return "";
      },
      ">=" + std::to_string(min));
}

// An integer in [min, max]; `why` says where max comes from.
CLI::Validator between(int64_t min, int64_t max, const std::string& why) {
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        int64_t n = 0;
        if (!CLI::detail::lexical_cast(value, n) || n < min || n > max) {
          return "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                 "] (" + why + "), got " + value;
        }
        return "";
      },
      "[" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

// Declared on the program and on `demo` alike, bound to the same variables: both spellings
// parse, and both --help texts list every option.
void add_demo_options(CLI::App& app, DemoOptions& options) {
  app.add_option("--data", options.data_dir,
                 "Directory of the Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...); "
                 "the Debian package dataset-fashion-mnist installs them in the default")
      ->capture_default_str()
      ->type_name("DIR");
  app.add_option("--out", options.out_dir,
                 "Output directory: checkpoint cache, report.json, report.html, encodings")
      ->capture_default_str()
      ->type_name("DIR");
  app.add_option("--epochs", options.epochs,
                 "Training epochs of the float model [default: " +
                     std::to_string(DemoOptions::kFullEpochs) + ", " +
                     std::to_string(DemoOptions::kQuickEpochs) + " with --quick]")
      ->check(at_least(1))
      ->type_name("N");
  app.add_option("--qat-epochs", options.qat_epochs,
                 "Quantization-aware training epochs of W4A8, 0 to skip it [default: " +
                     std::to_string(DemoOptions::kFullQatEpochs) + ", " +
                     std::to_string(DemoOptions::kQuickQatEpochs) + " with --quick]")
      ->check(at_least(0))
      ->type_name("N");
  // More threads than cores only slow torch down; 100,000 of them used to be accepted and spawned
  // (900 MB, no progress). Rejected rather than capped: the user learns the limit.
  app.add_option("--threads", options.threads,
                 "Threads of torch's operators, at most the hardware's concurrency [default: "
                 "the hardware's concurrency, " +
                     std::to_string(DemoOptions::max_threads()) + " here]")
      ->check(between(1, DemoOptions::max_threads(), "at most the hardware's concurrency"))
      ->type_name("N");
  app.add_flag("--quick", options.quick,
               "CI mode: " + std::to_string(DemoOptions::kQuickTrain) + " training and " +
                   std::to_string(DemoOptions::kQuickTest) +
                   " test images, one training epoch, short QAT");
  app.add_flag("--retrain", options.retrain,
               "Train the float model even if a cached checkpoint in the output directory "
               "matches the settings");
  app.add_option("--seed", options.seed, "Seed of weight initialisation and data shuffling")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--nproc", options.nproc,
                 "Local ranks: data-parallel float training, calibration and QAT on "
                 "torch.distributed (Gloo), rank 0 writes the outputs")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{64}))
      ->type_name("N");
  app.add_flag("--timing", options.timing,
               "Print the time of each training step (with several ranks: waiting for the "
               "slowest rank, gradient averaging) and of each calibration's parts");
}

}  // namespace

std::unique_ptr<CLI::App> make_command_line(DemoOptions& options) {
  auto app = std::make_unique<CLI::App>(
      "quantsim: simulate the quantization of neural networks. Without a subcommand, runs the "
      "demo.",
      "quantsim");
  app->set_version_flag("--version", std::string("quantsim ") + kVersion,
                        "Print the version and exit");
  add_demo_options(*app, options);
  CLI::App* demo = app->add_subcommand(
      "demo",
      "Fashion-MNIST study: train a CNN, quantize it to W8A8 and W4A8 with each analyzer, "
      "fine-tune W4A8 with QAT, write a report (the default)");
  add_demo_options(*demo, options);
  app->require_subcommand(0, 1);
  app->footer(
      "Example: quantsim demo --out /tmp/demo   (reuses /tmp/demo's checkpoint when it "
      "matches)");
  return app;
}

int run_command_line(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  DemoOptions options;
  auto app = make_command_line(options);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app->exit(e, out, err);
  }
  // --nproc N starts N ranks of this program, unless this process is one of them already.
  if (options.nproc > 1 && std::getenv("WORLD_SIZE") == nullptr) {
    return launch_local_ranks(argc, argv, static_cast<int>(options.nproc), err);
  }
  try {
    return run_demo(options, out);
  } catch (const std::exception& e) {
    err << "quantsim: error: " << message_of(e) << "\n";  // never a C++ backtrace
    return 1;
  }
}

}  // namespace quantsim::apps
