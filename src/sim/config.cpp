#include <quantsim/errors.h>
#include <quantsim/sim/config.h>
#include <quantsim/sim/module_facts.h>

#include "sim/json_reading.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <sstream>

namespace quantsim {
namespace {

using Json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& path,
                       const std::string& message) {
  if (path.empty()) QS_THROW(c10::ValueError, source, ": the top level ", message);
  QS_THROW(c10::ValueError, source, ": `", path, "` ", message);
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// The reference's files spell booleans as the strings "True"/"False".
bool parse_bool(const Json& value, const std::string& source, const std::string& path) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {
    const auto text = value.get<std::string>();
    if (text == "True" || text == "true") return true;
    if (text == "False" || text == "false") return false;
  }
  fail(source, path,
       "must be true/false or \"True\"/\"False\", got " + detail::json_excerpt(value));
}

const Json& object(const Json& value, const std::string& source, const std::string& path) {
  if (!value.is_object()) {
    fail(source, path, "must be an object, got " + detail::json_excerpt(value));
  }
  return value;
}

void check_keys(const Json& value, std::initializer_list<const char*> known,
                const std::string& source, const std::string& path) {
  for (const auto& item : value.items()) {
    bool found = false;
    for (const char* key : known) found = found || item.key() == key;
    if (found) continue;
    std::string expected;
    for (const char* key : known) expected += std::string(expected.empty() ? "" : ", ") + key;
    fail(source, join(path, item.key()), "is not a known key (expected one of: " + expected + ")");
  }
}

std::pair<double, double> parse_constraints(const Json& value, const std::string& source,
                                            const std::string& path) {
  object(value, source, path);
  check_keys(value, {"min", "max"}, source, path);
  for (const char* key : {"min", "max"}) {
    if (!value.contains(key) || !value[key].is_number()) {
      fail(source, join(path, key), "must be a number");
    }
    // The range is set on float32 quantizers: a bound float32 cannot hold would become an
    // infinity there, far from the file.
    const double bound = value[key].get<double>();
    if (!(std::abs(bound) <= std::numeric_limits<float>::max())) {
      fail(source, join(path, key),
           "must be a finite float32 (magnitude at most 3.4028235e+38), got " +
               detail::json_excerpt(value[key]));
    }
  }
  const double min = value["min"].get<double>();
  const double max = value["max"].get<double>();
  // min < max in float32 too: 1e-46 and 2e-46 are both 0 there.
  if (!(min <= 0.0 && 0.0 <= max && static_cast<float>(min) < static_cast<float>(max))) {
    fail(source, path,
         c10::str("must satisfy min <= 0 <= max and min < max (in float32), got min ", min,
                  ", max ", max));
  }
  return {min, max};
}

ParamConfig parse_param(const Json& value, const std::string& source, const std::string& path) {
  object(value, source, path);
  check_keys(value, {"is_quantized", "is_symmetric", "encoding_constraints"}, source, path);
  ParamConfig config;
  if (value.contains("is_quantized")) {
    config.is_quantized = parse_bool(value["is_quantized"], source, join(path, "is_quantized"));
  }
  if (value.contains("is_symmetric")) {
    config.is_symmetric = parse_bool(value["is_symmetric"], source, join(path, "is_symmetric"));
  }
  if (value.contains("encoding_constraints")) {
    config.encoding_constraints = parse_constraints(value["encoding_constraints"], source,
                                                    join(path, "encoding_constraints"));
  }
  return config;
}

std::map<std::string, ParamConfig> parse_params(const Json& value, const std::string& source,
                                                const std::string& path) {
  object(value, source, path);
  std::map<std::string, ParamConfig> params;
  for (const auto& item : value.items()) {
    params[item.key()] = parse_param(item.value(), source, join(path, item.key()));
  }
  return params;
}

void check_supported_kernels(const Json& value, const std::string& source,
                             const std::string& path) {
  if (!value.is_array()) fail(source, path, "must be a list, got " + detail::json_excerpt(value));
}

OpConfig parse_op(const Json& value, const std::string& source, const std::string& path) {
  object(value, source, path);
  check_keys(value,
             {"is_input_quantized", "is_output_quantized", "is_symmetric",
              "per_channel_quantization", "encoding_constraints", "params", "supported_kernels"},
             source, path);
  OpConfig config;
  auto flag = [&](const char* key, c10::optional<bool>& field) {
    if (value.contains(key)) field = parse_bool(value[key], source, join(path, key));
  };
  flag("is_input_quantized", config.is_input_quantized);
  flag("is_output_quantized", config.is_output_quantized);
  flag("is_symmetric", config.is_symmetric);
  flag("per_channel_quantization", config.per_channel_quantization);
  if (value.contains("encoding_constraints")) {
    config.encoding_constraints = parse_constraints(value["encoding_constraints"], source,
                                                    join(path, "encoding_constraints"));
  }
  if (value.contains("params")) {
    config.params = parse_params(value["params"], source, join(path, "params"));
  }
  if (value.contains("supported_kernels")) {
    check_supported_kernels(value["supported_kernels"], source, join(path, "supported_kernels"));
  }
  return config;
}

template <typename T>
void override_with(c10::optional<T>& field, const c10::optional<T>& value) {
  if (value) field = value;
}

void override_with(ParamConfig& config, const ParamConfig& with) {
  override_with(config.is_quantized, with.is_quantized);
  override_with(config.is_symmetric, with.is_symmetric);
  override_with(config.encoding_constraints, with.encoding_constraints);
}

void override_with(OpConfig& config, const OpConfig& with) {
  override_with(config.is_input_quantized, with.is_input_quantized);
  override_with(config.is_output_quantized, with.is_output_quantized);
  override_with(config.is_symmetric, with.is_symmetric);
  override_with(config.per_channel_quantization, with.per_channel_quantization);
  override_with(config.encoding_constraints, with.encoding_constraints);
  for (const auto& [name, param] : with.params) override_with(config.params[name], param);
}

}  // namespace

