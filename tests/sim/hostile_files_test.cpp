// Files a careless user or an attacker hands to the loaders (configs, encodings, saved states):
// each is a c10 typed error naming the file and, where there is one, the key; never a crash, a
// bare standard-library or nlohmann exception, or a changed model (docs/reliability.md §4).

#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/config.h>
#include <quantsim/sim/encodings_io.h>

#include <c10/util/Type.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include "testing/files.h"
#include "testing/tolerance.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

namespace qs = quantsim;
namespace fs = std::filesystem;
using nlohmann::json;
using qs::affine::QuantizeDequantize;

namespace {

/// Runs `f`, expecting an exception of exactly type E whose user-facing message is `expected`.
template <typename E, typename F>
void expect_error(F&& f, const std::string& expected) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected: " << expected;
  } catch (const std::exception& e) {
    EXPECT_EQ(c10::demangle(typeid(e).name()), c10::demangle_type<E>()) << qs::message_of(e);
    EXPECT_EQ(qs::message_of(e), expected);
  }
}

/// Runs `f`, expecting an exception of exactly type E whose message starts with `prefix`.
template <typename E, typename F>
void expect_error_starting(F&& f, const std::string& prefix) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected: " << prefix;
  } catch (const std::exception& e) {
    EXPECT_EQ(c10::demangle(typeid(e).name()), c10::demangle_type<E>()) << qs::message_of(e);
    EXPECT_EQ(std::string(qs::message_of(e)).rfind(prefix, 0), 0u) << qs::message_of(e);
  }
}

/// `depth` nested arrays around nothing: `[[[...]]]`.
std::string nested_brackets(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

/// The same nesting built in memory, without recursion (an initializer list would copy, and a
/// copy recurses once per level).
json nested_arrays(size_t depth) {
  json value = json::array();
  for (size_t i = 1; i < depth; ++i) {
    json outer = json::array();
    outer.push_back(std::move(value));
    value = std::move(outer);
  }
  return value;
}

/// The key path that parse errors show for arrays nested `levels` deep in all, the first
/// `prefix_levels` of them spelled by `prefix`: the first 8 and last 8 levels, the middle elided.
std::string elided_path(const std::string& prefix, size_t prefix_levels, size_t levels) {
  std::string path = prefix;
  for (size_t i = prefix_levels; i < 8; ++i) path += "[0]";
  path += "...(" + std::to_string(levels - 16) + " levels)...";
  for (size_t i = 0; i < 8; ++i) path += "[0]";
  return path;
}

using qs::testing::read_file;
using qs::testing::write_text;

/// A Linear with 8-bit quantizers on its input, output and weight, all set.
qs::nn::QuantizedLinear make_linear() {
  torch::manual_seed(0);
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 2));
  linear->input_quantizers[0] = QuantizeDequantize({}, 8, false);
  linear->output_quantizers[0] = QuantizeDequantize({}, 8, false);
  linear->param_quantizers["weight"] = QuantizeDequantize({}, 8, true);
  linear->input_quantizers[0]->as<qs::affine::QuantizeDequantizeImpl>()->set_range(-1, 1);
  linear->output_quantizers[0]->as<qs::affine::QuantizeDequantizeImpl>()->set_range(-2, 2);
  linear->param_quantizers["weight"]->as<qs::affine::QuantizeDequantizeImpl>()->set_range(-1, 1);
  return linear;
}

/// Every parameter and buffer of `module`, to compare before and after a failed load.
std::vector<at::Tensor> state_of(const torch::nn::Module& module) {
  std::vector<at::Tensor> state;
  for (const auto& p : module.parameters()) state.push_back(p.detach().clone());
  for (const auto& b : module.buffers()) state.push_back(b.detach().clone());
  return state;
}

void expect_same_state(const std::vector<at::Tensor>& before, const torch::nn::Module& module) {
  const auto after = state_of(module);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(qs::testing::bitwise_equal(after[i], before[i])) << i;
  }
}

