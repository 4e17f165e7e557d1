#pragma once

// Ending a group of calibration guards: each must run (set its range), even when an earlier one
// throws.

#include <exception>
#include <vector>

namespace quantsim::nn {

/// Destroys `guards` last first; rethrows the first failure once all are gone, unless an
/// exception is already unwinding the stack (a destructor must not throw then).
template <typename Guard>
void destroy_guards(std::vector<Guard>& guards) {
  std::exception_ptr first_error;
  while (!guards.empty()) {
    try {
      guards.pop_back();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error && std::uncaught_exceptions() == 0) std::rethrow_exception(first_error);
}

}  // namespace quantsim::nn
