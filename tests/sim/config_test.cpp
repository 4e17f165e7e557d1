// The quantsim configuration file: the reference's layout, merging rules and every error case.

#include <quantsim/sim/config.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace qs = quantsim;
using Json = nlohmann::json;

namespace {

/// The message of the c10::ValueError that parsing `config` raises ("" if none).
std::string parse_error(const std::string& config) {
  try {
    qs::QuantsimConfig::parse(Json::parse(config), "test.json");
  } catch (const c10::ValueError& error) {
    return error.what_without_backtrace();
  }
  return "";
}

}  // namespace

TEST(QuantsimConfig, ParsesTheReferenceLayoutWithStringBooleans) {
  const auto config = qs::QuantsimConfig::parse(Json::parse(R"({
    "defaults": {"ops": {"is_output_quantized": "True"},
                 "params": {"is_quantized": "True", "is_symmetric": "True"},
                 "strict_symmetric": "False", "unsigned_symmetric": "True",
                 "per_channel_quantization": "False", "hw_version": "V73",
                 "supported_kernels": [{"activation": {"bitwidth": 16, "dtype": "int"}}]},
    "params": {"bias": {"is_quantized": "False"}},
    "op_type": {"Conv": {"per_channel_quantization": "True", "is_input_quantized": true},
                "Squeeze": {"is_output_quantized": "False"},
                "Relu": {"encoding_constraints": {"min": 0.0, "max": 6.0}},
                "Conv2d": {"params": {"bias": {"is_quantized": "True", "is_symmetric": false}}}},
    "supergroups": [{"op_list": ["Conv", "Relu"]}, {"op_list": ["Add", "Relu"]}],
    "model_input": {"is_input_quantized": "True"},
    "model_output": {"is_output_quantized": "True"}
  })"));
  EXPECT_FALSE(config.per_channel_quantization);
  EXPECT_TRUE(config.model_input_quantized);
  EXPECT_TRUE(config.model_output_quantized);
  ASSERT_EQ(config.supergroups.size(), 2u);
  EXPECT_EQ(config.supergroups[1], (std::vector<std::string>{"Add", "Relu"}));

  // Conv2d: the defaults, then op_type.Conv (its ONNX type), then op_type.Conv2d.
  const auto conv = config.op("Conv2d");
  EXPECT_EQ(conv.is_output_quantized, c10::optional<bool>(true));
  EXPECT_EQ(conv.is_input_quantized, c10::optional<bool>(true));
  EXPECT_EQ(conv.per_channel_quantization, c10::optional<bool>(true));
  EXPECT_EQ(config.op("Linear").per_channel_quantization, c10::optional<bool>(false));
  EXPECT_EQ(config.op("Squeeze").is_output_quantized, c10::optional<bool>(false));
  const auto relu = config.op("ReLU");
  ASSERT_TRUE(relu.encoding_constraints.has_value());
  EXPECT_EQ(relu.encoding_constraints->first, 0.0);
  EXPECT_EQ(relu.encoding_constraints->second, 6.0);

  // Parameters: defaults.params, then params.<name>, then op_type.<op>.params.<name>.
  EXPECT_EQ(config.param("Linear", "weight").is_quantized, c10::optional<bool>(true));
  EXPECT_EQ(config.param("Linear", "bias").is_quantized, c10::optional<bool>(false));
  const auto conv_bias = config.param("Conv2d", "bias");
  EXPECT_EQ(conv_bias.is_quantized, c10::optional<bool>(true));
  EXPECT_EQ(conv_bias.is_symmetric, c10::optional<bool>(false));
}

TEST(QuantsimConfig, DefaultConfigQuantizesWeightsPerChannelAndLeavesBiasAndBatchNormFloat) {
  const auto config = qs::QuantsimConfig::default_config();
  EXPECT_TRUE(config.per_channel_quantization);
  EXPECT_TRUE(config.model_input_quantized);
  EXPECT_FALSE(config.model_output_quantized);
  EXPECT_EQ(config.op("Conv2d").is_output_quantized, c10::optional<bool>(true));
  EXPECT_EQ(config.op("Conv2d").is_symmetric, c10::optional<bool>(false));
  EXPECT_EQ(config.param("Conv2d", "weight").is_quantized, c10::optional<bool>(true));
  EXPECT_EQ(config.param("Conv2d", "weight").is_symmetric, c10::optional<bool>(true));
  EXPECT_EQ(config.param("Conv2d", "bias").is_quantized, c10::optional<bool>(false));
  EXPECT_EQ(config.param("BatchNorm2d", "weight").is_quantized, c10::optional<bool>(false));
  EXPECT_EQ(config.param("BatchNorm2d", "bias").is_quantized, c10::optional<bool>(false));
  EXPECT_EQ(config.supergroups.size(), 7u);
}

TEST(QuantsimConfig, MatchesOpTypesByOnnxNameOrClassName) {
  EXPECT_TRUE(qs::QuantsimConfig::matches("Conv2d", "Conv"));
  EXPECT_TRUE(qs::QuantsimConfig::matches("Conv2d", "Conv2d"));
  EXPECT_TRUE(qs::QuantsimConfig::matches("Linear", "Gemm"));
  EXPECT_TRUE(qs::QuantsimConfig::matches("ReLU", "Relu"));
  EXPECT_TRUE(qs::QuantsimConfig::matches("BatchNorm2d", "BatchNormalization"));
  EXPECT_FALSE(qs::QuantsimConfig::matches("ConvTranspose2d", "Conv"));
  EXPECT_FALSE(qs::QuantsimConfig::matches("ReLU", "Conv"));
  EXPECT_EQ(qs::onnx_op_type("ConvTranspose1d"), "ConvTranspose");
  EXPECT_EQ(qs::onnx_op_type("MyBlock"), "");
}

