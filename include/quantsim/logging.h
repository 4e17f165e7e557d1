#pragma once

/// Warnings of quantsim (e.g. NaN values skipped during calibration) go through one replaceable
/// hook, so that applications can route them to their own logging instead of stderr.
///
///     auto previous = quantsim::set_warning_handler(
///         [](const std::string& message) { my_logger.warn(message); });
///     ...
///     quantsim::set_warning_handler(previous);  // or nullptr for the default

#include <functional>
#include <string>

namespace quantsim {

/// Receives the text of one warning.
using WarningHandler = std::function<void(const std::string&)>;

/// Installs `handler` for every later warning and returns the handler it replaces. An empty
/// handler restores the default, which forwards the message to `TORCH_WARN` (stderr unless the
/// libtorch warning handler was changed). Thread-safe; the handler itself is called without any
/// quantsim lock held, so it may call back into quantsim.
WarningHandler set_warning_handler(WarningHandler handler);

/// Reports `message` through the current handler.
void warn(const std::string& message);

/// Installs a handler for the lifetime of the object and restores the previous one afterwards.
///
///     std::vector<std::string> seen;
///     quantsim::ScopedWarningHandler capture([&](const std::string& m) { seen.push_back(m); });
class ScopedWarningHandler {
 public:
  explicit ScopedWarningHandler(WarningHandler handler)
      : previous_(set_warning_handler(std::move(handler))) {}
  ~ScopedWarningHandler() { set_warning_handler(std::move(previous_)); }
  ScopedWarningHandler(const ScopedWarningHandler&) = delete;
  ScopedWarningHandler& operator=(const ScopedWarningHandler&) = delete;

 private:
  WarningHandler previous_;
};

}  // namespace quantsim
