#include "launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace quantsim::apps {
namespace {

// A loopback port nobody listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? ntohs(addr.sin_port) : 29500;
}

int exit_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int launch_local_ranks(int argc, const char* const* argv, int nproc, std::ostream& err,
                       int grace_seconds) {
  const std::string port = std::to_string(free_port());
  std::vector<char*> args;
  std::vector<std::string> arg_strings(argv, argv + argc);
  for (auto& a : arg_strings) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      // Ours replace any inherited launch variables.
      if (entry.rfind("MASTER_ADDR=", 0) == 0 || entry.rfind("MASTER_PORT=", 0) == 0 ||
          entry.rfind("RANK=", 0) == 0 || entry.rfind("WORLD_SIZE=", 0) == 0) {
        continue;
      }
      env.push_back(entry);
    }
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + port);
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(nproc));
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args.data(), envp.data()) != 0) {
      err << "quantsim: cannot start rank " << rank << "\n";
      for (pid_t p : pids) ::kill(p, SIGTERM);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      return 1;
    }
    pids.push_back(pid);
  }
  int first_failure = 0;
  std::vector<bool> done(pids.size(), false);
  size_t remaining = pids.size();
  std::chrono::steady_clock::time_point kill_at = std::chrono::steady_clock::time_point::max();
  bool killed = false;
  while (remaining > 0) {
    // Until a rank fails, sleep until a child ends (without reaping it: it may not be a rank), so
    // that the rank that failed first is reaped and named before the peers it brought down.
    siginfo_t info{};
    const bool blocked = first_failure == 0 && ::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) == 0;
    std::vector<size_t> order(pids.size());
    std::iota(order.begin(), order.end(), size_t{0});
    if (blocked) {  // the child that ended first, first
      const auto it = std::find(pids.begin(), pids.end(), info.si_pid);
      if (it != pids.end())
        std::rotate(order.begin(), order.begin() + (it - pids.begin()), order.end());
    }
    bool reaped = false;
    for (size_t r : order) {
      int status = 0;
      if (done[r] || ::waitpid(pids[r], &status, WNOHANG) != pids[r]) continue;
      done[r] = true;
      reaped = true;
      --remaining;
      const int code = exit_status(status);
      if (code == 0) continue;
      // Every failed rank is named: the one that failed first may end after a peer it brought
      // down (its error closes the connections before it exits), so each rank's own message
      // tells which is the cause.
      err << "quantsim: rank " << r << " of " << nproc;
      if (killed) {
        err << " killed after " << grace_seconds << " s\n";
      } else {
        err << " failed (exit status " << code << ")"
            << (first_failure == 0 ? "; stopping the others\n" : "\n");
      }
      if (first_failure == 0) {
        first_failure = code;
        kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
      }
    }
    if (remaining > 0 && std::chrono::steady_clock::now() > kill_at) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (!done[r]) ::kill(pids[r], SIGKILL);
      }
      killed = true;
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    if (!blocked || !reaped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return first_failure;
}

}  // namespace quantsim::apps
