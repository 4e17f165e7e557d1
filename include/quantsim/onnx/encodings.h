#pragma once

/// Encodings keyed by an exported ONNX graph's tensor names, back into the simulation
/// (docs/onnx.md §6): the float graph written by export_onnx records, for every quantizer, the
/// tensor it quantizes (metadata kQuantizedTensorsMetadataKey); with that map a
/// `<prefix>.encodings` file keyed by the graph's names becomes the module-keyed torch layout
/// that load_encodings reads.
///
///     const auto tensors = quantsim::read_quantized_tensors("out/net.onnx");
///     quantsim::load_encodings(*model, quantsim::torch_encodings_from_graph_keyed(
///                                          nlohmann::json::parse(text_of_net_encodings), tensors));
///
/// QuantizationSimModel::load_onnx_encodings does both.

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace quantsim {

/// The quantizer path -> tensor name map recorded in the float graph at `onnx_path`. c10::Error
/// naming the path when the file cannot be read, is no ONNX model, or carries no such record (a
/// QDQ graph, or a model quantsim did not write).
std::map<std::string, std::string> read_quantized_tensors(const std::string& onnx_path);

/// The torch layout (`{"activation_encodings": {module: {"input"|"output": {"<i>": dict}}},
/// "param_encodings": {"module.param": [dicts]}}`) of a 0.6.1 `<prefix>.encodings` document keyed
/// by the graph's tensor names: every quantizer whose tensor has an entry receives it (several
/// quantizers of one tensor all receive its one entry). `version`, `excluded_layers` and
/// `quantizer_args` are carried over. c10::ValueError naming the entry for a name that no
/// quantizer of `quantized_tensors` quantizes, an activation entry naming a parameter's tensor or
/// the reverse, and for the 1.0.0 layout (its entries keep scale and offset only, not the
/// min/max from which quantsim sets a range bit-exactly: load the 0.6.1 file or the
/// `_torch.encodings` file).
nlohmann::json torch_encodings_from_graph_keyed(
    const nlohmann::json& encodings, const std::map<std::string, std::string>& quantized_tensors);

}  // namespace quantsim
