#pragma once

/// Normalization custom float modules (docs/modules.md §6): BatchNorm and GroupNorm (functional
/// forms whose statistics and affine parameters are forward inputs), Normalize, RmsNorm.
///
///     quantsim::nn::custom::RmsNorm norm(quantsim::nn::custom::RmsNormOptions(
///         /*input_shape=*/{2, 8, 16}, /*axes=*/{2}, /*eps=*/1e-6));

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/common.h>
#include <torch/nn/modules/container/any_module_holder.h>
#include <torch/nn/modules/container/any_value.h>
#include <torch/nn/options/normalization.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <ostream>
#include <vector>

namespace quantsim::nn::custom {

/// Options of `BatchNorm` (F.batch_norm's non-tensor arguments).
struct BatchNormOptions {
  /// Normalize with the batch statistics and update the running ones. Default: false
  TORCH_ARG(bool, training) = false;
  /// Weight of the batch statistics in the running ones. Default: 0.1
  TORCH_ARG(double, momentum) = 0.1;
  /// Default: 1e-5
  TORCH_ARG(double, eps) = 1e-5;
};

/// F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps) over
/// dim 1. Undefined tensors stand for Python's None (no affine part; no running statistics,
/// which requires `training`). No gradient flows to the running statistics (native_batch_norm
/// has none): they are used detached.
class BatchNormImpl : public torch::nn::Cloneable<BatchNormImpl> {
 public:
  explicit BatchNormImpl(BatchNormOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  /// c10::ValueError in training for a batch with one value per channel (PyTorch's
  /// ValueError).
  at::Tensor forward(const at::Tensor& input, const at::Tensor& running_mean,
                     const at::Tensor& running_var, const at::Tensor& weight = at::Tensor(),
                     const at::Tensor& bias = at::Tensor());

  BatchNormOptions options;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({3, torch::nn::AnyValue(at::Tensor())},
                           {4, torch::nn::AnyValue(at::Tensor())})
};
TORCH_MODULE(BatchNorm);

/// Options of `GroupNorm`.
struct GroupNormOptions {
  /* implicit */ GroupNormOptions(int64_t num_groups) : num_groups_(num_groups) {}
  /// Number of groups the channels (dim 1) are divided into.
  TORCH_ARG(int64_t, num_groups);
  /// Default: 1e-5
  TORCH_ARG(double, eps) = 1e-5;
};

/// F.group_norm(input, num_groups, weight, bias, eps): each group of C/num_groups channels of
/// each sample normalized to zero mean and unit variance, then `* weight + bias` per channel.
/// Its quantized version is FakeQuantizedAimetGroupNorm.
class GroupNormImpl : public torch::nn::Cloneable<GroupNormImpl> {
 public:
  explicit GroupNormImpl(GroupNormOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  /// c10::Error for an input of rank < 2; c10::ValueError when a group holds one value.
  at::Tensor forward(const at::Tensor& input, const at::Tensor& weight = at::Tensor(),
                     const at::Tensor& bias = at::Tensor());

  GroupNormOptions options;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(at::Tensor())},
                           {2, torch::nn::AnyValue(at::Tensor())})
};
TORCH_MODULE(GroupNorm);

using NormalizeOptions = torch::nn::functional::NormalizeFuncOptions;

/// F.normalize(x, p, dim, eps): `x / max(||x||_p along dim, eps)`.
class NormalizeImpl : public torch::nn::Cloneable<NormalizeImpl> {
 public:
  explicit NormalizeImpl(NormalizeOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  NormalizeOptions options;
};
TORCH_MODULE(Normalize);

/// Options of `RmsNorm`.
struct RmsNormOptions {
  RmsNormOptions(std::vector<int64_t> input_shape, std::vector<int64_t> axes, double eps)
      : input_shape_(std::move(input_shape)), axes_(std::move(axes)), eps_(eps) {}
  /// Shape of the inputs; only the sizes of `axes` are used (the parameters' shape).
  TORCH_ARG(std::vector<int64_t>, input_shape);
  /// Dims to normalize over.
  TORCH_ARG(std::vector<int64_t>, axes);
  TORCH_ARG(double, eps);
};

/// RMS normalization computed in float32 and cast back to the input's dtype:
///
///     y = x / sqrt(mean(x², axes, keepdim) + eps) * weight + bias
///
/// with parameters `weight` (ones) and `bias` (zeros) of shape `[input_shape[a] for a in axes]`,
/// broadcast against x from the right.
class RmsNormImpl : public torch::nn::Cloneable<RmsNormImpl> {
 public:
  explicit RmsNormImpl(RmsNormOptions options);
  /// Registers `weight` = 1 and `bias` = 0.
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  RmsNormOptions options;
  at::Tensor weight, bias;
};
TORCH_MODULE(RmsNorm);

}  // namespace quantsim::nn::custom