QuantsimConfig QuantsimConfig::parse(const Json& config, const std::string& source) {
  detail::check_json_depth(config, source + ": ");
  object(config, source, "");
  check_keys(
      config,
      {"defaults", "params", "op_type", "supergroups", "model_input", "model_output", "hw_version"},
      source, "");
  QuantsimConfig result;
  if (config.contains("defaults")) {
    const auto& defaults = object(config["defaults"], source, "defaults");
    check_keys(defaults,
               {"ops", "params", "strict_symmetric", "unsigned_symmetric",
                "per_channel_quantization", "hw_version", "supported_kernels"},
               source, "defaults");
    if (defaults.contains("ops")) {
      result.default_ops = parse_op(defaults["ops"], source, "defaults.ops");
      if (defaults["ops"].contains("params")) {
        fail(source, "defaults.ops.params", "belongs in defaults.params");
      }
    }
    if (defaults.contains("params")) {
      result.default_params = parse_param(defaults["params"], source, "defaults.params");
    }
    if (defaults.contains("strict_symmetric") &&
        parse_bool(defaults["strict_symmetric"], source, "defaults.strict_symmetric")) {
      // Strict-symmetric grids have no bitwidth and cannot be exported (docs/quantization.md §1).
      fail(source, "defaults.strict_symmetric", "\"True\" is not supported");
    }
    if (defaults.contains("unsigned_symmetric")) {
      parse_bool(defaults["unsigned_symmetric"], source, "defaults.unsigned_symmetric");
    }
    if (defaults.contains("per_channel_quantization")) {
      result.per_channel_quantization = parse_bool(defaults["per_channel_quantization"], source,
                                                   "defaults.per_channel_quantization");
    }
    if (defaults.contains("supported_kernels")) {
      check_supported_kernels(defaults["supported_kernels"], source, "defaults.supported_kernels");
    }
  }
  if (config.contains("params")) result.params = parse_params(config["params"], source, "params");
  if (config.contains("op_type")) {
    for (const auto& item : object(config["op_type"], source, "op_type").items()) {
      result.op_types[item.key()] = parse_op(item.value(), source, join("op_type", item.key()));
    }
  }
  if (config.contains("supergroups")) {
    const auto& groups = config["supergroups"];
    if (!groups.is_array()) {
      fail(source, "supergroups", "must be a list, got " + detail::json_excerpt(groups));
    }
    for (size_t i = 0; i < groups.size(); ++i) {
      const std::string path = "supergroups." + std::to_string(i);
      object(groups[i], source, path);
      check_keys(groups[i], {"op_list"}, source, path);
      const auto& ops = groups[i].value("op_list", Json());
      if (!ops.is_array() || ops.size() < 2) {
        fail(source, path + ".op_list", "must be a list of at least two op types");
      }
      std::vector<std::string> list;
      for (const auto& op : ops) {
        if (!op.is_string()) {
          fail(source, path + ".op_list", "must hold strings, got " + detail::json_excerpt(op));
        }
        list.push_back(op.get<std::string>());
      }
      result.supergroups.push_back(std::move(list));
    }
  }
  if (config.contains("model_input")) {
    const auto& input = object(config["model_input"], source, "model_input");
    check_keys(input, {"is_input_quantized"}, source, "model_input");
    if (input.contains("is_input_quantized")) {
      result.model_input_quantized =
          parse_bool(input["is_input_quantized"], source, "model_input.is_input_quantized");
    }
  }
  if (config.contains("model_output")) {
    const auto& output = object(config["model_output"], source, "model_output");
    check_keys(output, {"is_output_quantized"}, source, "model_output");
    if (output.contains("is_output_quantized")) {
      result.model_output_quantized =
          parse_bool(output["is_output_quantized"], source, "model_output.is_output_quantized");
    }
  }
  return result;
}

