#pragma once

/// `FloatQuantizeDequantize`: a module that fake-casts its input to a floating-point format
/// (docs/quantization.md §9.6), with an optional calibrated maxval.
///
///     auto fp16 = quantsim::floating::FloatQuantizeDequantize(torch::kHalf);
///     auto e4m3 = quantsim::floating::FloatQuantizeDequantize(/*exponent_bits=*/4, 3);
///     auto fn = quantsim::floating::FloatQuantizeDequantize("E4M3FN");
///     auto calibrated = quantsim::floating::FloatQuantizeDequantize(
///         quantsim::floating::FloatQuantizerOptions(4, 3).encoding_analyzer(
///             std::make_shared<quantsim::MinMaxEncodingAnalyzer>(std::vector<int64_t>{})));
///     { auto calibrating = calibrated->compute_encodings(); calibrated(x); }  // maxval = max|x|

#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/floating/encoding.h>
#include <quantsim/floating/format.h>
#include <quantsim/quantizer_base.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

namespace quantsim::floating {

/// Construction options of FloatQuantizeDequantize.
///
/// Exactly one way to name the format: (exponent_bits, mantissa_bits), a dtype, or a format name.
/// Passing none, or a dtype together with bits, does not compile (the reference's ValueError).
struct FloatQuantizerOptions {
  /// The reference's IEEE-style format; c10::ValueError for bits out of range (check_bits).
  FloatQuantizerOptions(int64_t exponent_bits, int64_t mantissa_bits);
  /// at::kHalf (E5M10) or at::kBFloat16 (E8M7); c10::ValueError for any other dtype.
  /* implicit */ FloatQuantizerOptions(at::ScalarType dtype);
  /// A named format (FloatFormat::from_name): "E4M3", "E4M3FN", "E5M2", "float16", "bfloat16".
  /* implicit */ FloatQuantizerOptions(const std::string& format);
  /* implicit */ FloatQuantizerOptions(const char* format);

