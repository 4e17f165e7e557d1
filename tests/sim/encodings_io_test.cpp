// Encodings export/import and simulation state save/load (docs/simulation.md §7-§9), and atomic
// file replacement.

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/nn/calibration.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/atomic_file.h>
#include <quantsim/sim/encodings_io.h>

#include <c10/util/Type.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "testing/files.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace qs = quantsim;
namespace fs = std::filesystem;
using nlohmann::json;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizeDequantizeImpl;

namespace {

// ---- the model ----------------------------------------------------------------------------------

/// conv1 -> add(y, relu(y)) -> flatten -> fc, on 2x4x4 inputs.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(uint64_t seed, int64_t channels = 4) {
    torch::manual_seed(seed);
    conv1 = register_module(
        "conv1", qs::nn::QuantizedConv2d(torch::nn::Conv2dOptions(2, channels, 3).padding(1)));
    add = register_module("add", qs::nn::custom::QuantizedAdd());
    fc = register_module("fc", qs::nn::QuantizedLinear(torch::nn::LinearOptions(channels * 16, 3)));
  }
  at::Tensor forward(const at::Tensor& x) {
    const auto y = conv1(x);
    return fc(add(y, y.relu()).flatten(1));
  }
  qs::nn::QuantizedConv2d conv1{nullptr};
  qs::nn::custom::QuantizedAdd add{nullptr};
  qs::nn::QuantizedLinear fc{nullptr};
};
TORCH_MODULE(Net);

std::shared_ptr<QuantizeDequantizeImpl> qdq(const qs::nn::QuantizerSlot& slot) {
  return slot.as<QuantizeDequantizeImpl>();
}

/// Per-channel symmetric 4-bit range of power-of-two scales s: [-8 s, 7 s], shape (C, 1, ...).
void set_weight_range(QuantizeDequantizeImpl& q, const std::vector<double>& scales) {
  auto s = at::tensor(scales, at::kDouble).to(at::kFloat).view(q.shape());
  q.set_range(-8 * s, 7 * s);
}

/// Fills the slots as the tests expect: 4-bit symmetric per-channel weights, 8-bit asymmetric
/// activations (fc's output symmetric), the add's inputs sharing one quantizer; biases and fc's
/// input empty. With `ranges`, every range is set to power-of-two scales so that every exported
/// value is exact.
void configure(Net& net, bool ranges = true) {
  net->conv1->input_quantizers[0] = QuantizeDequantize({}, 8, false);
  net->conv1->output_quantizers[0] = QuantizeDequantize({}, 8, false);
  const int64_t channels = net->conv1->options.out_channels();
  net->conv1->param_quantizers["weight"] = QuantizeDequantize({channels, 1, 1, 1}, 4, true);
  auto shared = QuantizeDequantize({}, 8, false);
  net->add->input_quantizers[0] = shared;
  net->add->input_quantizers[1] = shared;
  net->add->output_quantizers[0] = QuantizeDequantize({}, 8, false);
  net->fc->param_quantizers["weight"] = QuantizeDequantize({3, 1}, 4, true);
  net->fc->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  if (!ranges) return;
  qdq(net->conv1->input_quantizers[0])->set_range(-1, 2.984375);  // scale 1/64, offset -64
  qdq(net->conv1->output_quantizers[0])->set_range(-4, 3.96875);  // 1/32, -128
  set_weight_range(*qdq(net->conv1->param_quantizers["weight"]), {0.125, 0.25, 0.0625, 0.5});
  shared->set_range(-2, 13.9375);                               // 1/16, -32
  qdq(net->add->output_quantizers[0])->set_range(-1, 14.9375);  // 1/16, -16
  set_weight_range(*qdq(net->fc->param_quantizers["weight"]), {0.03125, 0.0625, 0.015625});
  qdq(net->fc->output_quantizers[0])->set_range(-4, 3.96875);  // 1/32, symmetric
}

/// The same slots filled with quantizers of another configuration (8-bit symmetric, not
/// initialized): what a load must overwrite completely.
void configure_differently(Net& net) {
  net->conv1->input_quantizers[0] = QuantizeDequantize({}, 8, true);
  net->conv1->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  net->conv1->param_quantizers["weight"] = QuantizeDequantize({4, 1, 1, 1}, 8, true);
  auto shared = QuantizeDequantize({}, 8, true);
  net->add->input_quantizers[0] = shared;
  net->add->input_quantizers[1] = shared;
  net->add->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  net->fc->param_quantizers["weight"] = QuantizeDequantize({3, 1}, 8, true);
  net->fc->output_quantizers[0] = QuantizeDequantize({}, 8, false);
}

at::Tensor sample_input() {
  torch::manual_seed(42);
  return at::randn({2, 2, 4, 4});
}

// ---- expected documents ---------------------------------------------------------------------

json legacy(double min, double max, double scale, int64_t offset, int64_t bitwidth, bool sym) {
  return {{"min", min},
          {"max", max},
          {"scale", scale},
          {"offset", offset},
          {"bitwidth", bitwidth},
          {"dtype", "int"},
          {"is_symmetric", sym ? "True" : "False"}};
}

