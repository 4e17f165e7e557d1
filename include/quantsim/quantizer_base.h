#pragma once

/// `QuantizerBase`: what every quantizer module shares: initialization tracking
/// (docs/quantization.md §9), `allow_overwrite`, the `compute_encodings()` calibration guard and
/// legacy encodings.

#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/concurrency.h>
#include <quantsim/encoding.h>
#include <quantsim/tensor.h>

#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>

namespace quantsim {

class QuantizerBase;

/// RAII calibration scope returned by `QuantizerBase::compute_encodings()`.
///
/// While it lives, the quantizer's forward observes statistics and quantizes each batch with its
/// own range. When it is destroyed normally the quantizer's range is set from all batches seen;
/// when it is destroyed by an exception unwinding the stack, nothing is set. The quantizer must
/// outlive the guard.
class CalibrationGuard {
 public:
  explicit CalibrationGuard(QuantizerBase* quantizer);
  CalibrationGuard(CalibrationGuard&& other) noexcept;
  CalibrationGuard(const CalibrationGuard&) = delete;
  CalibrationGuard& operator=(const CalibrationGuard&) = delete;
  CalibrationGuard& operator=(CalibrationGuard&&) = delete;
  /// May throw (e.g. a range that cannot be set) unless an exception is already unwinding.
  ~CalibrationGuard() noexcept(false);

  /// Ends the scope now without setting the range, as an exception unwinding through it would:
  /// for front ends whose errors are not C++ exceptions (a Python `with` block that raised).
  void cancel() noexcept;

 private:
  QuantizerBase* quantizer_;  // null: inactive (moved from, or allow_overwrite(false))
  int uncaught_at_entry_;
};

class QuantizerBase : public virtual torch::nn::Module {
 public:
  /// True iff every tracked parameter was modified in place or replaced since registration, or set
  /// by set_range / loading / calibration (docs/quantization.md §9.2). `to(dtype)` does not
  /// initialize.
  virtual bool is_initialized() const;

  /// With `false`, compute_encodings() becomes a no-op and imports skip this quantizer.
  void allow_overwrite(bool allow) { allow_overwrite_ = allow; }
  bool overwrite_allowed() const { return allow_overwrite_; }

  /// Starts calibration: see CalibrationGuard.
  ///     { auto calibrating = q->compute_encodings(); for (auto& x : batches) q(x); }
  [[nodiscard]] CalibrationGuard compute_encodings();
  /// Calibrates over whatever `run` feeds through the quantizer.
  void compute_encodings(const std::function<void()>& run);
  /// True inside an active compute_encodings() scope.
  bool is_calibrating() const { return calibrating_ > 0; }

  /// @name What a quantized module does with a tensor (docs/modules.md §2-§4)
  /// x quantized and dequantized: a QuantizeDequantize's output, a Quantize's output
  /// dequantized (bit-identical, docs/quantization.md §2). This is what the fake-quantization path
  /// feeds the float op.
  virtual at::Tensor fake_quantize(const at::Tensor& x) = 0;
  /// x as grid values with the encoding that produced them: what a quantized kernel receives.
  virtual QuantizedTensor quantize_to_grid(const at::Tensor& x) = 0;
  /// Only accumulates x's statistics, for a module-level calibration in which the data passes
  /// through unquantized (docs/modules.md §3, step 2). Must be inside this quantizer's
  /// compute_encodings().
  virtual void observe_only(const at::Tensor& x) = 0;
  /// @}

  /// The encoding, or null when uninitialized.
  virtual std::shared_ptr<EncodingBase> get_encoding() const = 0;
  /// The legacy encodings (docs/quantization.md §10.1), or nullopt when uninitialized.
  virtual c10::optional<nlohmann::json> get_legacy_encodings() const = 0;
  /// Sets the range from legacy encodings; validates fully before changing anything.
  virtual void set_legacy_encodings(const nlohmann::json& encodings) = 0;

