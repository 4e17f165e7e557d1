#pragma once

/// The registry of quantized module types and `from_module` (spec §3.2).

#include <quantsim/nn/fake_quantization_mixin.h>
#include <quantsim/nn/quantization_mixin.h>

#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <typeindex>

namespace quantsim::nn {

/// Builds the quantized module of a float module, sharing its parameters.
using QuantizedFactory =
    std::function<std::shared_ptr<torch::nn::Module>(const torch::nn::Module& float_module)>;

/// Which mixin a registration is for: `from_module` prefers a QuantizationMixin class and falls
/// back to a FakeQuantizationMixin one, as the reference's conversion does.
enum class MixinKind { kQuantization, kFakeQuantization };

/// Registers `factory` as the quantized counterpart of the float type `float_type` (a later
/// registration replaces an earlier one).
void register_quantized_factory(std::type_index float_type, MixinKind kind,
                                QuantizedFactory factory);
/// True when `float_type` has a quantized counterpart of that kind.
bool is_registered(std::type_index float_type, MixinKind kind);

/// Registers the quantized class `Quantized` for the float module type `Float`. `Quantized`
/// must be constructible from `(FromFloat{}, const Float&)` and share the float module's state,
/// as the mixins' classes are. Without `Quantized`, the generic `FakeQuantizationMixin<Float>`
/// (one input and one output quantizer, parameters `weight`/`bias`, unless ModuleTraits<Float>
/// says otherwise) is registered:
///
///     quantsim::nn::register_quantized_module<MyBlockImpl>();
///     auto quantized = quantsim::nn::from_module(std::make_shared<MyBlockImpl>());
template <typename Float, typename Quantized = FakeQuantizationMixin<Float>>
void register_quantized_module() {
  constexpr auto kind =
      std::is_base_of_v<QuantizedModuleBase<Float, QuantizationMixin<Float>>, Quantized>
          ? MixinKind::kQuantization
          : MixinKind::kFakeQuantization;
  register_quantized_factory(
      std::type_index(typeid(Float)), kind, [](const torch::nn::Module& float_module) {
        return std::static_pointer_cast<torch::nn::Module>(
            std::make_shared<Quantized>(FromFloat{}, dynamic_cast<const Float&>(float_module)));
      });
}

/// The quantized module of `module`, sharing its parameters, buffers and submodules: a
/// QuantizationMixin class when one is registered for its type, else a FakeQuantizationMixin
/// one. std::invalid_argument for an unregistered type (the message shows the line that
/// registers it) or a module that is already quantized.
std::shared_ptr<torch::nn::Module> from_module(const std::shared_ptr<torch::nn::Module>& module);
/// The same for a module holder: `from_module(torch::nn::Linear(4, 3))`.
template <typename Holder, typename = decltype(std::declval<const Holder&>().ptr())>
std::shared_ptr<torch::nn::Module> from_module(const Holder& holder) {
  return from_module(std::static_pointer_cast<torch::nn::Module>(holder.ptr()));
}

/// Registers the quantized classes of the module table (called on first use of the registry).
void register_builtin_modules();

}  // namespace quantsim::nn
