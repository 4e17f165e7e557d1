#pragma once

/// `BaseQuantizationMixin`: what every quantized module has (docs/modules.md): quantizer slots, the
/// module-level `compute_encodings()`, quantizer removal, and per-module encodings export/import.

#include <quantsim/concurrency.h>
#include <quantsim/nn/quantizer_slots.h>

#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace quantsim::nn {

class BaseQuantizationMixin;

/// RAII scope returned by `BaseQuantizationMixin::compute_encodings()` (docs/modules.md §3).
///
/// On entry the parameter quantizers are calibrated on the current parameters; while it lives,
/// every input/output quantizer only observes (the data passes through unquantized) and the
/// module computes its float op on quantized parameters; when it is destroyed normally each
/// activation quantizer sets its range from all batches seen; when it is destroyed by an
/// exception unwinding the stack, no range is set. Quantizers with `allow_overwrite(false)` are
/// left untouched and quantize as usual. The module must outlive the guard.
///
/// Calibration is not thread-safe: a scope opened while another thread is inside one on the same
/// module, or while forward calls of the module are running, is a c10::Error (docs/simulation.md,
/// "Threads").
class ModuleCalibrationGuard {
 public:
  explicit ModuleCalibrationGuard(BaseQuantizationMixin* module);
  ModuleCalibrationGuard(ModuleCalibrationGuard&& other) noexcept;
  ModuleCalibrationGuard(const ModuleCalibrationGuard&) = delete;
  ModuleCalibrationGuard& operator=(const ModuleCalibrationGuard&) = delete;
  ModuleCalibrationGuard& operator=(ModuleCalibrationGuard&&) = delete;
  /// May throw (a range that cannot be set) unless an exception is already unwinding.
  ~ModuleCalibrationGuard() noexcept(false);

 private:
  BaseQuantizationMixin* module_;  // null: moved from
  std::vector<std::shared_ptr<QuantizerBase>> observed_;
  std::vector<CalibrationGuard> guards_;
};

/// RAII scope returned by the `remove_*_quantizers` methods: the slots it emptied get their
/// quantizers back when it is destroyed, unless `dismiss()` made the removal permanent (the
/// reference's call without `with`).
class QuantizerRemoval {
 public:
  QuantizerRemoval() = default;
  QuantizerRemoval(QuantizerRemoval&&) noexcept = default;
  QuantizerRemoval& operator=(QuantizerRemoval&&) noexcept = default;
  QuantizerRemoval(const QuantizerRemoval&) = delete;
  QuantizerRemoval& operator=(const QuantizerRemoval&) = delete;
  ~QuantizerRemoval() { restore(); }

  /// Empties `key`'s slot of `slots`, remembering its quantizer.
  void remove(const std::shared_ptr<QuantizerSlotsImpl>& slots, const std::string& key);
  /// Puts the quantizers back now.
  void restore();
  /// Keeps the slots empty.
  void dismiss() { removed_.clear(); }

 private:
  struct Removed {
    std::shared_ptr<QuantizerSlotsImpl> slots;
    std::string key;
    std::shared_ptr<QuantizerBase> quantizer;
  };
  std::vector<Removed> removed_;
};

/// How `import_*_encodings` treats the entries it reads (docs/modules.md §9).
struct ImportOptions {
  /// An entry for an empty slot is an error (otherwise skipped).
  TORCH_ARG(bool, strict) = true;
  /// A slot without an entry keeps its quantizer (otherwise the slot is emptied).
  TORCH_ARG(bool, partial) = true;
  /// When set, the imported quantizers' parameters get this requires_grad.
  TORCH_ARG(c10::optional<bool>, requires_grad) = c10::nullopt;
  /// When set, the imported quantizers get this allow_overwrite.
  TORCH_ARG(c10::optional<bool>, allow_overwrite) = c10::nullopt;
};

/// The polymorphic base of every quantized module: generic code reaches any module's slots with
/// `dynamic_cast<quantsim::nn::BaseQuantizationMixin*>(module.get())`.
///
/// Slots are empty by default: an empty slot means no quantization of that tensor, and a module
/// whose slots are all empty computes exactly its float module.
///
///     qs::nn::QuantizedLinear qlinear(torch::nn::LinearOptions(5, 10));
///     qlinear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({10, 1}, 8, true);
///     qlinear->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
///     { auto calibrating = qlinear->compute_encodings(); for (auto& x : data) qlinear(x); }
class BaseQuantizationMixin {
 public:
  /// Access to one of the module's slot containers, the submodule registered under its name.
  ///
  /// It looks the container up on each use, so that it always names the module's current child
  /// (libtorch's Cloneable::clone_ assigns a module's children wholesale). Copying a module does
  /// not copy where its references point.
  class SlotsRef {
   public:
    SlotsRef(BaseQuantizationMixin* owner, const char* name) : owner_(owner), name_(name) {}
    SlotsRef(const SlotsRef&) = delete;
    SlotsRef& operator=(const SlotsRef&) {  // keeps pointing at its own module
      std::atomic_store(&found_, std::shared_ptr<QuantizerSlotsImpl>());
      return *this;
    }

