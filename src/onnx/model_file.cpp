#include "onnx/model_file.h"

#include <quantsim/errors.h>
#include <quantsim/sim/atomic_file.h>
#include <quantsim/version.h>

#include <onnx/checker.h>

#include <utility>

namespace quantsim::onnx_export {

::onnx::ModelProto make_model(::onnx::GraphProto graph, int64_t opset) {
  TORCH_CHECK_VALUE(opset == kCheckedOpset, "ONNX `opset` must be ", kCheckedOpset,
                    " (docs/onnx.md §2), got ", opset);
  ::onnx::ModelProto model;
  model.set_ir_version(8);  // opset 17's (onnx/helper.py's VERSION_TABLE)
  model.set_producer_name("quantsim");
  model.set_producer_version(kVersion);
  auto* import = model.add_opset_import();
  import->set_domain("");
  import->set_version(opset);
  *model.mutable_graph() = std::move(graph);
  return model;
}

void check_model(const ::onnx::ModelProto& model, const std::string& what) {
  try {
    ::onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    QS_THROW(c10::ValueError, what, ": the ONNX checker rejects the model: ", e.what());
  }
}

void write_model(const ::onnx::ModelProto& model, const std::string& path) {
  check_model(model, "writing '" + path + "'");
  write_file_atomically(path, [&](std::ostream& os) {
    TORCH_CHECK(model.SerializeToOstream(&os), "writing '", path,
                "': the ONNX model could not be serialized");
  });
}

}  // namespace quantsim::onnx_export
