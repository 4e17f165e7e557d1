// launch_local_ranks, behind `quantsim demo --nproc N` (docs/distributed.md §7): N copies of the
// program with torchrun's variables; a failed rank's status is returned and the others stopped.
// The copies are this test executable, filtered to the Child* cases, which do the ranks' part.

#include "apps/quantsim/launcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>

namespace {

constexpr const char* kChildMode = "QS_LAUNCHER_TEST_CHILD";

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Runs launch_local_ranks on this executable filtered to `child_test`, in child mode.
int launch(const std::string& child_test, const std::string& mode, std::ostream& err,
           int grace_seconds) {
  const std::string self = "/proc/self/exe";
  const std::string filter = "--gtest_filter=LaunchLocalRanks." + child_test;
  const char* argv[] = {self.c_str(), filter.c_str(), "--gtest_brief=1"};
  ::setenv(kChildMode, mode.c_str(), 1);
  const int status = quantsim::apps::launch_local_ranks(3, argv, 2, err, grace_seconds);
  ::unsetenv(kChildMode);
  return status;
}

}  // namespace

// The ranks' part: each sees the launch variables; in "fail" mode rank 1 exits with status 3 and
// rank 0 hangs (as a rank waiting for a dead peer would without a timeout).
TEST(LaunchLocalRanks, ChildRank) {
  const std::string mode = env_or_empty(kChildMode);
  if (mode.empty()) GTEST_SKIP() << "a rank of the launcher tests";
  EXPECT_EQ(env_or_empty("MASTER_ADDR"), "127.0.0.1");
  EXPECT_FALSE(env_or_empty("MASTER_PORT").empty());
  EXPECT_EQ(env_or_empty("WORLD_SIZE"), "2");
  const std::string rank = env_or_empty("RANK");
  EXPECT_TRUE(rank == "0" || rank == "1") << rank;
  if (mode == "fail") {
    if (rank == "1") std::_Exit(3);
    std::this_thread::sleep_for(std::chrono::seconds(60));
  }
}

TEST(LaunchLocalRanks, EveryRankSucceedsIsZero) {
  std::ostringstream err;
  EXPECT_EQ(launch("ChildRank", "ok", err, 1), 0);
  EXPECT_EQ(err.str(), "");
}

TEST(LaunchLocalRanks, FailedRankStatusIsReturnedAndTheOthersAreStopped) {
  std::ostringstream err;
  EXPECT_EQ(launch("ChildRank", "fail", err, /*grace_seconds=*/1), 3);
  EXPECT_EQ(err.str(),
            "quantsim: rank 1 of 2 failed (exit status 3); stopping the others\n"
            "quantsim: rank 0 of 2 killed after 1 s\n");
}
