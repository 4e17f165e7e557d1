#pragma once

/// Affine quantizer modules with learnable `min`/`max` (docs/quantization.md §4, §9):
/// `Quantize` (output: grid integers as a QuantizedTensor) and `QuantizeDequantize` (output: the
/// fake-quantized float tensor).
///
///     auto q = quantsim::affine::QuantizeDequantize({10, 1}, /*bitwidth=*/8, /*symmetric=*/true);
///     { auto calibrating = q->compute_encodings(); q(weight); }   // range from the data
///     auto y = q(weight);                                          // quantize-dequantize

#include <quantsim/affine/encoding.h>
#include <quantsim/affine/grid.h>
#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/quantizer_base.h>
#include <quantsim/tensor.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace quantsim::affine {

/// Construction options shared by every affine quantizer.
struct QuantizerOptions {
  /// `bitwidth`-bit grid, signed iff `symmetric` (docs/quantization.md §1).
  QuantizerOptions(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric);
  /// Explicit grid; c10::ValueError when qmin >= qmax.
  QuantizerOptions(std::vector<int64_t> shape, int64_t qmin, int64_t qmax, bool symmetric);
  /// (shape, qmin, qmax) without `symmetric` is an error (the reference's TypeError); without this
  /// overload qmax would silently convert to `bool` and select (shape, bitwidth, symmetric).
  QuantizerOptions(std::vector<int64_t> shape, int64_t qmin, int64_t qmax) = delete;

  /// Shape of `min`/`max` and of the encoding: `{}` per tensor, `{C, 1}` per output channel.
  TORCH_ARG(std::vector<int64_t>, shape);
  /// Integer grid [qmin, qmax].
  TORCH_ARG(Grid, grid);
  /// Symmetric: offset fixed at 0. Asymmetric: offset derived from `min` and learnable.
  TORCH_ARG(bool, symmetric);
  /// Statistics used by compute_encodings(). Default: MinMaxEncodingAnalyzer of `shape` (or of
  /// the interleaved block shape with `block_size`).
  TORCH_ARG(std::shared_ptr<EncodingAnalyzer>, encoding_analyzer) = nullptr;
  /// Blockwise quantization of the input's last dims (docs/quantization.md §3). Default: none.
  TORCH_ARG(std::vector<int64_t>, block_size) = {};
};

/// The learnable-range quantizer shared by Quantize, QuantizeDequantize and LPBQ.
///
/// scale = (max - min) / (qmax - qmin)                                     (4)
/// offset = symmetric ? 0 : ste_round(min / scale) - qmin                  (5)
class AffineQuantizerBase : public QuantizerBase {
 public:
  explicit AffineQuantizerBase(QuantizerOptions options);

  /// Learnable range parameters of shape `shape()`, created as -1/+1 and flagged uninitialized.
  at::Tensor min, max;

  const QuantizerOptions& options() const { return options_; }
  const std::vector<int64_t>& shape() const { return options_.shape(); }
  const std::vector<int64_t>& block_size() const { return options_.block_size(); }
  const std::shared_ptr<EncodingAnalyzer>& encoding_analyzer() const {
    return options_.encoding_analyzer();
  }

  int64_t qmin() const override { return options_.grid().qmin; }
  int64_t qmax() const override { return options_.grid().qmax; }
  Grid grid() const { return options_.grid(); }
  int64_t num_steps() const { return options_.grid().num_steps(); }
  bool symmetric() const override { return options_.symmetric(); }
  /// log2 of the grid size; c10::Error for a non-standard grid such as [-127, 127].
  int64_t bitwidth() const override { return options_.grid().bitwidth(); }
  /// qmin < 0 <= qmax; c10::Error for a non-standard grid.
  bool is_signed() const { return options_.grid().is_signed(); }
  /// Same signedness with another bitwidth (docs/quantization.md §1): a signed grid
  /// (qmin + qmax == -1) becomes [-2^(B-1), 2^(B-1)-1], an unsigned one (qmin == 0) [0, 2^B-1],
  /// even when its size is not a power of two; c10::Error for any other grid, c10::ValueError for
  /// B < 1.
  void set_bitwidth(int64_t bitwidth);
  /// As the reference's setter, a floating value must be integral (5.0 is 5); 0.1 is
  /// c10::TypeError, as the reference's TypeError.
  template <typename Floating, std::enable_if_t<std::is_floating_point_v<Floating>, int> = 0>
  void set_bitwidth(Floating bitwidth) {
    set_bitwidth(integral_bitwidth(static_cast<double>(bitwidth)));
  }
  /// Shifts the grid to the other signedness (docs/quantization.md §1).
  void set_signed(bool is_signed);

  /// Sets the clipping percentile of the quantizer's PercentileEncodingAnalyzer
  /// (docs/quantization.md §8.4); c10::ValueError for p outside [50, 100]. Returns false, changing
  /// nothing, when the analyzer is of another kind (quantsim's set_percentile_value skips those
  /// too).
  ///     q->set_percentile(99.9);
  bool set_percentile(double percentile);

