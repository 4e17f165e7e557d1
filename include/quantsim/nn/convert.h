#pragma once

/// `convert`: the quantized copy of a model built from libtorch's containers (Sequential,
/// ModuleList, ModuleDict, nested in each other) with every float leaf replaced by its quantized
/// module from the registry (`from_module`), sharing the float parameters.

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <type_traits>
#include <utility>

namespace quantsim::nn {

/// A new Sequential with the children of `model` converted, under the same names and in the
/// same order:
///
///     torch::nn::Sequential model(torch::nn::Conv2d(1, 8, 3), torch::nn::ReLU());
///     auto quantized = quantsim::nn::convert(model);   // QuantizedConv2d, FakeQuantizedReLU
///     quantized[0]->as<quantsim::nn::QuantizedConv2dImpl>()->param_quantizers["weight"] = ...;
///
/// Each child becomes:
/// - a Sequential, ModuleList or ModuleDict (exactly these types): a new container of the same
///   type, converted recursively, in the original's training mode;
/// - a quantized module or a quantizer: itself (shared with `model`);
/// - a float module whose type is registered (the module table, register_quantized_module):
///   `from_module(child)`, sharing parameters, buffers and submodules with it; a module reached
///   twice (weight sharing) becomes one quantized module, reached twice;
/// - any other module with children (a module of your own): itself, when no registered float
///   module is inside it (it is already written with quantsim::nn::drop_in); otherwise
///   c10::Error naming the float module's path and type: convert cannot swap the members of a
///   class it does not know;
/// - any other leaf: c10::Error (as from_module) naming its path in the model ("features.3"), its
///   type, and the line that registers a quantized module for it.
///
/// With no quantizer assigned, the converted model computes exactly what `model` computes.
/// `model` itself is not changed. Sequential holds its modules as torch::nn::AnyModule of their
/// static type: a quantized module whose forward AnyModule cannot call (a template) raises
/// c10::TypeError naming its path.
torch::nn::Sequential convert(const torch::nn::Sequential& model);
/// The same for a ModuleList: `convert(torch::nn::ModuleList(conv, relu))`.
torch::nn::ModuleList convert(const torch::nn::ModuleList& model);
/// The same for a ModuleDict; keys and their order are kept.
torch::nn::ModuleDict convert(const torch::nn::ModuleDict& model);
/// The same for any module, by its dynamic type: a new container for a SequentialImpl,
/// ModuleListImpl or ModuleDictImpl, `from_module(model)` for a registered float leaf, `model`
/// itself for a quantized module, a quantizer, or a module of your own without float leaves.
std::shared_ptr<torch::nn::Module> convert(const std::shared_ptr<torch::nn::Module>& model);

/// `convert(std::make_shared<torch::nn::ModuleListImpl>(...))`: any shared_ptr to a module.
template <typename ModuleType,
          typename = std::enable_if_t<std::is_base_of_v<torch::nn::Module, ModuleType> &&
                                      !std::is_same_v<ModuleType, torch::nn::Module>>>
std::shared_ptr<torch::nn::Module> convert(const std::shared_ptr<ModuleType>& model) {
  return convert(std::shared_ptr<torch::nn::Module>(model));
}

/// `convert(torch::nn::Linear(4, 3))`: any other module holder, by its module.
template <typename Holder, typename = decltype(std::declval<const Holder&>().ptr())>
std::shared_ptr<torch::nn::Module> convert(const Holder& holder) {
  return convert(std::shared_ptr<torch::nn::Module>(holder.ptr()));
}

}  // namespace quantsim::nn
