#include <quantsim/floating/encoding.h>

#include <ATen/ATen.h>

namespace quantsim::floating {

FloatEncoding::FloatEncoding(int64_t mantissa_bits, int64_t exponent_bits, at::Tensor maxval)
    : mantissa_bits_(mantissa_bits), exponent_bits_(exponent_bits), maxval_(std::move(maxval)) {
  TORCH_CHECK(!maxval_.defined() || at::isFloatingType(maxval_.scalar_type()),
              "FloatEncoding: maxval must be floating, got ", maxval_.scalar_type());
}

std::string FloatEncoding::granularity() const {
  if (!maxval_.defined() || maxval_.dim() == 0) return "pertensor";
  if (maxval_.dim() == 1 && maxval_.size(0) == 1) return "pertensor";
  return "perchannel";
}

std::shared_ptr<EncodingBase> FloatEncoding::to(c10::optional<c10::Device> device,
                                                c10::optional<at::ScalarType> dtype) const {
  // Checked before the no-change shortcut, as for AffineEncoding: a non-floating dtype is an
  // error even when there is no maxval to cast.
  if (dtype) {
    TORCH_CHECK(at::isFloatingType(*dtype),
                "FloatEncoding.to: an encoding's tensors must stay floating, got dtype ", *dtype);
  }
  const bool unchanged = !maxval_.defined() || ((!device || *device == maxval_.device()) &&
                                                (!dtype || *dtype == maxval_.scalar_type()));
  if (unchanged) {
    auto self = std::const_pointer_cast<EncodingBase>(weak_from_this().lock());
    return self ? self : copy();
  }
  return std::make_shared<FloatEncoding>(
      mantissa_bits_, exponent_bits_,
      maxval_.to(device.value_or(maxval_.device()), dtype.value_or(maxval_.scalar_type())));
}

std::shared_ptr<EncodingBase> FloatEncoding::copy() const {
  return std::make_shared<FloatEncoding>(*this);
}

std::shared_ptr<EncodingBase> FloatEncoding::clone() const {
  return std::make_shared<FloatEncoding>(mantissa_bits_, exponent_bits_,
                                         maxval_.defined() ? maxval_.clone() : maxval_);
}

std::shared_ptr<EncodingBase> FloatEncoding::detach() const {
  return std::make_shared<FloatEncoding>(mantissa_bits_, exponent_bits_,
                                         maxval_.defined() ? maxval_.detach() : maxval_);
}

at::Tensor FloatEncoding::quantize(const at::Tensor& /*x*/) const {
  TORCH_CHECK_NOT_IMPLEMENTED(false,
                              "FloatEncoding.quantize: a float encoding has no integer "
                              "representation; use floating::quantize_dequantize");
  return {};
}

at::Tensor FloatEncoding::dequantize(const at::Tensor& /*q*/) const {
  TORCH_CHECK_NOT_IMPLEMENTED(false,
                              "FloatEncoding.dequantize: a float encoding has no integer "
                              "representation; use floating::quantize_dequantize");
  return {};
}

at::ScalarType FloatEncoding::dtype() const {
  if (exponent_bits_ == 5 && mantissa_bits_ == 10) return at::kHalf;
  if (exponent_bits_ == 8 && mantissa_bits_ == 7) return at::kBFloat16;
  TORCH_CHECK(false, "FloatEncoding.dtype: no libtorch dtype for E", exponent_bits_, "M",
              mantissa_bits_);
  return at::kFloat;
}

nlohmann::json FloatEncoding::to_legacy_format() const {
  return nlohmann::json::array({{{"bitwidth", bitwidth()}, {"dtype", "float"}}});
}

}  // namespace quantsim::floating
