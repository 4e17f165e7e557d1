// Inputs the fuzzers of fuzz/ found crashing quantsim, each pinned here (and kept in
// fuzz/corpus/<target>/, which every fuzzing run replays first).

#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/nn/calibration.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/encodings_io.h>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

namespace qs = quantsim;
namespace fs = std::filesystem;

namespace {

/// A calibrated QuantizedLinear: its saved state's code declares parameters, buffers and
/// submodules.
qs::nn::QuantizedLinear calibrated_linear() {
  torch::manual_seed(0);
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(4, 3));
  linear->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({3, 1}, 4, true);
  torch::NoGradGuard no_grad;
  qs::nn::compute_encodings(*linear, [&] { linear(torch::linspace(-1, 1, 8).view({2, 4})); });
  return linear;
}

/// Copies the archive `from` to `to`, passing each `code/*.py` record through `edit`.
void rewrite_code(const std::string& from, const std::string& to,
                  const std::function<std::string(const std::string&)>& edit) {
  caffe2::serialize::PyTorchStreamReader reader(from);
  caffe2::serialize::PyTorchStreamWriter writer(to);
  for (const auto& record : reader.getAllRecords()) {
    if (record == "version" || record == ".data/version") continue;  // the writer adds it
    auto [data, size] = reader.getRecord(record);
    std::string bytes(static_cast<const char*>(data.get()), size);
    if (record.size() > 3 && record.compare(record.size() - 3, 3, ".py") == 0) {
      bytes = edit(bytes);
    }
    writer.writeRecord(record, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
}

class FuzzRegressions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quantsim_fuzz_regressions_" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

// state_fuzzer: one byte changed in a code record (`__parameters__` -> `__parimeters__`) made
// torch's TorchScript importer read through a bad pointer (SEGV in
// torch::jit::ScriptTypeParser::parseClassConstant) inside load_state.
TEST_F(FuzzRegressions, StateWithAnUnknownClassAttributeIsRefused) {
  auto linear = calibrated_linear();
  qs::save_state(*linear, path("saved.pt"));

  // The copy itself loads: only the edit below makes the file bad.
  rewrite_code(path("saved.pt"), path("copy.pt"), [](const std::string& code) { return code; });
  auto other = calibrated_linear();
  EXPECT_NO_THROW(qs::load_state(*other, path("copy.pt")));

  int edits = 0;
  rewrite_code(path("saved.pt"), path("bad.pt"), [&](std::string code) {
    const auto at = code.find("__parameters__");
    if (at != std::string::npos) {
      code.replace(at, 14, "__parimeters__");
      ++edits;
    }
    return code;
  });
  ASSERT_GT(edits, 0);
  const auto before = linear->weight.clone();
  try {
    qs::load_state(*linear, path("bad.pt"));
    FAIL() << "load_state accepted the file";
  } catch (const c10::Error& e) {
    const std::string message = qs::message_of(e);
    EXPECT_NE(message.find("bad.pt"), std::string::npos) << message;
    EXPECT_NE(message.find("not a saved state: its code"), std::string::npos) << message;
    EXPECT_NE(message.find("is not a declaration save_state writes:"), std::string::npos)
        << message;
    EXPECT_NE(message.find("__parimeters__ = ["), std::string::npos) << message;
  }
  EXPECT_TRUE(linear->weight.equal(before));
}
