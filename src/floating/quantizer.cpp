#include <quantsim/errors.h>
#include <quantsim/floating/functional.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/ops.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/serialize/archive.h>

#include <limits>
#include <ostream>

namespace quantsim::floating {

FloatQuantizerOptions::FloatQuantizerOptions(int64_t exponent_bits, int64_t mantissa_bits)
    : format_(FloatFormat::ieee(exponent_bits, mantissa_bits)) {}

namespace {
FloatFormat format_of(at::ScalarType dtype) {
  TORCH_CHECK_VALUE(dtype == at::kHalf || dtype == at::kBFloat16,
                    "float quantizers only support the dtypes float16 and bfloat16, got ", dtype);
  return FloatFormat::from_name(dtype == at::kHalf ? "float16" : "bfloat16");
}
}  // namespace

FloatQuantizerOptions::FloatQuantizerOptions(at::ScalarType dtype) : format_(format_of(dtype)) {}

FloatQuantizerOptions::FloatQuantizerOptions(const std::string& format)
    : format_(FloatFormat::from_name(format)) {}

FloatQuantizerOptions::FloatQuantizerOptions(const char* format)
    : FloatQuantizerOptions(std::string(format ? format : "")) {}

FloatQuantizeDequantizeImpl::FloatQuantizeDequantizeImpl(FloatQuantizerOptions options)
    : options_(std::move(options)) {
  // Options built field by field bypass the constructors' checks.
  check_bits(exponent_bits(), mantissa_bits());
  if (encoding_analyzer()) {
    has_maxval_ = true;
    maxval_shape_ = encoding_analyzer()->shape();
  }
  reset();
}

void FloatQuantizeDequantizeImpl::reset() {
  // After a load, maxval may exist without an analyzer (or with a shape of the archive's).
  maxval_slot_ = &register_buffer(
      "maxval", has_maxval_ ? at::full(maxval_shape_, format().maxval, at::kFloat) : at::Tensor());
  maxval = *maxval_slot_;
}

void FloatQuantizeDequantizeImpl::replace_maxval(at::Tensor value) {
  has_maxval_ = value.defined();
  if (has_maxval_) maxval_shape_ = value.sizes().vec();
  *maxval_slot_ = std::move(value);
  maxval = *maxval_slot_;
}

int64_t FloatQuantizeDequantizeImpl::num_steps() const { return (int64_t{1} << bitwidth()) - 1; }

std::shared_ptr<FloatEncoding> FloatQuantizeDequantizeImpl::get_float_encoding() const {
  return std::make_shared<FloatEncoding>(mantissa_bits(), exponent_bits(), maxval);
}

std::shared_ptr<EncodingBase> FloatQuantizeDequantizeImpl::get_encoding() const {
  return get_float_encoding();
}

c10::optional<nlohmann::json> FloatQuantizeDequantizeImpl::get_legacy_encodings() const {
  return get_float_encoding()->to_legacy_format();
}

void FloatQuantizeDequantizeImpl::set_legacy_encodings(const nlohmann::json& encodings) {
  TORCH_CHECK_VALUE(encodings.is_array() && !encodings.empty() && encodings[0].is_object(),
                    "legacy encodings must be a non-empty list of dicts, got ", encodings.dump());
  const auto& first = encodings[0];
  TORCH_CHECK_INDEX(first.contains("bitwidth"),
                    "legacy encoding [0] needs an integer \"bitwidth\", got ", first.dump());
  TORCH_CHECK_VALUE(first.at("bitwidth").is_number_integer(),
                    "legacy encoding [0] needs an integer \"bitwidth\", got ", first.dump());
  // Compared as JSON: get<int64_t> would wrap 18446744073709551615 to -1 in the message.
  TORCH_CHECK(first.at("bitwidth") == 16,
              "FloatQuantizeDequantize can only import 16-bit legacy encodings, got bitwidth ",
              first.at("bitwidth").dump());
  // The dict names no format, only 16 bits: the reference selects E5M10. A quantizer that already
  // simulates a 16-bit format (bfloat16) keeps it, so that a simulation reloading its own export
  // computes as before (docs/differences.md); any other format becomes E5M10 as the reference's.
  if (bitwidth() != 16) options_.format(FloatFormat::ieee(5, 10));
  bump_revision();
}

at::Tensor FloatQuantizeDequantizeImpl::forward(const at::Tensor& x) {
  // An empty batch has no statistics (and nothing to quantize).
  if (is_calibrating() && encoding_analyzer() && x.numel() > 0) {
    const auto batch = observe(*encoding_analyzer(), x);
    const auto range =
        encoding_analyzer()->compute_encodings_from_stats(*batch, num_steps(), /*symmetric=*/false);
    const auto absmax = at::maximum(range.first.abs(), range.second.abs())
                            .to(maxval.options())
                            .expand_as(maxval)
                            .detach();
    return quantize_dequantize(x, format(), absmax);
  }
  // A traced model records the quantizer as one quantsim::float_quantize_dequantize node, marked
  // as this quantizer's (a cast reads no parameter that could name it).
  if (ops::tracing()) {
    return ops::traced_by(ops::float_quantize_dequantize(x, format(), maxval),
                          static_cast<const QuantizerBase*>(this));
  }
  return quantize_dequantize(x, format(), maxval);
}

QuantizedTensor FloatQuantizeDequantizeImpl::quantize_to_grid(const at::Tensor& x) {
  // The encoding of this batch's own range inside calibration, as forward uses it.
  auto values = forward(x);
  auto encoding = get_float_encoding();
  return QuantizedTensor(std::move(values), std::move(encoding));
}

void FloatQuantizeDequantizeImpl::observe_only(const at::Tensor& x) {
  TORCH_CHECK(is_calibrating(),
              "FloatQuantizeDequantize: observe_only() outside compute_encodings()");
  if (encoding_analyzer() && x.numel() > 0) observe(*encoding_analyzer(), x);
}

void FloatQuantizeDequantizeImpl::begin_calibration() {
  if (!encoding_analyzer()) return;
  TORCH_CHECK(maxval.defined(),
              "FloatQuantizeDequantize: cannot calibrate, the quantizer has an encoding analyzer "
              "but no maxval (it was loaded from an archive without one)");
  encoding_analyzer()->reset_stats();
}

void FloatQuantizeDequantizeImpl::end_calibration() {
  if (!encoding_analyzer()) return;
  report_nan(*encoding_analyzer());  // once per calibration, however many batches held NaN
  std::pair<at::Tensor, at::Tensor> range;
  try {
    range = encoding_analyzer()->compute_encodings(num_steps(), /*symmetric=*/false);
  } catch (const StatisticsNotFoundError&) {
    return;  // no batch seen: keep maxval
  }
  const auto absmax = at::maximum(range.first.abs(), range.second.abs());
  const double limit = 0.95 * std::numeric_limits<float>::max();
  if (!at::isfinite(absmax).all().item<bool>() || (absmax >= limit).any().item<bool>()) {
    TORCH_WARN(
        "FloatQuantizeDequantize: calibrated maxval is non-finite or within 5% of the "
        "float32 limit (",
        absmax.max().item<double>(), "); the input probably holds inf or NaN values");
  }
  torch::NoGradGuard no_grad;
  maxval.copy_(absmax.expand_as(maxval));
}

void FloatQuantizeDequantizeImpl::pretty_print(std::ostream& stream) const {
  stream << "FloatQuantizeDequantize(exponent_bits=" << exponent_bits()
         << ", mantissa_bits=" << mantissa_bits();
  if (format().bias) stream << ", format=" << format().name;
  stream << ")";
}

std::shared_ptr<torch::nn::Module> FloatQuantizeDequantizeImpl::clone(
    const c10::optional<torch::Device>& device) const {
  auto copy = std::dynamic_pointer_cast<FloatQuantizeDequantizeImpl>(
      torch::nn::Cloneable<FloatQuantizeDequantizeImpl>::clone(device));
  if (encoding_analyzer()) copy->options_.encoding_analyzer(encoding_analyzer()->clone());
  return copy;
}

namespace {
constexpr const char* kExponentBitsKey = "_exponent_bits";
constexpr const char* kMantissaBitsKey = "_mantissa_bits";
constexpr const char* kFormatKey = "_format";
}  // namespace

void FloatQuantizeDequantizeImpl::save(torch::serialize::OutputArchive& archive) const {
  QuantizerBase::save(archive);
  archive.write(kExponentBitsKey, at::scalar_tensor(exponent_bits(), at::kLong),
                /*is_buffer=*/true);
  archive.write(kMantissaBitsKey, at::scalar_tensor(mantissa_bits(), at::kLong),
                /*is_buffer=*/true);
  if (!format().name.empty()) archive.write(kFormatKey, c10::IValue(format().name));
}

void FloatQuantizeDequantizeImpl::load(torch::serialize::InputArchive& archive) {
  // Read everything before changing anything.
  at::Tensor loaded_maxval, exponent, mantissa;
  const bool with_maxval = archive.try_read("maxval", loaded_maxval, /*is_buffer=*/true);
  const bool with_bits = archive.try_read(kExponentBitsKey, exponent, /*is_buffer=*/true) &&
                         archive.try_read(kMantissaBitsKey, mantissa, /*is_buffer=*/true);
  c10::IValue name;
  const bool with_name = archive.try_read(kFormatKey, name);
  FloatFormat loaded_format = format();
  if (with_name) {
    TORCH_CHECK(name.isString(), "FloatQuantizeDequantize: archive entry ", kFormatKey,
                " must be a string");
    loaded_format = FloatFormat::from_name(name.toStringRef());
  } else if (with_bits) {
    loaded_format = FloatFormat::ieee(exponent.item<int64_t>(), mantissa.item<int64_t>());
  }
  if (with_maxval) {
    TORCH_CHECK(at::isFloatingType(loaded_maxval.scalar_type()),
                "FloatQuantizeDequantize: archived maxval must be floating, got ",
                loaded_maxval.scalar_type());
  }

  options_.format(loaded_format);
  bump_revision();
  replace_maxval(with_maxval ? loaded_maxval : at::Tensor());
  QuantizerBase::load(archive);  // no parameters; reads maxval into the buffer when present
}

}  // namespace quantsim::floating