  /// The simulated format.
  TORCH_ARG(FloatFormat, format);
  /// Statistics for compute_encodings(); with one, the quantizer owns a `maxval` buffer of the
  /// analyzer's shape, calibrated to max(|min|, |max|). Default: none (no maxval; calibration is
  /// a no-op).
  TORCH_ARG(std::shared_ptr<EncodingAnalyzer>, encoding_analyzer) = nullptr;
};

/// Fake-casts the input to a floating-point format: floating::quantize_dequantize with the
/// module's format and maxval buffer.
///
/// Without an analyzer there is no maxval: float16/bfloat16 are the cast round trip and other
/// formats use their own largest value. With an analyzer, `maxval` starts at the format's largest
/// value and `compute_encodings()` sets it: inside the scope each batch is quantized with its own
/// max(|min|, |max|); on normal exit maxval becomes that of all batches; on an exception nothing
/// changes; with allow_overwrite(false) the scope is a no-op. There are no parameters, so
/// is_initialized() is always true.
class FloatQuantizeDequantizeImpl : public torch::nn::Cloneable<FloatQuantizeDequantizeImpl>,
                                    public QuantizerBase {
 public:
  explicit FloatQuantizeDequantizeImpl(FloatQuantizerOptions options);
  FloatQuantizeDequantizeImpl(int64_t exponent_bits, int64_t mantissa_bits)
      : FloatQuantizeDequantizeImpl(FloatQuantizerOptions(exponent_bits, mantissa_bits)) {}
  explicit FloatQuantizeDequantizeImpl(at::ScalarType dtype)
      : FloatQuantizeDequantizeImpl(FloatQuantizerOptions(dtype)) {}
  explicit FloatQuantizeDequantizeImpl(const std::string& format)
      : FloatQuantizeDequantizeImpl(FloatQuantizerOptions(format)) {}
  explicit FloatQuantizeDequantizeImpl(const char* format)
      : FloatQuantizeDequantizeImpl(FloatQuantizerOptions(format)) {}

  /// Largest representable value, a buffer of the analyzer's shape; undefined without analyzer
  /// (or after loading an archive without one).
  at::Tensor maxval;

  const FloatFormat& format() const { return options_.format(); }
  int64_t exponent_bits() const { return format().exponent_bits; }
  int64_t mantissa_bits() const { return format().mantissa_bits; }
  /// E + M + 1.
  int64_t bitwidth() const override { return format().bitwidth(); }
  bool is_float16() const { return format().is_float16(); }
  bool is_bfloat16() const { return format().is_bfloat16(); }
  const std::shared_ptr<EncodingAnalyzer>& encoding_analyzer() const {
    return options_.encoding_analyzer();
  }

  /// Always true: a float quantizer has no parameters to initialize.
  bool is_initialized() const override { return true; }

  /// A FloatEncoding with the current maxval (undefined when there is none).
  std::shared_ptr<EncodingBase> get_encoding() const override;
  std::shared_ptr<FloatEncoding> get_float_encoding() const;
  /// `[{"bitwidth": E + M + 1, "dtype": "float"}]`.
  c10::optional<nlohmann::json> get_legacy_encodings() const override;
  /// Only 16-bit legacy encodings can be imported (c10::Error otherwise); they set the format to
  /// IEEE-style E5M10 and leave maxval as it is, as the reference does, except that a quantizer
  /// whose format already has 16 bits (bfloat16) keeps it: the dict does not say which 16-bit
  /// format it was, and a bfloat16 quantizer reloading its own export stays bfloat16.
  /// c10::ValueError for a malformed list.
  void set_legacy_encodings(const nlohmann::json& encodings) override;

  /// quantize_dequantize(x, format(), maxval), or inside compute_encodings() with this batch's
  /// max(|min|, |max|).
  at::Tensor forward(const at::Tensor& x);
  at::Tensor fake_quantize(const at::Tensor& x) override { return forward(x); }
  /// The forward's values with the encoding they lie on (a float grid's values are real).
  QuantizedTensor quantize_to_grid(const at::Tensor& x) override;
  void observe_only(const at::Tensor& x) override;

  /// Registers `maxval` (defined iff the quantizer has one).
  void reset() override;
  /// `FloatQuantizeDequantize(exponent_bits=4, mantissa_bits=3)`, plus `, format=E4M3FN` for
  /// the OCP formats.
  void pretty_print(std::ostream& stream) const override;
  /// A deep copy with its own analyzer (statistics included) and the allow_overwrite flag kept.
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

  /// Writes maxval (when present), the format's bits and, for a named format, its name.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Restores the format; an archive with maxval gives this quantizer one, an archive without
  /// removes it (as the reference's load_state_dict).
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  void begin_calibration() override;
  void end_calibration() override;

 private:
  /// 2^bitwidth - 1, the grid size the analyzer is asked for.
  int64_t num_steps() const;
  /// Makes the registered buffer `maxval` hold `value` (undefined: no maxval).
  void replace_maxval(at::Tensor value);

  FloatQuantizerOptions options_;
  /// The maxval reset() registers: present, with this shape (the analyzer's, or a loaded one's).
  bool has_maxval_ = false;
  std::vector<int64_t> maxval_shape_;
  /// The registered buffer's slot in the module's buffer dict (the only buffer, so the slot does
  /// not move). libtorch cannot unregister a buffer; an undefined slot is how "no maxval" is
  /// represented, skipped by named_buffers(), save, load and to().
  at::Tensor* maxval_slot_ = nullptr;
};

/// Module holder: `FloatQuantizeDequantize(4, 3)`, `FloatQuantizeDequantize(torch::kHalf)`,
/// `FloatQuantizeDequantize("E4M3FN")`, `FloatQuantizeDequantize(FloatQuantizerOptions(...))`.
class FloatQuantizeDequantize : public torch::nn::ModuleHolder<FloatQuantizeDequantizeImpl> {
 public:
  using torch::nn::ModuleHolder<FloatQuantizeDequantizeImpl>::ModuleHolder;
  FloatQuantizeDequantize(int64_t exponent_bits, int64_t mantissa_bits)
      : ModuleHolder(std::make_shared<FloatQuantizeDequantizeImpl>(exponent_bits, mantissa_bits)) {}
  FloatQuantizeDequantize(at::ScalarType dtype)
      : ModuleHolder(std::make_shared<FloatQuantizeDequantizeImpl>(dtype)) {}
  FloatQuantizeDequantize(const std::string& format)
      : ModuleHolder(std::make_shared<FloatQuantizeDequantizeImpl>(format)) {}
  FloatQuantizeDequantize(const char* format)
      : ModuleHolder(std::make_shared<FloatQuantizeDequantizeImpl>(format)) {}
  FloatQuantizeDequantize(FloatQuantizerOptions options)
      : ModuleHolder(std::make_shared<FloatQuantizeDequantizeImpl>(std::move(options))) {}
};

}  // namespace quantsim::floating