    /// Any integer type: `[0]`, a `size_t` loop counter, an `int64_t`.
    template <typename Index,
              std::enable_if_t<std::is_integral_v<Index> && !std::is_same_v<Index, bool>, int> = 0>
    QuantizerSlot operator[](Index index) const {
      return (*get())[index];
    }
    QuantizerSlot operator[](const std::string& key) const { return (*get())[key]; }
    QuantizerSlot operator[](const char* key) const { return (*get())[std::string(key)]; }
    QuantizerSlotsImpl* operator->() const { return get().get(); }
    QuantizerSlotsImpl& operator*() const { return *get(); }
    /// The container; c10::Error if the module has none (it was built without quantizers).
    std::shared_ptr<QuantizerSlotsImpl> get() const;
    const char* name() const { return name_; }

   private:
    BaseQuantizationMixin* owner_;
    const char* name_;
    /// The container found last; used while it is still one of the module's children (a pointer
    /// scan of children(), without the name index named_children() copies on every call).
    mutable std::shared_ptr<QuantizerSlotsImpl> found_;
  };

  BaseQuantizationMixin() = default;
  BaseQuantizationMixin(const BaseQuantizationMixin&) : BaseQuantizationMixin() {}
  BaseQuantizationMixin& operator=(const BaseQuantizationMixin&) { return *this; }
  virtual ~BaseQuantizationMixin() = default;

  /// One slot per input quantized by the module's op (docs/modules.md §5), keys "0", "1", ...
  SlotsRef input_quantizers{this, "input_quantizers"};
  /// One slot per output, keys "0", "1", ...
  SlotsRef output_quantizers{this, "output_quantizers"};
  /// One slot per parameter the module owns directly, keyed by parameter name.
  SlotsRef param_quantizers{this, "param_quantizers"};

  /// Module-level calibration: see ModuleCalibrationGuard.
  [[nodiscard]] ModuleCalibrationGuard compute_encodings();
  /// Calibrates over whatever `run` feeds through the module.
  void compute_encodings(const std::function<void()>& run);
  /// True inside an active compute_encodings() scope.
  bool is_calibrating() const {
    return (call_state_.load(std::memory_order_acquire) & kCalibratingBit) != 0;
  }
  /// Calibrates every parameter quantizer that allows overwriting on its current parameter.
  void compute_param_encodings() { compute_param_encodings(/*overwrite=*/true); }

  /// @name Quantizer removal (docs/modules.md §8); empty selections mean all.
  [[nodiscard]] QuantizerRemoval remove_input_quantizers(std::vector<int64_t> indices = {});
  [[nodiscard]] QuantizerRemoval remove_output_quantizers(std::vector<int64_t> indices = {});
  [[nodiscard]] QuantizerRemoval remove_param_quantizers(std::vector<std::string> names = {});
  [[nodiscard]] QuantizerRemoval remove_activation_quantizers();
  [[nodiscard]] QuantizerRemoval remove_all_quantizers();
  /// @}

  /// The float module, sharing this module's parameters, buffers and submodules, without the
  /// quantizers.
  virtual std::shared_ptr<torch::nn::Module> get_original_module() const = 0;
  /// This module as a torch::nn::Module.
  virtual torch::nn::Module& as_module() = 0;
  virtual const torch::nn::Module& as_module() const = 0;

  /// @name Per-module legacy encodings (docs/modules.md §9)
  /// One entry per slot: the quantizer's legacy encodings, or nullopt for an empty or
  /// uninitialized slot.
  virtual std::vector<c10::optional<nlohmann::json>> export_input_encodings() const;
  std::vector<c10::optional<nlohmann::json>> export_output_encodings() const;
  std::map<std::string, c10::optional<nlohmann::json>> export_param_encodings() const;
  /// `encodings` maps slot keys ("0", ...) to a legacy encoding dict or list of dicts.
  /// c10::ValueError for a malformed entry, c10::IndexError for a key naming no slot, c10::Error
  /// for an entry whose slot is empty under `strict`. Quantizers with allow_overwrite(false) are
  /// skipped.
  void import_input_encodings(const nlohmann::json& encodings, const ImportOptions& options = {});
  void import_output_encodings(const nlohmann::json& encodings, const ImportOptions& options = {});
  /// `encodings` maps parameter names to a legacy encoding list.
  void import_param_encodings(const nlohmann::json& encodings, const ImportOptions& options = {});
  /// @}

 protected:
  /// Registers the three slot containers on `self` (docs/modules.md §1).
  void init_quantizers(torch::nn::Module& self, size_t num_inputs, size_t num_outputs);