json weight_dicts(const std::vector<double>& scales) {
  json out = json::array();
  for (const double s : scales) out.push_back(legacy(-8 * s, 7 * s, s, -8, 4, true));
  return out;
}

const std::vector<double> kConvScales{0.125, 0.25, 0.0625, 0.5};
const std::vector<double> kFcScales{0.03125, 0.0625, 0.015625};
const json kConvIn = legacy(-1, 2.984375, 0.015625, -64, 8, false);
const json kConvOut = legacy(-4, 3.96875, 0.03125, -128, 8, false);
const json kAddIn = legacy(-2, 13.9375, 0.0625, -32, 8, false);
const json kAddOut = legacy(-1, 14.9375, 0.0625, -16, 8, false);
const json kFcOut = legacy(-4, 3.96875, 0.03125, -128, 8, true);

json int_entry(const std::string& name, const char* enc_type, int64_t bw, bool sym,
               std::vector<double> scale, std::vector<int64_t> offset) {
  return {{"name", name},  {"dtype", "INT"}, {"enc_type", enc_type}, {"bw", bw},
          {"is_sym", sym}, {"scale", scale}, {"offset", offset}};
}

// ---- state comparison ---------------------------------------------------------------------------

/// Everything a failed load must leave as it was: which quantizer fills each slot, every
/// quantizer's grid, symmetry, initialization and range, and every parameter's value.
struct ModelState {
  std::vector<std::string> lines;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
};

ModelState state_of(torch::nn::Module& model) {
  ModelState state;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* mixin = dynamic_cast<qs::nn::BaseQuantizationMixin*>(item.value().get())) {
      for (auto* slots : {mixin->input_quantizers.get().get(), mixin->output_quantizers.get().get(),
                          mixin->param_quantizers.get().get()}) {
        for (const auto& key : slots->keys()) {
          std::ostringstream line;
          line << item.key() << "." << slots->kind() << "." << key << " -> "
               << slots->at(key).get();
          state.lines.push_back(line.str());
        }
      }
    }
    if (auto* q = dynamic_cast<qs::affine::AffineQuantizerBase*>(item.value().get())) {
      std::ostringstream line;
      line << item.key() << ": [" << q->qmin() << ", " << q->qmax() << "] sym " << q->symmetric()
           << " init " << q->is_initialized() << " overwrite " << q->overwrite_allowed()
           << " requires_grad " << q->min.requires_grad();
      state.lines.push_back(line.str());
      state.tensors.emplace_back(item.key() + ".min", q->min.detach().clone());
      state.tensors.emplace_back(item.key() + ".max", q->max.detach().clone());
    }
  }
  for (const auto& p : model.named_parameters()) {
    state.tensors.emplace_back(p.key(), p.value().detach().clone());
  }
  for (const auto& b : model.named_buffers()) {
    state.tensors.emplace_back(b.key(), b.value().detach().clone());
  }
  return state;
}

void expect_same_state(const ModelState& before, const ModelState& after) {
  EXPECT_EQ(before.lines, after.lines);
  ASSERT_EQ(before.tensors.size(), after.tensors.size());
  for (size_t i = 0; i < before.tensors.size(); ++i) {
    EXPECT_EQ(before.tensors[i].first, after.tensors[i].first);
    EXPECT_TRUE(qs::testing::bitwise_equal(after.tensors[i].second, before.tensors[i].second))
        << before.tensors[i].first;
  }
}

// ---- files --------------------------------------------------------------------------------------

using qs::testing::read_file;
using qs::testing::write_text;

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

/// Runs `f`, expecting an exception of exactly type E (a plain c10::Error is not a
/// c10::ValueError) whose message contains every one of `parts`.
template <typename E, typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    const std::string message = qs::message_of(e);
    EXPECT_EQ(c10::demangle(typeid(e).name()), c10::demangle_type<E>()) << message;
    for (const auto& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

/// Lowers the file size limit of this process: writes beyond `bytes` fail with EFBIG (SIGXFSZ
/// ignored), as on a full disk. Root cannot bypass it.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_);
  }

 private:
  rlimit saved_{};
  void (*previous_)(int) = nullptr;
};

class EncodingsIo : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "encodings_io_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

}  // namespace

// ---- legacy dicts (docs/quantization.md §10.1) and naming of the root ---------------------------

TEST_F(EncodingsIo, LegacyDictOfCheck39) {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 2));
  linear->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  qdq(linear->output_quantizers[0])->set_range(-1.28, 1.27);
  const auto torch_layout = qs::torch_encodings(*linear);
  const auto& d = torch_layout.at("activation_encodings").at("").at("output").at("0");
  // The reference's float32 arithmetic: scale = (max - min) / 255, min = -128 scale.
  const float s = (1.27f - -1.28f) / 255.0f;
  EXPECT_EQ(d, legacy(-128 * s, 127 * s, s, -128, 8, true));
  EXPECT_NEAR(d.at("scale").get<double>(), 0.01, 1e-6);
  EXPECT_NEAR(d.at("min").get<double>(), -1.28, 1e-6);
  EXPECT_NEAR(d.at("max").get<double>(), 1.27, 1e-6);
  // The root module has no name: its tensors and parameters have no prefix.
  const auto file = qs::encodings(*linear);
  EXPECT_EQ(file.at("activation_encodings"), json({{"output_0", json::array({d})}}));
  EXPECT_EQ(file.at("param_encodings"), json::object());
}

