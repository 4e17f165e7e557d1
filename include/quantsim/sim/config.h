#pragma once

/// The quantsim configuration: which tensors of which ops are quantized and how, in the
/// reference's JSON layout (defaults / params / op_type / supergroups / model_input /
/// model_output).

#include <quantsim/sim/module_facts.h>  // onnx_op_type: configs name op types the ONNX way

#include <c10/util/Optional.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace quantsim {

/// Settings of one parameter (or of every parameter, under `defaults.params`).
struct ParamConfig {
  c10::optional<bool> is_quantized;
  c10::optional<bool> is_symmetric;
  /// A fixed range `{min, max}`: set once, frozen (docs/simulation.md §3). Both finite float32
  /// values with min <= 0 <= max and min < max in float32.
  c10::optional<std::pair<double, double>> encoding_constraints;
};

/// Settings of one op type (or of every op, under `defaults.ops`).
struct OpConfig {
  c10::optional<bool> is_input_quantized;
  c10::optional<bool> is_output_quantized;
  /// Symmetric activation quantizers (default: asymmetric).
  c10::optional<bool> is_symmetric;
  c10::optional<bool> per_channel_quantization;
  c10::optional<std::pair<double, double>> encoding_constraints;
  /// Per-parameter settings of this op type, by parameter name.
  std::map<std::string, ParamConfig> params;
};

/// A parsed quantsim configuration file.
///
/// Booleans may be written as JSON booleans or as the reference's strings "True"/"False". Op types
/// are matched against a module's ONNX op type ("Conv", "Gemm", "Relu", "BatchNormalization", as
/// the reference's files name them) or its class name ("Conv2d", "Linear"). Keys the reference
/// defines but a simulation cannot use (`supported_kernels`, `hw_version`) are accepted and
/// ignored; any other key, and any value of the wrong type, is a c10::ValueError naming the file
/// and the key's path (e.g. `op_type.Conv.is_output_quantized`); a file that cannot be read is a
/// c10::Error, one that is not JSON a c10::ValueError.
///
///     auto config = qs::QuantsimConfig::from_file("htp_config.json");
///     qs::QuantizationSimModel sim(model, sample, qs::SimOptions().config(config));
struct QuantsimConfig {
  /// `defaults.ops`.
  OpConfig default_ops;
  /// `defaults.params`.
  ParamConfig default_params;
  /// `defaults.per_channel_quantization`: weights get one encoding per output channel.
  bool per_channel_quantization = false;
  /// `params`: settings of parameters by name in every op ("bias").
  std::map<std::string, ParamConfig> params;
  /// `op_type`: settings by op type.
  std::map<std::string, OpConfig> op_types;
  /// `supergroups[].op_list`: op sequences a runtime fuses; only the last op's output is quantized.
  std::vector<std::vector<std::string>> supergroups;
  /// `model_input.is_input_quantized`: model inputs (and inputs no quantized module produces).
  bool model_input_quantized = false;
  /// `model_output.is_output_quantized`: outputs no other module consumes are quantized even
  /// when their op type says otherwise.
  bool model_output_quantized = false;

  /// Parses a configuration; `source` names it in error messages.
  static QuantsimConfig parse(const nlohmann::json& config, const std::string& source = "config");
  /// Reads and parses a file. c10::Error naming the file when it cannot be read (missing, a
  /// directory); c10::ValueError naming the file, the position and the key path for malformed
  /// JSON, a number beyond double (`1e999`) or nesting deeper than 100 levels.
  static QuantsimConfig from_file(const std::string& path);
  /// quantsim's default: weights symmetric per-channel, activations asymmetric per-tensor, biases
  /// and batch-norm parameters unquantized (runtimes fold batch norm into the preceding conv),
  /// model inputs quantized, supergroups Conv+Relu, Conv+Clip, Conv+BatchNormalization(+Relu),
  /// ConvTranspose+Relu, Gemm+Relu, Add+Relu.
  static const nlohmann::json& default_json();
  static QuantsimConfig default_config();

  /// Effective settings of an op of class `type` (defaults, then the op_type entry of its ONNX
  /// type, then the entry of its class name).
  OpConfig op(const std::string& type) const;
  /// Effective settings of parameter `name` of an op of class `type` (defaults.params, then
  /// params.<name>, then the op type's params.<name>).
  ParamConfig param(const std::string& type, const std::string& name) const;
  /// True when an op of class `type` matches config op name `op_name`.
  static bool matches(const std::string& type, const std::string& op_name);
};

}  // namespace quantsim
