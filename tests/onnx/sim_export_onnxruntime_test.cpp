// QuantizationSimModel::export_onnx at W4A8 with per-channel, blockwise and LPBQ weights (issue 11,
// items 4-5): `<prefix>.encodings` holds one entry per quantized tensor in both versions, both
// versions load into a fresh simulation of the same model that then computes the exported one's
// outputs bit for bit (load_onnx_encodings; malformed 1.0.0 files are c10::ValueErrors naming
// the file, the entry and the value), and the `_qdq.onnx` graph runs in ONNX Runtime to the
// simulated outputs with graph optimizations disabled; with every optimization on, the difference
// (the simulation-versus-integer-target gap) is measured and printed.

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/nn/drop_in.h>
#include <quantsim/onnx/encodings.h>
#include <quantsim/onnx/export.h>
#include <quantsim/sim/quantsim_model.h>

#include "testing/files.h"
#include "testing/onnxruntime.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

namespace {

namespace qs = quantsim;
namespace fs = std::filesystem;
namespace nn = quantsim::nn::drop_in;
using nlohmann::json;
using qs::testing::OrtOptimization;

/// conv1 3x3 (1->8) bn relu pool, conv2 3x3 (8->16) relu, flatten, fc1 (784->32) relu, fc2
/// (32->10), for 1x14x14 inputs.
struct SmallNetImpl : torch::nn::Module {
  SmallNetImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1)))),
        bn1(register_module("bn1", nn::BatchNorm2d(8))),
        relu1(register_module("relu1", nn::ReLU())),
        pool1(register_module("pool1", nn::MaxPool2d(2))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(8, 16, 3).padding(1)))),
        relu2(register_module("relu2", nn::ReLU())),
        flatten(register_module("flatten", nn::Flatten())),
        fc1(register_module("fc1", nn::Linear(16 * 7 * 7, 32))),
        relu3(register_module("relu3", nn::ReLU())),
        fc2(register_module("fc2", nn::Linear(32, 10))) {}
  at::Tensor forward(const at::Tensor& x) {
    auto y = pool1(relu1(bn1(conv1(x))));
    y = flatten(relu2(conv2(y)));
    return fc2(relu3(fc1(y)));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::ReLU relu1;
  nn::MaxPool2d pool1;
  nn::Conv2d conv2;
  nn::ReLU relu2;
  nn::Flatten flatten;
  nn::Linear fc1;
  nn::ReLU relu3;
  nn::Linear fc2;
};
TORCH_MODULE(SmallNet);

/// The same trained-looking network every time (fixed seed, batch-norm statistics from two
/// training-mode passes), in eval mode.
SmallNet make_net() {
  torch::manual_seed(0);
  SmallNet net;
  {
    torch::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 2; ++i) net->forward(torch::randn({32, 1, 14, 14}));
  }
  net->eval();
  return net;
}

std::vector<at::Tensor> forward_of(SmallNet& net, const std::vector<at::Tensor>& x) {
  return {net->forward(x[0])};
}

/// A W4A8 simulation of make_net(): the default configuration (per-channel symmetric weights,
/// asymmetric per-tensor activations) with 4-bit weights, then conv2's and fc1's weights
/// blockwise, fc2's LPBQ (4 bits decompressed to 8, one group per output channel). Quantizers are
/// uninitialized until compute_encodings or a load.
struct Simulation {
  SmallNet net = make_net();
  std::unique_ptr<qs::QuantizationSimModel> sim;
  explicit Simulation(const at::Tensor& sample) {
    sim = std::make_unique<qs::QuantizationSimModel>(
        net.ptr(),
        [&] {
          torch::NoGradGuard no_grad;
          net->forward(sample);
        },
        qs::SimOptions().default_param_bw(4).default_output_bw(8));
    net->conv2->param_quantizers["weight"] = qs::affine::QuantizeDequantize(
        qs::affine::QuantizerOptions({16, 2, 1, 1}, 4, true).block_size({1, 4, 3, 3}));
    net->fc1->param_quantizers["weight"] = qs::affine::QuantizeDequantize(
        qs::affine::QuantizerOptions({32, 7}, 4, true).block_size({1, -1}));
    net->fc2->param_quantizers["weight"] = qs::affine::GroupedBlockQuantizeDequantize(
        qs::affine::QuantizerOptions({10, 4}, 4, true).block_size({1, 8}), /*decompressed_bw=*/8,
        std::vector<int64_t>{1, -1});
  }
  void calibrate(const at::Tensor& data) {
    sim->compute_encodings([&] {
      torch::NoGradGuard no_grad;
      net->forward(data);
    });
  }
  at::Tensor operator()(const at::Tensor& x) {
    torch::NoGradGuard no_grad;
    return net->forward(x);
  }
  /// Writes the four files of export_onnx in `dir`.
  std::map<std::string, std::string> export_to(const fs::path& dir, const at::Tensor& sample,
                                               qs::EncodingVersion version) {
    return sim->export_onnx(
        dir.string(), "net", {sample},
        [this](const std::vector<at::Tensor>& x) { return forward_of(net, x); }, version);
  }
};

