#pragma once

/// Base of the encodings that describe how a tensor is quantized (affine, float).

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/Optional.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace quantsim {

/// An immutable description of a quantization: its grid, scale/offset or float format.
class EncodingBase {
 public:
  virtual ~EncodingBase() = default;

  /// "affine" or "float".
  virtual std::string mapping() const = 0;
  /// Bits of a quantized value.
  virtual int64_t bitwidth() const = 0;
  /// "pertensor", "perchannel", "blockwise" or "unknown" (spec §1.10).
  virtual std::string granularity() const = 0;
  /// The encoding with its tensors moved/cast; c10::Error for a non-floating dtype.
  virtual std::shared_ptr<EncodingBase> to(c10::optional<c10::Device> device,
                                           c10::optional<at::ScalarType> dtype) const = 0;
  /// A new encoding object sharing this one's tensors (the reference's shallow `copy`).
  virtual std::shared_ptr<EncodingBase> copy() const = 0;
  /// A new encoding with cloned (autograd-tracked) or detached tensors.
  virtual std::shared_ptr<EncodingBase> clone() const = 0;
  virtual std::shared_ptr<EncodingBase> detach() const = 0;
  /// Grid integers of x (a float tensor) and their real values.
  virtual at::Tensor quantize(const at::Tensor& x) const = 0;
  virtual at::Tensor dequantize(const at::Tensor& q) const = 0;
  /// Integer dtype of `QuantizedTensor::quantized_repr()`.
  virtual at::ScalarType dtype() const = 0;
  /// The reference's legacy encodings: a JSON array with one dict per channel (spec §6).
  virtual nlohmann::json to_legacy_format() const = 0;
};

}  // namespace quantsim
