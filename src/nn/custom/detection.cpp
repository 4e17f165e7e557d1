#include <quantsim/nn/custom/detection.h>

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace quantsim::nn::custom {

// ---- nms ---------------------------------------------------------------------------------------

namespace {

/// torchvision's CPU nms kernel (ops/cpu/nms_kernel.cpp): IoU in the boxes' type, suppression
/// when IoU > threshold (compared in double).
template <typename T>
std::vector<int64_t> nms_kernel(const at::Tensor& boxes, const at::Tensor& scores,
                                double iou_threshold) {
  const int64_t n = boxes.size(0);
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0,
                                                   /*descending=*/true));
  const auto b = boxes.accessor<T, 2>();
  const auto ord = order.accessor<int64_t, 1>();
  std::vector<T> areas(n);
  for (int64_t i = 0; i < n; ++i) areas[i] = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]);
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = ord[oi];
    if (suppressed[i]) continue;
    keep.push_back(i);
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = ord[oj];
      if (suppressed[j]) continue;
      const T xx1 = std::max(b[i][0], b[j][0]);
      const T yy1 = std::max(b[i][1], b[j][1]);
      const T xx2 = std::min(b[i][2], b[j][2]);
      const T yy2 = std::min(b[i][3], b[j][3]);
      const T w = std::max(static_cast<T>(0), xx2 - xx1);
      const T h = std::max(static_cast<T>(0), yy2 - yy1);
      const T inter = w * h;
      const T iou = inter / (areas[i] + areas[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes must be (N, 4), got shape ",
              boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "nms: scores must be (N) with N = boxes.size(0) = ", boxes.size(0), ", got shape ",
              scores.sizes());
  TORCH_CHECK(boxes.scalar_type() == scores.scalar_type(), "nms: boxes (", boxes.scalar_type(),
              ") and scores (", scores.scalar_type(), ") must have the same dtype");
  const at::Tensor b = boxes.detach().cpu().contiguous();
  const at::Tensor s = scores.detach().cpu().contiguous();
  std::vector<int64_t> keep;
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "nms",
                             [&] { keep = nms_kernel<scalar_t>(b, s, iou_threshold); });
  return at::tensor(keep, at::kLong).to(boxes.device());
}

// ---- roi_align ---------------------------------------------------------------------------------