struct Data {
  at::Tensor sample, calibration, x;
  Data() {
    torch::manual_seed(1);
    sample = torch::randn({2, 1, 14, 14});
    calibration = torch::randn({64, 1, 14, 14});
    x = torch::randn({96, 1, 14, 14});
  }
};

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() /
                   ("quantsim_sim_export_ort_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

/// Keys of a 0.6.1 section, or names of a 1.0.0 one, in file order.
std::vector<std::string> entry_names(const json& section) {
  std::vector<std::string> names;
  if (section.is_array()) {
    for (const auto& e : section) names.push_back(e.at("name"));
  } else {
    for (const auto& item : section.items()) names.push_back(item.key());
  }
  return names;
}

TEST(SimOnnxEncodings, OneEntryPerQuantizedTensorInBothVersions) {
  const Data data;
  Simulation exported(data.sample);
  exported.calibrate(data.calibration);
  const auto dir = fresh_dir("entries");
  for (const auto version : {qs::EncodingVersion::k0_6_1, qs::EncodingVersion::k1_0_0}) {
    const auto sub = dir / qs::to_string(version);
    const auto quantized = exported.export_to(sub, data.sample, version);
    std::set<std::string> tensors;
    for (const auto& [path, tensor] : quantized) tensors.insert(tensor);
    const auto doc = json::parse(qs::testing::read_file(sub / "net.encodings"));
    EXPECT_EQ(doc.at("version"), qs::to_string(version));
    auto names = entry_names(doc.at("activation_encodings"));
    for (const auto& n : entry_names(doc.at("param_encodings"))) names.push_back(n);
    // Exactly the quantized tensors, each once: input, conv1 (after bn1/relu1, one supergroup),
    // conv2/relu2, fc1/relu3, fc2 outputs; the four weights.
    EXPECT_EQ(names.size(), tensors.size()) << qs::to_string(version);
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), tensors) << qs::to_string(version);
    EXPECT_EQ(entry_names(doc.at("param_encodings")).size(), 4u);
    if (version == qs::EncodingVersion::k1_0_0) {
      std::map<std::string, std::string> enc_type;
      for (const auto& e : doc.at("param_encodings")) enc_type[e.at("name")] = e.at("enc_type");
      EXPECT_EQ(enc_type, (std::map<std::string, std::string>{{"conv1.weight", "PER_CHANNEL"},
                                                              {"conv2.weight", "PER_BLOCK"},
                                                              {"fc1.weight", "PER_BLOCK"},
                                                              {"fc2.weight", "LPBQ"}}));
    }
  }
  fs::remove_all(dir);
}

