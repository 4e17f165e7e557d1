#pragma once

/// Exception kinds of quantsim and the checks that raise them.
///
/// The reference raises ValueError/TypeError for bad arguments and RuntimeError for bad state or
/// incompatible tensors. quantsim maps the first to `std::invalid_argument` (QS_CHECK_ARG) and the
/// second to `c10::Error` (TORCH_CHECK), the libtorch convention.

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <stdexcept>
#include <string>

namespace quantsim {

/// Raised when a QuantizedTensor/DequantizedTensor without an encoding is asked to change
/// representation (the reference's EncodingError).
class EncodingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Raised when an analyzer is asked for encodings before it has seen any data.
class StatisticsNotFoundError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace quantsim

/// Throws std::invalid_argument with the concatenated message when `cond` is false.
#define QS_CHECK_ARG(cond, ...)                             \
  do {                                                      \
    if (!(cond)) {                                          \
      throw std::invalid_argument(::c10::str(__VA_ARGS__)); \
    }                                                       \
  } while (0)