namespace {

/// Bilinear sample positions and weights of every (box, bin, sample) point, computed exactly as
/// torchvision's pre_calc_for_bilinear_interpolate; they do not depend on the channel.
template <typename T>
struct SamplePlan {
  std::vector<int64_t> bin;                     // output row (box, ph, pw) of each sample
  std::vector<int64_t> pos1, pos2, pos3, pos4;  // flat (n, y, x) input rows of the 4 neighbours
  std::vector<T> w1, w2, w3, w4;
  std::vector<T> count;  // samples per output row (at least 1)
};

template <typename T>
SamplePlan<T> plan_roi_align(const at::Tensor& boxes, int64_t height, int64_t width,
                             int64_t pooled_height, int64_t pooled_width, T spatial_scale,
                             int64_t sampling_ratio, bool aligned) {
  const auto rois = boxes.accessor<T, 2>();
  SamplePlan<T> plan;
  const T offset = aligned ? static_cast<T>(0.5) : static_cast<T>(0.0);
  for (int64_t n = 0; n < rois.size(0); ++n) {
    const int64_t roi_batch_ind = static_cast<int64_t>(rois[n][0]);
    const T roi_start_w = rois[n][1] * spatial_scale - offset;
    const T roi_start_h = rois[n][2] * spatial_scale - offset;
    const T roi_end_w = rois[n][3] * spatial_scale - offset;
    const T roi_end_h = rois[n][4] * spatial_scale - offset;
    T roi_width = roi_end_w - roi_start_w;
    T roi_height = roi_end_h - roi_start_h;
    if (!aligned) {
      // Malformed boxes are forced to 1x1.
      roi_width = std::max(roi_width, static_cast<T>(1.));
      roi_height = std::max(roi_height, static_cast<T>(1.));
    }
    const T bin_size_h = roi_height / static_cast<T>(pooled_height);
    const T bin_size_w = roi_width / static_cast<T>(pooled_width);
    const int64_t grid_h = sampling_ratio > 0
                               ? sampling_ratio
                               : static_cast<int64_t>(std::ceil(roi_height / pooled_height));
    const int64_t grid_w = sampling_ratio > 0
                               ? sampling_ratio
                               : static_cast<int64_t>(std::ceil(roi_width / pooled_width));
    const T count = static_cast<T>(std::max<int64_t>(grid_h * grid_w, 1));
    const int64_t base = roi_batch_ind * height * width;
    for (int64_t ph = 0; ph < pooled_height; ++ph) {
      for (int64_t pw = 0; pw < pooled_width; ++pw) {
        const int64_t bin = (n * pooled_height + ph) * pooled_width + pw;
        plan.count.push_back(count);
        for (int64_t iy = 0; iy < grid_h; ++iy) {
          const T yy = roi_start_h + ph * bin_size_h +
                       static_cast<T>(iy + .5f) * bin_size_h / static_cast<T>(grid_h);
          for (int64_t ix = 0; ix < grid_w; ++ix) {
            const T xx = roi_start_w + pw * bin_size_w +
                         static_cast<T>(ix + .5f) * bin_size_w / static_cast<T>(grid_w);
            T y = yy, x = xx;
            plan.bin.push_back(bin);
            if (y < -1.0 || y > height || x < -1.0 || x > width) {
              // Outside the feature map: contributes 0.
              for (auto* pos : {&plan.pos1, &plan.pos2, &plan.pos3, &plan.pos4}) {
                pos->push_back(base);
              }
              for (auto* w : {&plan.w1, &plan.w2, &plan.w3, &plan.w4}) w->push_back(0);
              continue;
            }
            if (y <= 0) y = 0;
            if (x <= 0) x = 0;
            int64_t y_low = static_cast<int>(y), x_low = static_cast<int>(x), y_high, x_high;
            if (y_low >= height - 1) {
              y_high = y_low = height - 1;
              y = static_cast<T>(y_low);
            } else {
              y_high = y_low + 1;
            }
            if (x_low >= width - 1) {
              x_high = x_low = width - 1;
              x = static_cast<T>(x_low);
            } else {
              x_high = x_low + 1;
            }
            const T ly = y - y_low, lx = x - x_low;
            const T hy = 1. - ly, hx = 1. - lx;
            plan.pos1.push_back(base + y_low * width + x_low);
            plan.pos2.push_back(base + y_low * width + x_high);
            plan.pos3.push_back(base + y_high * width + x_low);
            plan.pos4.push_back(base + y_high * width + x_high);
            plan.w1.push_back(hy * hx);
            plan.w2.push_back(hy * lx);
            plan.w3.push_back(ly * hx);
            plan.w4.push_back(ly * lx);
          }
        }
      }
    }
  }
  return plan;
}

}  // namespace

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& boxes,
                     torch::ExpandingArray<2> output_size, double spatial_scale,
                     int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input.dim() == 4, "roi_align: input must be (N, C, H, W), got shape ", input.sizes());
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 5,
              "roi_align: boxes must be (K, 5) rows (batch_index, x1, y1, x2, y2), got shape ",
              boxes.sizes());
  const int64_t pooled_h = (*output_size)[0], pooled_w = (*output_size)[1];
  TORCH_CHECK_VALUE(pooled_h > 0 && pooled_w > 0, "roi_align: output_size must be positive, got ",
                    output_size);
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t k = boxes.size(0);
  const at::Tensor rois = boxes.detach().to(at::kCPU, input.scalar_type()).contiguous();
  {
    const at::Tensor batch = rois.select(1, 0).to(at::kLong);
    TORCH_CHECK(k == 0 || (batch.min().item<int64_t>() >= 0 && batch.max().item<int64_t>() < n),
                "roi_align: a batch index is outside [0, ", n, ")");
  }

  // Each sample is w1*v1 + w2*v2 + w3*v3 + w4*v4 over the C channels of its four neighbours;
  // index_add accumulates the samples of a bin in order and the sum is divided by the sample
  // count, the operation order of torchvision's kernel. Built from differentiable ops, so the
  // gradient reaches `input`.
  const at::Tensor rows = input.permute({0, 2, 3, 1}).reshape({n * h * w, c});
  at::Tensor out, count;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align", [&] {
    const auto plan =
        plan_roi_align<scalar_t>(rois, h, w, pooled_h, pooled_w,
                                 static_cast<scalar_t>(spatial_scale), sampling_ratio, aligned);
    const auto long_tensor = [&](const std::vector<int64_t>& v) {
      return at::tensor(v, at::kLong).to(input.device());
    };
    const auto weight = [&](const std::vector<scalar_t>& v) {
      return at::tensor(v, input.options().device(at::kCPU)).to(input.device()).unsqueeze(1);
    };
    at::Tensor sample_values = at::zeros({0, c}, input.options());
    if (!plan.bin.empty()) {
      sample_values = weight(plan.w1) * rows.index_select(0, long_tensor(plan.pos1)) +
                      weight(plan.w2) * rows.index_select(0, long_tensor(plan.pos2)) +
                      weight(plan.w3) * rows.index_select(0, long_tensor(plan.pos3)) +
                      weight(plan.w4) * rows.index_select(0, long_tensor(plan.pos4));
    }
    out = at::zeros({k * pooled_h * pooled_w, c}, input.options())
              .index_add(0, long_tensor(plan.bin), sample_values);
    count = weight(plan.count);
  });
  return (out / count).reshape({k, pooled_h, pooled_w, c}).permute({0, 3, 1, 2}).contiguous();
}

