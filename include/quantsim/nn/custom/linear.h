#pragma once

/// Matrix-product custom float modules (docs/modules.md §6) whose operands are all forward inputs:
/// Baddbmm, Addmm, DynamicLinear, DynamicConv2d; MatMul and Bmm, one torch call each, are
/// generated in stateless_ops.h.
///
///     quantsim::nn::custom::DynamicLinear linear;
///     auto y = linear(x, w, b);   // F.linear(x, w, b) with w and b computed at run time

#include <quantsim/nn/custom/stateless.h>
#include <quantsim/nn/custom/stateless_ops.h>

#include <torch/arg.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any_module_holder.h>
#include <torch/nn/modules/container/any_value.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/core/Scalar.h>

#include <cstdint>
#include <ostream>

namespace quantsim::nn::custom {

/// Options of `Baddbmm` and `Addmm`.
struct AddProductOptions {
  /// Multiplier of `input`. Default: 1
  TORCH_ARG(c10::Scalar, beta) = 1;
  /// Multiplier of the product. Default: 1
  TORCH_ARG(c10::Scalar, alpha) = 1;
};
using BaddbmmOptions = AddProductOptions;
using AddmmOptions = AddProductOptions;

/// `beta * input + alpha * bmm(batch1, batch2)` (torch.baddbmm).
class BaddbmmImpl : public torch::nn::Cloneable<BaddbmmImpl> {
 public:
  explicit BaddbmmImpl(BaddbmmOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input, const at::Tensor& batch1, const at::Tensor& batch2);

  BaddbmmOptions options;
};
TORCH_MODULE(Baddbmm);

/// `beta * input + alpha * mm(mat1, mat2)` (torch.addmm).
class AddmmImpl : public torch::nn::Cloneable<AddmmImpl> {
 public:
  explicit AddmmImpl(AddmmOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input, const at::Tensor& mat1, const at::Tensor& mat2);

  AddmmOptions options;
};
TORCH_MODULE(Addmm);

/// `x W^T + b` with the weight and optional bias given at forward (F.linear).
class DynamicLinearImpl : public StatelessModule<DynamicLinearImpl> {
 public:
  static constexpr const char* kName = "DynamicLinear";
  /// An undefined `bias` means none.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                     const at::Tensor& bias = at::Tensor());

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(at::Tensor())})
};
TORCH_MODULE(DynamicLinear);

/// Options of `DynamicConv2d` (F.conv2d's arguments).
struct DynamicConv2dOptions {
  /// Default: 1
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  /// Zero padding of each side. Default: 0
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;
  /// Default: 1
  TORCH_ARG(torch::ExpandingArray<2>, dilation) = 1;
  /// Default: 1
  TORCH_ARG(int64_t, groups) = 1;
};

/// 2-D convolution with the weight and optional bias given at forward (F.conv2d).
class DynamicConv2dImpl : public torch::nn::Cloneable<DynamicConv2dImpl> {
 public:
  explicit DynamicConv2dImpl(DynamicConv2dOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  /// An undefined `bias` means none.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                     const at::Tensor& bias = at::Tensor());

  DynamicConv2dOptions options;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({2, torch::nn::AnyValue(at::Tensor())})
};
TORCH_MODULE(DynamicConv2d);

}  // namespace quantsim::nn::custom
