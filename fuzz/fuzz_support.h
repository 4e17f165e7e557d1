// What every fuzz target shares: the input written to a file (the loaders take paths, as users
// call them), and the rule for what counts as a failure.
//
// A loader may reject any input with an exception: that is its contract. A crash, a sanitizer
// report, a hang (libFuzzer's -timeout) or a NaN that a successful load lets through is a
// failure; libFuzzer stops on the first one and writes the input as crash-<sha1>.
#pragma once

#include <c10/util/Exception.h>

#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

namespace quantsim::fuzz {

/// A file in /dev/shm (memory-backed: each run writes it thousands of times a second), one per
/// process, removed at exit.
inline const std::string& scratch_path() {
  static const std::string path = [] {
    std::string p = "/dev/shm/quantsim-fuzz-" + std::to_string(::getpid());
    std::atexit([] { std::remove(scratch_path().c_str()); });
    return p;
  }();
  return path;
}

/// Writes the fuzzer's bytes to scratch_path() and returns that path.
inline const std::string& write_input(const uint8_t* data, size_t size) {
  const auto& path = scratch_path();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

/// Runs `load`; an exception is a rejection of the input and passes.
inline void expect_accept_or_throw(const std::function<void()>& load) {
  try {
    load();
  } catch (const std::exception&) {
    // A rejection. The message's wording is checked by the unit tests, not here.
  }
}

/// Aborts (a libFuzzer crash) with `what` when `condition` is false.
inline void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace quantsim::fuzz