// ---- modules -----------------------------------------------------------------------------------

RoiAlignImpl::RoiAlignImpl(RoiAlignOptions options) : options(options) {}

void RoiAlignImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::custom::RoiAlign(output_size=" << options.output_size()
         << ", spatial_scale=" << options.spatial_scale()
         << ", sampling_ratio=" << options.sampling_ratio() << ", aligned=" << options.aligned()
         << ")";
}

at::Tensor RoiAlignImpl::forward(const at::Tensor& input, const at::Tensor& rois,
                                 const at::Tensor& batch_indices) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 4 && batch_indices.numel() == rois.size(0),
              "RoiAlign: rois must be (K, 4) and batch_indices (K), got shapes ", rois.sizes(),
              " and ", batch_indices.sizes());
  const at::Tensor boxes =
      at::cat({batch_indices.reshape({-1, 1}).to(rois.scalar_type()), rois}, /*dim=*/1);
  return roi_align(input, boxes, options.output_size(), options.spatial_scale(),
                   options.sampling_ratio(), options.aligned());
}

NonMaxSuppressionImpl::NonMaxSuppressionImpl(NonMaxSuppressionOptions options) : options(options) {}

void NonMaxSuppressionImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::NonMaxSuppression(iou_threshold=" << options.iou_threshold()
         << ", score_threshold=" << options.score_threshold()
         << ", max_output_boxes_per_class=" << options.max_output_boxes_per_class() << ")";
}

at::Tensor NonMaxSuppressionImpl::forward(const at::Tensor& boxes, const at::Tensor& scores) {
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
              "NonMaxSuppression: boxes must be (B, N, 4), got shape ", boxes.sizes());
  TORCH_CHECK(
      scores.dim() == 3 && scores.size(0) == boxes.size(0) && scores.size(2) == boxes.size(1),
      "NonMaxSuppression: scores must be (B, C, N) for boxes ", boxes.sizes(), ", got shape ",
      scores.sizes());
  const int64_t max_per_class = options.max_output_boxes_per_class();
  const int64_t batches = scores.size(0), classes = scores.size(1);
  // (y1, x1, y2, x2) -> (x1, y1, x2, y2)
  const at::Tensor xyxy = boxes.index_select(2, at::tensor({1, 0, 3, 2}, at::kLong));
  at::Tensor out = at::zeros({batches * classes * max_per_class, 3}, at::kLong);
  auto rows = out.accessor<int64_t, 2>();
  int64_t written = 0;
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t c = 0; c < classes; ++c) {
      const at::Tensor class_scores = scores[b][c];
      const at::Tensor candidates =
          (class_scores > options.score_threshold()).nonzero().select(1, 0);
      const at::Tensor kept = candidates.index_select(
          0, nms(xyxy[b].index_select(0, candidates), class_scores.index_select(0, candidates),
                 options.iou_threshold()));
      const auto kept_indices = kept.accessor<int64_t, 1>();
      for (int64_t i = 0; i < std::min<int64_t>(kept.size(0), max_per_class); ++i) {
        rows[written][0] = b;
        rows[written][1] = c;
        rows[written][2] = kept_indices[i];
        ++written;
      }
    }
  }
  return out.to(boxes.device());
}

}  // namespace quantsim::nn::custom
