// `quantsim demo --nproc 2` end to end (docs/distributed.md §7), on a small generated data set:
// the float training is data-parallel (the checkpoint rank 0 saves is what two replicas give,
// each training on its half of every batch with the gradients averaged), and a rank that fails in
// the middle of training makes its peer stop with a clear error, the run exit non-zero and the
// output directory stay as it was.
//
// The parent case runs the command line as main() does (run_command_line with --nproc 2); the
// launcher starts this test executable twice with the launch variables and GTEST_FILTER set to
// DemoRanks.Rank, which runs the command line again as one rank, with its output in files.

#include "apps/quantsim/cli.h"
#include "apps/quantsim/fashion_mnist.h"
#include "apps/quantsim/net.h"
#include "apps/quantsim/training.h"

#include <quantsim/sim/encodings_io.h>

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace quantsim::apps {
namespace {

namespace fs = std::filesystem;

// Set by the parent for the ranks: the directory of their output files.
constexpr const char* kRankLogs = "QS_DEMO_RANKS_TEST_LOGS";
constexpr int64_t kTrain = 512;
constexpr int64_t kTest = 200;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// An IDX file of unsigned bytes, gzip-compressed.
void write_idx(const fs::path& path, const std::vector<uint32_t>& sizes,
               const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(sizes.size())};
  for (uint32_t s : sizes) {
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<uint8_t>(s >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(file);
}

// Fashion-MNIST's four files with `train` and `test` generated images: a bright square whose
// place depends on the label, over pseudo-random noise.
void write_data_set(const fs::path& dir) {
  fs::create_directories(dir);
  uint32_t state = 12345;
  const auto split = [&](const std::string& prefix, int64_t n) {
    std::vector<uint8_t> images, labels;
    for (int64_t i = 0; i < n; ++i) {
      const int label = static_cast<int>((i * 7) % 10);
      labels.push_back(static_cast<uint8_t>(label));
      for (int y = 0; y < 28; ++y) {
        for (int x = 0; x < 28; ++x) {
          state = state * 1664525u + 1013904223u;
          const bool square = y / 7 == label / 4 + 1 && x / 7 == label % 4;
          images.push_back(static_cast<uint8_t>((state >> 24) / 2 + (square ? 120 : 0)));
        }
      }
    }
    write_idx(dir / (prefix + "-images-idx3-ubyte.gz"), {static_cast<uint32_t>(n), 28, 28}, images);
    write_idx(dir / (prefix + "-labels-idx1-ubyte.gz"), {static_cast<uint32_t>(n)}, labels);
  };
  split("train", kTrain);
  split("t10k", kTest);
}

// A fresh directory per test (data, output, the ranks' logs), removed afterwards.
class DemoRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("WORLD_SIZE") != nullptr) return;  // a rank: DemoRanks.Rank alone runs
    dir_ = fs::temp_directory_path() /
           ("quantsim_demo_ranks_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(logs());
    write_data_set(data());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path data() const { return dir_ / "data"; }
  fs::path out() const { return dir_ / "out"; }
  fs::path logs() const { return dir_ / "logs"; }
  std::string log(int rank, const std::string& what) const {
    return read_file(logs() / ("rank" + std::to_string(rank) + "." + what));
  }

  // `quantsim demo --quick --nproc 2 --threads 1 --epochs 1 <extra>` as main() runs it, the
  // ranks being DemoRanks.Rank of this executable. Returns the exit status; `err` gets the
  // launcher's messages.
  int run_demo_on_two_ranks(const std::vector<std::string>& extra, std::string& err) {
    std::vector<std::string> args = {"quantsim",      "demo",  "--quick",     "--nproc", "2",
                                     "--threads",     "1",     "--epochs",    "1",       "--data",
                                     data().string(), "--out", out().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    ::setenv("GTEST_FILTER", "DemoRanks.Rank", 1);
    ::setenv(kRankLogs, logs().c_str(), 1);
    std::ostringstream out_stream, err_stream;
    const int status =
        run_command_line(static_cast<int>(argv.size()), argv.data(), out_stream, err_stream);
    ::unsetenv("GTEST_FILTER");
    ::unsetenv(kRankLogs);
    err = err_stream.str();
    return status;
  }

  std::set<std::string> files_in_out() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(out())) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  fs::path dir_;
};

// One rank of the parent cases: the command line of this process (after gtest's own flags,
// which come by the environment) run as main() would, stdout and stderr in
// $QS_DEMO_RANKS_TEST_LOGS/rank<R>.{out,err}, and its exit status in rank<R>.status, written
// only when the rank ends by itself (not killed by the launcher).
TEST_F(DemoRanks, Rank) {
  const char* logs = std::getenv(kRankLogs);
  if (logs == nullptr || std::getenv("WORLD_SIZE") == nullptr) {
    GTEST_SKIP() << "a rank of the DemoRanks cases";
  }
  const std::string cmdline = read_file("/proc/self/cmdline");
  std::vector<std::string> args;
  for (size_t begin = 0; begin < cmdline.size();) {
    const size_t end = cmdline.find('\0', begin);
    args.push_back(cmdline.substr(begin, end - begin));
    begin = end + 1;
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const fs::path prefix = fs::path(logs) / ("rank" + std::string(std::getenv("RANK")));
  int status = 0;
  {
    std::ofstream out(prefix.string() + ".out"), err(prefix.string() + ".err");
    status = run_command_line(static_cast<int>(argv.size()), argv.data(), out, err);
  }
  write_file(prefix.string() + ".status", std::to_string(status));
  std::_Exit(status);  // the demo's status is the process's, whatever gtest would say
}

// Averages the gradients of two replicas trained in lockstep in two threads (the reference of
// two ranks' average_gradients: (g0 + g1) / 2, exact in either order).
class Lockstep {
 public:
  explicit Lockstep(std::vector<NetImpl*> replicas) : replicas_(std::move(replicas)) {}

  void after_backward(size_t replica) {
    wait();
    if (replica == 0) {
      const auto p0 = replicas_[0]->parameters(), p1 = replicas_[1]->parameters();
      for (size_t i = 0; i < p0.size(); ++i) {
        const at::Tensor mean = at::add(p0[i].grad(), p1[i].grad()).div_(2.0);
        p0[i].mutable_grad().copy_(mean);
        p1[i].mutable_grad().copy_(mean);
      }
    }
    wait();
  }

 private:
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == static_cast<int>(replicas_.size())) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return generation_ != generation; });
    }
  }

  std::vector<NetImpl*> replicas_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  int64_t generation_ = 0;
};