TEST(QuantsimConfig, ErrorsNameTheKey) {
  struct Case {
    const char* config;
    const char* message;
  };
  const Case cases[] = {
      {R"([1, 2])", "test.json: the top level must be an object, got [1,2]"},
      {R"({"default": {}})", "`default` is not a known key"},
      {R"({"defaults": {"ops": {"is_output_quantised": "True"}}})",
       "`defaults.ops.is_output_quantised` is not a known key"},
      {R"({"defaults": {"ops": {"is_output_quantized": 3}}})",
       "`defaults.ops.is_output_quantized` must be true/false or \"True\"/\"False\", got 3"},
      {R"({"defaults": {"ops": {"params": {}}}})", "`defaults.ops.params` belongs in"},
      {R"({"defaults": {"params": {"is_quantized": "yes"}}})",
       "`defaults.params.is_quantized` must be true/false"},
      {R"({"defaults": {"strict_symmetric": "True"}})",
       "`defaults.strict_symmetric` \"True\" is not supported"},
      {R"({"defaults": {"per_channel_quantization": null}})",
       "`defaults.per_channel_quantization` must be true/false"},
      {R"({"defaults": {"supported_kernels": {}}})", "`defaults.supported_kernels` must be a list"},
      {R"({"defaults": []})", "`defaults` must be an object"},
      {R"({"params": {"bias": {"quantized": "False"}}})", "`params.bias.quantized` is not a known"},
      {R"({"params": {"bias": "False"}})", "`params.bias` must be an object"},
      {R"({"op_type": {"Conv": {"is_input_quantized": "Maybe"}}})",
       "`op_type.Conv.is_input_quantized` must be true/false"},
      {R"({"op_type": {"Conv": {"params": {"weight": {"is_symmetric": 1}}}}})",
       "`op_type.Conv.params.weight.is_symmetric` must be true/false"},
      {R"({"op_type": {"Relu": {"encoding_constraints": {"min": 0}}}})",
       "`op_type.Relu.encoding_constraints.max` must be a number"},
      {R"({"op_type": {"Relu": {"encoding_constraints": {"min": 1, "max": 6}}}})",
       "`op_type.Relu.encoding_constraints` must satisfy min <= 0 <= max"},
      {R"({"op_type": {"Relu": {"encoding_constraints": {"min": 0, "max": 6, "mid": 3}}}})",
       "`op_type.Relu.encoding_constraints.mid` is not a known key"},
      {R"({"op_type": {"Relu": []}})", "`op_type.Relu` must be an object"},
      {R"({"supergroups": {"op_list": []}})", "`supergroups` must be a list"},
      {R"({"supergroups": [{"op_list": ["Conv"]}]})",
       "`supergroups.0.op_list` must be a list of at least two op types"},
      {R"({"supergroups": [{"op_list": ["Conv", "Relu"]}, {"ops": ["Conv", "Relu"]}]})",
       "`supergroups.1.ops` is not a known key"},
      {R"({"supergroups": [{"op_list": ["Conv", 7]}]})",
       "`supergroups.0.op_list` must hold strings"},
      {R"({"model_input": {"is_input_quantized": "Yes"}})",
       "`model_input.is_input_quantized` must be true/false"},
      {R"({"model_input": {"quantized": true}})", "`model_input.quantized` is not a known key"},
      {R"({"model_output": {"is_output_quantized": []}})",
       "`model_output.is_output_quantized` must be true/false"},
  };
  for (const auto& c : cases) {
    const auto message = parse_error(c.config);
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.config << "\n  raised: " << message << "\n  expected: " << c.message;
    EXPECT_EQ(message.rfind("test.json: ", 0), 0u) << message;
  }
}

TEST(QuantsimConfig, FileErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "quantsim_config_test.json";
  {
    std::ofstream file(path);
    file << R"({"defaults": {"ops": {"is_output_quantized": "True"}},)";
  }
  try {
    qs::QuantsimConfig::from_file(path);
    FAIL() << "malformed JSON parsed";
  } catch (const c10::ValueError& error) {
    EXPECT_EQ(std::string(error.what_without_backtrace()),
              "quantsim config file " + path +
                  ": malformed JSON: [json.exception.parse_error.101] parse error at line 1, "
                  "column 55: syntax error while parsing object key - unexpected end of input; "
                  "expected string literal");
  }
  {
    std::ofstream file(path);
    file << R"({"op_type": {"Conv": {"is_output_quantized": "False"}}})";
  }
  EXPECT_EQ(qs::QuantsimConfig::from_file(path).op("Conv2d").is_output_quantized,
            c10::optional<bool>(false));
  std::remove(path.c_str());
  try {
    qs::QuantsimConfig::from_file(path);
    FAIL() << "missing file parsed";
  } catch (const c10::Error& error) {
    // An I/O error is a plain c10::Error (a RuntimeError), not a ValueError.
    EXPECT_EQ(dynamic_cast<const c10::ValueError*>(&error), nullptr);
    EXPECT_EQ(std::string(error.what_without_backtrace()),
              "quantsim config file " + path + ": cannot open the file: No such file or directory");
  }
}
