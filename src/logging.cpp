#include <quantsim/logging.h>

#include <c10/util/Exception.h>

#include <mutex>

namespace quantsim {
namespace {

std::mutex& handler_mutex() {
  static std::mutex mutex;
  return mutex;
}

WarningHandler& current_handler() {
  static WarningHandler handler;  // empty: the default
  return handler;
}

}  // namespace

WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(handler_mutex());
  std::swap(current_handler(), handler);
  return handler;
}

void warn(const std::string& message) {
  WarningHandler handler;
  {
    // Copied out so that a handler that installs another handler does not deadlock.
    std::lock_guard<std::mutex> lock(handler_mutex());
    handler = current_handler();
  }
  if (handler) {
    handler(message);
  } else {
    TORCH_WARN(message);
  }
}

}  // namespace quantsim