TEST_F(DemoRanks, FloatTrainingIsDataParallel) {
  std::string err;
  ASSERT_EQ(run_demo_on_two_ranks({"--qat-epochs", "0"}, err), 0) << err << "\nrank 0:\n"
                                                                  << log(0, "err") << "\nrank 1:\n"
                                                                  << log(1, "err");
  EXPECT_EQ(log(0, "status"), "0");
  EXPECT_EQ(log(1, "status"), "0");
  EXPECT_NE(log(0, "out").find("1 threads x 2 ranks"), std::string::npos) << log(0, "out");
  EXPECT_EQ(log(1, "out"), "");  // rank 0 alone prints

  // The reference: two replicas from the same initialisation, each on its half of every batch
  // of 128 (TrainSchedule::rank/world_size), gradients averaged before every step; rank 0's
  // BatchNorm statistics kept.
  const FashionMnist set = load_fashion_mnist(data().string());
  at::set_num_threads(1);  // as --threads 1
  torch::manual_seed(1);   // --seed's default
  Net replica0;
  Net replica1(std::dynamic_pointer_cast<NetImpl>(replica0->clone()));
  Net initial(std::dynamic_pointer_cast<NetImpl>(replica0->clone()));
  Lockstep lockstep({replica0.get(), replica1.get()});
  const auto train_replica = [&](Net& net, int64_t rank) {
    TrainSchedule schedule;
    schedule.epochs = 1;
    schedule.seed = 1;
    schedule.batch_size = 64;
    schedule.rank = rank;
    schedule.world_size = 2;
    std::ostringstream progress;
    train(*net, net->parameters(), set.train, schedule, progress, "train",
          [&lockstep, rank] { lockstep.after_backward(static_cast<size_t>(rank)); });
  };
  std::thread second([&] { train_replica(replica1, 1); });
  train_replica(replica0, 0);
  second.join();

  std::vector<std::string> checkpoints;
  for (const auto& name : files_in_out()) {
    if (name.rfind("float-", 0) == 0) checkpoints.push_back(name);
  }
  ASSERT_EQ(checkpoints.size(), 1u);
  Net saved;
  load_state(*saved, (out() / checkpoints[0]).string());
  const auto expected = replica0->named_parameters(), actual = saved->named_parameters();
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& p : expected) {
    EXPECT_TRUE(at::equal(actual[p.key()], p.value())) << p.key();
  }
  // The two replicas' parameters are the same, and trained.
  for (const auto& p : replica1->named_parameters()) {
    EXPECT_TRUE(at::equal(expected[p.key()], p.value())) << p.key();
  }
  EXPECT_FALSE(at::equal(initial->fc2->weight, replica0->fc2->weight));
  const auto buffers = replica0->named_buffers(), saved_buffers = saved->named_buffers();
  for (const auto& b : buffers) {
    EXPECT_TRUE(at::equal(saved_buffers[b.key()], b.value())) << b.key();
  }
  // The report says how many ranks took part.
  EXPECT_NE(read_file(out() / "report.json").find("\"world_size\": 2"), std::string::npos);
}

