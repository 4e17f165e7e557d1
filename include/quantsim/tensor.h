#pragma once

/// `QuantizedTensor` and `DequantizedTensor`: a float tensor together with the encoding that
/// produced it (spec §4). libtorch has no tensor subclassing, so these are value types; the
/// encoding follows the values through the view-like operations listed in §4.

#include <quantsim/encoding.h>

#include <ATen/core/Tensor.h>

#include <memory>

namespace quantsim {

class QuantizedTensor;
class DequantizedTensor;

/// Shared state and behaviour of the two kinds. The values are always a floating tensor.
class QuantizedTensorBase {
 public:
  /// c10::Error when `data` is not floating. `encoding` may be null (e.g. dropped by a view of a
  /// per-channel tensor).
  QuantizedTensorBase(at::Tensor data, std::shared_ptr<EncodingBase> encoding);

  /// The stored values (grid integers for QuantizedTensor, real values for DequantizedTensor).
  const at::Tensor& tensor() const { return data_; }
  const std::shared_ptr<EncodingBase>& encoding() const { return encoding_; }
  /// Replaces the encoding (null clears it), as in-place ops do in the reference.
  void set_encoding(std::shared_ptr<EncodingBase> encoding) { encoding_ = std::move(encoding); }

 protected:
  /// The encoding a per-tensor pass-through op keeps: a copy if per-tensor, else null.
  std::shared_ptr<EncodingBase> propagated_encoding() const;
  /// The encoding, or EncodingError naming `what`.
  const EncodingBase& require_encoding(const char* what) const;

  at::Tensor data_;
  std::shared_ptr<EncodingBase> encoding_;
};

/// Grid integers held in a float tensor.
class QuantizedTensor : public QuantizedTensorBase {
 public:
  using QuantizedTensorBase::QuantizedTensorBase;
  QuantizedTensor quantize() const { return *this; }
  /// Real values, with a copy of the encoding; EncodingError without an encoding.
  DequantizedTensor dequantize() const;
  /// The values cast to the encoding's integer dtype (uint8/int8/int16/int32).
  at::Tensor quantized_repr() const;
};

/// Real values that lie on an encoding's grid.
class DequantizedTensor : public QuantizedTensorBase {
 public:
  using QuantizedTensorBase::QuantizedTensorBase;
  /// Grid integers, with a copy of the encoding; EncodingError without an encoding.
  QuantizedTensor quantize() const;
  DequantizedTensor dequantize() const { return *this; }
  /// quantize() values cast to the encoding's integer dtype.
  at::Tensor quantized_repr() const;
};

}  // namespace quantsim