/// A fresh simulation of the same network (same parameters and statistics, quantizers
/// uninitialized) loads `<prefix>.encodings` of either version and computes the exported
/// simulation's outputs bit for bit; the 1.0.0 entries become the very legacy dicts of the 0.6.1
/// file.
TEST(SimOnnxEncodings, BothVersionsReloadBitExactly) {
  const Data data;
  Simulation exported(data.sample);
  exported.calibrate(data.calibration);
  const at::Tensor expected = exported(data.x);
  const auto dir = fresh_dir("reload");
  exported.export_to(dir / "v0", data.sample, qs::EncodingVersion::k0_6_1);
  exported.export_to(dir / "v1", data.sample, qs::EncodingVersion::k1_0_0);

  const auto tensors = qs::read_quantized_tensors((dir / "v1" / "net.onnx").string());
  const auto from_0_6_1 = qs::torch_encodings_from_graph_keyed(
      json::parse(qs::testing::read_file(dir / "v0" / "net.encodings")), tensors);
  const auto from_1_0_0 = qs::torch_encodings_from_graph_keyed(
      json::parse(qs::testing::read_file(dir / "v1" / "net.encodings")), tensors,
      exported.net.ptr().get());
  EXPECT_EQ(from_1_0_0.at("param_encodings"), from_0_6_1.at("param_encodings"));
  EXPECT_EQ(from_1_0_0.at("activation_encodings"), from_0_6_1.at("activation_encodings"));
  // Without the model, LPBQ's groups are the reference's layout, which fc2's grouping is.
  EXPECT_EQ(qs::torch_encodings_from_graph_keyed(
                json::parse(qs::testing::read_file(dir / "v1" / "net.encodings")), tensors)
                .at("param_encodings"),
            from_0_6_1.at("param_encodings"));

  for (const char* version : {"v0", "v1"}) {
    Simulation loaded(data.sample);
    ASSERT_FALSE(loaded.net->fc2->param_quantizers->at("weight")->is_initialized());
    loaded.sim->load_onnx_encodings((dir / version / "net.encodings").string(),
                                    (dir / version / "net.onnx").string());
    const at::Tensor reloaded = loaded(data.x);
    EXPECT_TRUE(torch::equal(reloaded, expected))
        << version << ": max |diff| " << (reloaded - expected).abs().max().item<double>();
    // Every quantizer's encoding, not only the outputs.
    const auto exported_modules = exported.net->named_modules();
    int64_t compared = 0;
    for (const auto& item : loaded.net->named_modules()) {
      const auto* mine = dynamic_cast<const qs::affine::AffineQuantizerBase*>(item.value().get());
      if (mine == nullptr) continue;
      const auto* theirs =
          dynamic_cast<const qs::affine::AffineQuantizerBase*>(exported_modules[item.key()].get());
      ASSERT_NE(theirs, nullptr) << item.key();
      EXPECT_TRUE(torch::equal(*mine->get_scale(), *theirs->get_scale()))
          << version << " " << item.key();
      EXPECT_TRUE(torch::equal(*mine->get_offset(), *theirs->get_offset()))
          << version << " " << item.key();
      ++compared;
    }
    EXPECT_EQ(compared, 11);  // 7 activation, 4 weight quantizers
  }
  fs::remove_all(dir);
}

/// A 1.0.0 FLOAT entry is the legacy float dict; INT entries keep their scale and derive min/max as
/// the writer does (asymmetric 8 bits: offset -114, scale 2^-7 -> [-0.890625, 1.1015625]).
TEST(SimOnnxEncodings, Version1_0_0EntriesBecomeLegacyDicts) {
  const std::map<std::string, std::string> tensors = {{"relu3.output_quantizers.0", "relu_2"},
                                                      {"fc1.input_quantizers.0", "flatten_0"}};
  const auto doc = json::parse(R"({"version": "1.0.0", "excluded_layers": [],
      "activation_encodings": [
        {"name": "relu_2", "dtype": "FLOAT", "enc_type": "PER_TENSOR", "bw": 16},
        {"name": "flatten_0", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8, "is_sym": false,
         "scale": [0.0078125], "offset": [-114]}],
      "param_encodings": []})");
  const auto torch_layout = qs::torch_encodings_from_graph_keyed(doc, tensors);
  EXPECT_EQ(torch_layout.at("activation_encodings"),
            json::parse(R"({"relu3": {"output": {"0": {"bitwidth": 16, "dtype": "float"}}},
                            "fc1": {"input": {"0": {"bitwidth": 8, "dtype": "int",
                              "is_symmetric": "False", "min": -0.890625, "max": 1.1015625,
                              "offset": -114, "scale": 0.0078125}}}})"));
  EXPECT_EQ(torch_layout.at("version"), "1.0.0");
}

/// The message of load_onnx_encodings on `doc` (written to a file), and that it is a ValueError.
std::string load_error(Simulation& target, const fs::path& dir, const json& doc) {
  const auto path = dir / "edited.encodings";
  qs::testing::write_text(path, doc.dump(4));
  try {
    target.sim->load_onnx_encodings(path.string(), (dir / "net.onnx").string());
  } catch (const c10::ValueError& e) {
    return e.what_without_backtrace();
  } catch (const c10::Error& e) {
    return std::string("not a ValueError: ") + e.what_without_backtrace();
  }
  return "loaded";
}

json& entry_named(json& section, const std::string& name) {
  for (auto& e : section) {
    if (e.at("name") == name) return e;
  }
  throw std::runtime_error("no entry " + name);
}

const json& entry_in(const json& section, const std::string& name) {
  for (const auto& e : section) {
    if (e.at("name") == name) return e;
  }
  throw std::runtime_error("no entry " + name);
}

