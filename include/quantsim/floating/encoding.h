#pragma once

/// `FloatEncoding`: the floating-point format of a float quantizer (docs/quantization.md §10.2).

#include <quantsim/encoding.h>

namespace quantsim::floating {

/// Exponent/mantissa widths and the (optional) largest value of a float quantization.
///
/// `maxval` is the quantizer's calibrated maxval buffer, undefined for a quantizer without one
/// (the format's own largest value applies). Float encodings describe a fake cast only:
/// quantize()/dequantize() raise c10::NotImplementedError, as the reference does.
///
/// Example:
///     FloatEncoding enc(/*mantissa_bits=*/3, /*exponent_bits=*/4, at::scalar_tensor(3.f));
///     enc.bitwidth();     // 8
///     enc.mapping();      // "float"
///     enc.to_legacy_format();  // [{"bitwidth": 8, "dtype": "float"}]
class FloatEncoding : public EncodingBase {
 public:
  /// Argument order as the reference's `FloatEncoding(mantissa_bits, exponent_bits, maxval)`.
  /// c10::Error for a defined, non-floating maxval.
  FloatEncoding(int64_t mantissa_bits, int64_t exponent_bits, at::Tensor maxval = {});

  int64_t mantissa_bits() const { return mantissa_bits_; }
  int64_t exponent_bits() const { return exponent_bits_; }
  /// Largest representable value (per tensor or per channel); undefined when not calibrated.
  const at::Tensor& maxval() const { return maxval_; }

  /// Always "float".
  std::string mapping() const override { return "float"; }
  /// E + M + 1.
  int64_t bitwidth() const override { return mantissa_bits_ + exponent_bits_ + 1; }
  /// "pertensor" when maxval is undefined or of shape () or (1,), else "perchannel" (as the
  /// reference, which looks only at maxval's shape).
  std::string granularity() const override;
  std::shared_ptr<EncodingBase> to(c10::optional<c10::Device> device,
                                   c10::optional<at::ScalarType> dtype) const override;
  std::shared_ptr<EncodingBase> copy() const override;
  std::shared_ptr<EncodingBase> clone() const override;
  std::shared_ptr<EncodingBase> detach() const override;
  /// c10::NotImplementedError: a float encoding has no integer representation.
  at::Tensor quantize(const at::Tensor& x) const override;
  /// c10::NotImplementedError: a float encoding has no integer representation.
  at::Tensor dequantize(const at::Tensor& q) const override;
  /// at::kHalf for E5M10, at::kBFloat16 for E8M7; c10::Error for formats libtorch has no dtype
  /// for (torch 1.13 has no float8).
  at::ScalarType dtype() const override;
  /// `[{"bitwidth": E + M + 1, "dtype": "float"}]` (docs/quantization.md §10.2).
  nlohmann::json to_legacy_format() const override;

 private:
  int64_t mantissa_bits_;
  int64_t exponent_bits_;
  at::Tensor maxval_;
};

}  // namespace quantsim::floating
