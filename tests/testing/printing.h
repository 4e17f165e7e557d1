#pragma once

// What a module prints: pretty_print output is asserted as an exact string.

#include <torch/nn/module.h>

#include <sstream>
#include <string>

namespace quantsim::testing {

/// What `operator<<` prints for a module.
inline std::string printed(const torch::nn::Module& module) {
  std::ostringstream stream;
  stream << module;
  return stream.str();
}

}  // namespace quantsim::testing