TEST(SimOnnxEncodings, Malformed1_0_0IsAValueErrorNamingFileEntryAndValue) {
  const Data data;
  Simulation exported(data.sample);
  exported.calibrate(data.calibration);
  const auto dir = fresh_dir("malformed");
  exported.export_to(dir, data.sample, qs::EncodingVersion::k1_0_0);
  const auto file = (dir / "edited.encodings").string();
  const auto written = json::parse(qs::testing::read_file(dir / "net.encodings"));
  Simulation target(data.sample);
  const auto params_before = target.net->named_parameters().values();
  std::vector<at::Tensor> before;
  for (const auto& p : params_before) before.push_back(p.clone());

  // Index of an entry in its list, as the messages name it.
  const auto index_of = [&](const char* section, const std::string& name) {
    const auto& list = written.at(section);
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].at("name") == name) return std::to_string(i);
    }
    return std::string("?");
  };
  const auto param = [&](const std::string& name) {
    return "param_encodings[" + index_of("param_encodings", name) + "] (\"" + name + "\")";
  };
  struct Case {
    std::function<void(json&)> edit;
    std::string expected;  // in the message, after the file's name
  };
  const std::vector<Case> cases = {
      {[](json& d) { d["version"] = "2.0.0"; },
       "\"version\" must be \"0.6.1\" or \"1.0.0\", got \"2.0.0\""},
      {[](json& d) { d["param_encodings"] = json::object(); },
       "\"param_encodings\" must be a list of entries in the 1.0.0 layout, got object"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["scale"][1] = -0.5; },
       param("conv1.weight") +
           "[\"scale\"][1] must be a positive scale finite in float32, got -0.5"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["scale"][0] = 1e39; },
       param("conv1.weight") +
           "[\"scale\"][0] must be a positive scale finite in float32, got 1e+39"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["offset"][2] = -7; },
       param("conv1.weight") + "[\"offset\"][2] of a symmetric 4-bit entry must be -8, got -7"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["offset"][0] = 1.5; },
       param("conv1.weight") + "[\"offset\"][0] must be an integer, got 1.5"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight").erase("is_sym"); },
       param("conv1.weight") + " has no \"is_sym\" entry"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["bw"] = 0; },
       param("conv1.weight") + "[\"bw\"] must be a bitwidth in [1, 54], got 0"},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["enc_type"] = "VECTOR"; },
       param("conv1.weight") +
           "[\"enc_type\"] must be PER_TENSOR, PER_CHANNEL, PER_BLOCK or LPBQ, got \"VECTOR\""},
      {[](json& d) { entry_named(d["param_encodings"], "conv1.weight")["enc_type"] = "PER_BLOCK"; },
       param("conv1.weight") + "[\"enc_type\"] is \"PER_BLOCK\" but the quantizer "
                               "`conv1.param_quantizers.weight` takes PER_TENSOR or PER_CHANNEL"},
      {[](json& d) {
         auto& e = entry_named(d["param_encodings"], "conv1.weight");
         e["scale"].erase(e["scale"].size() - 1);
         e["offset"].erase(e["offset"].size() - 1);
       },
       param("conv1.weight") + "[\"scale\"] holds 7 scales but the quantizer "
                               "`conv1.param_quantizers.weight` of shape [8, 1, 1, 1] needs 8"},
      {[](json& d) { entry_named(d["param_encodings"], "conv2.weight")["block_size"] = 8; },
       param("conv2.weight") + "[\"block_size\"] is 8 but the quantizer "
                               "`conv2.param_quantizers.weight` has blocks of [1, 4, 3, 3]"},
      {[](json& d) {
         entry_named(d["param_encodings"], "fc2.weight")["per_block_int_scale"][3] = 17;
       },
       param("fc2.weight") + "[\"per_block_int_scale\"][3] must be in [1, 16], got 17"},
      {[](json& d) { entry_named(d["param_encodings"], "fc2.weight")["bw"] = 6; },
       param("fc2.weight") + "[\"offset\"][0] of an LPBQ entry must be -32, got -128"},
      {[](json& d) {
         auto& e = entry_named(d["param_encodings"], "fc2.weight");
         e["bw"] = 6;
         e["offset"] = std::vector<int>(10, -32);
       },
       param("fc2.weight") + "[\"bw\"] is 6 but the quantizer `fc2.param_quantizers.weight` "
                             "decompresses to 8 bits"},
      {[](json& d) { d["param_encodings"].push_back(d["param_encodings"][0]); },
       "param_encodings[4] (\"" + written.at("param_encodings")[0].at("name").get<std::string>() +
           "\"): a second entry for that tensor"},
      {[](json& d) { d["activation_encodings"][0]["name"] = "no_such_tensor"; },
       "activation_encodings[0] (\"no_such_tensor\"): no quantizer of the model quantizes a "
       "tensor of that name"},
      {[](json& d) { d["activation_encodings"][0]["name"] = "fc1.weight"; },
       "activation_encodings[0] (\"fc1.weight\"): the tensor is a parameter"},
      {[](json& d) { d["activation_encodings"][0]["enc_type"] = "PER_CHANNEL"; },
       "[\"enc_type\"]: an activation's encoding is per tensor in the 1.0.0 layout, got "
       "\"PER_CHANNEL\""},
      {[](json& d) {
         d["param_encodings"][0] = {{"name", d["param_encodings"][0]["name"]},
                                    {"dtype", "FLOAT"},
                                    {"enc_type", "PER_TENSOR"},
                                    {"bw", 16}};
       },
       "[\"dtype\"] is \"FLOAT\" but the quantizer `" +
           written.at("param_encodings")[0].at("name").get<std::string>().substr(
               0, written.at("param_encodings")[0].at("name").get<std::string>().find('.')) +
           ".param_quantizers.weight` is an integer quantizer"},
      {[](json& d) { d["activation_encodings"][0]["dtype"] = "int"; },
       "[\"dtype\"] must be \"INT\" or \"FLOAT\", got \"int\""},
  };
  for (const auto& c : cases) {
    auto doc = written;
    c.edit(doc);
    const auto message = load_error(target, dir, doc);
    EXPECT_EQ(message.rfind("load_onnx_encodings: '" + file + "': ", 0), 0u) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\n got: " << message;
  }
  // Nothing was set by any of them, and the file as written loads.
  const auto params_after = target.net->named_parameters().values();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], params_after[i]));
  EXPECT_FALSE(target.net->fc2->param_quantizers->at("weight")->is_initialized());
  EXPECT_EQ(load_error(target, dir, written), "loaded");
  fs::remove_all(dir);
}

