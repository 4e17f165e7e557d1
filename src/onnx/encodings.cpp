#include <quantsim/onnx/encodings.h>
#include <quantsim/onnx/export.h>

#include <quantsim/errors.h>

#include <onnx/onnx_pb.h>

#include <fstream>
#include <set>
#include <vector>

namespace quantsim {
namespace {

using nlohmann::json;

std::string quoted(const std::string& s) { return json(s).dump(); }

/// A quantizer path split into its module, its slot kind ("input", "output", "param") and the
/// slot's key: "conv1.output_quantizers.0" -> {"conv1", "output", "0"}, "param_quantizers.weight"
/// (the root's) -> {"", "param", "weight"}.
struct QuantizerSlot {
  std::string module, kind, key;
};

c10::optional<QuantizerSlot> parse_quantizer_path(const std::string& path) {
  for (const char* kind : {"input", "output", "param"}) {
    const std::string infix = std::string(kind) + "_quantizers.";
    size_t at = path.rfind(infix);
    if (at == std::string::npos || (at != 0 && path[at - 1] != '.')) continue;
    const auto key = path.substr(at + infix.size());
    if (key.empty() || key.find('.') != std::string::npos) continue;
    return QuantizerSlot{at == 0 ? "" : path.substr(0, at - 1), kind, key};
  }
  return c10::nullopt;
}

std::string join(const std::string& module, const std::string& suffix) {
  return module.empty() ? suffix : module + "." + suffix;
}

}  // namespace

std::map<std::string, std::string> read_quantized_tensors(const std::string& onnx_path) {
  const std::string where = "reading the quantized tensors of " + quoted(onnx_path) + ": ";
  std::ifstream in(onnx_path, std::ios::binary);
  TORCH_CHECK(in, where, "cannot open the file");
  ::onnx::ModelProto model;
  TORCH_CHECK(model.ParseFromIstream(&in), where, "not an ONNX model");
  for (const auto& entry : model.metadata_props()) {
    if (entry.key() != kQuantizedTensorsMetadataKey) continue;
    json parsed;
    try {
      parsed = json::parse(entry.value());
      return parsed.get<std::map<std::string, std::string>>();
    } catch (const std::exception& e) {
      QS_THROW(c10::Error, where, "the metadata ", quoted(kQuantizedTensorsMetadataKey),
               " is no {quantizer: tensor} object: ", e.what());
    }
  }
  QS_THROW(c10::Error, where, "the model has no metadata ", quoted(kQuantizedTensorsMetadataKey),
           " (the float graph quantsim::export_onnx writes as <prefix>.onnx has it; a QDQ graph "
           "does not)");
}

json torch_encodings_from_graph_keyed(const json& encodings,
                                      const std::map<std::string, std::string>& quantized_tensors) {
  TORCH_CHECK_VALUE(encodings.is_object(), "expected a <prefix>.encodings JSON object, got ",
                    encodings.type_name());
  for (const char* section : {"activation_encodings", "param_encodings"}) {
    if (!encodings.contains(section)) continue;
    TORCH_CHECK_VALUE(!encodings.at(section).is_array(), section,
                      " is a list: the 1.0.0 layout keeps scale and offset but not the min/max "
                      "quantsim sets ranges from bit-exactly; load the 0.6.1 <prefix>.encodings or "
                      "the <prefix>_torch.encodings file");
    TORCH_CHECK_VALUE(encodings.at(section).is_object(), section, " must be an object, got ",
                      encodings.at(section).type_name());
  }
  // tensor -> the quantizer slots that quantize it
  std::map<std::string, std::vector<QuantizerSlot>> slots_of;
  for (const auto& [path, tensor] : quantized_tensors) {
    const auto slot = parse_quantizer_path(path);
    if (slot) slots_of[tensor].push_back(*slot);
  }
  json activations = json::object(), params = json::object();
  for (const char* section : {"activation_encodings", "param_encodings"}) {
    if (!encodings.contains(section)) continue;
    const bool is_param_section = std::string(section) == "param_encodings";
    for (const auto& [tensor, entry] : encodings.at(section).items()) {
      const auto label = std::string(section) + "[" + quoted(tensor) + "]";
      const auto found = slots_of.find(tensor);
      TORCH_CHECK_VALUE(found != slots_of.end(), label,
                        ": no quantizer of the model quantizes a tensor of that name");
      TORCH_CHECK_VALUE(entry.is_array() && !entry.empty(), label,
                        ": expected a list of legacy encoding dicts, got ", entry.type_name());
      for (const auto& slot : found->second) {
        TORCH_CHECK_VALUE((slot.kind == "param") == is_param_section, label, ": the tensor is ",
                          slot.kind == "param" ? "a parameter" : "an activation",
                          " (its quantizer is `",
                          join(slot.module, slot.kind + "_quantizers." + slot.key), "`)");
        if (is_param_section) {
          params[join(slot.module, slot.key)] = entry;
        } else {
          activations[slot.module][slot.kind][slot.key] = entry.size() == 1 ? entry.at(0) : entry;
        }
      }
    }
  }
  json out = {{"activation_encodings", std::move(activations)},
              {"param_encodings", std::move(params)}};
  for (const char* key : {"version", "excluded_layers", "quantizer_args"}) {
    if (encodings.contains(key)) out[key] = encodings.at(key);
  }
  return out;
}

}  // namespace quantsim
