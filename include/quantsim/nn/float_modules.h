#pragma once

/// Float modules of torch.nn that the quantized module table (docs/modules.md §5) needs but
/// libtorch's C++ frontend lacks. Each reproduces its PyTorch module exactly and holds no
/// quantization state.
///
///     quantsim::nn::Hardswish act;
///     quantsim::nn::UpsamplingBilinear2d up(quantsim::nn::UpsamplingOptions().scale_factor(
///         std::vector<double>{2, 2}));
///     auto y = up(act(x));

#include <torch/arg.h>
#include <torch/enum.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/options/batchnorm.h>
#include <torch/nn/options/loss.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <ostream>
#include <variant>
#include <vector>

namespace quantsim::nn {

// ---- ChannelShuffle ----------------------------------------------------------------------------

/// Options of `ChannelShuffle`.
struct ChannelShuffleOptions {
  /* implicit */ ChannelShuffleOptions(int64_t groups) : groups_(groups) {}
  /// Number of groups the channels (dim 1) are divided into.
  TORCH_ARG(int64_t, groups);
};

/// torch.nn.ChannelShuffle: splits the C channels of an (N, C, *) input into `groups` groups and
/// transposes group and in-group index, i.e. `view(N, g, C/g, *).transpose(1, 2).reshape(N, C, *)`.
///
///     quantsim::nn::ChannelShuffle shuffle(2);   // channels 0 1 2 3 -> 0 2 1 3
class ChannelShuffleImpl : public torch::nn::Cloneable<ChannelShuffleImpl> {
 public:
  explicit ChannelShuffleImpl(ChannelShuffleOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input);

  ChannelShuffleOptions options;
};
TORCH_MODULE(ChannelShuffle);

// ---- Hardsigmoid / Hardswish -------------------------------------------------------------------

/// Options of `Hardsigmoid` and `Hardswish`.
struct HardActivationOptions {
  /// Overwrite the input with the result. Default: false
  TORCH_ARG(bool, inplace) = false;
};
using HardsigmoidOptions = HardActivationOptions;
using HardswishOptions = HardActivationOptions;

/// torch.nn.Hardsigmoid: `relu6(x + 3) / 6`, elementwise.
class HardsigmoidImpl : public torch::nn::Cloneable<HardsigmoidImpl> {
 public:
  explicit HardsigmoidImpl(HardsigmoidOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(at::Tensor input);

  HardsigmoidOptions options;
};
TORCH_MODULE(Hardsigmoid);

/// torch.nn.Hardswish: `x * relu6(x + 3) / 6`, elementwise.
class HardswishImpl : public torch::nn::Cloneable<HardswishImpl> {
 public:
  explicit HardswishImpl(HardswishOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(at::Tensor input);

  HardswishOptions options;
};
TORCH_MODULE(Hardswish);

// ---- SyncBatchNorm -----------------------------------------------------------------------------

using SyncBatchNormOptions = torch::nn::BatchNormOptions;

/// torch.nn.SyncBatchNorm in a single process: batch normalization over dim 1 of an input of any
/// rank >= 2, with the state and update rule of torch.nn.BatchNorm2d (running statistics updated
/// in training by `momentum`, or by a cumulative average when `momentum` is nullopt). There is no
/// process group to synchronise with, as in PyTorch when torch.distributed is not initialised.
///
///     quantsim::nn::SyncBatchNorm bn(SyncBatchNormOptions(16).momentum(0.01));
class SyncBatchNormImpl : public torch::nn::Cloneable<SyncBatchNormImpl> {
 public:
  explicit SyncBatchNormImpl(SyncBatchNormOptions options);
  /// Registers weight, bias (if affine) and running_mean, running_var, num_batches_tracked (if
  /// track_running_stats), then resets them: weight 1, bias 0, mean 0, var 1, count 0.
  void reset() override;
  void reset_running_stats();
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// c10::ValueError for an input of rank < 2 or with no channels (PyTorch's ValueError).
  at::Tensor forward(const at::Tensor& input);

