#pragma once

/// The registry of quantized module types and `from_module` (docs/modules.md §7).

#include <quantsim/nn/fake_quantization_mixin.h>
#include <quantsim/nn/quantization_mixin.h>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <c10/util/Type.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
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

/// Wraps a module of one quantized type into a torch::nn::AnyModule of that concrete type (what
/// torch::nn::Sequential stores; AnyModule needs the static type to call `forward`).
using AnyModuleFactory =
    std::function<torch::nn::AnyModule(const std::shared_ptr<torch::nn::Module>& module)>;

/// Registers how modules of the quantized type `quantized_type` become AnyModules
/// (register_quantized_module does this for its `Quantized` class).
void register_any_module_factory(std::type_index quantized_type, AnyModuleFactory factory);

/// `module` as a torch::nn::AnyModule of its dynamic type, sharing the module:
///
///     torch::nn::Sequential seq;
///     seq->push_back("fc", quantsim::nn::to_any_module(quantsim::nn::from_module(linear)));
///
/// c10::TypeError when the type was not registered with register_quantized_module, or when its
/// `forward` is not one that AnyModule can call (a template, overloaded, const, or returning
/// void); c10::ValueError for a null module.
torch::nn::AnyModule to_any_module(const std::shared_ptr<torch::nn::Module>& module);

/// The advice of from_module's error for the unregistered float type `type_name`: the lines that
/// register a quantized module for it.
std::string registration_hint(const std::string& type_name);

/// The quantized module of `module`, sharing its parameters, buffers and submodules: a
/// QuantizationMixin class when one is registered for its type, else a FakeQuantizationMixin
/// one. c10::Error (the reference's RuntimeError) for an unregistered type (the message shows the
/// line that registers it) or a module that is already quantized; c10::ValueError for a null
/// module.
std::shared_ptr<torch::nn::Module> from_module(const std::shared_ptr<torch::nn::Module>& module);
/// The same for a module holder: `from_module(torch::nn::Linear(4, 3))`.
template <typename Holder, typename = decltype(std::declval<const Holder&>().ptr())>
std::shared_ptr<torch::nn::Module> from_module(const Holder& holder) {
  return from_module(std::static_pointer_cast<torch::nn::Module>(holder.ptr()));
}

/// Registers the quantized classes of the module table (called on first use of the registry).
void register_builtin_modules();

}  // namespace quantsim::nn
