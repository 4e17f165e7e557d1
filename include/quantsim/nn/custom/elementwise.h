#pragma once

/// Elementwise custom float modules (docs/modules.md §6): the one-call ones (unary math, binary
/// arithmetic, comparisons and logic, `Where`, `MaskedFill`; generated, in stateless_ops.h) and
/// `CustomSiLU`.
///
///     quantsim::nn::custom::CustomSiLU silu;
///     auto y = silu(x);   // mul(x, sigmoid(x))

#include <quantsim/nn/custom/stateless_ops.h>

#include <torch/nn/modules/activation.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

namespace quantsim::nn::custom {

/// SiLU built from two submodules so that each can be quantized: `mul(x, sigmoid(x))`, with
/// `sigmoid` a torch::nn::Sigmoid and `mul` a Multiply.
class CustomSiLUImpl : public torch::nn::Cloneable<CustomSiLUImpl> {
 public:
  CustomSiLUImpl();
  /// Registers the submodules `sigmoid` and `mul`.
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Sigmoid sigmoid{nullptr};
  Multiply mul{nullptr};
};
TORCH_MODULE(CustomSiLU);

}  // namespace quantsim::nn::custom
