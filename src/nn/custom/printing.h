// Helpers for the pretty_print() of the custom modules: values printed as PyTorch prints them.
#pragma once

#include <c10/core/Scalar.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <ostream>
#include <vector>

namespace quantsim::nn::custom::detail {

inline void print_dims(std::ostream& stream, const c10::optional<std::vector<int64_t>>& dims) {
  if (dims) {
    stream << c10::IntArrayRef(*dims);
  } else {
    stream << "None";
  }
}

inline void print_dim(std::ostream& stream, const c10::optional<int64_t>& dim) {
  if (dim) {
    stream << *dim;
  } else {
    stream << "None";
  }
}

inline void print_scalar(std::ostream& stream, const c10::Scalar& s) {
  if (s.isIntegral(/*includeBool=*/true)) {
    stream << s.toLong();
  } else {
    stream << s.toDouble();
  }
}

}  // namespace quantsim::nn::custom::detail
