#pragma once

/// Encodings export and import of whole models (docs/simulation.md §7-§9), and saving/loading the
/// whole simulation state.
///
/// Three layouts, all built from the quantizers' legacy encodings (one dict per channel:
/// `{min, max, scale, offset, bitwidth, dtype, is_symmetric}`, docs/quantization.md §10.1):
/// - the torch layout (`<prefix>_torch.encodings`, what load_encodings reads back), keyed by
///   module name: `activation_encodings: {module: {"input": {"0": dict}, "output": {"0": dict}}}`,
///   `param_encodings: {"module.param": [dict per channel]}`;
/// - the 0.6.1 layout (`<prefix>.encodings`), keyed by tensor name:
///   `activation_encodings: {tensor: [dict]}`, `param_encodings: {"module.param": [dicts]}`;
/// - the 1.0.0 layout (`<prefix>.encodings`): lists of `{name, dtype, enc_type, bw, is_sym,
///   scale: [...], offset: [...]}` (plus block fields for blockwise and LPBQ parameters).
///
/// Without an exported graph (QuantizationSimModel::export_onnx keys them by its tensors through
/// ExportOptions::tensor_names, docs/onnx.md §6) the tensor names of the `<prefix>.encodings` files
/// name an activation by its module and slot: `<module>.input_<i>` and `<module>.output_<i>` (the
/// root module, named "", gives `input_<i>`), and a parameter `<module>.<param>` (`conv1.weight`,
/// the name torch.onnx gives the initializer). Empty and uninitialized slots are not exported.

#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace quantsim {

class QuantizerBase;

/// Version of the `<prefix>.encodings` layout (docs/simulation.md §7); the reference's default is
/// 0.6.1.
enum class EncodingVersion { k0_6_1, k1_0_0 };

/// "0.6.1" or "1.0.0"; c10::NotImplementedError naming `version` otherwise (as the reference
/// raises).
///     auto v = quantsim::encoding_version_from_string("1.0.0");  // EncodingVersion::k1_0_0
EncodingVersion encoding_version_from_string(const std::string& version);
/// "0.6.1" or "1.0.0".
std::string to_string(EncodingVersion version);

/// What the exported files carry besides the encodings.
///
///     quantsim::export_encodings(
///         *model, "out", "model",
///         quantsim::ExportOptions().version(quantsim::EncodingVersion::k1_0_0));
struct ExportOptions {
  using TensorNames = std::map<std::string, std::string>;
  /// Layout of `<prefix>.encodings`. Default: 0.6.1.
  TORCH_ARG(EncodingVersion, version) = EncodingVersion::k0_6_1;
  /// Written as "quantizer_args" when set (the reference writes quant_scheme, param_bitwidth,
  /// activation_bitwidth, dtype, is_symmetric, per_channel_quantization). Default: not written.
  TORCH_ARG(c10::optional<nlohmann::json>, quantizer_args) = c10::nullopt;
  /// Written as "excluded_layers". Default: empty.
  TORCH_ARG(std::vector<std::string>, excluded_layers) = {};
  /// Groups of activation entry names (`conv.output_0`, `pool.input_0`) that quantize one tensor:
  /// `<prefix>.encodings` keeps one entry per group, the one written last in the reference's
  /// order (modules in named_modules() order, each module's inputs before its outputs), under
  /// its own name; the torch layout keeps every slot. QuantizationSimModel fills it from the
  /// recorded dataflow. Default: none (every slot is its own tensor).
  TORCH_ARG(std::vector<std::vector<std::string>>, shared_tensors) = {};
  /// The names of an exported graph's tensors (docs/onnx.md §6), keyed by quantizer path
  /// (`conv1.output_quantizers.0`, `conv1.param_quantizers.weight`; quantsim::export_onnx returns
  /// this map). When set, `<prefix>.encodings` keys every entry by its quantizer's tensor name
  /// instead of `<module>.input_<i>` / `<module>.param`: one entry per distinct name (of several
  /// quantizers of one tensor, the last in the reference's order, as `shared_tensors`), and
  /// quantizers the graph does not hold (modules the traced forward never called) are left out.
  /// The torch layout is unchanged. Default: empty (module-keyed names).
  TORCH_ARG(TensorNames, tensor_names) = {};
};