  /// Copies the range into min/max (broadcast) without recording gradients; marks initialized.
  /// c10::ValueError naming the value for NaN, +-inf or a value beyond float32, and for a range
  /// whose scale (eq. (4)) is not a finite non-zero float32 (max - min beyond FLT_MAX, or
  /// min == max); [0, 0] becomes the range calibration gives an all-zero tensor
  /// (docs/quantization.md §9.2). Unchanged on failure.
  void set_range(const at::Tensor& min, const at::Tensor& max) override;
  /// Also makes the member `min` / `max` the new tensor.
  void replace_parameter(const std::string& name, const at::Tensor& value) override;
  void set_range(double min, double max) override;

  /// Eq. (4)/(5) and the grid-aligned range scale*(offset+qmin), scale*(offset+qmax);
  /// nullopt when uninitialized.
  c10::optional<at::Tensor> get_scale(at::ScalarType dtype = at::kFloat) const override;
  c10::optional<at::Tensor> get_offset(at::ScalarType dtype = at::kFloat) const override;
  c10::optional<at::Tensor> get_min(at::ScalarType dtype = at::kFloat) const override;
  c10::optional<at::Tensor> get_max(at::ScalarType dtype = at::kFloat) const override;

  std::shared_ptr<EncodingBase> get_encoding() const override;
  /// The encoding as its concrete type; null when uninitialized.
  std::shared_ptr<AffineEncoding> get_affine_encoding() const;
  c10::optional<nlohmann::json> get_legacy_encodings() const override;
  void set_legacy_encodings(const nlohmann::json& encodings) override;

  /// quantize() with the forward's encoding (this batch's range inside compute_encodings()).
  QuantizedTensor quantize_to_grid(const at::Tensor& x) override;
  void observe_only(const at::Tensor& x) override;

  void reset();
  void pretty_print(std::ostream& stream) const override;
  /// As QuantizerBase::load, after checking the saved range as set_range does: a range it refuses
  /// (NaN, +-inf, a scale that overflows or is 0) is c10::ValueError naming this quantizer, with
  /// nothing loaded; a saved [0, 0] loads as the range of an all-zero tensor.
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  /// Eq. (4) for the given range (LPBQ overrides it).
  virtual at::Tensor scale_from(const at::Tensor& min, const at::Tensor& max,
                                at::ScalarType dtype) const;
  /// Eq. (5) for the given range and scale.
  at::Tensor offset_from(const at::Tensor& min, const at::Tensor& scale,
                         at::ScalarType dtype) const;
  /// The encoding a forward uses: the learned range, or inside compute_encodings() this batch's
  /// range (detached). c10::Error when uninitialized outside calibration; inside calibration,
  /// c10::ValueError naming this quantizer for a batch without usable values (the
  /// statistics of the earlier batches are kept).
  AffineEncoding forward_encoding(const at::Tensor& x);
  /// The (min, max) that set_range stores for the given range on `grid` (float64, of `shape`),
  /// or c10::ValueError starting with `context` (see set_range).
  static std::pair<at::Tensor, at::Tensor> usable_range(const at::Tensor& min,
                                                        const at::Tensor& max,
                                                        const std::vector<int64_t>& shape,
                                                        const Grid& grid, bool symmetric,
                                                        const std::string& context);
  /// Name used in messages ("QuantizeDequantize", ...).
  virtual const char* kind() const = 0;
  /// After a Cloneable copy: the initialization flags of `other` and a deep copy of its analyzer
  /// (statistics included), so that the clone calibrates independently.
  void finish_clone_from(const AffineQuantizerBase& other);
  /// set_legacy_encodings' (min, max) per entry: the file's, or the nearest floats that make
  /// eq. (4) give the entry's exported `scale` exactly with the same offset.
  static std::pair<std::vector<float>, std::vector<float>> range_reproducing_scales(
      const nlohmann::json& encodings, const std::vector<float>& mins,
      const std::vector<float>& maxs, const Grid& grid);

  void begin_calibration() override;
  void end_calibration() override;

  /// quantize_dequantize(x) with the learned range's encoding, bit-identical to the composed path
  /// (forward_encoding + affine::quantize_dequantize) and without its per-call tensor ops: the
  /// encoding is computed once per range change, the fused kernel is called directly, and with
  /// gradients one autograd node serves x, min and max. nullopt when the call does not qualify
  /// (calibrating, tracing, blockwise, an uninitialized range, not a float32 CPU input resolving
  /// the grid, a range not float32): the caller takes the composed path, which also raises its
  /// errors.
  c10::optional<at::Tensor> direct_quantize_dequantize(const at::Tensor& x) const;

 private:
  /// Eq. (4)-(5) of the learned range in float32 and what they were computed from: valid while
  /// the quantizer's revision and min/max (tensor, storage and version) are unchanged.
  struct RangeEncoding {
    uint64_t revision = 0;
    const void* min_impl = nullptr;
    const void* max_impl = nullptr;
    const void* min_data = nullptr;
    const void* max_data = nullptr;
    int64_t min_version = -1, max_version = -1;
    at::Tensor scale, offset;
  };
  /// The current range's encoding, from the cache or computed and cached; null when the range is
  /// uninitialized. Safe to call from concurrent inference threads (an immutable snapshot,
  /// replaced atomically).
  std::shared_ptr<const RangeEncoding> range_encoding() const;
  bool describes_current_range(const RangeEncoding& encoding) const;
  mutable std::shared_ptr<const RangeEncoding> range_encoding_;