TEST_F(EncodingsIo, LoadReDerivesTheGridAndIgnoresFileScaleOfCheck39) {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 2));
  linear->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  const json file = {{"activation_encodings",
                      {{"",
                        {{"output",
                          {{"0",
                            {{"min", -4},
                             {"max", 4},
                             {"scale", 0.03},
                             {"offset", 8},
                             {"bitwidth", 8},
                             {"is_symmetric", "False"}}}}}}}}}};
  qs::load_encodings(*linear, file);
  auto q = qdq(linear->output_quantizers[0]);
  EXPECT_EQ(q->qmin(), 0);
  EXPECT_EQ(q->qmax(), 255);
  EXPECT_FALSE(q->symmetric());
  EXPECT_TRUE(q->overwrite_allowed());
  EXPECT_TRUE(qs::testing::bitwise_equal(q->min.detach(), qs::testing::scalar(-4)));
  EXPECT_TRUE(qs::testing::bitwise_equal(q->max.detach(), qs::testing::scalar(4)));
  EXPECT_TRUE(qs::testing::all_close(*q->get_scale(), qs::testing::scalar(0.031372551)));
  EXPECT_TRUE(qs::testing::bitwise_equal(*q->get_offset(), qs::testing::scalar(-127)));
  // ... and back: an asymmetric quantizer receiving a symmetric dict becomes signed symmetric.
  const json sym = {
      {"activation_encodings",
       {{"", {{"output", {{"0", legacy(-1, 0.9921875, 0.0078125, -128, 8, true)}}}}}}}};
  qs::load_encodings(*linear, sym, qs::LoadOptions().allow_overwrite(false).requires_grad(false));
  EXPECT_EQ(q->qmin(), -128);
  EXPECT_EQ(q->qmax(), 127);
  EXPECT_TRUE(q->symmetric());
  EXPECT_FALSE(q->overwrite_allowed());
  EXPECT_FALSE(q->min.requires_grad());
  EXPECT_TRUE(qs::testing::bitwise_equal(*q->get_scale(), qs::testing::scalar(0.0078125)));
}

// ---- layouts ----------------------------------------------------------------------------------

TEST_F(EncodingsIo, TorchLayoutKeyForKey) {
  Net net(0);
  configure(net);
  const json expected = {
      {"version", "0.6.1"},
      {"excluded_layers", json::array()},
      {"activation_encodings",
       {{"conv1", {{"input", {{"0", kConvIn}}}, {"output", {{"0", kConvOut}}}}},
        {"add", {{"input", {{"0", kAddIn}, {"1", kAddIn}}}, {"output", {{"0", kAddOut}}}}},
        {"fc", {{"output", {{"0", kFcOut}}}}}}},
      {"param_encodings",
       {{"conv1.weight", weight_dicts(kConvScales)}, {"fc.weight", weight_dicts(kFcScales)}}}};
  EXPECT_EQ(qs::torch_encodings(*net), expected);
  // The version and extra fields follow the options in both versions.
  const auto options = qs::ExportOptions()
                           .version(qs::EncodingVersion::k1_0_0)
                           .excluded_layers({"fc"})
                           .quantizer_args(json{{"param_bitwidth", 4}});
  auto with_args = expected;
  with_args["version"] = "1.0.0";
  with_args["excluded_layers"] = {"fc"};
  with_args["quantizer_args"] = {{"param_bitwidth", 4}};
  EXPECT_EQ(qs::torch_encodings(*net, options), with_args);
}

TEST_F(EncodingsIo, Version061LayoutKeyForKey) {
  Net net(0);
  configure(net);
  const json expected = {
      {"version", "0.6.1"},
      {"excluded_layers", json::array()},
      {"activation_encodings",
       {{"conv1.input_0", {kConvIn}},
        {"conv1.output_0", {kConvOut}},
        {"add.input_0", {kAddIn}},
        {"add.input_1", {kAddIn}},
        {"add.output_0", {kAddOut}},
        {"fc.output_0", {kFcOut}}}},
      {"param_encodings",
       {{"conv1.weight", weight_dicts(kConvScales)}, {"fc.weight", weight_dicts(kFcScales)}}}};
  EXPECT_EQ(qs::encodings(*net), expected);
  auto with_args = expected;
  with_args["quantizer_args"] = {{"quant_scheme", "post_training_tf"}};
  EXPECT_EQ(qs::encodings(*net, qs::ExportOptions().quantizer_args(
                                    json{{"quant_scheme", "post_training_tf"}})),
            with_args);
}