QuantsimConfig QuantsimConfig::from_file(const std::string& path) {
  return parse(detail::read_json_file(path, "quantsim config file " + path + ": "), path);
}

const Json& QuantsimConfig::default_json() {
  static const Json config = Json::parse(R"({
    "defaults": {
      "ops": {"is_output_quantized": "True", "is_symmetric": "False"},
      "params": {"is_quantized": "True", "is_symmetric": "True"},
      "strict_symmetric": "False",
      "unsigned_symmetric": "False",
      "per_channel_quantization": "True"
    },
    "params": {"bias": {"is_quantized": "False"}},
    "op_type": {
      "BatchNormalization": {"params": {"weight": {"is_quantized": "False"}}}
    },
    "supergroups": [
      {"op_list": ["Conv", "Relu"]},
      {"op_list": ["Conv", "Clip"]},
      {"op_list": ["Conv", "BatchNormalization", "Relu"]},
      {"op_list": ["Conv", "BatchNormalization"]},
      {"op_list": ["ConvTranspose", "Relu"]},
      {"op_list": ["Gemm", "Relu"]},
      {"op_list": ["Add", "Relu"]}
    ],
    "model_input": {"is_input_quantized": "True"},
    "model_output": {}
  })");
  return config;
}

QuantsimConfig QuantsimConfig::default_config() {
  static const QuantsimConfig config = parse(default_json(), "quantsim default config");
  return config;
}

bool QuantsimConfig::matches(const std::string& type, const std::string& op_name) {
  if (type == op_name) return true;
  const auto onnx = onnx_op_type(type);
  return !onnx.empty() && onnx == op_name;
}

OpConfig QuantsimConfig::op(const std::string& type) const {
  OpConfig result = default_ops;
  if (!result.per_channel_quantization) result.per_channel_quantization = per_channel_quantization;
  const auto onnx = onnx_op_type(type);
  if (!onnx.empty() && onnx != type) {
    if (auto it = op_types.find(onnx); it != op_types.end()) override_with(result, it->second);
  }
  if (auto it = op_types.find(type); it != op_types.end()) override_with(result, it->second);
  return result;
}

ParamConfig QuantsimConfig::param(const std::string& type, const std::string& name) const {
  ParamConfig result = default_params;
  if (auto it = params.find(name); it != params.end()) override_with(result, it->second);
  const auto op_config = op(type);
  if (auto it = op_config.params.find(name); it != op_config.params.end()) {
    override_with(result, it->second);
  }
  return result;
}

}  // namespace quantsim