  SyncBatchNormOptions options;
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(SyncBatchNorm);

// ---- UpsamplingBilinear2d / UpsamplingNearest2d ------------------------------------------------

/// Options of `UpsamplingBilinear2d` and `UpsamplingNearest2d`: exactly one of `size` and
/// `scale_factor` must be given (F.interpolate's rule, checked at forward).
struct UpsamplingOptions {
  /// Output spatial size (H, W). Default: nullopt
  TORCH_ARG(c10::optional<std::vector<int64_t>>, size) = c10::nullopt;
  /// Multiplier of each spatial size (H, W). Default: nullopt
  TORCH_ARG(c10::optional<std::vector<double>>, scale_factor) = c10::nullopt;
};

/// torch.nn.UpsamplingBilinear2d on an (N, C, H, W) input:
///
///     F.interpolate(x, size, scale_factor, mode="bilinear", align_corners=True)
class UpsamplingBilinear2dImpl : public torch::nn::Cloneable<UpsamplingBilinear2dImpl> {
 public:
  explicit UpsamplingBilinear2dImpl(UpsamplingOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input);

  UpsamplingOptions options;
};
TORCH_MODULE(UpsamplingBilinear2d);

/// torch.nn.UpsamplingNearest2d: `F.interpolate(x, size, scale_factor, mode="nearest")` on an
/// (N, C, H, W) input.
class UpsamplingNearest2dImpl : public torch::nn::Cloneable<UpsamplingNearest2dImpl> {
 public:
  explicit UpsamplingNearest2dImpl(UpsamplingOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input);

  UpsamplingOptions options;
};
TORCH_MODULE(UpsamplingNearest2d);

// ---- NLLLoss2d ---------------------------------------------------------------------------------

using NLLLoss2dOptions = torch::nn::NLLLossOptions;

/// torch.nn.NLLLoss2d (deprecated alias of NLLLoss for (N, C, H, W) log-probabilities and (N, H, W)
/// class targets): `F.nll_loss(input, target, weight, ignore_index, reduction)`.
class NLLLoss2dImpl : public torch::nn::Cloneable<NLLLoss2dImpl> {
 public:
  explicit NLLLoss2dImpl(NLLLoss2dOptions options = {});
  /// Registers the optional class `weight` as a buffer, as torch.nn.NLLLoss does.
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input, const at::Tensor& target);

  NLLLoss2dOptions options;
  at::Tensor weight;
};
TORCH_MODULE(NLLLoss2d);

// ---- GaussianNLLLoss ---------------------------------------------------------------------------

/// Options of `GaussianNLLLoss`.
struct GaussianNLLLossOptions {
  typedef std::variant<torch::enumtype::kNone, torch::enumtype::kMean, torch::enumtype::kSum>
      reduction_t;

  /// Add the constant 0.5 * log(2 pi) to the loss. Default: false
  TORCH_ARG(bool, full) = false;
  /// Lower clamp of `var`, for stability. Default: 1e-6
  TORCH_ARG(double, eps) = 1e-6;
  /// Default: Mean
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
};

/// torch.nn.GaussianNLLLoss (F.gaussian_nll_loss):
///
///     loss = 0.5 * (log(max(var, eps)) + (input - target)^2 / max(var, eps))  [+ 0.5 log(2 pi)]
///
/// reduced by mean, sum or not at all. `var` has input's shape, or input's shape without (or with
/// 1 as) its last dimension (one variance shared by the last dimension). The clamp is not seen by
/// autograd (PyTorch clamps under no_grad), so the gradient flows to `var` unchanged.
/// c10::ValueError for a `var` of another shape or with a negative entry.
class GaussianNLLLossImpl : public torch::nn::Cloneable<GaussianNLLLossImpl> {
 public:
  explicit GaussianNLLLossImpl(GaussianNLLLossOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input, const at::Tensor& target, const at::Tensor& var);

  GaussianNLLLossOptions options;
};
TORCH_MODULE(GaussianNLLLoss);

}  // namespace quantsim::nn
