// `quantsim._C._custom`: the native ops of the custom float modules that torch lacks without
// torchvision (roi_align, nms), for quantsim.nn.custom.RoiAlign and NonMaxSuppression: the same
// functions the C++ modules call, so the Python modules compute what the C++ ones compute.

#include "bindings.h"

#include <quantsim/nn/custom/detection.h>

namespace quantsim::python {

void bind_custom_ops(py::module_& m) {
  auto custom = m.def_submodule("_custom", "native ops of quantsim.nn.custom modules");
  custom.def(
      "roi_align",
      [](const at::Tensor& input, const at::Tensor& boxes, std::vector<int64_t> output_size,
         double spatial_scale, int64_t sampling_ratio, bool aligned) {
        TORCH_CHECK_VALUE(output_size.size() == 2, "roi_align: output_size must be (h, w), got ",
                          c10::IntArrayRef(output_size));
        return nn::custom::roi_align(input, boxes,
                                     torch::ExpandingArray<2>({output_size[0], output_size[1]}),
                                     spatial_scale, sampling_ratio, aligned);
      },
      py::arg("input"), py::arg("boxes"), py::arg("output_size"), py::arg("spatial_scale"),
      py::arg("sampling_ratio"), py::arg("aligned"));
  custom.def("nms", &nn::custom::nms, py::arg("boxes"), py::arg("scores"),
             py::arg("iou_threshold"));
  custom.def(
      "non_max_suppression",
      [](const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
         double score_threshold, int64_t max_output_boxes_per_class) {
        nn::custom::NonMaxSuppression module(nn::custom::NonMaxSuppressionOptions(
            iou_threshold, score_threshold, max_output_boxes_per_class));
        return module(boxes, scores);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"), py::arg("score_threshold"),
      py::arg("max_output_boxes_per_class"));
}

}  // namespace quantsim::python