// ---- float16 / bfloat16 quantizers -------------------------------------------------------------

/// The W4A8 simulation with three quantizers that read no parameter (casts, no maxval): fc2's
/// output float16 (the model output), relu3's output bfloat16 (fc2's input), fc1's weight float16.
struct FloatSimulation : Simulation {
  explicit FloatSimulation(const at::Tensor& sample) : Simulation(sample) {
    net->fc2->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
    net->relu3->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kBFloat16);
    net->fc1->param_quantizers["weight"] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  }
};

/// Every quantizer is named by its module path (none "quantizer_<i>"), and `<prefix>.encodings`
/// holds one entry per quantized tensor, the float ones too: FLOAT, 16 bits (the reference's
/// `{"bitwidth": 16, "dtype": "float"}` in 0.6.1).
TEST(SimOnnxEncodings, FloatQuantizersHaveTheirEntryInBothVersions) {
  const Data data;
  FloatSimulation exported(data.sample);
  exported.calibrate(data.calibration);
  const auto dir = fresh_dir("float_entries");
  for (const auto version : {qs::EncodingVersion::k0_6_1, qs::EncodingVersion::k1_0_0}) {
    const auto sub = dir / qs::to_string(version);
    const auto quantized = exported.export_to(sub, data.sample, version);
    std::set<std::string> tensors;
    for (const auto& [path, tensor] : quantized) {
      EXPECT_NE(path.rfind("quantizer_", 0), 0u) << path;
      EXPECT_NE(path.find("_quantizers."), std::string::npos) << path;
      tensors.insert(tensor);
    }
    EXPECT_EQ(quantized.size(), 11u);
    EXPECT_EQ(quantized.at("fc2.output_quantizers.0"), "output");
    EXPECT_EQ(quantized.at("fc1.param_quantizers.weight"), "fc1.weight");
    const auto bf16_tensor = quantized.at("relu3.output_quantizers.0");
    const auto doc = json::parse(qs::testing::read_file(sub / "net.encodings"));
    auto names = entry_names(doc.at("activation_encodings"));
    for (const auto& n : entry_names(doc.at("param_encodings"))) names.push_back(n);
    EXPECT_EQ(names.size(), tensors.size()) << qs::to_string(version);
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), tensors) << qs::to_string(version);
    const auto& activations = doc.at("activation_encodings");
    const auto& params = doc.at("param_encodings");
    if (version == qs::EncodingVersion::k1_0_0) {
      const auto float_entry = [](const std::string& name) {
        return json{{"name", name}, {"dtype", "FLOAT"}, {"enc_type", "PER_TENSOR"}, {"bw", 16}};
      };
      EXPECT_EQ(entry_in(activations, "output"), float_entry("output"));
      EXPECT_EQ(entry_in(activations, bf16_tensor), float_entry(bf16_tensor));
      EXPECT_EQ(entry_in(params, "fc1.weight"), float_entry("fc1.weight"));
    } else {
      const auto legacy = json::parse(R"([{"bitwidth": 16, "dtype": "float"}])");
      EXPECT_EQ(activations.at("output"), legacy);
      EXPECT_EQ(activations.at(bf16_tensor), legacy);
      EXPECT_EQ(params.at("fc1.weight"), legacy);
    }
  }
  fs::remove_all(dir);
}