  /// Held by every quantized forward for its duration (see begin_forward()).
  class ForwardScope {
   public:
    ForwardScope(ForwardScope&& other) noexcept : module_(other.module_), mode_(other.mode_) {
      other.module_ = nullptr;
    }
    ForwardScope(const ForwardScope&) = delete;
    ForwardScope& operator=(const ForwardScope&) = delete;
    ForwardScope& operator=(ForwardScope&&) = delete;
    ~ForwardScope();

   private:
    friend class BaseQuantizationMixin;
    enum class Mode { kInference, kCalibrating, kCalibratingNested };
    ForwardScope(BaseQuantizationMixin* module, Mode mode) : module_(module), mode_(mode) {}
    BaseQuantizationMixin* module_;  // null: moved from
    Mode mode_;
  };
  /// Entered by every quantized forward before it reads any quantizer. Outside calibration it
  /// only counts the call (any number of threads may run inference at once; a calibration scope
  /// opened meanwhile is refused), then initializes uninitialized parameter quantizers
  /// (docs/modules.md §2; one thread at a time). Inside a compute_encodings() scope the forward
  /// feeds statistics, which one thread at a time may do: a second thread's forward is a
  /// c10::Error.
  [[nodiscard]] ForwardScope begin_forward();

  /// Calibrates the selected parameter quantizers on their parameters: all that allow
  /// overwriting (`overwrite`) or only the uninitialized ones (the lazy initialization at call).
  void compute_param_encodings(bool overwrite);
  /// True while a module-level calibration makes `quantizer` observe only.
  bool observing(const QuantizerBase* quantizer) const;

  /// x through input slot `index`: unchanged if empty or x is not a floating tensor; observed
  /// and unchanged during calibration; else fake-quantized.
  at::Tensor quantize_input(size_t index, const at::Tensor& x);
  at::Tensor quantize_output(size_t index, const at::Tensor& y);
  /// The parameter `name` as the op uses it: fake-quantized by an initialized quantizer, else
  /// the parameter itself.
  at::Tensor quantized_parameter(const std::string& name, const at::Tensor& parameter);

  /// Prints the float module's pretty_print text with the class `name` renamed to
  /// `quantized_name` (and torch::nn:: to quantsim::nn::).
  static void print_renamed(std::ostream& stream, std::string printed, const std::string& name,
                            const std::string& quantized_name);

  /// Gives `copy` clones of this module's quantizers, one clone per distinct quantizer so that
  /// shared slots stay shared.
  void clone_quantizers_into(BaseQuantizationMixin& copy,
                             const c10::optional<torch::Device>& device) const;

 private:
  friend class ModuleCalibrationGuard;
  static at::Tensor apply(QuantizerBase* quantizer, bool observe, const at::Tensor& x);
  static void import_encodings(QuantizerSlotsImpl& slots, const nlohmann::json& encodings,
                               const ImportOptions& options);
  /// The parameter quantizers compute_param_encodings(overwrite) calibrates, with their
  /// parameters.
  std::vector<std::pair<std::shared_ptr<QuantizerBase>, at::Tensor>> parameters_to_calibrate(
      bool overwrite);
  /// Whether some parameter quantizer that allows overwriting is uninitialized: the per-call
  /// test before the lazy initialization, without copying the module's parameter dictionary.
  bool has_uninitialized_parameter_quantizer();
  /// The module as it prints, for messages (not Module::name(), which is written lazily and so
  /// not safe while other threads run the module).
  std::string description() const;

  /// Quantized parameters kept for calls that need no autograd graph (inference), each valid
  /// while the parameter, the quantizer's tensors (identity, storage, version) and the quantizer's
  /// revision are unchanged (base_quantization_mixin.cpp). An immutable snapshot: readers take it
  /// with std::atomic_load and never lock; a refresh copies it, changes the copy and publishes it
  /// with std::atomic_store under refresh_mutex_.
  struct ParameterCache;
  std::shared_ptr<const ParameterCache> parameter_cache_;
  /// Serializes cache refreshes and the lazy initialization of parameter quantizers.
  std::mutex refresh_mutex_;

  /// Bit kCalibratingBit: inside compute_encodings(); the bits below: forward calls running
  /// outside calibration. One word, so that a calibration scope opens only while no inference
  /// call runs (one compare-and-swap from 0) and an inference call never sees it half-open.
  static constexpr uint64_t kCalibratingBit = uint64_t{1} << 63;
  std::atomic<uint64_t> call_state_{0};
  /// Nesting depth of compute_encodings() scopes; only the thread holding calibration_scope_
  /// touches it and observing_.
  int calibration_depth_ = 0;
  /// The thread inside the outermost compute_encodings() scope.
  ExclusiveUse calibration_scope_;
  /// The thread setting up or closing the scope, or running a calibrating forward.
  ExclusiveUse calibration_busy_;
  std::vector<const QuantizerBase*> observing_;
};

}  // namespace quantsim::nn
