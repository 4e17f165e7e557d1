// The `quantsim` command line: options, the demo subcommand, help, version and errors.
#include "apps/quantsim/cli.h"

#include <quantsim/version.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace quantsim::apps {
namespace {

DemoOptions parse(std::vector<const char*> args) {
  args.insert(args.begin(), "quantsim");
  DemoOptions options;
  auto app = make_command_line(options);
  app->parse(static_cast<int>(args.size()), args.data());
  return options;
}

TEST(CommandLine, Defaults) {
  const DemoOptions o = parse({});
  EXPECT_EQ(o.data_dir, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(o.out_dir, "quantsim-demo");
  EXPECT_FALSE(o.quick);
  EXPECT_FALSE(o.retrain);
  EXPECT_EQ(o.seed, 1u);
  EXPECT_EQ(o.resolved_epochs(), DemoOptions::kFullEpochs);
  EXPECT_EQ(o.resolved_qat_epochs(), DemoOptions::kFullQatEpochs);
  EXPECT_GE(o.resolved_threads(), 1);
}

TEST(CommandLine, EveryOptionOnTheProgramAndOnDemo) {
  for (bool subcommand : {false, true}) {
    std::vector<const char*> args = {"--data",  "/d",           "--out",  "/o",        "--epochs",
                                     "3",       "--qat-epochs", "0",      "--threads", "1",
                                     "--quick", "--retrain",    "--seed", "42"};
    if (subcommand) args.insert(args.begin(), "demo");
    const DemoOptions o = parse(args);
    EXPECT_EQ(o.data_dir, "/d");
    EXPECT_EQ(o.out_dir, "/o");
    EXPECT_EQ(o.resolved_epochs(), 3);
    EXPECT_EQ(o.resolved_qat_epochs(), 0);
    EXPECT_EQ(o.resolved_threads(), 1);
    EXPECT_TRUE(o.quick);
    EXPECT_TRUE(o.retrain);
    EXPECT_EQ(o.seed, 42u);
  }
}

TEST(CommandLine, QuickChangesTheDefaultEpochsOnly) {
  EXPECT_EQ(parse({"--quick"}).resolved_epochs(), DemoOptions::kQuickEpochs);
  EXPECT_EQ(parse({"--quick"}).resolved_qat_epochs(), DemoOptions::kQuickQatEpochs);
  EXPECT_EQ(parse({"--quick", "--epochs", "2"}).resolved_epochs(), 2);
}

std::string parse_error(std::vector<const char*> args) {
  try {
    parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(CommandLine, BadValuesAreErrorsNamingTheOption) {
  EXPECT_EQ(parse_error({"--epochs", "0"}), "--epochs: must be an integer >= 1, got 0");
  const std::string max_threads = std::to_string(DemoOptions::max_threads());
  EXPECT_EQ(parse_error({"--threads", "two"}),
            "--threads: must be an integer in [1, " + max_threads +
                "] (at most the hardware's concurrency), got two");
  EXPECT_EQ(parse_error({"--qat-epochs", "-1"}), "--qat-epochs: must be an integer >= 0, got -1");
  EXPECT_EQ(parse_error({"--frobnicate"}), "The following argument was not expected: --frobnicate");
  EXPECT_EQ(parse_error({"train"}), "The following argument was not expected: train");
}

TEST(CommandLine, ThreadsAreBoundedByTheHardware) {
  // 100,000 used to be accepted: thousands of threads, 900 MB, no progress.
  const int64_t max_threads = DemoOptions::max_threads();
  ASSERT_EQ(max_threads, std::max<int64_t>(1, std::thread::hardware_concurrency()));
  for (bool subcommand : {false, true}) {
    std::vector<const char*> args = {"--threads", "100000"};
    if (subcommand) args.insert(args.begin(), "demo");
    EXPECT_EQ(parse_error(args), "--threads: must be an integer in [1, " +
                                     std::to_string(max_threads) +
                                     "] (at most the hardware's concurrency), got 100000");
  }
  const std::string most = std::to_string(max_threads);
  EXPECT_EQ(parse({"demo", "--threads", most.c_str()}).resolved_threads(), max_threads);
  const std::string one_more = std::to_string(max_threads + 1);
  EXPECT_NE(parse_error({"--threads", one_more.c_str()}), "<no error>");
  EXPECT_EQ(parse_error({"--threads", "0"}), "--threads: must be an integer in [1, " + most +
                                                 "] (at most the hardware's concurrency), got 0");
}

TEST(CommandLine, VersionAndHelp) {
  DemoOptions options;
  auto app = make_command_line(options);
  std::vector<const char*> version = {"quantsim", "--version"};
  try {
    app->parse(2, version.data());
    FAIL() << "--version did not stop parsing";
  } catch (const CLI::CallForVersion& e) {
    EXPECT_EQ(std::string(e.what()), std::string("quantsim ") + kVersion);
  }

  std::ostringstream out, err;
  std::vector<const char*> help = {"quantsim", "--help"};
  EXPECT_EQ(run_command_line(2, help.data(), out, err), 0);
  EXPECT_EQ(err.str(), "");
  for (const char* option : {"--data", "--out", "--epochs", "--qat-epochs", "--threads", "--quick",
                             "--retrain", "--seed", "--version", "demo"}) {
    EXPECT_NE(out.str().find(option), std::string::npos) << option << " missing from\n"
                                                         << out.str();
  }
  // `quantsim demo --help` lists the same options.
  std::ostringstream demo_out;
  std::vector<const char*> demo_help = {"quantsim", "demo", "--help"};
  EXPECT_EQ(run_command_line(3, demo_help.data(), demo_out, err), 0);
  for (const char* option : {"--data", "--out", "--epochs", "--qat-epochs", "--threads", "--quick",
                             "--retrain", "--seed"}) {
    EXPECT_NE(demo_out.str().find(option), std::string::npos) << option;
  }
}

TEST(CommandLine, ErrorsBecomeAMessageAndAStatus) {
  std::ostringstream out, err;
  std::vector<const char*> bad = {"quantsim", "--epochs", "0"};
  EXPECT_NE(run_command_line(3, bad.data(), out, err), 0);
  EXPECT_NE(err.str().find("--epochs: must be an integer >= 1, got 0"), std::string::npos)
      << err.str();

  // The demo fails before any training when the data is missing; the message names the package.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("quantsim_cli_" + std::to_string(getpid()));
  const std::string out_dir = (dir / "out").string();
  const std::string data_dir = (dir / "no-data").string();
  std::ostringstream run_out, run_err;
  std::vector<const char*> run = {"quantsim",       "demo",  "--quick",      "--data",
                                  data_dir.c_str(), "--out", out_dir.c_str()};
  EXPECT_EQ(run_command_line(static_cast<int>(run.size()), run.data(), run_out, run_err), 1);
  EXPECT_EQ(
      run_err.str().rfind("quantsim: error: Fashion-MNIST: no directory '" + data_dir + "'", 0), 0u)
      << run_err.str();
  EXPECT_NE(run_err.str().find("dataset-fashion-mnist"), std::string::npos);
  // A c10::Error's message alone: users never see a C++ backtrace.
  const std::string printed = run_err.str();
  EXPECT_EQ(printed.find("Exception raised from"), std::string::npos) << printed;
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 1) << printed;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantsim::apps