  /// @name The affine quantizer's accessors, reachable from a QuantizerBase (a quantizer slot):
  ///     float lo = q->output_quantizers[0]->get_min()->item<float>();
  /// affine::AffineQuantizerBase overrides them (see there for their meaning); on any other
  /// quantizer they raise c10::TypeError naming the quantizer.
  virtual c10::optional<at::Tensor> get_min(at::ScalarType dtype = at::kFloat) const;
  virtual c10::optional<at::Tensor> get_max(at::ScalarType dtype = at::kFloat) const;
  virtual c10::optional<at::Tensor> get_scale(at::ScalarType dtype = at::kFloat) const;
  virtual c10::optional<at::Tensor> get_offset(at::ScalarType dtype = at::kFloat) const;
  virtual void set_range(const at::Tensor& min, const at::Tensor& max);
  virtual void set_range(double min, double max);
  virtual int64_t qmin() const;
  virtual int64_t qmax() const;
  virtual bool symmetric() const;
  /// Also defined by the float quantizers (exponent + mantissa + sign bits).
  virtual int64_t bitwidth() const;
  /// @}

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// Calls f(tensor) for each of the quantizer's parameters and buffers (its submodules' too),
  /// without copying the module's dictionaries: what a cached result derived from this quantizer
  /// depends on.
  template <typename F>
  void for_each_state_tensor(F&& f) const {
    if (!children().empty()) {  // libtorch keeps the children private: the general walk
      for (const auto& t : parameters()) f(t);
      for (const auto& t : buffers()) f(t);
      return;
    }
    for (const auto& item : parameters_) f(item.value());
    for (const auto& t : buffers(/*recurse=*/false)) f(t);  // no allocation when there are none
  }

  /// @name For front ends that own the parameter objects (the Python package, docs/python.md)
  /// Each tracked parameter's initialization flag: what the reference keeps as the quantizer's
  /// `_extra_state` in its state_dict.
  std::map<std::string, bool> initialization_flags() const;
  /// Sets the flags of the given tracked parameters from their current state on, as loading the
  /// reference's `_extra_state` does; c10::IndexError naming an untracked parameter.
  void set_initialization_flags(const std::map<std::string, bool>& flags);
  /// Makes `value` (same shape and dtype) the registered parameter `name`, as assigning a new
  /// Parameter does in the reference: the parameter counts as replaced, i.e. initialized (§9.2),
  /// until set_initialization_flags says otherwise. c10::IndexError for an untracked name,
  /// c10::ValueError for another shape or dtype.
  virtual void replace_parameter(const std::string& name, const at::Tensor& value);
  /// @}

  /// Changes whenever the quantizer's configuration (grid, symmetry, format) changes or state is
  /// loaded; with its tensors' versions it says whether an earlier output is still valid.
  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }

 protected:
  /// Records a configuration change (see revision()).
  void bump_revision() { revision_.fetch_add(1, std::memory_order_acq_rel); }

  /// Called when a calibration scope opens (forget statistics).
  virtual void begin_calibration() = 0;
  /// Called when a calibration scope closes normally (set the range from the statistics).
  virtual void end_calibration() = 0;

  /// The quantizer as it prints (pretty_print), for messages that must say which one failed.
  std::string description() const;
  /// analyzer.update_stats(x); a batch the analyzer rejects (c10::ValueError, e.g. no finite
  /// value) is rethrown, still a c10::ValueError, naming this quantizer. The analyzer keeps its
  /// earlier statistics.
  std::shared_ptr<const Statistics> observe(EncodingAnalyzer& analyzer, const at::Tensor& x) const;
  /// Warns once, through quantsim::warn, with the NaN values the analyzer left out since its reset.
  void report_nan(const EncodingAnalyzer& analyzer) const;

  /// Starts tracking the registered parameter `name` as uninitialized.
  void track_parameter(const std::string& name);
  /// Records `name` as (un)initialized from its current state on.
  void mark_parameter(const std::string& name, bool initialized);
  void mark_all(bool initialized);
  /// Copies the initialization flags of `other` (same parameter names).
  void copy_initialization_from(const QuantizerBase& other);

 private:
  friend class CalibrationGuard;
  /// Atomic fields: inference threads ask is_initialized() while the first call of a module
  /// initializes its parameter quantizers lazily on one of them.
  struct Tracking {
    CopyableAtomic<const void*> impl{nullptr};
    CopyableAtomic<int64_t> version{0};
    CopyableAtomic<bool> initialized{false};
  };
  bool parameter_initialized(const std::string& name) const;

  std::map<std::string, Tracking> tracking_;
  bool allow_overwrite_ = true;
  /// Read by inference threads on every call (is_calibrating(), revision()).
  CopyableAtomic<int> calibrating_{0};
  CopyableAtomic<uint64_t> revision_{0};
  /// The thread inside this quantizer's outermost compute_encodings() scope.
  ExclusiveUse calibration_scope_;
  /// The thread updating the analyzer's statistics (observe()): analyzers are not thread-safe.
  mutable ExclusiveUse observing_;
};

}  // namespace quantsim
