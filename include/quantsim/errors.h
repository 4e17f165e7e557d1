#pragma once

/// Exception kinds of quantsim and the checks that raise them.
///
/// Every quantsim error is a `c10::Error`, as libtorch raises them, so one
/// `catch (const c10::Error&)` handles them all; the subclass says which exception the reference
/// raises (and the one Python bindings map it to):
///
/// - ValueError (a bad value)        -> `c10::ValueError`, raised with `TORCH_CHECK_VALUE`
/// - TypeError (a wrong kind)        -> `c10::TypeError`, raised with `TORCH_CHECK_TYPE`
/// - IndexError, KeyError            -> `c10::IndexError`, raised with `TORCH_CHECK_INDEX`
/// - NotImplementedError             -> `c10::NotImplementedError`, `TORCH_CHECK_NOT_IMPLEMENTED`
/// - RuntimeError (bad state, I/O)   -> `c10::Error`, raised with `TORCH_CHECK`
/// - EncodingError                   -> `quantsim::EncodingError`, raised with `QS_THROW`
/// - StatisticsNotFoundError         -> `quantsim::StatisticsNotFoundError`, `QS_THROW`
///
/// The message names the bad value, the file and the key. `what()` appends the C++ source location
/// and a backtrace, as every c10::Error does; `what_without_backtrace()` is the message alone, the
/// text to show a user:
/// ```
/// try {
///   qs::load_encodings(model, "model_torch.encodings");
/// } catch (const c10::Error& e) {
///   std::cerr << e.what_without_backtrace() << "\n";
/// }
/// ```

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace quantsim {

/// Raised when a QuantizedTensor/DequantizedTensor without an encoding is asked to change
/// representation (the reference's EncodingError).
class EncodingError : public c10::Error {
 public:
  using c10::Error::Error;
};

/// Raised when an analyzer is asked for encodings before it has seen any data (the reference's
/// StatisticsNotFoundError, a RuntimeError).
class StatisticsNotFoundError : public c10::Error {
 public:
  using c10::Error::Error;
};

/// Throws `error` again as the same kind (a c10::ValueError stays a ValueError, an EncodingError
/// an EncodingError) with `prefix` before its message and its original backtrace: how a caller
/// adds the file or the key to an error raised deeper.
/// ```
/// catch (const c10::Error& e) { qs::rethrow_with_prefix(e, path + ": "); }
/// ```
[[noreturn]] inline void rethrow_with_prefix(const c10::Error& error, const std::string& prefix) {
  std::string message = prefix + error.what_without_backtrace();
  const auto rethrow_as = [&](auto* kind) {
    using Kind = std::remove_pointer_t<decltype(kind)>;
    if (dynamic_cast<const Kind*>(&error) != nullptr) {
      throw Kind(std::move(message), error.backtrace(), error.caller());
    }
  };
  // Most derived first: the first kind `error` is an instance of wins.
  rethrow_as(static_cast<StatisticsNotFoundError*>(nullptr));
  rethrow_as(static_cast<EncodingError*>(nullptr));
  rethrow_as(static_cast<c10::ValueError*>(nullptr));
  rethrow_as(static_cast<c10::TypeError*>(nullptr));
  rethrow_as(static_cast<c10::IndexError*>(nullptr));
  rethrow_as(static_cast<c10::NotImplementedError*>(nullptr));
  rethrow_as(static_cast<c10::LinAlgError*>(nullptr));
  throw c10::Error(std::move(message), error.backtrace(), error.caller());
}

/// The message of `error` as a user should read it: a c10::Error's without the source location
/// and backtrace (what_without_backtrace), any other exception's what().
/// ```
/// catch (const std::exception& e) { std::cerr << "error: " << qs::message_of(e) << "\n"; }
/// ```
inline const char* message_of(const std::exception& error) noexcept {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    return c10_error->what_without_backtrace();
  }
  return error.what();
}

}  // namespace quantsim

/// Throws `error_t` (any c10::Error kind, quantsim's own included) with the concatenated message
/// and the source location, as TORCH_CHECK does; C10_THROW_ERROR cannot raise quantsim's types
/// since it prefixes `::c10::`.
/// ```
/// QS_THROW(quantsim::EncodingError, "cannot dequantize ", what, ": it has no encoding");
/// ```
#define QS_THROW(error_t, ...)                                                              \
  throw error_t(::c10::SourceLocation{__func__, __FILE__, static_cast<uint32_t>(__LINE__)}, \
                ::c10::str(__VA_ARGS__))