/// Copies the archive `from` to `to`, record by record, through `edit`: it may change a
/// record's bytes or return false to leave the record out.
void rewrite_archive(const fs::path& from, const fs::path& to,
                     const std::function<bool(const std::string&, std::string&)>& edit) {
  caffe2::serialize::PyTorchStreamReader reader(from.string());
  caffe2::serialize::PyTorchStreamWriter writer(to.string());
  for (const auto& name : reader.getAllRecords()) {
    at::DataPtr data;
    size_t size = 0;
    std::tie(data, size) = reader.getRecord(name);
    std::string bytes(static_cast<const char*>(data.get()), size);
    if (edit(name, bytes)) writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
}

class HostileFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "hostile_files_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

// ---- configs ------------------------------------------------------------------------------------

TEST_F(HostileFiles, DeeplyNestedConfigIsAParseErrorNamingTheFile) {
  // 100,000 levels used to overflow the stack (the "must be an object" message printed them).
  const auto top = path("top.json");
  write_text(top, nested_brackets(100000));
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::from_file(top); },
                                "quantsim config file " + top +
                                    ": JSON nested deeper than 100 levels at `" +
                                    elided_path("", 0, 100) + "`");
  const auto defaults = path("defaults.json");
  write_text(defaults, "{\"defaults\": " + nested_brackets(100000) + "}");
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::from_file(defaults); },
                                "quantsim config file " + defaults +
                                    ": JSON nested deeper than 100 levels at `" +
                                    elided_path("defaults", 1, 100) + "`");
  // 100 levels parse; the value is then just of the wrong type.
  write_text(top, nested_brackets(100));
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::from_file(top); },
                                top + ": the top level must be an object, got " +
                                    std::string(100, '[') + std::string(20, ']') + "...");
  // A document built in memory is bounded the same way.
  json in_memory = {{"defaults", nullptr}};
  in_memory["defaults"] = nested_arrays(100000);
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::parse(in_memory, "mine"); },
                                "mine: JSON nested deeper than 100 levels");
}

TEST_F(HostileFiles, ConfigNumbersOutsideFloat32NameTheKey) {
  const auto file = path("config.json");
  write_text(file, R"({"defaults": {"ops": {"encoding_constraints": {"min": -1e999, "max": 1}}}})");
  expect_error<c10::ValueError>(
      [&] { qs::QuantsimConfig::from_file(file); },
      "quantsim config file " + file +
          ": number out of range at `defaults[\"ops\"][\"encoding_constraints\"][\"min\"]`: "
          "[json.exception.out_of_range.406] number overflow parsing '-1e999'");
  // 1e39 is a double but no float32: the quantizer's range would become infinite.
  write_text(file, R"({"op_type": {"Relu": {"encoding_constraints": {"min": 0, "max": 1e39}}}})");
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::from_file(file); },
                                file +
                                    ": `op_type.Relu.encoding_constraints.max` must be a finite "
                                    "float32 (magnitude at most 3.4028235e+38), got 1e+39");
  const json nan_min = {
      {"defaults", {{"ops", {{"encoding_constraints", {{"min", std::nan("")}, {"max", 1.0}}}}}}}};
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::parse(nan_min, "mine"); },
                                "mine: `defaults.ops.encoding_constraints.min` must be a finite "
                                "float32 (magnitude at most 3.4028235e+38), got nan");
  // Distinct doubles, one float32: an empty range.
  const json tiny = {
      {"defaults", {{"ops", {{"encoding_constraints", {{"min", 0}, {"max", 1e-46}}}}}}}};
  expect_error<c10::ValueError>([&] { qs::QuantsimConfig::parse(tiny, "mine"); },
                                "mine: `defaults.ops.encoding_constraints` must satisfy min <= 0 "
                                "<= max and min < max (in float32), got min 0, max 1e-46");
}

TEST_F(HostileFiles, ConfigDirectoryIsAnIoErrorNamingIt) {
  // It used to be a std::ios_base::failure naming no file.
  expect_error<c10::Error>(
      [&] { qs::QuantsimConfig::from_file(dir_.string()); },
      "quantsim config file " + dir_.string() + ": cannot read it: it is a directory, not a file");
}

// ---- encodings ----------------------------------------------------------------------------------