TEST_F(EncodingsIo, Version100LayoutKeyForKey) {
  Net net(0);
  configure(net);
  const json expected = {
      {"version", "1.0.0"},
      {"excluded_layers", {"add"}},
      {"quantizer_args", {{"activation_bitwidth", 8}}},
      {"activation_encodings",
       {int_entry("conv1.input_0", "PER_TENSOR", 8, false, {0.015625}, {-64}),
        int_entry("conv1.output_0", "PER_TENSOR", 8, false, {0.03125}, {-128}),
        int_entry("add.input_0", "PER_TENSOR", 8, false, {0.0625}, {-32}),
        int_entry("add.input_1", "PER_TENSOR", 8, false, {0.0625}, {-32}),
        int_entry("add.output_0", "PER_TENSOR", 8, false, {0.0625}, {-16}),
        int_entry("fc.output_0", "PER_TENSOR", 8, true, {0.03125}, {-128})}},
      {"param_encodings",
       {int_entry("conv1.weight", "PER_CHANNEL", 4, true, kConvScales, {-8, -8, -8, -8}),
        int_entry("fc.weight", "PER_CHANNEL", 4, true, kFcScales, {-8, -8, -8})}}};
  const auto actual = qs::encodings(*net, qs::ExportOptions()
                                              .version(qs::EncodingVersion::k1_0_0)
                                              .excluded_layers({"add"})
                                              .quantizer_args(json{{"activation_bitwidth", 8}}));
  EXPECT_EQ(actual, expected);
  for (const auto& entry : actual.at("activation_encodings")) EXPECT_EQ(entry.size(), 7u);
  for (const auto& entry : actual.at("param_encodings")) EXPECT_EQ(entry.size(), 7u);
}

TEST_F(EncodingsIo, Version100BlockLpbqFloatAndPerTensorParams) {
  torch::manual_seed(3);
  auto model = torch::nn::Sequential();
  qs::nn::QuantizedLinear lpbq_linear(torch::nn::LinearOptions(8, 2));
  qs::nn::QuantizedLinear block_linear(torch::nn::LinearOptions(8, 2));
  model->push_back("lpbq", lpbq_linear);
  model->push_back("block", block_linear);
  auto lpbq = qs::affine::GroupedBlockQuantizeDequantize({2, 2}, 4, true, /*decompressed_bw=*/8,
                                                         /*block_size=*/{1, 4}, {1, -1});
  lpbq_linear->param_quantizers["weight"] = lpbq;
  lpbq_linear->param_quantizers["bias"] = QuantizeDequantize({}, 8, true);
  lpbq_linear->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  block_linear->param_quantizers["weight"] =
      QuantizeDequantize(qs::affine::QuantizerOptions({2, 2}, 4, true).block_size({1, -1}));
  lpbq_linear->compute_param_encodings();
  block_linear->compute_param_encodings();

  const auto file = qs::encodings(*model, qs::ExportOptions().version(qs::EncodingVersion::k1_0_0));
  EXPECT_EQ(file.at("activation_encodings"), json::array({{{"name", "lpbq.output_0"},
                                                           {"dtype", "FLOAT"},
                                                           {"enc_type", "PER_TENSOR"},
                                                           {"bw", 16}}}));
  const auto& params = file.at("param_encodings");
  ASSERT_EQ(params.size(), 3u);

  const auto& lp = params[0];
  std::vector<double> channel_scale;
  for (const auto& v : lpbq->get_per_channel_scale()->flatten().to(at::kDouble).unbind()) {
    channel_scale.push_back(v.item<double>());
  }
  std::vector<int64_t> int_scale;
  for (const auto& v : lpbq->get_per_block_integer_scale()->flatten().unbind()) {
    int_scale.push_back(v.item<int64_t>());
  }
  ASSERT_EQ(channel_scale.size(), 2u);
  ASSERT_EQ(int_scale.size(), 4u);
  const json expected_lpbq = {{"name", "lpbq.weight"},
                              {"dtype", "INT"},
                              {"enc_type", "LPBQ"},
                              {"bw", 8},
                              {"compressed_bw", 4},
                              {"is_sym", true},
                              {"scale", channel_scale},
                              {"offset", {-128, -128}},
                              {"per_block_int_scale", int_scale},
                              {"block_size", 4}};
  EXPECT_EQ(lp, expected_lpbq);
  EXPECT_EQ(lp.size(), 10u);

  const auto& bias = params[1];
  const auto bias_dict = lpbq_linear->param_quantizers["bias"]->get_legacy_encodings()->at(0);
  EXPECT_EQ(bias, int_entry("lpbq.bias", "PER_TENSOR", 8, true,
                            {bias_dict.at("scale").get<double>()}, {-128}));

  const auto& block = params[2];
  const auto block_dicts = *block_linear->param_quantizers["weight"]->get_legacy_encodings();
  ASSERT_EQ(block_dicts.size(), 4u);
  std::vector<double> block_scale;
  for (const auto& d : block_dicts) block_scale.push_back(d.at("scale").get<double>());
  auto expected_block =
      int_entry("block.weight", "PER_BLOCK", 4, true, block_scale, {-8, -8, -8, -8});
  expected_block["block_size"] = 4;  // -1 made concrete: 8 input features / 2 blocks
  EXPECT_EQ(block, expected_block);
  EXPECT_EQ(block.size(), 8u);

  // 0.6.1 and the torch layout keep the legacy lists: one dict per block.
  const auto legacy_file = qs::encodings(*model);
  EXPECT_EQ(legacy_file.at("param_encodings").at("block.weight"), block_dicts);
  EXPECT_EQ(legacy_file.at("activation_encodings").at("lpbq.output_0"),
            json::array({{{"bitwidth", 16}, {"dtype", "float"}}}));
}

