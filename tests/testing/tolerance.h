#pragma once

// Every tolerance rule of the test suite, in one place (as ruy's `Agree`).
//  * kernel vs reference, element-wise outputs: bit-exact (expect_bitwise_equal)
//  * kernel vs reference, reduced gradients (both summed in double, in different orders): for
//    float32/16 results 4 ulps of the result's type per element and 1 ulp on the mean; for
//    float64 results, whose rounding error grows with the number of terms and with
//    cancellation, a relative 1e-12 (reduction_close)
//  * the reference's numbers: 1e-6 absolute unless the check states otherwise (kSpecAtol)

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

namespace quantsim::testing {

constexpr double kSpecAtol = 1e-6;

/// Bit-identical values, shapes and dtypes (NaNs compare by bit pattern).
inline ::testing::AssertionResult bitwise_equal(const at::Tensor& actual,
                                                const at::Tensor& expected) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs " << expected.sizes();
  }
  if (actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure()
           << "dtype " << actual.scalar_type() << " vs " << expected.scalar_type();
  }
  const auto a = actual.contiguous(), e = expected.contiguous();
  const auto bytes = a.numel() * a.element_size();
  if (bytes == 0 || std::memcmp(a.data_ptr(), e.data_ptr(), bytes) == 0) {
    return ::testing::AssertionSuccess();
  }
  const auto diff = (a.to(at::kDouble) - e.to(at::kDouble)).abs();
  const auto idx = diff.nan_to_num(1e300).flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure()
         << "not bitwise equal; first large difference at flat index " << idx << ": "
         << a.flatten()[idx].item<double>() << " vs " << e.flatten()[idx].item<double>()
         << " (max |diff| " << diff.max().item<double>() << ")";
}

/// Values agree within `atol` everywhere (shapes must match).
inline ::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected,
                                            double atol = kSpecAtol, double rtol = 0.0) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs " << expected.sizes();
  }
  const auto a = actual.detach().to(at::kDouble), e = expected.detach().to(at::kDouble);
  if (at::allclose(a, e, rtol, atol)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\nactual:   " << a << "\nexpected: " << e;
}

/// Reduced gradients: summation order differs between kernel and reference.
inline ::testing::AssertionResult reduction_close(const at::Tensor& actual,
                                                  const at::Tensor& expected) {
  if (actual.sizes() != expected.sizes() || actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure() << "shape/dtype mismatch";
  }
  const auto a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  const double eps = actual.scalar_type() == at::kDouble  ? 2.5e-13
                     : actual.scalar_type() == at::kFloat ? 1.2e-7
                                                          : 8e-3;
  const auto bound = e.abs() * (4 * eps) + 1e-30;
  const auto err = (a - e).abs();
  if ((err <= bound).all().item<bool>() &&
      err.mean().item<double>() <= (e.abs() * eps).mean().item<double>() + 1e-30) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "\nactual:   " << a << "\nexpected: " << e;
}

}  // namespace quantsim::testing
