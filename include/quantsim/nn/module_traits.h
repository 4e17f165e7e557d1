#pragma once

/// `ModuleTraits<Float>`: what the generic quantized module needs to know about a float module
/// type: its table name, its quantizer counts, and which tensors its quantizers bind to
/// (spec §3.6, §3.7). One specialization per row of the module table.

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstddef>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace quantsim::nn {

/// `required_args` value meaning every forward argument is required.
inline constexpr size_t kAllArguments = std::numeric_limits<size_t>::max();

/// Defaults for a float module with `In` input and `Out` output quantizers, input quantizer i
/// bound to the i-th tensor of the forward's arguments.
///
/// The forward's arguments and results are seen as a flat sequence of tensor "leaves": a tensor
/// is one leaf, an optional tensor one leaf (present or not), a tuple the leaves of its elements
/// in order, a vector of tensors ONE leaf (every element goes through the same quantizer, as
/// Concat's inputs and Split's outputs do), a PackedSequence one leaf (its data). Other
/// arguments (sizes, scalars) have no leaves.
template <size_t In, size_t Out>
struct DefaultModuleTraits {
  static constexpr size_t num_inputs = In;
  static constexpr size_t num_outputs = Out;
  /// How many leading forward arguments have no default (the float forward's defaults are
  /// value-initialized: `{}` / `c10::nullopt`).
  static constexpr size_t required_args = kAllArguments;
  /// The argument leaf input quantizer `index` applies to; -1: the quantizer exists but has no
  /// tensor to apply to (the reference's unused slots, e.g. GroupNorm's num_groups).
  static constexpr int input_leaf(size_t index) { return static_cast<int>(index); }
  /// The quantized class's name after its prefix when it is not the float module's name
  /// (`FakeQuantizedAimetGroupNorm` quantizes custom::GroupNorm).
  static constexpr const char* class_name = nullptr;
};

/// Primary template: a module type without a row in the table, quantized on request
/// (`register_quantized_module<MyModuleImpl>()`), gets the reference's `__quant_init__` default
/// of one input and one output quantizer.
template <typename Float>
struct ModuleTraits : DefaultModuleTraits<1, 1> {
  static constexpr const char* name = nullptr;  // derived from the type name
};

/// Declares the traits of a table row: `QUANTSIM_MODULE_TRAITS(torch::nn::LinearImpl, Linear, 1,
/// 1);`
#define QUANTSIM_MODULE_TRAITS(FloatImpl, Name, In, Out)          \
  template <>                                                     \
  struct ModuleTraits<FloatImpl> : DefaultModuleTraits<In, Out> { \
    static constexpr const char* name = #Name;                    \
  }

/// As QUANTSIM_MODULE_TRAITS, for float forwards with defaulted trailing arguments.
#define QUANTSIM_MODULE_TRAITS_DEFAULTS(FloatImpl, Name, In, Out, Required) \
  template <>                                                               \
  struct ModuleTraits<FloatImpl> : DefaultModuleTraits<In, Out> {           \
    static constexpr const char* name = #Name;                              \
    static constexpr size_t required_args = Required;                       \
  }

}  // namespace quantsim::nn
