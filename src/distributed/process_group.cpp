// Rendezvous through c10d's TCPStore and ProcessGroupGloo (docs/distributed.md §2).

#include <quantsim/distributed/process_group.h>
#include <quantsim/errors.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <string>

namespace quantsim::distributed {
namespace {

std::string required_variable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    QS_THROW(c10::ValueError, "distributed launch: environment variable ", name,
             " is not set (torchrun sets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE)");
  }
  return value;
}

// The whole value must be a decimal integer in [lo, hi].
int integer_variable(const char* name, long lo, long hi) {
  const auto text = required_variable(name);
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || value < lo || value > hi) {
    QS_THROW(c10::ValueError, "distributed launch: environment variable ", name, "='", text,
             "' is not an integer in [", lo, ", ", hi, "]");
  }
  return static_cast<int>(value);
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

LaunchEnvironment LaunchEnvironment::from_env() {
  LaunchEnvironment env;
  env.master_addr = required_variable("MASTER_ADDR");
  env.master_port = integer_variable("MASTER_PORT", 1, 65535);
  env.world_size = integer_variable("WORLD_SIZE", 1, 1 << 20);
  env.rank = integer_variable("RANK", 0, 1 << 20);
  if (env.rank >= env.world_size) {
    QS_THROW(c10::ValueError, "distributed launch: RANK=", env.rank,
             " must be below WORLD_SIZE=", env.world_size);
  }
  return env;
}

void LaunchEnvironment::validate() const {
  TORCH_CHECK_VALUE(!master_addr.empty(), "distributed launch: master_addr is empty");
  TORCH_CHECK_VALUE(master_port >= 1 && master_port <= 65535, "distributed launch: master_port ",
                    master_port, " is not in [1, 65535]");
  TORCH_CHECK_VALUE(world_size >= 1, "distributed launch: world_size ", world_size,
                    " must be >= 1");
  TORCH_CHECK_VALUE(rank >= 0 && rank < world_size, "distributed launch: rank ", rank,
                    " is not in [0, world_size = ", world_size, ")");
}

c10::intrusive_ptr<c10d::ProcessGroup> init_process_group(const LaunchEnvironment& env,
                                                          std::chrono::milliseconds timeout) {
  env.validate();
  const auto where =
      c10::str("distributed rendezvous at ", env.master_addr, ":", env.master_port, " (rank ",
               env.rank, " of ", env.world_size, ", timeout ", timeout.count(), " ms): ");
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);

    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(env.master_addr)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, where);
  } catch (const std::exception& e) {
    QS_THROW(c10::Error, where, e.what());
  }
}

c10::intrusive_ptr<c10d::ProcessGroup> init_process_group_from_env(
    std::chrono::milliseconds timeout) {
  return init_process_group(LaunchEnvironment::from_env(), timeout);
}

void wait_for(const c10::intrusive_ptr<c10d::Work>& work, const c10d::ProcessGroup& group,
              const std::string& what) {
  const auto where =
      c10::str(what, " (rank ", group.getRank(), " of ", group.getSize(), ") failed: ");
  try {
    work->wait();
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, where);
  } catch (const std::exception& e) {
    QS_THROW(c10::Error, where, e.what());
  }
}

}  // namespace quantsim::distributed