TEST_F(HostileFiles, DeeplyNestedEncodingsEntryIsAParseErrorNamingTheFile) {
  auto linear = make_linear();
  const auto before = state_of(*linear);
  const auto file = path("deep_torch.encodings");
  write_text(file, "{\"param_encodings\": {\"weight\": " + nested_brackets(100000) + "}}");
  expect_error<c10::ValueError>([&] { qs::load_encodings(*linear, file); },
                                "load_encodings: \"" + file +
                                    "\": JSON nested deeper than 100 levels at `" +
                                    elided_path("param_encodings[\"weight\"]", 2, 100) + "`");
  expect_same_state(before, *linear);
  json in_memory = {{"param_encodings", {{"weight", nullptr}}}};
  in_memory["param_encodings"]["weight"] = nested_arrays(100000);
  expect_error<c10::ValueError>([&] { qs::load_encodings(*linear, in_memory); },
                                "load_encodings: JSON nested deeper than 100 levels");
  expect_same_state(before, *linear);
}

TEST_F(HostileFiles, EncodingsNumberOverflowNamesTheFileAndKey) {
  auto linear = make_linear();
  const auto before = state_of(*linear);
  const auto file = path("overflow_torch.encodings");
  write_text(file, R"({"param_encodings": {"weight": [{"min": 1e999, "max": 1, "bitwidth": 8}]}})");
  expect_error<c10::ValueError>(
      [&] { qs::load_encodings(*linear, file); },
      "load_encodings: \"" + file +
          "\": number out of range at `param_encodings[\"weight\"][0][\"min\"]`: "
          "[json.exception.out_of_range.406] number overflow parsing '1e999'");
  expect_same_state(before, *linear);
  // Malformed JSON says where too: in the entry of slot "0", after its "min".
  write_text(file, "{\"activation_encodings\": {\"\": {\"input\": {\"0\": {\"min\": -1,]}}}}");
  expect_error<c10::ValueError>(
      [&] { qs::load_encodings(*linear, file); },
      "load_encodings: \"" + file +
          "\": malformed JSON at `activation_encodings[\"\"][\"input\"][\"0\"]`: "
          "[json.exception.parse_error.101] parse error at line 1, column 58: syntax error while "
          "parsing object key - unexpected ']'; expected string literal");
}

TEST_F(HostileFiles, EncodingsValuesAreShownAsWritten) {
  auto linear = make_linear();
  const auto before = state_of(*linear);
  // NaN cannot be spelled in JSON, so nlohmann dumps it as null: the message said "got null".
  const json nan_min = {{"param_encodings",
                         {{"weight",
                           {{{"min", std::nan("")},
                             {"max", 1.0},
                             {"bitwidth", 8},
                             {"dtype", "int"},
                             {"is_symmetric", "True"}}}}}}};
  expect_error<c10::ValueError>([&] { qs::load_encodings(*linear, nan_min); },
                                "load_encodings: param_encodings[\"weight\"]: legacy encoding [0] "
                                "\"min\" must be finite, got nan");
  // 2^64 - 1 read as an int64 wrapped to -1: the message said "got -1".
  const auto file = path("bitwidth_torch.encodings");
  write_text(file, R"({"param_encodings": {"weight": [{"min": -1, "max": 1, "dtype": "int", )"
                   R"("is_symmetric": "True", "bitwidth": 18446744073709551615}]}})");
  expect_error<c10::ValueError>([&] { qs::load_encodings(*linear, file); },
                                "load_encodings: \"" + file +
                                    "\": param_encodings[\"weight\"]: legacy encoding [0] "
                                    "\"bitwidth\" does not fit in int64, got 18446744073709551615");
  expect_same_state(before, *linear);
  linear->param_quantizers["weight"] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  expect_error<c10::Error>([&] { qs::load_encodings(*linear, file); },
                           "load_encodings: \"" + file +
                               "\": param_encodings[\"weight\"]: FloatQuantizeDequantize can "
                               "only import 16-bit legacy encodings, got bitwidth "
                               "18446744073709551615");
}

TEST_F(HostileFiles, EncodingsDirectoryIsAnIoErrorNamingIt) {
  auto linear = make_linear();
  expect_error<c10::Error>(
      [&] { qs::load_encodings(*linear, dir_.string()); },
      "load_encodings: \"" + dir_.string() + "\": cannot read it: it is a directory, not a file");
}

