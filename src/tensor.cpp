#include <quantsim/errors.h>
#include <quantsim/tensor.h>

#include <ATen/ATen.h>

namespace quantsim {

QuantizedTensorBase::QuantizedTensorBase(at::Tensor data, std::shared_ptr<EncodingBase> encoding)
    : data_(std::move(data)), encoding_(std::move(encoding)) {
  TORCH_CHECK(data_.defined() && at::isFloatingType(data_.scalar_type()),
              "a quantized tensor holds floating values, got ",
              data_.defined() ? c10::toString(data_.scalar_type()) : "an undefined tensor",
              "; use quantized_repr() for integers");
}

std::shared_ptr<EncodingBase> QuantizedTensorBase::propagated_encoding() const {
  if (!encoding_ || encoding_->granularity() != "pertensor") return nullptr;
  return encoding_->copy();
}

const EncodingBase& QuantizedTensorBase::require_encoding(const char* what) const {
  if (!encoding_) {
    throw EncodingError(c10::str("cannot ", what, ": the tensor has no encoding"));
  }
  return *encoding_;
}

DequantizedTensor QuantizedTensor::dequantize() const {
  const auto& enc = require_encoding("dequantize");
  return DequantizedTensor(enc.dequantize(data_), enc.copy());
}

at::Tensor QuantizedTensor::quantized_repr() const {
  const auto& enc = require_encoding("compute quantized_repr");
  return data_.to(enc.dtype());
}

QuantizedTensor DequantizedTensor::quantize() const {
  const auto& enc = require_encoding("quantize");
  return QuantizedTensor(enc.quantize(data_), enc.copy());
}

at::Tensor DequantizedTensor::quantized_repr() const { return quantize().quantized_repr(); }

}  // namespace quantsim
