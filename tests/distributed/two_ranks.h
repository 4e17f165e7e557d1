#pragma once

// Two ranks over loopback for the distributed tests: the test process is rank 0 and re-executes
// itself, filtered to the running test, as rank 1 with torchrun's variables set (no fork: a
// process that has started OpenMP's threads cannot use them after fork).

#include <quantsim/distributed.h>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace quantsim::testing {

using Group = c10::intrusive_ptr<c10d::ProcessGroup>;

// A port nobody listens on now (the kernel's pick for port 0).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool is_spawned_rank() { return std::getenv("QS_TEST_SPAWNED_RANK") != nullptr; }

// Runs body(rank, group) as rank 0 here and as rank 1 in a re-executed copy of this test, and
// returns rank 1's exit status (0 when its assertions passed). Each process's assertions are its
// own; a test compares ranks by exchanging values through the group. Rank 1 is killed if it has
// not finished 30 s after rank 0's body.
inline int run_two_ranks(const std::function<void(int, const Group&)>& body,
                         std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  if (is_spawned_rank()) {
    const auto env = distributed::LaunchEnvironment::from_env();
    body(env.rank, distributed::init_process_group(env, timeout));
    return 0;
  }
  const int port = free_port();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string filter =
      std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("QS_TEST_SPAWNED_RANK=1");
  env_strings.push_back("MASTER_ADDR=127.0.0.1");
  env_strings.push_back("MASTER_PORT=" + std::to_string(port));
  env_strings.push_back("RANK=1");
  env_strings.push_back("WORLD_SIZE=2");
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", brief = "--gtest_brief=1";
  std::vector<char*> argv{self.data(), const_cast<char*>(filter.c_str()), brief.data(), nullptr};
  pid_t child = 0;
  if (::posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()) != 0) {
    ADD_FAILURE() << "cannot start rank 1";
    return -1;
  }
  {
    distributed::LaunchEnvironment env{"127.0.0.1", port, 0, 2};
    try {
      body(0, distributed::init_process_group(env, timeout));
    } catch (...) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      throw;
    }
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      ADD_FAILURE() << "rank 1 did not finish within 30 s";
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Every rank's copy of t (same shape on every rank), stacked: (world_size, *t.shape).
inline at::Tensor gather_from_ranks(const at::Tensor& t, const Group& group) {
  std::vector<at::Tensor> in{t.detach().contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < group->getSize(); ++r) out[0].push_back(at::empty_like(in[0]));
  group->allgather(out, in)->wait();
  return at::stack(out[0]);
}

}  // namespace quantsim::testing