// A rank throwing in the middle of training (QUANTSIM_DEMO_INJECT_FAILURE, after a backward):
// its peer's next gradient all-reduce fails, and it exits by itself with an error naming the step
// and itself; the run exits with status 1; the earlier files in the output directory are
// untouched and no new file is there but, when the failure came after the float training, the
// (complete) float checkpoint.
TEST_F(DemoRanks, FailingRankStopsItsPeerAndLeavesNoPartialFile) {
  for (const std::string phase : {"train", "qat"}) {
    SCOPED_TRACE(phase);
    fs::remove_all(out());
    fs::create_directories(out());
    for (const auto& f : fs::directory_iterator(logs())) fs::remove(f.path());
    const std::set<std::string> earlier = {"report.json", "report.html", "w4a8.encodings"};
    for (const auto& name : earlier) write_file(out() / name, "earlier " + name);

    ::setenv("QUANTSIM_DEMO_INJECT_FAILURE", ("1:" + phase + ":2").c_str(), 1);
    std::string err;
    const int status = run_demo_on_two_ranks({"--qat-epochs", "1"}, err);
    ::unsetenv("QUANTSIM_DEMO_INJECT_FAILURE");

    EXPECT_EQ(status, 1) << err;
    // Both ranks named, in the order they ended (either may end first).
    EXPECT_NE(err.find("quantsim: rank 1 of 2 failed (exit status 1)"), std::string::npos) << err;
    EXPECT_NE(err.find("quantsim: rank 0 of 2 failed (exit status 1)"), std::string::npos) << err;
    EXPECT_NE(err.find("; stopping the others\n"), std::string::npos) << err;
    EXPECT_EQ(err.find("killed"), std::string::npos) << err;
    EXPECT_NE(log(1, "err").find("quantsim: error: injected failure "
                                 "(QUANTSIM_DEMO_INJECT_FAILURE=1:" +
                                 phase + ":2) on rank 1 of 2"),
              std::string::npos)
        << log(1, "err");
    // Rank 0 stopped by itself (it wrote its status; the launcher kills only after 60 s) with
    // the failed collective named.
    EXPECT_EQ(log(0, "status"), "1");
    EXPECT_NE(log(0, "err").find("quantsim: error: average_gradients: all-reduce (rank 0 of 2) "
                                 "failed: "),
              std::string::npos)
        << log(0, "err");

    std::set<std::string> expected = earlier;
    std::string checkpoint;
    for (const auto& name : files_in_out()) {
      if (name.rfind("float-", 0) == 0) checkpoint = name;
    }
    if (phase == "qat") {
      ASSERT_FALSE(checkpoint.empty());
      expected.insert(checkpoint);
      Net net;
      EXPECT_NO_THROW(load_state(*net, (out() / checkpoint).string()));
    }
    EXPECT_EQ(files_in_out(), expected);
    for (const auto& name : earlier) EXPECT_EQ(read_file(out() / name), "earlier " + name);
  }
}

}  // namespace
}  // namespace quantsim::apps
