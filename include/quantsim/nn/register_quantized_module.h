#pragma once

/// `register_quantized_module<Float>()`: quantizes a float module type of your own, so that
/// `from_module` and `convert` handle it (docs/modules.md §7). The umbrella header does not include
/// this one: it brings the mixins' member definitions (<quantsim/nn/mixin_definitions.h>), which
/// the translation unit that registers a type instantiates.
///
///     #include <quantsim/nn/register_quantized_module.h>
///     quantsim::nn::register_quantized_module<MyBlockImpl>();

#include <quantsim/nn/mixin_definitions.h>
#include <quantsim/nn/registry.h>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <c10/util/Type.h>
#include <torch/nn/modules/container/any.h>

#include <memory>
#include <type_traits>
#include <typeindex>

namespace quantsim::nn {

namespace detail {

/// Matches the one `forward` shape torch::nn::AnyModule accepts: a single non-template,
/// non-const member function with a result.
struct AnyForward {
  template <typename R, typename C, typename... A>
  static std::bool_constant<!std::is_void_v<R>> test(R (C::*)(A...));
};

/// Whether torch::nn::AnyModule (and so torch::nn::Sequential) can hold a `Module`: checked
/// here so that registering a module that it cannot hold still compiles.
template <typename Module, typename = void>
struct IsAnyModuleCompatible : std::false_type {};
template <typename Module>
struct IsAnyModuleCompatible<Module, std::void_t<decltype(AnyForward::test(&Module::forward))>>
    : decltype(AnyForward::test(&Module::forward)) {};

}  // namespace detail

/// Registers the quantized class `Quantized` for the float module type `Float`. `Quantized`
/// must be constructible from `(FromFloat{}, const Float&)` and share the float module's state,
/// as the mixins' classes are. Without `Quantized`, the generic `FakeQuantizationMixin<Float>`
/// (one input and one output quantizer, parameters `weight`/`bias`, unless ModuleTraits<Float>
/// says otherwise) is registered. Also registers how `Quantized` becomes an AnyModule
/// (to_any_module), which `convert` needs to put it in a Sequential:
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
  register_any_module_factory(
      std::type_index(typeid(Quantized)),
      [](const std::shared_ptr<torch::nn::Module>& module) -> torch::nn::AnyModule {
        if constexpr (detail::IsAnyModuleCompatible<Quantized>::value) {
          return torch::nn::AnyModule(std::dynamic_pointer_cast<Quantized>(module));
        } else {
          TORCH_CHECK_TYPE(
              false, c10::demangle_type<Quantized>(),
              " cannot be held by torch::nn::AnyModule, so not by torch::nn::Sequential either: "
              "its forward is a template, overloaded, const or returns void. Put it in a "
              "ModuleList or ModuleDict, or call it from a module of your own.");
        }
      });
}

}  // namespace quantsim::nn
