#pragma once

/// Tensor leaves of torch::nn::AdaptiveLogSoftmaxWithLoss's result.

#include <quantsim/nn/tensor_leaves.h>

#include <torch/nn/modules/adaptive.h>

namespace quantsim::nn {

/// `output` is the leaf. libtorch returns the loss as a double, not a tensor, so the second
/// output quantizer the table gives this module has nothing to quantize (docs/differences.md).
template <>
struct TensorLeaves<torch::nn::ASMoutput> {
  static constexpr size_t count = 1;
  template <typename F>
  static torch::nn::ASMoutput map(const torch::nn::ASMoutput& value, size_t first, F& f) {
    return torch::nn::ASMoutput(f(first, value.output), value.loss);
  }
};

}  // namespace quantsim::nn