/// A fresh simulation loads either version and computes the exported outputs bit for bit; its
/// float quantizers keep their formats (bfloat16 stays bfloat16: the 16-bit FLOAT entry does not
/// say which 16-bit format it was).
TEST(SimOnnxEncodings, FloatQuantizersReloadBitExactly) {
  const Data data;
  FloatSimulation exported(data.sample);
  exported.calibrate(data.calibration);
  const at::Tensor expected = exported(data.x);
  const auto dir = fresh_dir("float_reload");
  exported.export_to(dir / "v0", data.sample, qs::EncodingVersion::k0_6_1);
  exported.export_to(dir / "v1", data.sample, qs::EncodingVersion::k1_0_0);
  const auto tensors = qs::read_quantized_tensors((dir / "v1" / "net.onnx").string());
  // The 1.0.0 FLOAT entries become the 0.6.1 file's dicts.
  const auto from_0_6_1 = qs::torch_encodings_from_graph_keyed(
      json::parse(qs::testing::read_file(dir / "v0" / "net.encodings")), tensors);
  const auto from_1_0_0 = qs::torch_encodings_from_graph_keyed(
      json::parse(qs::testing::read_file(dir / "v1" / "net.encodings")), tensors,
      exported.net.ptr().get());
  EXPECT_EQ(from_1_0_0.at("param_encodings"), from_0_6_1.at("param_encodings"));
  EXPECT_EQ(from_1_0_0.at("activation_encodings"), from_0_6_1.at("activation_encodings"));
  EXPECT_EQ(from_0_6_1.at("activation_encodings").at("fc2").at("output").at("0"),
            json::parse(R"({"bitwidth": 16, "dtype": "float"})"));
  for (const char* version : {"v0", "v1"}) {
    FloatSimulation loaded(data.sample);
    loaded.sim->load_onnx_encodings((dir / version / "net.encodings").string(),
                                    (dir / version / "net.onnx").string());
    const auto* bf16 = dynamic_cast<const qs::floating::FloatQuantizeDequantizeImpl*>(
        loaded.net->relu3->output_quantizers[0].get().get());
    ASSERT_NE(bf16, nullptr);
    EXPECT_TRUE(bf16->is_bfloat16()) << version;
    const at::Tensor reloaded = loaded(data.x);
    EXPECT_TRUE(torch::equal(reloaded, expected))
        << version << ": max |diff| " << (reloaded - expected).abs().max().item<double>();
  }
  fs::remove_all(dir);
}

