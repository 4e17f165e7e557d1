#include <quantsim/onnx/export.h>

#include "onnx/aten_to_onnx.h"
#include "onnx/capture.h"
#include "onnx/model_file.h"

#include <quantsim/errors.h>
#include <quantsim/quantizer_base.h>

#include <nlohmann/json.hpp>

namespace quantsim {
namespace {

/// A quantizer that is calibrating records this batch's statistics (its trace would depend on
/// the data), and one without an encoding has nothing to export: both are errors naming it.
void check_quantizer(const torch::nn::Module& module, const std::string& path) {
  const auto* quantizer = dynamic_cast<const QuantizerBase*>(&module);
  if (quantizer == nullptr) return;
  TORCH_CHECK(!quantizer->is_calibrating(), "cannot export to ONNX: the quantizer `", path,
              "` is calibrating (export after compute_encodings() has finished)");
  TORCH_CHECK(quantizer->is_initialized(), "cannot export to ONNX: the quantizer `", path,
              "` has no encoding (calibrate it with compute_encodings() or set its range)");
}

void check_quantizers(torch::nn::Module& module) {
  // include_self would need the module in a shared_ptr; a module on the stack is fine here.
  check_quantizer(module, module.name());
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    check_quantizer(*item.value(), item.key());
  }
}

}  // namespace

namespace {

/// The float graph records which tensor each quantizer quantizes (kQuantizedTensorsMetadataKey).
void add_quantized_tensors(::onnx::ModelProto& model,
                           const std::map<std::string, std::string>& quantized_tensors) {
  auto* entry = model.add_metadata_props();
  entry->set_key(kQuantizedTensorsMetadataKey);
  entry->set_value(nlohmann::json(quantized_tensors).dump());
}

/// Both graphs translated and checked; the QDQ one only when `with_qdq`.
struct Models {
  ::onnx::ModelProto qdq, float_graph;
  std::map<std::string, std::string> quantized_tensors;
};

Models translate_models(torch::nn::Module& module, const OnnxForward& forward,
                        const std::vector<at::Tensor>& inputs, const std::string& graph_name,
                        bool with_qdq) {
  using namespace onnx_export;
  check_quantizers(module);
  const auto captured = capture(module, forward, inputs);
  Models models;
  auto float_graph = translate(captured, QuantizerNodes::kFloat, graph_name);
  models.quantized_tensors = float_graph.quantized_tensors;
  models.float_graph = make_model(std::move(float_graph.graph), kCheckedOpset);
  add_quantized_tensors(models.float_graph, models.quantized_tensors);
  check_model(models.float_graph, "the float ONNX graph");
  if (with_qdq) {
    auto qdq_graph = translate(captured, QuantizerNodes::kQuantizeDequantize, graph_name);
    models.qdq = make_model(std::move(qdq_graph.graph), kCheckedOpset);
    check_model(models.qdq, "the QDQ ONNX graph");
  }
  return models;
}

std::string serialized(const ::onnx::ModelProto& model, const char* what) {
  std::string bytes;
  TORCH_CHECK(model.SerializeToString(&bytes), "the ", what, " could not be serialized");
  return bytes;
}

}  // namespace

std::map<std::string, std::string> export_onnx(torch::nn::Module& module,
                                               const OnnxForward& forward,
                                               const std::vector<at::Tensor>& inputs,
                                               const OnnxExportOptions& options) {
  using namespace onnx_export;
  // Both graphs are translated and checked before either file is written.
  const auto models =
      translate_models(module, forward, inputs, options.graph_name(), !options.qdq_path().empty());
  if (!options.qdq_path().empty()) write_model(models.qdq, options.qdq_path());
  if (!options.float_path().empty()) write_model(models.float_graph, options.float_path());
  return models.quantized_tensors;
}

OnnxGraphs export_onnx_graphs(torch::nn::Module& module, const OnnxForward& forward,
                              const std::vector<at::Tensor>& inputs,
                              const std::string& graph_name) {
  const auto models = translate_models(module, forward, inputs, graph_name, /*with_qdq=*/true);
  return {serialized(models.qdq, "QDQ ONNX model"),
          serialized(models.float_graph, "float ONNX model"), models.quantized_tensors};
}

}  // namespace quantsim
