#pragma once

/// `EncodingBase`: what every encoding (affine, float) offers to the tensors and exporters that
/// hold one (docs/quantization.md §10).

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/Optional.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace quantsim {

/// An immutable description of a quantization: its grid, scale/offset or float format.
///
/// Encodings are shared through `std::shared_ptr` (a QuantizedTensor and the views made from it
/// hold distinct encoding objects that may share tensors, as the reference's `copy.copy` does).
/// They never change after construction; every "modifying" method returns a new object, except
/// `to()` with nothing to change, which returns this very object when it is owned by a
/// `shared_ptr` (the reference's `return self`).
///
/// Example:
///     std::shared_ptr<quantsim::EncodingBase> enc = quantizer->get_encoding();
///     if (enc->granularity() == "pertensor") {
///       at::Tensor q = enc->quantize(x);        // grid integers, x's dtype
///       at::Tensor x_hat = enc->dequantize(q);  // real values on the grid
///     }
class EncodingBase : public std::enable_shared_from_this<EncodingBase> {
 public:
  virtual ~EncodingBase() = default;

  /// "affine" or "float".
  virtual std::string mapping() const = 0;
  /// Bits of a quantized value.
  virtual int64_t bitwidth() const = 0;
  /// "pertensor", "perchannel", "blockwise" or "unknown" (docs/quantization.md §3).
  virtual std::string granularity() const = 0;
  /// The encoding with its tensors moved to `device` and/or cast to the floating `dtype`.
  ///
  /// Returns this object itself when nothing changes (and it is owned by a shared_ptr; otherwise
  /// a copy()). c10::Error for a non-floating `dtype`: an encoding's tensors must stay floating.
  ///     auto enc64 = enc->to(c10::nullopt, at::kDouble);
  virtual std::shared_ptr<EncodingBase> to(c10::optional<c10::Device> device,
                                           c10::optional<at::ScalarType> dtype) const = 0;
  /// A new encoding object sharing this one's tensors (the reference's shallow `copy.copy`).
  virtual std::shared_ptr<EncodingBase> copy() const = 0;
  /// A new encoding whose tensors are `clone()`s of this one's: gradients flow back through them.
  virtual std::shared_ptr<EncodingBase> clone() const = 0;
  /// A new encoding whose tensors are `detach()`ed from the autograd graph.
  virtual std::shared_ptr<EncodingBase> detach() const = 0;
  /// Grid integers of the real values `x` (a floating tensor; result has x's dtype).
  virtual at::Tensor quantize(const at::Tensor& x) const = 0;
  /// Real values of the grid integers `q` (a floating tensor; result has q's dtype).
  virtual at::Tensor dequantize(const at::Tensor& q) const = 0;
  /// Integer dtype of `quantized_repr()` (uint8, int8, int16 or int32 for affine encodings).
  virtual at::ScalarType dtype() const = 0;
  /// The reference's legacy encodings: a JSON array with one dict per channel
  /// (docs/quantization.md §10.1).
  virtual nlohmann::json to_legacy_format() const = 0;
};

}  // namespace quantsim
