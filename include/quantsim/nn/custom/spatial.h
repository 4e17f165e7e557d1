#pragma once

/// Spatial custom float modules on (N, C, H, W) tensors (docs/modules.md §6): MaxPool2d,
/// AdaptiveAvgPool2d, AvgPool2d, Interpolate, Pad, ChannelShuffle, DepthToSpaceDCRMode,
/// DepthToSpaceCRDMode. The pooling and resampling modules wrap the torch functional of the same
/// name with its options.
///
///     quantsim::nn::custom::DepthToSpaceDCRMode d2s(/*block_size=*/2);
///     auto y = d2s(x);   // (1, 8, 3, 3) -> (1, 2, 6, 6)

#include <quantsim/nn/float_modules.h>

#include <torch/arg.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/options/padding.h>
#include <torch/nn/options/pooling.h>
#include <torch/nn/options/upsampling.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <ostream>

namespace quantsim::nn::custom {

using MaxPool2dOptions = torch::nn::MaxPool2dOptions;
using AdaptiveAvgPool2dOptions = torch::nn::AdaptiveAvgPool2dOptions;
using AvgPool2dOptions = torch::nn::AvgPool2dOptions;
using InterpolateOptions = torch::nn::functional::InterpolateFuncOptions;
using PadOptions = torch::nn::functional::PadFuncOptions;

/// F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode); values only.
class MaxPool2dImpl : public torch::nn::Cloneable<MaxPool2dImpl> {
 public:
  explicit MaxPool2dImpl(MaxPool2dOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  MaxPool2dOptions options;
};
TORCH_MODULE(MaxPool2d);

/// F.adaptive_avg_pool2d(x, output_size).
class AdaptiveAvgPool2dImpl : public torch::nn::Cloneable<AdaptiveAvgPool2dImpl> {
 public:
  explicit AdaptiveAvgPool2dImpl(AdaptiveAvgPool2dOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  AdaptiveAvgPool2dOptions options;
};
TORCH_MODULE(AdaptiveAvgPool2d);

/// F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override).
class AvgPool2dImpl : public torch::nn::Cloneable<AvgPool2dImpl> {
 public:
  explicit AvgPool2dImpl(AvgPool2dOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  AvgPool2dOptions options;
};
TORCH_MODULE(AvgPool2d);

/// F.interpolate(x, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias).
class InterpolateImpl : public torch::nn::Cloneable<InterpolateImpl> {
 public:
  explicit InterpolateImpl(InterpolateOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  InterpolateOptions options;
};
TORCH_MODULE(Interpolate);

/// F.pad(x, pad, mode, value): `pad` lists (before, after) pairs from the last dim backwards.
class PadImpl : public torch::nn::Cloneable<PadImpl> {
 public:
  explicit PadImpl(PadOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  PadOptions options;
};
TORCH_MODULE(Pad);

/// AIMET's channel shuffle, `view(n, g, c/g, h, w).transpose(1, 2).view(n, c, h, w)`, is
/// torch.nn.ChannelShuffle on a 4-D input: one float module, quantsim::nn::ChannelShuffle, serves
/// both rows of the table (it also takes (N, C, *) inputs of other ranks).
using ChannelShuffleOptions = quantsim::nn::ChannelShuffleOptions;
using ChannelShuffleImpl = quantsim::nn::ChannelShuffleImpl;
using ChannelShuffle = quantsim::nn::ChannelShuffle;

/// Options of `DepthToSpaceDCRMode`.
struct DepthToSpaceDCRModeOptions {
  /* implicit */ DepthToSpaceDCRModeOptions(int64_t block_size) : block_size_(block_size) {}
  TORCH_ARG(int64_t, block_size);
};

/// ONNX DepthToSpace, DCR mode (depth-column-row), with block size s:
/// `reshape(b, s, s, c/s², h, w) -> permute(0, 3, 4, 1, 5, 2) -> reshape(b, c/s², h·s, w·s)`,
/// so `out[b][k][h·s + i][w·s + j] = x[b][(i·s + j)·c/s² + k][h][w]`.
class DepthToSpaceDCRModeImpl : public torch::nn::Cloneable<DepthToSpaceDCRModeImpl> {
 public:
  explicit DepthToSpaceDCRModeImpl(DepthToSpaceDCRModeOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  DepthToSpaceDCRModeOptions options;
};
TORCH_MODULE(DepthToSpaceDCRMode);

/// Options of `DepthToSpaceCRDMode`.
struct DepthToSpaceCRDModeOptions {
  /* implicit */ DepthToSpaceCRDModeOptions(torch::ExpandingArray<2> block_size)
      : block_size_(block_size) {}
  /// (block height, block width).
  TORCH_ARG(torch::ExpandingArray<2>, block_size);
};

/// ONNX DepthToSpace, CRD mode (column-row-depth), with blocks (bh, bw), as PixelShuffle:
///
///     reshape(b, c/(bh·bw), bh, bw, h, w) -> permute(0, 1, 4, 2, 5, 3)
///                                         -> reshape(b, c/(bh·bw), h·bh, w·bw)
///
/// so `out[b][k][h·bh + i][w·bw + j] = x[b][k·bh·bw + i·bw + j][h][w]`.
class DepthToSpaceCRDModeImpl : public torch::nn::Cloneable<DepthToSpaceCRDModeImpl> {
 public:
  explicit DepthToSpaceCRDModeImpl(DepthToSpaceCRDModeOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  DepthToSpaceCRDModeOptions options;
};
TORCH_MODULE(DepthToSpaceCRDMode);

}  // namespace quantsim::nn::custom
