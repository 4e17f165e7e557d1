#pragma once

/// Base of the custom float modules that have neither options nor state (those that are one
/// torch call are generated from tools/module_table.py into stateless_ops.h).

#include <torch/nn/cloneable.h>

#include <ostream>

namespace quantsim::nn::custom {

/// A Cloneable module without parameters, buffers or options: reset() has nothing to register and
/// pretty_print() writes `quantsim::nn::custom::<Derived::kName>()`.
///
///     class ExponentialImpl : public StatelessModule<ExponentialImpl> {
///      public:
///       static constexpr const char* kName = "Exponential";
///       at::Tensor forward(const at::Tensor& x);
///     };
template <typename Derived>
class StatelessModule : public torch::nn::Cloneable<Derived> {
 public:
  void reset() override {}
  void pretty_print(std::ostream& stream) const override {
    stream << "quantsim::nn::custom::" << Derived::kName << "()";
  }
};

}  // namespace quantsim::nn::custom