// ---- saved states -------------------------------------------------------------------------------

TEST_F(HostileFiles, StateDirectoryIsAnIoErrorNamingIt) {
  auto linear = make_linear();
  expect_error<c10::Error>(
      [&] { qs::load_state(*linear, dir_.string()); },
      "load_state: \"" + dir_.string() + "\": cannot read it: it is a directory, not a file");
}

TEST_F(HostileFiles, StateWhoseCodeDoesNotCompileIsAnErrorNamingTheFile) {
  auto linear = make_linear();
  const auto saved = path("saved.pt");
  qs::save_state(*linear, saved);
  const auto before = state_of(*linear);
  // Without its class declaration torch's script compiler raises a torch::jit::ErrorReport, a
  // std::exception whose message starts with an empty line.
  const auto no_code = path("no_code.pt");
  rewrite_archive(saved, no_code, [](const std::string& name, std::string&) {
    return name != "code/__torch__.py";
  });
  expect_error<c10::Error>(
      [&] { qs::load_state(*linear, no_code); },
      "load_state: \"" + no_code + "\": not a saved state: Unknown type name '__torch__.Module'");
  expect_same_state(before, *linear);
}

TEST_F(HostileFiles, StateWithDeeplyNestedCodeIsRefused) {
  // torch's script parser recurses once per bracket: 100,000 of them used to overflow the stack.
  auto linear = make_linear();
  const auto saved = path("saved.pt");
  qs::save_state(*linear, saved);
  const auto deep = path("deep.pt");
  rewrite_archive(saved, deep, [](const std::string& name, std::string& bytes) {
    if (name == "code/__torch__.py") {
      const std::string field = "weight : Tensor";
      const auto at = bytes.find(field);
      EXPECT_NE(at, std::string::npos) << bytes;
      bytes.replace(at, field.size(),
                    "weight : " + std::string(100000, '(') + "Tensor" + std::string(100000, ')'));
    }
    return true;
  });
  expect_error<c10::Error>([&] { qs::load_state(*linear, deep); },
                           "load_state: \"" + deep +
                               "\": not a saved state: its code \"code/__torch__.py\" nests "
                               "brackets deeper than 100 levels");
  // The unchanged copy still loads.
  const auto copy = path("copy.pt");
  rewrite_archive(saved, copy, [](const std::string&, std::string&) { return true; });
  qs::load_state(*linear, copy);
}

TEST_F(HostileFiles, TruncatedFlippedOrDeeplyPickledStateIsAnError) {
  auto linear = make_linear();
  const auto saved = path("saved.pt");
  qs::save_state(*linear, saved);
  const auto before = state_of(*linear);
  const std::string bytes = read_file(saved);
  const auto broken = path("broken.pt");
  const std::string prefix = "load_state: \"" + broken + "\": not a saved state: ";
  for (const size_t keep : {size_t{10}, bytes.size() / 2, bytes.size() - 30}) {
    write_text(broken, bytes.substr(0, keep));
    expect_error_starting<c10::Error>([&] { qs::load_state(*linear, broken); },
                                      prefix + "PytorchStreamReader failed reading zip archive: ");
  }
  std::string flipped = bytes;
  for (size_t i = 100; i < flipped.size(); i += 37)
    flipped[i] = static_cast<char>(flipped[i] ^ 0x55);
  write_text(broken, flipped);
  expect_error_starting<c10::Error>([&] { qs::load_state(*linear, broken); }, prefix);
  // 100,000 nested lists in the pickled data: torch unpickles them without recursion.
  constexpr size_t kDepth = 100000;
  std::string pickle = "\x80\x02";
  for (size_t i = 0; i < kDepth; ++i) pickle += "](";  // EMPTY_LIST, MARK
  pickle += "]" + std::string(kDepth, 'e') + ".";      // APPENDS each, STOP
  for (const char* record : {"data.pkl", "constants.pkl"}) {
    rewrite_archive(saved, broken, [&](const std::string& name, std::string& content) {
      if (name == record) content = pickle;
      return true;
    });
    expect_error_starting<c10::Error>([&] { qs::load_state(*linear, broken); }, prefix);
  }
  expect_same_state(before, *linear);
}
