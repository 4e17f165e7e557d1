#pragma once

/// ONNX export of a (simulated) model (issue 11): the model traced with libtorch's tracer, its
/// aten ops translated to ONNX opset 17, its quantizers (the `quantsim` operator library's
/// nodes, include/quantsim/ops.h) as QuantizeLinear/DequantizeLinear — or, in the float graph,
/// left out and reported as the tensor each one quantizes.
///
/// The exported graphs take the inputs' dtypes, keep the batch (first) dim dynamic, name their
/// initializers after the model's parameters (`conv1.weight`) and their inputs and outputs
/// "input"/"output" (or "input_0", ... when there are several). The model should be in eval
/// mode; every quantizer must be initialized and not calibrating.
///
///     auto model = std::make_shared<Net>();
///     model->eval();
///     const auto quantized = quantsim::export_onnx(
///         *model, [&](const std::vector<at::Tensor>& x) { return std::vector<at::Tensor>{model->forward(x[0])}; },
///         {torch::randn({1, 1, 28, 28})},
///         quantsim::OnnxExportOptions().qdq_path("net_qdq.onnx").float_path("net.onnx"));
///     // quantized["conv1.output_quantizers.0"] == "conv1_out" (a tensor name of net.onnx)
///
/// Errors (c10::Error, nothing written, earlier files intact): an aten op without an ONNX
/// translation (the message names the op and the module it comes from), a trace that depends on
/// the input data (a second trace at another batch size differs), a quantizer ONNX cannot
/// express, a file that cannot be written (the message names the path).

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace quantsim {

struct OnnxExportOptions {
  /// Where to write the self-contained QDQ graph (empty: not written).
  TORCH_ARG(std::string, qdq_path) = "";
  /// Where to write the float graph whose tensors the quantizers' encodings annotate (empty:
  /// not written).
  TORCH_ARG(std::string, float_path) = "";
  /// The graphs' name. Default: "quantsim".
  TORCH_ARG(std::string, graph_name) = "quantsim";
};

/// The model's forward on a list of inputs.
using OnnxForward = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

/// Traces `forward(inputs)` of `module` and writes the graphs `options` asks for. Returns, for
/// each quantizer met (keyed by its module path, e.g. "conv1.output_quantizers.0" or
/// "conv1.param_quantizers.weight"), the name of the tensor it quantizes in the float graph.
std::map<std::string, std::string> export_onnx(torch::nn::Module& module,
                                               const OnnxForward& forward,
                                               const std::vector<at::Tensor>& inputs,
                                               const OnnxExportOptions& options);

/// The metadata key under which the float graph records the quantized tensors (a JSON object
/// `{quantizer path: tensor name}`, what export_onnx returns), so that an encodings file keyed by
/// the graph's names loads back into the simulation (quantsim/onnx/encodings.h).
inline constexpr const char* kQuantizedTensorsMetadataKey = "quantsim.quantized_tensors";

/// Both graphs, checked and serialized (ONNX ModelProto bytes), not written: for callers that
/// write them with other files all-or-nothing (QuantizationSimModel::export_onnx).
struct OnnxGraphs {
  std::string qdq_model;
  std::string float_model;
  /// Quantizer path -> tensor of the float graph, as export_onnx returns.
  std::map<std::string, std::string> quantized_tensors;
};

/// Traces and translates as export_onnx does (same errors), returning the serialized graphs.
OnnxGraphs export_onnx_graphs(torch::nn::Module& module, const OnnxForward& forward,
                              const std::vector<at::Tensor>& inputs,
                              const std::string& graph_name = "quantsim");

/// The same for a module holder (`torch::nn::Conv2d`, a quantized module, a TORCH_MODULE of the
/// user's) whose forward takes one tensor.
template <typename Holder>
std::map<std::string, std::string> export_onnx(Holder& module, const at::Tensor& input,
                                               const OnnxExportOptions& options) {
  return export_onnx(
      *module.ptr(),
      [&](const std::vector<at::Tensor>& x) {
        return std::vector<at::Tensor>{module->forward(x[0])};
      },
      {input}, options);
}

}  // namespace quantsim