TEST_F(EncodingsIo, PerChannelActivationIsAnErrorIn100Only) {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 2));
  auto model = torch::nn::Sequential();
  model->push_back("lin", linear);
  linear->output_quantizers[0] = QuantizeDequantize({2}, 8, false);
  qdq(linear->output_quantizers[0])->set_range(at::zeros({2}), at::ones({2}));
  expect_error<c10::ValueError>(
      [&] { qs::encodings(*model, qs::ExportOptions().version(qs::EncodingVersion::k1_0_0)); },
      {"lin.output_0", "2 channels"});
  // The torch layout keeps the list; it loads back.
  const auto torch_layout = qs::torch_encodings(*model);
  EXPECT_EQ(torch_layout.at("activation_encodings").at("lin").at("output").at("0").size(), 2u);
  EXPECT_NO_THROW(qs::load_encodings(*model, torch_layout));
}

TEST_F(EncodingsIo, UninitializedAndEmptySlotsAreNotExported) {
  Net net(0);
  configure(net, /*ranges=*/false);
  qdq(net->fc->output_quantizers[0])->set_range(-4, 3.96875);
  const auto file = qs::torch_encodings(*net);
  EXPECT_EQ(file.at("activation_encodings"), json({{"fc", {{"output", {{"0", kFcOut}}}}}}));
  EXPECT_EQ(file.at("param_encodings"), json::object());
}

TEST_F(EncodingsIo, VersionStrings) {
  EXPECT_EQ(qs::encoding_version_from_string("0.6.1"), qs::EncodingVersion::k0_6_1);
  EXPECT_EQ(qs::encoding_version_from_string("1.0.0"), qs::EncodingVersion::k1_0_0);
  EXPECT_EQ(qs::to_string(qs::EncodingVersion::k1_0_0), "1.0.0");
  expect_error<c10::NotImplementedError>([] { qs::encoding_version_from_string("0.6"); },
                                         {"\"0.6\"", "0.6.1", "1.0.0"});
}

// ---- files and round trip ---------------------------------------------------------------------

TEST_F(EncodingsIo, ExportWritesBothFilesAsJsonDumpSortedIndent4) {
  Net net(0);
  configure(net);
  const auto out = dir_ / "nested" / "out";  // created
  const auto options = qs::ExportOptions().version(qs::EncodingVersion::k1_0_0);
  qs::export_encodings(*net, out.string(), "net", options);
  EXPECT_EQ(listing(out), (std::set<std::string>{"net.encodings", "net_torch.encodings"}));
  const auto text = read_file(out / "net.encodings");
  EXPECT_EQ(text, qs::encodings(*net, options).dump(4));
  EXPECT_EQ(read_file(out / "net_torch.encodings"), qs::torch_encodings(*net, options).dump(4));
  // json.dump(sort_keys=True, indent=4): sorted keys, 4-space indent, no trailing newline.
  EXPECT_EQ(text.substr(0, 36), "{\n    \"activation_encodings\": [\n    ");
  EXPECT_NE(text.back(), '\n');
  EXPECT_LT(text.find("\"excluded_layers\""), text.find("\"param_encodings\""));
  EXPECT_LT(text.find("\"param_encodings\""), text.find("\"version\": \"1.0.0\""));
}

TEST_F(EncodingsIo, ExportThenLoadReproducesOutputsBitExactly) {
  Net reference(0);
  configure(reference);
  qs::export_encodings(*reference, dir_.string(), "net");

  Net fresh(0);  // the same float weights, quantizers of another configuration, no ranges
  configure_differently(fresh);
  qs::load_encodings(*fresh, (dir_ / "net_torch.encodings").string());

  const auto x = sample_input();
  EXPECT_TRUE(qs::testing::bitwise_equal(fresh->forward(x), reference->forward(x)));
  auto weight = qdq(fresh->conv1->param_quantizers["weight"]);
  EXPECT_EQ(weight->bitwidth(), 4);
  EXPECT_EQ(qdq(fresh->fc->output_quantizers[0])->qmin(), -128);  // symmetric again
  EXPECT_EQ(qdq(fresh->conv1->input_quantizers[0])->qmin(), 0);   // asymmetric now
  EXPECT_EQ(qs::torch_encodings(*fresh), qs::torch_encodings(*reference));
  // The add's inputs still share one quantizer.
  EXPECT_EQ(fresh->add->input_quantizers[0].get(), fresh->add->input_quantizers[1].get());
}

