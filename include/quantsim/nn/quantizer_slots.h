#pragma once

/// `QuantizerSlots`: the `input_quantizers`, `output_quantizers` and `param_quantizers` of a
/// quantized module (docs/modules.md §1).

#include <quantsim/quantizer_base.h>

#include <c10/util/Exception.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace quantsim::nn {

class QuantizerSlotsImpl;

/// One slot: empty, or a quantizer. Assigning registers the quantizer as a submodule of the slots
/// container, so that parameters(), named_modules(), to(), state dicts (`input_quantizers.0.min`)
/// and torch::save/load see it.
///
///     qlinear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
///     if (qlinear->input_quantizers[0]) qlinear->input_quantizers[0]->allow_overwrite(false);
///     auto qdq = qlinear->input_quantizers[0].as<qs::affine::QuantizeDequantizeImpl>();
///     qlinear->input_quantizers[0] = nullptr;  // empty again
class QuantizerSlot {
 public:
  QuantizerSlot(QuantizerSlotsImpl* owner, std::string key) : owner_(owner), key_(std::move(key)) {}

  /// Fills the slot with a quantizer (a holder such as `affine::QuantizeDequantize`, or a
  /// shared_ptr to any QuantizerBase), or empties it with nullptr.
  QuantizerSlot& operator=(std::shared_ptr<QuantizerBase> quantizer);
  template <typename Holder, typename = decltype(std::declval<const Holder&>().ptr())>
  QuantizerSlot& operator=(const Holder& holder) {
    return *this = holder.is_empty() ? nullptr : std::shared_ptr<QuantizerBase>(holder.ptr());
  }
  QuantizerSlot& operator=(std::nullptr_t) { return *this = std::shared_ptr<QuantizerBase>(); }
  /// Copies the other slot's quantizer (the same object then fills both slots).
  QuantizerSlot& operator=(const QuantizerSlot& other) { return *this = other.get(); }
  QuantizerSlot(const QuantizerSlot&) = default;

  /// The quantizer, or null.
  std::shared_ptr<QuantizerBase> get() const;
  explicit operator bool() const { return get() != nullptr; }
  /// c10::Error naming the slot when empty.
  QuantizerBase* operator->() const;
  QuantizerBase& operator*() const { return *operator->(); }
  /// The quantizer as its concrete type; null when empty or of another type.
  template <typename T>
  std::shared_ptr<T> as() const {
    return std::dynamic_pointer_cast<T>(get());
  }
  const std::string& key() const { return key_; }

 private:
  QuantizerSlotsImpl* owner_;
  std::string key_;
};

/// A fixed set of named slots: "0", "1", ... for input/output quantizers, parameter names for
/// parameter quantizers. The keys are fixed when the quantized module is built; indexing a key
/// that does not exist is c10::IndexError naming the keys that do.
///
/// A quantizer filling several slots is registered as a submodule once, under its first slot:
/// libtorch's parameters() does not deduplicate shared submodules, and an optimizer would step a
/// shared range twice.
class QuantizerSlotsImpl : public torch::nn::Module {
 public:
  /// `kind` names the container in messages and printing ("input_quantizers", ...).
  QuantizerSlotsImpl(std::string kind, std::vector<std::string> keys);

  /// The slot at `index`, for any integer type (`slots[0]`, a `size_t` loop counter, an
  /// `int64_t`); c10::IndexError naming the slot count when out of range.
  template <typename Index,
            std::enable_if_t<std::is_integral_v<Index> && !std::is_same_v<Index, bool>, int> = 0>
  QuantizerSlot operator[](Index index) {
    if constexpr (std::is_signed_v<Index>) {
      TORCH_CHECK_INDEX(index >= 0, kind_, "[", index, "]: the module has ", size(), " slot",
                        size() == 1 ? "" : "s");
    }
    return slot_at(static_cast<uint64_t>(index));
  }
  QuantizerSlot operator[](const std::string& key);
  QuantizerSlot operator[](const char* key) { return (*this)[std::string(key)]; }

  size_t size() const { return keys_.size(); }
  /// "input_quantizers", "output_quantizers" or "param_quantizers".
  const std::string& kind() const { return kind_; }
  const std::vector<std::string>& keys() const { return keys_; }
  bool contains(const std::string& key) const;
  /// The quantizer in `key`'s slot, or null.
  std::shared_ptr<QuantizerBase> at(const std::string& key) const;
  /// c10::IndexError naming the slot count when out of range.
  std::shared_ptr<QuantizerBase> at(size_t index) const;
  /// Every non-empty slot's quantizer once, in slot order.
  std::vector<std::shared_ptr<QuantizerBase>> unique_quantizers() const;

  /// Puts `quantizer` (or nothing) in `key`'s slot.
  void set(const std::string& key, std::shared_ptr<QuantizerBase> quantizer);
  /// Empties every slot.
  void clear();

  /// `ModuleList`-style: the container's kind.
  void pretty_print(std::ostream& stream) const override;

 private:
  QuantizerSlot slot_at(uint64_t index);
  const std::string& checked_key(const std::string& key) const;
  /// Re-registers the submodules: each quantizer once, under its first slot.
  void update_registration();

  std::string kind_;
  std::vector<std::string> keys_;
  std::vector<std::shared_ptr<QuantizerBase>> slots_;
};

TORCH_MODULE(QuantizerSlots);

}  // namespace quantsim::nn
