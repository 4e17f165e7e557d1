#pragma once

/// The member definitions of the quantized-module mixins. The library instantiates every row of
/// the module table once (src/nn/modules/*.cpp); include this header only to instantiate a
/// mixin for a module type of your own:
///
///     #include <quantsim/nn/mixin_definitions.h>
///     QUANTSIM_INSTANTIATE_QUANTIZED_MODULE(FakeQuantizationMixin, MyBlockImpl);

#include <quantsim/nn/quantization_mixin.h>

/// Instantiates `Mixin<Float>` and the bases that hold its forward (inside namespace
/// quantsim::nn); the counterpart of QUANTSIM_EXTERN_QUANTIZED_MODULE.
#define QUANTSIM_INSTANTIATE_QUANTIZED_MODULE(Mixin, Float)                           \
  template class QuantizedModuleBase<Float, Mixin<Float>>;                            \
  template struct detail::ForwardDeclaration<Mixin<Float>, decltype(&Float::forward), \
                                             ModuleTraits<Float>::required_args>;     \
  template class Mixin<Float>