/// The QDQ graph of the W4A8 simulation in ONNX Runtime: bit-exact with optimizations disabled
/// on a batch size other than the export's; with every optimization, the gap is printed in
/// output steps.
TEST(SimOnnxRuntime, W4A8PerChannelBlockwiseAndLpbqQdqGraphRunsToTheSimulatedOutputs) {
  QS_REQUIRE_ONNXRUNTIME();
  const Data data;
  Simulation exported(data.sample);
  exported.calibrate(data.calibration);
  const at::Tensor expected = exported(data.x);
  const auto dir = fresh_dir("ort");
  exported.export_to(dir, data.sample, qs::EncodingVersion::k0_6_1);
  const auto model = (dir / "net_qdq.onnx").string();
  const double step = exported.net->fc2->output_quantizers[0]->get_scale()->item<double>();

  const auto as_written =
      qs::testing::run_in_onnxruntime(model, {{"input", data.x}}, OrtOptimization::kDisabled);
  ASSERT_EQ(as_written.size(), 1u);
  ASSERT_EQ(as_written[0].sizes(), expected.sizes());
  const auto diff = (as_written[0] - expected).abs();
  std::printf(
      "W4A8 QDQ graph, optimizations disabled: %ld of %ld outputs differ, max %.3g "
      "(step %.3g)\n",
      static_cast<long>((diff > 0).sum().item<int64_t>()), static_cast<long>(expected.numel()),
      diff.max().item<double>(), step);
  EXPECT_TRUE(torch::equal(as_written[0], expected));

  const auto fused =
      qs::testing::run_in_onnxruntime(model, {{"input", data.x}}, OrtOptimization::kAll);
  ASSERT_EQ(fused[0].sizes(), expected.sizes());
  const auto gap = (fused[0] - expected).abs() / step;
  const auto same_class = (fused[0].argmax(1) == expected.argmax(1)).sum().item<int64_t>();
  std::printf(
      "W4A8 QDQ graph, every optimization (ORT's integer kernels): %ld of %ld outputs "
      "differ, max %.3g steps, mean %.3g steps; top-1 class equal on %ld of %ld\n",
      static_cast<long>((gap > 0).sum().item<int64_t>()), static_cast<long>(expected.numel()),
      gap.max().item<double>(), gap.mean().item<double>(), static_cast<long>(same_class),
      static_cast<long>(expected.size(0)));
  // Measured: 0 of 960 outputs differ. Bounds with room for another runtime build: ORT's
  // integer kernels requantize with their own rounding of the combined scale.
  EXPECT_LE(gap.max().item<double>(), 2.0 + 1e-5);
  EXPECT_LE((gap > 0).sum().item<int64_t>(), expected.numel() / 20);
  EXPECT_GE(same_class, expected.size(0) * 95 / 100);
  fs::remove_all(dir);
}

}  // namespace