  /// `bitwidth` as an integer; c10::TypeError unless it is a finite integral value,
  /// c10::ValueError beyond 1e9.
  static int64_t integral_bitwidth(double bitwidth);
  /// A range tensor of the analyzer's shape, as a tensor of `shape()`.
  at::Tensor to_quantizer_shape(const at::Tensor& t) const;
  std::vector<int64_t> default_analyzer_shape() const;

  QuantizerOptions options_;
};

/// Cloneable quantizer: clone() returns the concrete type with the initialization flags kept.
template <typename Derived>
class AffineQuantizer : public torch::nn::Cloneable<Derived>, public AffineQuantizerBase {
 public:
  explicit AffineQuantizer(QuantizerOptions options) : AffineQuantizerBase(std::move(options)) {
    AffineQuantizerBase::reset();
  }
  void reset() override { AffineQuantizerBase::reset(); }
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override {
    auto copy = torch::nn::Cloneable<Derived>::clone(device);
    std::dynamic_pointer_cast<Derived>(copy)->finish_clone_from(*this);
    return copy;
  }
  void pretty_print(std::ostream& stream) const override {
    AffineQuantizerBase::pretty_print(stream);
  }
};

/// `quantize` of the input with the quantizer's encoding; output is a QuantizedTensor.
class QuantizeImpl : public AffineQuantizer<QuantizeImpl> {
 public:
  explicit QuantizeImpl(QuantizerOptions options) : AffineQuantizer(std::move(options)) {}
  QuantizeImpl(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric)
      : QuantizeImpl(QuantizerOptions(std::move(shape), bitwidth, symmetric)) {}
  QuantizeImpl(std::vector<int64_t> shape, int64_t qmin, int64_t qmax, bool symmetric)
      : QuantizeImpl(QuantizerOptions(std::move(shape), qmin, qmax, symmetric)) {}
  /// Missing `symmetric`: see QuantizerOptions.
  QuantizeImpl(std::vector<int64_t> shape, int64_t qmin, int64_t qmax) = delete;

  QuantizedTensor forward(const at::Tensor& x);
  at::Tensor fake_quantize(const at::Tensor& x) override {
    return forward(x).dequantize().tensor();
  }

 protected:
  const char* kind() const override { return "Quantize"; }
};

/// `quantize_dequantize` of the input with the quantizer's encoding.
class QuantizeDequantizeImpl : public AffineQuantizer<QuantizeDequantizeImpl> {
 public:
  explicit QuantizeDequantizeImpl(QuantizerOptions options) : AffineQuantizer(std::move(options)) {}
  QuantizeDequantizeImpl(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric)
      : QuantizeDequantizeImpl(QuantizerOptions(std::move(shape), bitwidth, symmetric)) {}
  QuantizeDequantizeImpl(std::vector<int64_t> shape, int64_t qmin, int64_t qmax, bool symmetric)
      : QuantizeDequantizeImpl(QuantizerOptions(std::move(shape), qmin, qmax, symmetric)) {}
  /// Missing `symmetric`: see QuantizerOptions.
  QuantizeDequantizeImpl(std::vector<int64_t> shape, int64_t qmin, int64_t qmax) = delete;

  at::Tensor forward(const at::Tensor& x);
  at::Tensor fake_quantize(const at::Tensor& x) override { return forward(x); }

 protected:
  const char* kind() const override { return "QuantizeDequantize"; }
};

/// Module holders that accept braced shapes: `QuantizeDequantize({10, 1}, 8, true)`.
#define QUANTSIM_AFFINE_QUANTIZER_HOLDER(Name)                                                   \
  class Name : public torch::nn::ModuleHolder<Name##Impl> {                                      \
   public:                                                                                       \
    using torch::nn::ModuleHolder<Name##Impl>::ModuleHolder;                                     \
    Name(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric)                           \
        : ModuleHolder(std::make_shared<Name##Impl>(std::move(shape), bitwidth, symmetric)) {}   \
    Name(std::vector<int64_t> shape, int64_t qmin, int64_t qmax, bool symmetric)                 \
        : ModuleHolder(std::make_shared<Name##Impl>(std::move(shape), qmin, qmax, symmetric)) {} \
    Name(std::vector<int64_t> shape, int64_t qmin, int64_t qmax) = delete;                       \
    Name(QuantizerOptions options)                                                               \
        : ModuleHolder(std::make_shared<Name##Impl>(std::move(options))) {}                      \
  }

QUANTSIM_AFFINE_QUANTIZER_HOLDER(Quantize);
QUANTSIM_AFFINE_QUANTIZER_HOLDER(QuantizeDequantize);

}  // namespace quantsim::affine