/// The torch layout (the content of `<prefix>_torch.encodings`) of every quantized module of
/// `model`, the model itself included under the name "" (docs/simulation.md §7.3):
///
///     {"version": "0.6.1", "excluded_layers": [], "quantizer_args"?: {...},
///      "activation_encodings": {"conv1": {"input": {"0": dict}, "output": {"0": dict}}},
///      "param_encodings": {"conv1.weight": [dict, ...]}}
///
/// An activation slot holds its single dict (a list when its quantizer has several channels);
/// only present directions are written, and only modules with at least one exported activation.
/// The root's parameters are named without a leading dot ("weight").
nlohmann::json torch_encodings(const torch::nn::Module& model, const ExportOptions& options = {});

/// The `<prefix>.encodings` content in `options.version` (docs/simulation.md §7.4, §7.5):
/// - 0.6.1: `{"version", "activation_encodings": {"conv1.input_0": [dict]},
///   "param_encodings": {"conv1.weight": [dicts]}, "excluded_layers", "quantizer_args"?}`;
/// - 1.0.0: `{"version", "activation_encodings": [entry], "param_encodings": [entry],
///   "excluded_layers", "quantizer_args"?}` where an integer entry is
///   `{name, dtype: "INT", enc_type, bw, is_sym, scale: [...], offset: [...]}` with enc_type
///   PER_TENSOR, or PER_CHANNEL when the quantizer has several channels; a blockwise parameter
///   quantizer gives PER_BLOCK plus `block_size`, a GroupedBlockQuantizeDequantize gives LPBQ
///   (`bw` the decompressed bitwidth, `compressed_bw`, per-channel `scale`, `offset`
///   -2^(bw-1) per channel, `per_block_int_scale`, `block_size`); a float quantizer gives
///   `{name, dtype: "FLOAT", enc_type: "PER_TENSOR", bw}`. Offsets are the legacy offsets.
/// c10::ValueError naming the tensor for an activation quantizer with several channels in 1.0.0
/// (the reference asserts).
nlohmann::json encodings(const torch::nn::Module& model, const ExportOptions& options = {});

/// One filled quantizer slot of a model that is not a C++ module tree (the Python package's):
/// module `module` ("" for the root), `kind` "input", "output" or "param", `key` the slot index
/// ("0") or the parameter name ("weight"). Uninitialized quantizers are not exported.
struct QuantizedSlot {
  std::string module;
  std::string kind;
  std::string key;
  std::shared_ptr<QuantizerBase> quantizer;
  /// The parameter of a "param" slot (the 1.0.0 layout reads blockwise shapes from it).
  at::Tensor parameter;
};

/// torch_encodings() and encodings() of the quantized modules `slots` describe, given in the
/// reference's order (modules in named_modules() order, each module's inputs, outputs, then
/// parameters), with the same layouts and errors. c10::ValueError for a slot without quantizer
/// or of another kind.
nlohmann::json torch_encodings(const std::vector<QuantizedSlot>& slots,
                               const ExportOptions& options = {});
nlohmann::json encodings(const std::vector<QuantizedSlot>& slots,
                         const ExportOptions& options = {});

/// Writes `<dir>/<prefix>.encodings` (encodings()) and `<dir>/<prefix>_torch.encodings`
/// (torch_encodings()) as the reference's `json.dump(sort_keys=True, indent=4)` does (ASCII,
/// sorted keys, no trailing newline), creating `dir` when missing. Both files are computed first
/// and then written with write_files_atomically: a failure changes neither previous file.
///     quantsim::export_encodings(*model, "out", "resnet");  // out/resnet.encodings, ...
void export_encodings(const torch::nn::Module& model, const std::string& dir,
                      const std::string& prefix, const ExportOptions& options = {});

