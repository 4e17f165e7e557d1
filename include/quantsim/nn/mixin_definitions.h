#pragma once

/// The member definitions of the quantized-module mixins that a user's translation unit does not
/// see: the forward, the constructor from a float module, clone, printing and the kernel
/// accessors. The library instantiates them once for every row of the module table
/// (src/nn/modules/*.cpp); a user file that only uses those classes compiles none of the
/// quantized forward path (a file with three quantized modules instantiates ~30 symbols instead
/// of ~260). Included by <quantsim/nn/register_quantized_module.h> for module types of your own,
/// which are instantiated where they are registered.

#include <quantsim/nn/quantization_mixin.h>

#include <c10/util/Exception.h>
#include <c10/util/Type.h>

#include <memory>
#include <sstream>
#include <utility>

/// Instantiates `Mixin<Float>` (FakeQuantizationMixin or QuantizationMixin) and the bases that
/// hold its forward, inside namespace quantsim::nn: an explicit instantiation covers a class's
/// own members only.
///
///     QUANTSIM_INSTANTIATE_QUANTIZED_MODULE(FakeQuantizationMixin, torch::nn::LinearImpl);
#define QUANTSIM_INSTANTIATE_QUANTIZED_MODULE(Mixin, Float)                           \
  template class QuantizedModuleBase<Float, Mixin<Float>>;                            \
  template struct detail::ForwardDeclaration<Mixin<Float>, decltype(&Float::forward), \
                                             ModuleTraits<Float>::required_args>;     \
  template class Mixin<Float>

namespace quantsim::nn {

namespace detail {

template <typename Derived, typename R, typename C, typename... A>
R ForwardDeclaration<Derived, R (C::*)(A...), kAllArguments>::forward(A... a) {
  return static_cast<Derived*>(this)->call(std::forward<A>(a)...);
}
template <typename Derived, typename R, typename C, typename A0, typename A1>
R ForwardDeclaration<Derived, R (C::*)(A0, A1), 1>::forward(A0 a0, A1 a1) {
  return static_cast<Derived*>(this)->call(std::forward<A0>(a0), std::forward<A1>(a1));
}
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2>
R ForwardDeclaration<Derived, R (C::*)(A0, A1, A2), 1>::forward(A0 a0, A1 a1, A2 a2) {
  return static_cast<Derived*>(this)->call(std::forward<A0>(a0), std::forward<A1>(a1),
                                           std::forward<A2>(a2));
}
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2>
R ForwardDeclaration<Derived, R (C::*)(A0, A1, A2), 2>::forward(A0 a0, A1 a1, A2 a2) {
  return static_cast<Derived*>(this)->call(std::forward<A0>(a0), std::forward<A1>(a1),
                                           std::forward<A2>(a2));
}
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2,
          typename A3, typename A4>
R ForwardDeclaration<Derived, R (C::*)(A0, A1, A2, A3, A4), 3>::forward(A0 a0, A1 a1, A2 a2, A3 a3,
                                                                        A4 a4) {
  return static_cast<Derived*>(this)->call(std::forward<A0>(a0), std::forward<A1>(a1),
                                           std::forward<A2>(a2), std::forward<A3>(a3),
                                           std::forward<A4>(a4));
}

}  // namespace detail

template <typename Float, typename Derived>
QuantizedModuleBase<Float, Derived>::QuantizedModuleBase(FromFloat, const Float& float_module)
    : Float(float_module) {
  init();
}

template <typename Float, typename Derived>
QuantizedModuleBase<Float, Derived>::~QuantizedModuleBase() = default;

template <typename Float, typename Derived>
std::shared_ptr<torch::nn::Module> QuantizedModuleBase<Float, Derived>::get_original_module()
    const {
  return float_copy();
}

template <typename Float, typename Derived>
torch::nn::Module& QuantizedModuleBase<Float, Derived>::as_module() {
  return *this;
}

template <typename Float, typename Derived>
const torch::nn::Module& QuantizedModuleBase<Float, Derived>::as_module() const {
  return *this;
}

template <typename Float, typename Derived>
std::shared_ptr<torch::nn::Module> QuantizedModuleBase<Float, Derived>::clone(
    const c10::optional<torch::Device>& device) const {
  auto float_clone = std::dynamic_pointer_cast<Float>(float_copy()->clone(device));
  auto copy = std::make_shared<Derived>(FromFloat{}, *float_clone);
  copy->copy_state_from(static_cast<const Derived&>(*this));
  clone_quantizers_into(*copy, device);
  return copy;
}

template <typename Float, typename Derived>
void QuantizedModuleBase<Float, Derived>::pretty_print(std::ostream& stream) const {
  // Through a float copy's vtable: libtorch does not export every Float::pretty_print (the
  // norm layers' base templates), so a qualified call would not link.
  std::ostringstream printed;
  static_cast<const torch::nn::Module&>(*float_copy()).pretty_print(printed);
  print_renamed(stream, printed.str(), name(), Derived::kPrefix + class_name());
}

template <typename Float, typename Derived>
void QuantizedModuleBase<Float, Derived>::init() {
  init_quantizers(*this, Traits::num_inputs, Traits::num_outputs);
  // A parameter whose quantizer could not reach the op would be silently unquantized (the
  // reference's RNN bug, docs/differences.md): every directly owned parameter needs a slot.
  const auto slots = parameter_slots<Float, Traits>(*this);
  for (const auto& key : param_quantizers->keys()) {
    bool found = false;
    for (const auto& slot : slots) found = found || slot.first == key;
    TORCH_CHECK(found, Derived::kPrefix, name(), ": parameter \"", key,
                "\" has no slot a quantizer can patch; declare parameter_slots in "
                "ModuleTraits<",
                c10::demangle(typeid(Float).name()), ">");
  }
}

template <typename Float>
FakeQuantizationMixin<Float>::FakeQuantizationMixin(FromFloat tag, const Float& float_module)
    : torch::nn::Module(static_cast<const torch::nn::Module&>(float_module)),
      Base(tag, float_module) {}

template <typename Float>
QuantizationMixin<Float>::QuantizationMixin(FromFloat tag, const Float& float_module)
    : torch::nn::Module(static_cast<const torch::nn::Module&>(float_module)),
      Base(tag, float_module) {}

template <typename Float>
void QuantizationMixin<Float>::set_kernel(Kernel kernel) {
  kernel_ = std::move(kernel);
  has_kernel_ = true;
}

template <typename Float>
void QuantizationMixin<Float>::reset_kernel() {
  kernel_ = nullptr;
  has_kernel_ = false;
}

template <typename Float>
void QuantizationMixin<Float>::set_default_kernel(Kernel kernel) {
  default_kernel() = std::move(kernel);
}

template <typename Float>
Kernel QuantizationMixin<Float>::get_default_kernel() {
  return default_kernel();
}

template <typename Float>
Kernel QuantizationMixin<Float>::get_kernel() const {
  return has_kernel_ ? kernel_ : default_kernel();
}

template <typename Float>
void QuantizationMixin<Float>::copy_state_from(const QuantizationMixin& other) {
  kernel_ = other.kernel_;
  has_kernel_ = other.has_kernel_;
}

template <typename Float>
Kernel& QuantizationMixin<Float>::default_kernel() {
  static Kernel kernel;
  return kernel;
}

}  // namespace quantsim::nn