TEST_F(EncodingsIo, StrictUnknownNamesAreErrorsAndChangeNothing) {
  Net reference(0);
  configure(reference);
  const auto good = qs::torch_encodings(*reference);
  Net net(0);
  configure_differently(net);
  const auto before = state_of(*net);

  auto unknown_module = good;
  unknown_module["activation_encodings"]["ghost"] = {{"output", {{"0", kAddOut}}}};
  expect_error<c10::Error>([&] { qs::load_encodings(*net, unknown_module); },
                           {"load_encodings", "activation_encodings[\"ghost\"]", "ghost"});
  expect_same_state(before, state_of(*net));

  auto unknown_param = good;
  unknown_param["param_encodings"]["fc.scale"] = weight_dicts(kFcScales);
  expect_error<c10::Error>([&] { qs::load_encodings(*net, unknown_param); },
                           {"param_encodings[\"fc.scale\"]"});
  expect_same_state(before, state_of(*net));

  auto unknown_slot = good;
  unknown_slot["activation_encodings"]["fc"]["output"]["1"] = kFcOut;
  expect_error<c10::Error>([&] { qs::load_encodings(*net, unknown_slot); },
                           {"activation_encodings[\"fc\"][\"output\"][\"1\"]"});
  expect_same_state(before, state_of(*net));

  // An entry for an empty slot (conv1 has no bias quantizer).
  auto empty_slot = good;
  empty_slot["param_encodings"]["conv1.bias"] = json::array({kAddOut});
  expect_error<c10::Error>([&] { qs::load_encodings(*net, empty_slot); },
                           {"param_encodings[\"conv1.bias\"]", "empty"});
  expect_same_state(before, state_of(*net));

  // Without strict the unknown names and the empty slot are skipped; the rest loads.
  auto everything = good;
  everything["activation_encodings"]["ghost"] = {{"output", {{"0", kAddOut}}}};
  everything["param_encodings"]["fc.scale"] = weight_dicts(kFcScales);
  everything["param_encodings"]["conv1.bias"] = json::array({kAddOut});
  everything["activation_encodings"]["fc"]["output"]["1"] = kFcOut;
  qs::load_encodings(*net, everything, qs::LoadOptions().strict(false));
  EXPECT_EQ(qs::torch_encodings(*net), good);
  EXPECT_FALSE(net->conv1->param_quantizers["bias"]);
}

TEST_F(EncodingsIo, MismatchingEntriesAreErrorsNamingThemAndChangeNothing) {
  Net reference(0);
  configure(reference);
  const auto good = qs::torch_encodings(*reference);
  Net net(0);
  configure_differently(net);
  const auto before = state_of(*net);

  // fc's weight has 3 channels; conv1 (loaded earlier in model order) must not change either.
  auto wrong_channels = good;
  wrong_channels["param_encodings"]["fc.weight"] = weight_dicts({0.5, 0.25});
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, wrong_channels); },
                                {"param_encodings[\"fc.weight\"]", "2 entries", "needs 3"});
  expect_same_state(before, state_of(*net));

  auto per_channel_activation = good;
  per_channel_activation["activation_encodings"]["fc"]["output"]["0"] = {kFcOut, kFcOut};
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, per_channel_activation); },
                                {"activation_encodings[\"fc\"][\"output\"][\"0\"]"});
  expect_same_state(before, state_of(*net));

  auto missing_key = good;
  missing_key["activation_encodings"]["fc"]["output"]["0"].erase("max");
  expect_error<c10::IndexError>([&] { qs::load_encodings(*net, missing_key); },
                                {"activation_encodings[\"fc\"][\"output\"][\"0\"]", "max"});
  expect_same_state(before, state_of(*net));

  auto bad_symmetry = good;
  bad_symmetry["param_encodings"]["fc.weight"][0]["is_symmetric"] = "yes";
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, bad_symmetry); },
                                {"param_encodings[\"fc.weight\"]", "is_symmetric"});
  expect_same_state(before, state_of(*net));

  auto not_a_dict = good;
  not_a_dict["activation_encodings"]["add"] = json::array({kAddOut});
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, not_a_dict); },
                                {"activation_encodings[\"add\"]"});
  expect_same_state(before, state_of(*net));

  // The 1.0.0 <prefix>.encodings file is not the torch layout.
  const auto v100 =
      qs::encodings(*reference, qs::ExportOptions().version(qs::EncodingVersion::k1_0_0));
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, v100); }, {"_torch.encodings"});
  expect_same_state(before, state_of(*net));
}

TEST_F(EncodingsIo, MalformedJsonNamesTheFileAndPosition) {
  Net net(0);
  configure_differently(net);
  const auto before = state_of(*net);
  const auto path = dir_ / "broken_torch.encodings";
  write_text(path, "{\n    \"activation_encodings\": {\n        \"conv1\": [\n");
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, path.string()); },
                                {path.string(), "malformed JSON", "line "});
  expect_same_state(before, state_of(*net));
  expect_error<c10::Error>([&] { qs::load_encodings(*net, (dir_ / "missing.encodings").string()); },
                           {"missing.encodings", "cannot open"});
  // Errors in a well-formed file name the file and the entry.
  Net reference(0);
  configure(reference);
  auto wrong = qs::torch_encodings(*reference);
  wrong["param_encodings"]["fc.weight"] = weight_dicts({1.0});
  write_text(path, wrong.dump());
  expect_error<c10::ValueError>([&] { qs::load_encodings(*net, path.string()); },
                                {path.string(), "param_encodings[\"fc.weight\"]"});
  expect_same_state(before, state_of(*net));
}

