#pragma once

/// Rendezvous of data-parallel ranks on torch.distributed's own engine, c10d: a TCPStore at
/// MASTER_ADDR:MASTER_PORT and a Gloo process group over TCP, from the variables torchrun sets
/// (docs/distributed.md). Not part of <quantsim/quantsim.h>: the c10d headers cost compile time
/// that single-process users should not pay; include <quantsim/distributed.h>.

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <chrono>
#include <string>

namespace quantsim::distributed {

/// How long a rank waits for its peers, at rendezvous and in every collective, unless told.
constexpr std::chrono::milliseconds kDefaultTimeout{std::chrono::seconds(60)};

/// Where ranks meet and who this one is (torchrun's variables).
struct LaunchEnvironment {
  /// MASTER_ADDR: host of rank 0's store (an IP address or a host name).
  std::string master_addr;
  /// MASTER_PORT: TCP port of the store, 1..65535.
  int master_port = 0;
  /// RANK: this process, 0..world_size-1.
  int rank = 0;
  /// WORLD_SIZE: number of processes, >= 1.
  int world_size = 1;

  /// Reads MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE; c10::ValueError naming the variable
  /// when one is missing or malformed, or when RANK is not below WORLD_SIZE.
  static LaunchEnvironment from_env();
  /// c10::ValueError naming the field when a value is out of range.
  void validate() const;
};

/// A Gloo process group of `env.world_size` ranks: rank 0 serves the TCPStore at
/// master_addr:master_port, every rank connects to it and then to each other. Gloo binds the
/// interface named by GLOO_SOCKET_IFNAME when set, the loopback device when master_addr is a
/// loopback address, the host name's address otherwise. c10::Error (naming the address, rank and
/// world size) when the peers do not all arrive within `timeout`, which also bounds every later
/// collective: a rank that dies makes its peers' next collective fail instead of hanging.
c10::intrusive_ptr<c10d::ProcessGroup> init_process_group(
    const LaunchEnvironment& env, std::chrono::milliseconds timeout = kDefaultTimeout);

/// init_process_group(LaunchEnvironment::from_env(), timeout).
c10::intrusive_ptr<c10d::ProcessGroup> init_process_group_from_env(
    std::chrono::milliseconds timeout = kDefaultTimeout);

/// Waits for `work`, rethrowing its failure as c10::Error prefixed with `what`, this rank and the
/// world size, so that a peer's failure reads as such.
void wait_for(const c10::intrusive_ptr<c10d::Work>& work, const c10d::ProcessGroup& group,
              const std::string& what);

}  // namespace quantsim::distributed
