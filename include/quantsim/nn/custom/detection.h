#pragma once

/// Detection custom float modules (docs/modules.md §6): RoiAlign and NonMaxSuppression, with native
/// implementations of torchvision's roi_align and nms (which they wrap in the reference).
///
///     quantsim::nn::custom::NonMaxSuppression nms(
///         quantsim::nn::custom::NonMaxSuppressionOptions(/*iou=*/0.5, /*score=*/0.1, /*max=*/10));
///     auto selected = nms(boxes, scores);   // (B·C·10, 3) rows [batch, class, box]

#include <torch/arg.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <ostream>

namespace quantsim::nn::custom {

/// torchvision.ops.nms: indices (int64) of the boxes kept by greedy non-maximum suppression, in
/// descending score order (ties in index order). A box is dropped when its IoU with a kept box
/// of higher score is > `iou_threshold`. `boxes` is (N, 4) as (x1, y1, x2, y2), `scores` (N).
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

/// torchvision.ops.roi_align on the CPU: for each box (batch_index, x1, y1, x2, y2) of `boxes`
/// (K, 5), the average of bilinear samples of `input` (N, C, H, W) on a regular grid of
/// `sampling_ratio`² points per output bin (ceil(box size / output size) when <= 0), with
/// coordinates scaled by `spatial_scale` and shifted by -0.5 when `aligned`. Returns
/// (K, C, output_h, output_w); differentiable with respect to `input`.
at::Tensor roi_align(const at::Tensor& input, const at::Tensor& boxes,
                     torch::ExpandingArray<2> output_size, double spatial_scale,
                     int64_t sampling_ratio, bool aligned);

/// Options of `RoiAlign`.
struct RoiAlignOptions {
  RoiAlignOptions(torch::ExpandingArray<2> output_size, double spatial_scale,
                  int64_t sampling_ratio)
      : output_size_(output_size), spatial_scale_(spatial_scale), sampling_ratio_(sampling_ratio) {}
  /// (height, width) of each output.
  TORCH_ARG(torch::ExpandingArray<2>, output_size);
  /// Factor from box coordinates to input coordinates.
  TORCH_ARG(double, spatial_scale);
  /// Samples per bin and axis; <= 0 for adaptive.
  TORCH_ARG(int64_t, sampling_ratio);
  /// Pixel-centre alignment (shift by -0.5). Default: false, as ONNX RoiAlign-10 and AIMET
  TORCH_ARG(bool, aligned) = false;
};

/// ONNX RoiAlign, with `rois` (K, 4) as (x1, y1, x2, y2):
///
///     roi_align(input, cat(batch_indices[:, None], rois), output_size, spatial_scale,
///               sampling_ratio, aligned)
class RoiAlignImpl : public torch::nn::Cloneable<RoiAlignImpl> {
 public:
  explicit RoiAlignImpl(RoiAlignOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& input, const at::Tensor& rois,
                     const at::Tensor& batch_indices);

  RoiAlignOptions options;
};
TORCH_MODULE(RoiAlign);

/// Options of `NonMaxSuppression`.
struct NonMaxSuppressionOptions {
  NonMaxSuppressionOptions(double iou_threshold, double score_threshold,
                           int64_t max_output_boxes_per_class)
      : iou_threshold_(iou_threshold),
        score_threshold_(score_threshold),
        max_output_boxes_per_class_(max_output_boxes_per_class) {}
  TORCH_ARG(double, iou_threshold);
  /// Boxes with score <= this are ignored.
  TORCH_ARG(double, score_threshold);
  TORCH_ARG(int64_t, max_output_boxes_per_class);
};

/// ONNX NonMaxSuppression: for each batch b and class c, the boxes with score > score_threshold
/// go through `nms` (boxes given as (y1, x1, y2, x2) are reordered to (x1, y1, x2, y2)); the first
/// `max_output_boxes_per_class` kept ones give rows [b, c, box_index], written in order into an
/// int64 zero tensor of shape (B·C·max_output_boxes_per_class, 3).
/// `boxes` is (B, N, 4), `scores` (B, C, N). Its quantized version quantizes `scores` only.
class NonMaxSuppressionImpl : public torch::nn::Cloneable<NonMaxSuppressionImpl> {
 public:
  explicit NonMaxSuppressionImpl(NonMaxSuppressionOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& boxes, const at::Tensor& scores);

  NonMaxSuppressionOptions options;
};
TORCH_MODULE(NonMaxSuppression);

}  // namespace quantsim::nn::custom