TEST_F(EncodingsIo, PartialFalseEmptiesSlotsWithoutEntries) {
  Net reference(0);
  configure(reference);
  const json only_conv = {{"activation_encodings", {{"conv1", {{"input", {{"0", kConvIn}}}}}}},
                          {"param_encodings", {{"conv1.weight", weight_dicts(kConvScales)}}}};

  Net partial(0);
  configure_differently(partial);
  qs::load_encodings(*partial, only_conv);  // partial=true: the other slots keep quantizers
  EXPECT_TRUE(partial->conv1->output_quantizers[0]);
  EXPECT_TRUE(partial->add->input_quantizers[0]);
  EXPECT_TRUE(partial->fc->param_quantizers["weight"]);
  EXPECT_EQ(qdq(partial->conv1->input_quantizers[0])->qmin(), 0);

  Net net(0);
  configure_differently(net);
  qs::load_encodings(*net, only_conv, qs::LoadOptions().partial(false));
  EXPECT_TRUE(net->conv1->input_quantizers[0]);
  EXPECT_TRUE(net->conv1->param_quantizers["weight"]);
  EXPECT_FALSE(net->conv1->output_quantizers[0]);
  EXPECT_FALSE(net->add->input_quantizers[0]);
  EXPECT_FALSE(net->add->input_quantizers[1]);
  EXPECT_FALSE(net->add->output_quantizers[0]);
  EXPECT_FALSE(net->fc->param_quantizers["weight"]);
  EXPECT_FALSE(net->fc->output_quantizers[0]);
  EXPECT_EQ(qs::torch_encodings(*net).at("activation_encodings"),
            only_conv.at("activation_encodings"));
  EXPECT_EQ(qs::torch_encodings(*net).at("param_encodings"), only_conv.at("param_encodings"));
}

TEST_F(EncodingsIo, FrozenQuantizersAreSkipped) {
  Net reference(0);
  configure(reference);
  Net net(0);
  configure_differently(net);
  auto frozen = qdq(net->fc->output_quantizers[0]);
  frozen->set_range(-1, 1);
  frozen->allow_overwrite(false);
  qs::load_encodings(*net, qs::torch_encodings(*reference));
  EXPECT_TRUE(qs::testing::bitwise_equal(frozen->max.detach(), qs::testing::scalar(1)));
  EXPECT_EQ(frozen->qmin(), 0);  // still its own asymmetric grid
  EXPECT_FALSE(frozen->overwrite_allowed());
  EXPECT_EQ(qdq(net->conv1->param_quantizers["weight"])->bitwidth(), 4);
}

// ---- atomic writes ------------------------------------------------------------------------------

TEST_F(EncodingsIo, AtomicWriteReplacesAndCreatesNothingElse) {
  const auto path = dir_ / "file.txt";
  qs::write_file_atomically(path.string(), [](std::ostream& os) { os << "first"; });
  EXPECT_EQ(read_file(path), "first");
  qs::write_file_atomically(path.string(), [](std::ostream& os) { os << "second"; });
  EXPECT_EQ(read_file(path), "second");
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"file.txt"}));
  expect_error<c10::Error>(
      [&] {
        qs::write_file_atomically((dir_ / "no_such_dir" / "f").string(),
                                  [](std::ostream& os) { os << "x"; });
      },
      {"no_such_dir/f"});
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"file.txt"}));
}

TEST_F(EncodingsIo, ThrowingWriterLeavesThePreviousFileAndNoTemporary) {
  const auto path = dir_ / "net.encodings";
  write_text(path, "previous content");
  expect_error<std::logic_error>(
      [&] {
        qs::write_file_atomically(path.string(), [](std::ostream& os) {
          os << std::string(200000, 'x');  // more than the buffer: bytes reach the disk
          os.flush();
          throw std::logic_error("interrupted midway");
        });
      },
      {"interrupted midway"});
  EXPECT_EQ(read_file(path), "previous content");
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"net.encodings"}));

  // With several files, a failure in the second changes neither destination.
  const auto other = dir_ / "net_torch.encodings";
  write_text(other, "other previous");
  EXPECT_THROW(qs::write_files_atomically({{path.string(), [](std::ostream& os) { os << "new"; }},
                                           {other.string(),
                                            [](std::ostream& os) {
                                              os << "half";
                                              throw std::runtime_error("disk unplugged");
                                            }}}),
               std::runtime_error);
  EXPECT_EQ(read_file(path), "previous content");
  EXPECT_EQ(read_file(other), "other previous");
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"net.encodings", "net_torch.encodings"}));
}

TEST_F(EncodingsIo, ExportFailingMidWriteLeavesThePreviousFilesByteIdentical) {
  Net net(0);
  configure(net);
  qs::export_encodings(*net, dir_.string(), "net");
  const auto encodings_before = read_file(dir_ / "net.encodings");
  const auto torch_before = read_file(dir_ / "net_torch.encodings");
  ASSERT_GT(encodings_before.size(), 1000u);

  qdq(net->fc->output_quantizers[0])->set_range(-8, 7.9375);  // new content to write
  {
    FileSizeLimit limit(512);  // the disk "fills up" after 512 bytes of the new file
    expect_error<c10::Error>([&] { qs::export_encodings(*net, dir_.string(), "net"); },
                             {(dir_ / "net.encodings").string(), "File too large"});
  }
  EXPECT_EQ(read_file(dir_ / "net.encodings"), encodings_before);
  EXPECT_EQ(read_file(dir_ / "net_torch.encodings"), torch_before);
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"net.encodings", "net_torch.encodings"}));
  // Once the disk has room again the export goes through.
  qs::export_encodings(*net, dir_.string(), "net");
  EXPECT_NE(read_file(dir_ / "net.encodings"), encodings_before);
}

