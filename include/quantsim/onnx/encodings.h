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

#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace quantsim {

/// The quantizer path -> tensor name map recorded in the float graph at `onnx_path`. c10::Error
/// naming the path when the file cannot be read, is no ONNX model, or carries no such record (a
/// QDQ graph, or a model quantsim did not write).
std::map<std::string, std::string> read_quantized_tensors(const std::string& onnx_path);

/// The torch layout (`{"activation_encodings": {module: {"input"|"output": {"<i>": dict}}},
/// "param_encodings": {"module.param": [dicts]}}`) of a `<prefix>.encodings` document keyed by
/// the graph's tensor names, in either layout export_onnx writes (docs/onnx.md §6):
/// - 0.6.1 (`{tensor: [legacy dicts]}`): the dicts as written;
/// - 1.0.0 (lists of `{name, dtype, enc_type, bw, is_sym, scale, offset, ...}`): each entry
///   becomes the legacy dicts the 0.6.1 file of the same quantizer holds, bit for bit — scales as
///   written, min/max = scale * offset and scale * (offset + 2^bw - 1) in float32 as the writer
///   computes them, PER_BLOCK one dict per block, LPBQ one per block with the final scale
///   `per_block_int_scale * scale[group]` (eq. (7)) on the `compressed_bw` grid, FLOAT
///   `{bitwidth, dtype: "float"}`.
/// Every quantizer whose tensor has an entry receives it (several quantizers of one tensor all
/// receive its one entry). `version`, `excluded_layers` and `quantizer_args` are carried over.
///
/// c10::ValueError naming the entry (`param_encodings[2] ("conv1.weight")["scale"][0]`) and the
/// bad value: a `version` other than 0.6.1/1.0.0 or sections of the other layout; a name that no
/// quantizer of `quantized_tensors` quantizes, twice in a 1.0.0 list, an activation entry naming
/// a parameter's tensor or the reverse; a missing or mistyped field, a scale not positive and
/// finite in float32, a bitwidth outside [1, 54], a symmetric entry whose offset is not -2^(bw-1),
/// an unknown `enc_type` (VECTOR), a per-channel activation, scale and offset lists of different
/// lengths, LPBQ integers outside [1, 2^(bw - compressed_bw)]. With `model` (the simulated model
/// the map was recorded from), 1.0.0 entries are also checked against their quantizers: the
/// `enc_type` (PER_BLOCK for a blockwise quantizer, LPBQ for a GroupedBlockQuantizeDequantize,
/// FLOAT for a float quantizer and for no other), the number of scales, `block_size` (as the writer
/// derives it), LPBQ's decompressed bitwidth and number of groups; and LPBQ blocks find their group
/// by the quantizer's shape and grouping (without it, a group is one output channel's consecutive
/// blocks, the reference's layout).
nlohmann::json torch_encodings_from_graph_keyed(
    const nlohmann::json& encodings, const std::map<std::string, std::string>& quantized_tensors,
    const torch::nn::Module* model = nullptr);

}  // namespace quantsim
