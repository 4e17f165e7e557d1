#include <quantsim/onnx/export.h>

#include "onnx/aten_to_onnx.h"
#include "onnx/capture.h"
#include "onnx/model_file.h"

#include <quantsim/errors.h>
#include <quantsim/quantizer_base.h>

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

std::map<std::string, std::string> export_onnx(torch::nn::Module& module,
                                               const OnnxForward& forward,
                                               const std::vector<at::Tensor>& inputs,
                                               const OnnxExportOptions& options) {
  using namespace onnx_export;
  check_quantizers(module);
  const auto captured = capture(module, forward, inputs);
  // Both graphs are translated and checked before either file is written.
  auto float_graph = translate(captured, QuantizerNodes::kFloat, options.graph_name());
  const auto float_model = make_model(std::move(float_graph.graph), kCheckedOpset);
  check_model(float_model, "the float ONNX graph");
  ::onnx::ModelProto qdq_model;
  if (!options.qdq_path().empty()) {
    auto qdq_graph = translate(captured, QuantizerNodes::kQuantizeDequantize, options.graph_name());
    qdq_model = make_model(std::move(qdq_graph.graph), kCheckedOpset);
    check_model(qdq_model, "the QDQ ONNX graph");
  }
  if (!options.qdq_path().empty()) write_model(qdq_model, options.qdq_path());
  if (!options.float_path().empty()) write_model(float_model, options.float_path());
  return float_graph.quantized_tensors;
}

}  // namespace quantsim