// ---- state --------------------------------------------------------------------------------------

TEST_F(EncodingsIo, SaveLoadStateReproducesOutputsBitExactly) {
  Net reference(0);
  configure(reference, /*ranges=*/false);
  const auto x = sample_input();
  qs::nn::compute_encodings(*reference, [&] { reference->forward(x); });
  const auto path = (dir_ / "sim.pt").string();
  qs::save_state(*reference, path);
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"sim.pt"}));

  Net restored(7);  // other float weights, same quantizer configuration, nothing initialized
  configure(restored, /*ranges=*/false);
  ASSERT_FALSE(restored->conv1->input_quantizers[0]->is_initialized());
  qs::load_state(*restored, path);
  EXPECT_TRUE(restored->conv1->input_quantizers[0]->is_initialized());
  EXPECT_TRUE(qs::testing::bitwise_equal(restored->forward(x), reference->forward(x)));
  EXPECT_EQ(qs::torch_encodings(*restored), qs::torch_encodings(*reference));

  // Initialization flags are part of the state: an uninitialized quantizer stays so.
  Net partly(0);
  configure(partly, /*ranges=*/false);
  qdq(partly->fc->output_quantizers[0])->set_range(-4, 3.96875);
  qs::save_state(*partly, path);
  qs::load_state(*restored, path);
  EXPECT_FALSE(restored->conv1->input_quantizers[0]->is_initialized());
  EXPECT_TRUE(restored->fc->output_quantizers[0]->is_initialized());
}

TEST_F(EncodingsIo, SaveStateOnAFullDiskThrowsAndLeavesThePreviousFile) {
  // 256 KiB of weights: more than the 64 KiB write buffer, so the disk fills in the middle of
  // torch's archive writer (whose destructor used to throw again and std::terminate), not at the
  // final flush.
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(256, 256));
  linear->param_quantizers["weight"] = QuantizeDequantize({}, 8, true);
  const auto path = (dir_ / "sim.pt").string();
  qs::save_state(*linear, path);
  const auto before = read_file(path);
  ASSERT_GT(before.size(), size_t{256 * 256 * 4});

  qdq(linear->param_quantizers["weight"])->set_range(-1, 1);  // new content to write
  {
    FileSizeLimit limit(4096);
    expect_error<c10::Error>([&] { qs::save_state(*linear, path); },
                             {"writing '" + path + "' failed", "File too large"});
  }
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(listing(dir_), (std::set<std::string>{"sim.pt"}));  // no temporary left
  // The file still loads, and once the disk has room the save goes through.
  qs::nn::QuantizedLinear restored(torch::nn::LinearOptions(256, 256));
  restored->param_quantizers["weight"] = QuantizeDequantize({}, 8, true);
  qs::load_state(*restored, path);
  EXPECT_FALSE(restored->param_quantizers["weight"]->is_initialized());
  qs::save_state(*linear, path);
  qs::load_state(*restored, path);
  EXPECT_TRUE(restored->param_quantizers["weight"]->is_initialized());
}

TEST_F(EncodingsIo, LoadStateOfAnotherModelChangesNothing) {
  Net net(0);
  configure(net);
  const auto before = state_of(*net);
  const auto x = sample_input();
  const auto y = net->forward(x);

  // Another architecture: conv1 with 5 output channels (its bias is the first key that differs).
  Net other(0, /*channels=*/5);
  configure(other, /*ranges=*/false);
  qs::save_state(*other, (dir_ / "other.pt").string());
  expect_error<c10::Error>([&] { qs::load_state(*net, (dir_ / "other.pt").string()); },
                           {"other.pt", "\"conv1.bias\" is [5] Float in the file but [4] Float"});
  expect_same_state(before, state_of(*net));

  // The same architecture with other slots filled: keys that do not match.
  Net fewer(0);
  fewer->conv1->param_quantizers["weight"] = QuantizeDequantize({4, 1, 1, 1}, 4, true);
  qs::save_state(*fewer, (dir_ / "fewer.pt").string());
  expect_error<c10::Error>([&] { qs::load_state(*net, (dir_ / "fewer.pt").string()); },
                           {"fewer.pt", "input_quantizers"});
  expect_same_state(before, state_of(*net));

  Net more(0);
  configure(more);
  more->fc->param_quantizers["bias"] = QuantizeDequantize({}, 8, true);
  qs::save_state(*more, (dir_ / "more.pt").string());
  expect_error<c10::Error>([&] { qs::load_state(*net, (dir_ / "more.pt").string()); },
                           {"more.pt", "fc.param_quantizers.bias", "which the model does not"});
  expect_same_state(before, state_of(*net));

  expect_error<c10::Error>([&] { qs::load_state(*net, (dir_ / "none.pt").string()); },
                           {"none.pt", "cannot open"});
  write_text(dir_ / "garbage.pt", "not a zip archive");
  expect_error<c10::Error>([&] { qs::load_state(*net, (dir_ / "garbage.pt").string()); },
                           {"garbage.pt", "not a saved state"});
  expect_same_state(before, state_of(*net));
  EXPECT_TRUE(qs::testing::bitwise_equal(net->forward(x), y));
}