/// How load_encodings treats the file (docs/simulation.md §8).
struct LoadOptions {
  /// Names that match no quantized module (or parameter quantizer slot, or activation slot),
  /// and entries for empty slots, are errors; otherwise skipped. Default: true.
  TORCH_ARG(bool, strict) = true;
  /// Slots without an entry keep their quantizers; with false they are emptied. Default: true.
  TORCH_ARG(bool, partial) = true;
  /// When set, the loaded quantizers' parameters get this requires_grad. Default: unchanged.
  TORCH_ARG(c10::optional<bool>, requires_grad) = c10::nullopt;
  /// The loaded quantizers' allow_overwrite. Default: true (later calibration may change them).
  TORCH_ARG(bool, allow_overwrite) = true;
};

/// Loads the torch layout (`param_encodings` / `activation_encodings`, either may be absent)
/// into the quantized modules of `model`.
///
/// Every entry is checked before anything changes: unknown module, slot or parameter names and
/// entries for empty slots (under `strict`), malformed dicts, and encodings that do not fit
/// their quantizer (channel count, bitwidth) are errors naming the entry
/// (`activation_encodings["conv1"]["input"]["0"]`, `param_encodings["conv1.weight"]`):
/// c10::ValueError for malformed or mismatching entries (c10::IndexError for a missing key such
/// as "min"), c10::Error for unknown names and empty slots, as the reference's RuntimeError; the
/// message starts with "load_encodings: ". Then each quantizer's range, grid and symmetry are set
/// from its entry (file scale/offset are ignored, docs/quantization.md §9.4); quantizers with
/// allow_overwrite(false) are skipped. When it fails, nothing has changed. A document nested
/// deeper than 100 levels is a c10::ValueError before anything else (copying or printing it
/// would recurse once per level).
///     quantsim::load_encodings(*model, nlohmann::json::parse(text),
///                              quantsim::LoadOptions().partial(false));
void load_encodings(torch::nn::Module& model, const nlohmann::json& torch_encodings,
                    const LoadOptions& options = {});

/// The same from a file (a `_torch.encodings` file, or a `.json` with the same two entries);
/// c10::Error when it cannot be read (missing, a directory); c10::ValueError naming the file,
/// nlohmann's position and the key path (`param_encodings["fc.weight"][0]["min"]`) for malformed
/// JSON, a number beyond double (`1e999`) or nesting deeper than 100 levels; other errors keep
/// their kind, their message prefixed with the path.
void load_encodings(torch::nn::Module& model, const std::string& path,
                    const LoadOptions& options = {});
/// `load_encodings(*model, "net_torch.encodings")`: a string literal is a path (it converts to
/// both std::string and nlohmann::json; this overload decides).
inline void load_encodings(torch::nn::Module& model, const char* path,
                           const LoadOptions& options = {}) {
  load_encodings(model, std::string(path), options);
}

/// Saves the whole simulation state, atomically: torch::save of `model` (parameters, buffers,
/// quantizer ranges and initialization flags, see QuantizerBase::save).
///
/// Written with write_file_atomically: on a full disk or a failing write, c10::Error naming
/// `path` and the system's reason, the previous file unchanged and no temporary left.
///
/// The quantizers' configuration (grid, symmetry, slots) is not part of the state: load_state
/// expects a model built the same way.
///     quantsim::save_state(*model, "sim.pt");
void save_state(const torch::nn::Module& model, const std::string& path);

/// Restores a state saved by save_state into `model`.
///
/// The file is checked against the model first: every parameter, buffer, quantizer and
/// submodule must be present with the same shape and dtype, and the file may hold nothing else.
/// c10::Error naming the path and the first mismatching key (`conv1.weight`), or the reason the
/// file cannot be read (a directory, not a zip archive, torch's message when its TorchScript
/// code does not compile, code nesting brackets deeper than 100 levels, which torch's recursive
/// parser would overflow the stack on); the model is then unchanged (should loading itself still
/// fail, the state taken before it is restored).
void load_state(torch::nn::Module& model, const std::string& path);

}  // namespace quantsim