namespace {

/// The `_qdq.onnx` of `sim` (exported at data.sample, through `forward`) run in ONNX Runtime on
/// data.x with optimizations disabled.
at::Tensor run_exported(qs::QuantizationSimModel& sim, const fs::path& dir, const Data& data,
                        const qs::OnnxForward& forward) {
  sim.export_onnx(dir.string(), "net", {data.sample}, forward);
  return qs::testing::run_in_onnxruntime((dir / "net_qdq.onnx").string(), {{"input", data.x}},
                                         OrtOptimization::kDisabled)
      .at(0);
}

/// The rows of a (rows, columns) mask with a true element.
std::set<int64_t> rows_of(const at::Tensor& mask) {
  std::set<int64_t> rows;
  const auto at = mask.nonzero();
  for (int64_t i = 0; i < at.size(0); ++i) rows.insert(at[i][0].item<int64_t>());
  return rows;
}

/// The float quantizers' QDQ graph (Cast pairs) in ONNX Runtime, optimizations disabled, against
/// the simulated outputs. The Casts are exact (ORT's Cast of ORT's own float32 values is torch's
/// cast of them, bit for bit); what differs comes from one element of relu2's 8-bit output, one
/// quantization step apart because ORT's convolution sums in another order than torch's and
/// conv2's float32 value lies on that quantizer's rounding boundary. With 8-bit quantizers after
/// it the step is absorbed (the W4A8 test above: 0 of 960); float16/bfloat16 casts keep ~11/8
/// significant bits and carry it to the logits of that image.
TEST(SimOnnxRuntime, FloatQuantizersQdqGraphDiffersOnlyDownstreamOfOneAffineStep) {
  QS_REQUIRE_ONNXRUNTIME();
  const Data data;
  FloatSimulation exported(data.sample);
  exported.calibrate(data.calibration);
  const auto dir = fresh_dir("float_ort");
  torch::NoGradGuard no_grad;
  const auto whole = [&](const std::vector<at::Tensor>& x) { return forward_of(exported.net, x); };
  const at::Tensor expected = exported(data.x);
  const at::Tensor ort = run_exported(*exported.sim, dir / "whole", data, whole);
  ASSERT_EQ(ort.sizes(), expected.sizes());

  // The float16 output Cast: the same cast in both, bit for bit, of each one's fc2 Gemm.
  auto output_cast = exported.net->fc2->output_quantizers[0];
  exported.net->fc2->output_quantizers[0] = nullptr;
  const at::Tensor sim_gemm = exported(data.x);
  const at::Tensor ort_gemm = run_exported(*exported.sim, dir / "gemm", data, whole);
  exported.net->fc2->output_quantizers[0] = output_cast;
  EXPECT_TRUE(torch::equal(sim_gemm.to(at::kHalf).to(at::kFloat), expected));
  EXPECT_TRUE(torch::equal(ort_gemm.to(at::kHalf).to(at::kFloat), ort));

  // conv2's input (conv1 -> bn1 -> relu1 and its 8-bit output quantizer -> pool1): bit-exact, so
  // the difference below arises in conv2.
  const auto conv2_input = [&](const std::vector<at::Tensor>& x) {
    auto& n = exported.net;
    return std::vector<at::Tensor>{n->pool1(n->relu1(n->bn1(n->conv1(x[0]))))};
  };
  EXPECT_TRUE(torch::equal(run_exported(*exported.sim, dir / "conv2_input", data, conv2_input),
                           conv2_input({data.x})[0]));

  // fc1's input: conv2 -> relu2 and its 8-bit output quantizer.
  const auto features = [&](const std::vector<at::Tensor>& x) {
    auto& n = exported.net;
    const auto y = n->pool1(n->relu1(n->bn1(n->conv1(x[0]))));
    return std::vector<at::Tensor>{n->flatten(n->relu2(n->conv2(y)))};
  };
  const at::Tensor sim_features = features({data.x})[0];
  const at::Tensor ort_features = run_exported(*exported.sim, dir / "features", data, features);
  const auto feature_differ = ort_features != sim_features;
  const double step = exported.net->relu2->output_quantizers[0]->get_scale()->item<double>();
  const auto feature_steps = (ort_features - sim_features).abs() / step;

  const auto differ = ort != expected;
  const auto rows = rows_of(differ);
  std::printf(
      "float16/bfloat16 QDQ graph, optimizations disabled: %ld of %ld outputs differ, in %zu "
      "image(s); relu2's 8-bit output (fc1's input): %ld of %ld differ, max %.6g steps\n",
      static_cast<long>(differ.sum().item<int64_t>()), static_cast<long>(expected.numel()),
      rows.size(), static_cast<long>(feature_differ.sum().item<int64_t>()),
      static_cast<long>(sim_features.numel()), feature_steps.max().item<double>());
  // Measured: 7 of 960 logits, all of image 35, whose feature 648 is one step apart (the only
  // feature that differs). Bounds: a few features, each exactly one step; no output differs in an
  // image whose features agree.
  EXPECT_LE(feature_differ.sum().item<int64_t>(), 3);
  EXPECT_LE((feature_steps - feature_differ.to(at::kFloat)).abs().max().item<double>(), 1e-3);
  for (const auto row : rows) EXPECT_TRUE(rows_of(feature_differ).count(row) == 1) << row;
  EXPECT_LE(differ.sum().item<int64_t>(), expected.numel() / 50);

  // Every optimization (ORT fuses the affine QDQ pairs into its integer kernels; the Casts stay).
  const auto fused = qs::testing::run_in_onnxruntime((dir / "whole" / "net_qdq.onnx").string(),
                                                     {{"input", data.x}}, OrtOptimization::kAll)
                         .at(0);
  const auto fused_differ = fused != expected;
  const auto same_class = (fused.argmax(1) == expected.argmax(1)).sum().item<int64_t>();
  std::printf(
      "float16/bfloat16 QDQ graph, every optimization: %ld of %ld outputs differ, in %zu "
      "image(s), max %.3g; top-1 class equal on %ld of %ld\n",
      static_cast<long>(fused_differ.sum().item<int64_t>()), static_cast<long>(expected.numel()),
      rows_of(fused_differ).size(), (fused - expected).abs().max().item<double>(),
      static_cast<long>(same_class), static_cast<long>(expected.size(0)));
  EXPECT_GE(same_class, expected.size(0) * 95 / 100);

  // Only the output float16 (the previous measurement's configuration): the same image.
  Simulation output_only(data.sample);
  output_only.net->fc2->output_quantizers[0] = qs::floating::FloatQuantizeDequantize(torch::kHalf);
  output_only.calibrate(data.calibration);
  const auto differ_output_only = run_exported(*output_only.sim, dir / "output_only", data,
                                               [&](const std::vector<at::Tensor>& x) {
                                                 return forward_of(output_only.net, x);
                                               }) != output_only(data.x);
  std::printf("only the output float16: %ld of %ld outputs differ\n",
              static_cast<long>(differ_output_only.sum().item<int64_t>()),
              static_cast<long>(expected.numel()));
  for (const auto row : rows_of(differ_output_only)) {
    EXPECT_TRUE(rows_of(feature_differ).count(row) == 1) << row;
  }
  fs::remove_all(dir);
}

}  // namespace
