// QuantizationSimModel::export_onnx (issue 11, item 4): the demo CNN and a residual block, as
// simulations, export <prefix>.onnx, <prefix>.encodings keyed by that graph's names (one entry per
// quantized tensor, 0.6.1 and 1.0.0), <prefix>_qdq.onnx and <prefix>_torch.encodings; the QDQ
// graph runs in ONNX Runtime to the simulated outputs; the graph-keyed encodings load into a fresh
// simulation, which then computes the same outputs bit-exactly; a failing export writes nothing.

#include "apps/quantsim/net.h"

#include <quantsim/sim/quantsim_model.h>

#include "testing/onnxruntime.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace quantsim::apps {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// conv-bn-relu-conv-bn plus the block's input (a quantized Add), then ReLU.
struct ResidualImpl : torch::nn::Module {
  ResidualImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1)))),
        bn1(register_module("bn1", nn::BatchNorm2d(4))),
        relu1(register_module("relu1", nn::ReLU())),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1)))),
        bn2(register_module("bn2", nn::BatchNorm2d(4))),
        add(register_module("add", nn::custom::Add())),
        relu2(register_module("relu2", nn::ReLU())) {}
  at::Tensor forward(const at::Tensor& x) {
    const auto y = bn2(conv2(relu1(bn1(conv1(x)))));
    return relu2(add(y, x));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::ReLU relu1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::custom::Add add;
  nn::ReLU relu2;
};
TORCH_MODULE(Residual);

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Every tensor name of the graph: inputs, outputs, initializers, node outputs.
std::set<std::string> graph_names(const fs::path& path) {
  ::onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(read(path))) << path;
  std::set<std::string> names;
  for (const auto& v : model.graph().input()) names.insert(v.name());
  for (const auto& v : model.graph().output()) names.insert(v.name());
  for (const auto& t : model.graph().initializer()) names.insert(t.name());
  for (const auto& n : model.graph().node()) {
    for (const auto& o : n.output()) names.insert(o);
  }
  return names;
}

/// Keys of a 0.6.1 section, or names of a 1.0.0 one, in file order.
std::vector<std::string> entry_names(const json& section) {
  std::vector<std::string> names;
  if (section.is_array()) {
    for (const auto& e : section) names.push_back(e.at("name"));
  } else {
    for (const auto& [k, v] : section.items()) names.push_back(k);
  }
  return names;
}

/// The simulation's model as an ONNX forward.
template <typename Holder>
std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)> forward_of(Holder& m) {
  return [module = m.ptr()](const std::vector<at::Tensor>& x) {
    return std::vector<at::Tensor>{module->forward(x[0])};
  };
}

/// A fresh model of the same kind with the same parameters and batch-norm statistics, its
/// simulation built the same way, and no quantizer initialized.
template <typename Holder>
struct Fixture {
  Holder model;
  std::unique_ptr<QuantizationSimModel> sim;
  Fixture(Holder m, const at::Tensor& sample) : model(std::move(m)) {
    model->eval();
    sim = std::make_unique<QuantizationSimModel>(model.ptr(), [&] {
      torch::NoGradGuard no_grad;
      model->forward(sample);
    });
  }
};

/// The export checks shared by both models: names, one entry per quantized tensor, ORT, reload.
template <typename Holder>
void check_export(const std::string& name, const std::function<Holder()>& make,
                  const at::Tensor& sample, const at::Tensor& calibration, const at::Tensor& x,
                  double output_step_of_sim, int64_t max_differing) {
  torch::manual_seed(0);
  Fixture<Holder> exported(make(), sample);
  exported.sim->compute_encodings([&] {
    torch::NoGradGuard no_grad;
    exported.model->forward(calibration);
  });
  const auto dir = fs::temp_directory_path() /
                   ("quantsim_sim_onnx_export_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto start = std::chrono::steady_clock::now();
  const auto quantized =
      exported.sim->export_onnx(dir.string(), name, {sample}, forward_of(exported.model));
  std::printf("%s: export_onnx (4 files) %.3f s\n", name.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  for (const auto* file : {".onnx", ".encodings", "_qdq.onnx", "_torch.encodings"}) {
    EXPECT_TRUE(fs::exists(dir / (name + file))) << name + file;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 4);

  // Keys: exactly the graph's names, one per quantized tensor.
  const auto names = graph_names(dir / (name + ".onnx"));
  std::set<std::string> quantized_tensors;
  for (const auto& [path, tensor] : quantized) quantized_tensors.insert(tensor);
  const auto encodings = json::parse(read(dir / (name + ".encodings")));
  EXPECT_EQ(encodings.at("version"), "0.6.1");
  std::vector<std::string> keys = entry_names(encodings.at("activation_encodings"));
  for (const auto& k : entry_names(encodings.at("param_encodings"))) keys.push_back(k);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), quantized_tensors);
  EXPECT_EQ(keys.size(), quantized_tensors.size());  // no name twice
  std::printf("%s: %zu quantizers, %zu quantized tensors, %zu entries\n", name.c_str(),
              quantized.size(), quantized_tensors.size(), keys.size());
  for (const auto& k : keys) EXPECT_EQ(names.count(k), 1u) << k << " is not in " << name << ".onnx";
  // Every parameter entry names an initializer.
  ::onnx::ModelProto float_model;
  ASSERT_TRUE(float_model.ParseFromString(read(dir / (name + ".onnx"))));
  std::set<std::string> initializers;
  for (const auto& t : float_model.graph().initializer()) initializers.insert(t.name());
  for (const auto& k : entry_names(encodings.at("param_encodings"))) {
    EXPECT_EQ(initializers.count(k), 1u) << k;
  }

  // 1.0.0: the same names, as lists.
  const auto dir_1_0_0 = dir / "v1";
  exported.sim->export_onnx(dir_1_0_0.string(), name, {sample}, forward_of(exported.model),
                            EncodingVersion::k1_0_0);
  const auto encodings_1_0_0 = json::parse(read(dir_1_0_0 / (name + ".encodings")));
  EXPECT_EQ(encodings_1_0_0.at("version"), "1.0.0");
  const auto as_set = [](const std::vector<std::string>& v) {
    return std::multiset<std::string>(v.begin(), v.end());
  };
  EXPECT_EQ(as_set(entry_names(encodings_1_0_0.at("activation_encodings"))),
            as_set(entry_names(encodings.at("activation_encodings"))));
  EXPECT_EQ(as_set(entry_names(encodings_1_0_0.at("param_encodings"))),
            as_set(entry_names(encodings.at("param_encodings"))));

  torch::NoGradGuard no_grad;
  const at::Tensor expected = exported.model->forward(x);

  // A fresh simulation of the same model (same parameters), no quantizer initialized, loads the
  // graph-keyed file and computes the same outputs.
  Fixture<Holder> loaded(make(), sample);
  {
    // Parameters and batch-norm statistics only: the quantizers stay uninitialized.
    auto source = exported.model->named_parameters();
    for (auto& item : loaded.model->named_parameters()) {
      if (item.key().find("_quantizers.") == std::string::npos) {
        item.value().copy_(source[item.key()]);
      }
    }
    auto buffers = exported.model->named_buffers();
    for (auto& item : loaded.model->named_buffers()) {
      if (item.key().find("_quantizers.") == std::string::npos) {
        item.value().copy_(buffers[item.key()]);
      }
    }
  }
  loaded.sim->load_onnx_encodings((dir / (name + ".encodings")).string(),
                                  (dir / (name + ".onnx")).string());
  const at::Tensor reloaded = loaded.model->forward(x);
  EXPECT_TRUE(torch::equal(reloaded, expected)) << (reloaded - expected).abs().max();

  // ONNX Runtime, optimizations disabled: the QDQ graph computes the simulated outputs, within
  // one output step on few elements (the runtime's conv/Gemm summation order, docs/onnx.md §4).
  {
    const auto ort = quantsim::testing::run_in_onnxruntime(
        (dir / (name + "_qdq.onnx")).string(), quantsim::testing::OrtInputs{{"input", x}},
        quantsim::testing::OrtOptimization::kDisabled);
    const auto diff = (ort.at(0) - expected).abs();
    const auto differing = (diff > 0).sum().item<int64_t>();
    std::printf("%s: ORT (no optimizations) differs on %ld of %ld outputs, max %.3g (step %.3g)\n",
                name.c_str(), static_cast<long>(differing), static_cast<long>(expected.numel()),
                diff.max().item<double>(), output_step_of_sim);
    EXPECT_LE(diff.max().item<double>(), output_step_of_sim * 1.0001);
    EXPECT_LE(differing, max_differing);
  }
  fs::remove_all(dir);
}

TEST(SimOnnxExport, DemoNetW8A8) {
  QS_REQUIRE_ONNXRUNTIME();
  std::shared_ptr<NetImpl> last;
  const std::function<Net()> make = [&] {
    torch::manual_seed(0);
    Net net;
    {
      torch::NoGradGuard no_grad;
      net->train();
      for (int i = 0; i < 2; ++i) net->forward(torch::randn({32, 1, 28, 28}));
    }
    last = net.ptr();
    return net;
  };
  torch::manual_seed(1);
  const auto sample = torch::randn({2, 1, 28, 28});
  const auto calibration = torch::randn({64, 1, 28, 28});
  const auto x = torch::randn({128, 1, 28, 28});
  // The logits' step: fc2's output quantizer, read from a calibrated copy.
  Net probe = make();
  probe->eval();
  QuantizationSimModel sim(probe.ptr(), [&] { probe->forward(sample); });
  sim.compute_encodings([&] { probe->forward(calibration); });
  const double step = probe->fc2->output_quantizers[0]->get_scale()->item<double>();
  check_export<Net>("net", make, sample, calibration, x, step, x.size(0) * 10 / 20);
}

TEST(SimOnnxExport, ResidualBlockW8A8) {
  QS_REQUIRE_ONNXRUNTIME();
  const std::function<Residual()> make = [] {
    torch::manual_seed(0);
    Residual block;
    {
      torch::NoGradGuard no_grad;
      block->train();
      for (int i = 0; i < 2; ++i) block->forward(torch::randn({16, 4, 6, 6}));
    }
    return block;
  };
  torch::manual_seed(1);
  const auto sample = torch::randn({2, 4, 6, 6});
  const auto calibration = torch::randn({32, 4, 6, 6});
  const auto x = torch::randn({8, 4, 6, 6});
  Residual probe = make();
  probe->eval();
  QuantizationSimModel sim(probe.ptr(), [&] { probe->forward(sample); });
  sim.compute_encodings([&] { probe->forward(calibration); });
  const double step = probe->relu2->output_quantizers[0]->get_scale()->item<double>();
  check_export<Residual>("residual", make, sample, calibration, x, step, x.numel() / 20);
}

TEST(SimOnnxExport, FailingExportLeavesEarlierFilesIntact) {
  torch::manual_seed(0);
  Residual block;
  block->eval();
  const auto sample = torch::randn({2, 4, 6, 6});
  QuantizationSimModel sim(block.ptr(), [&] { block->forward(sample); });
  sim.compute_encodings([&] { block->forward(torch::randn({16, 4, 6, 6})); });
  const auto dir =
      fs::temp_directory_path() / ("quantsim_sim_onnx_export_fail_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  sim.export_onnx(dir.string(), "block", {sample}, forward_of(block));
  std::map<std::string, std::string> before;
  for (const auto& entry : fs::directory_iterator(dir)) {
    before[entry.path().filename().string()] = read(entry.path());
  }
  ASSERT_EQ(before.size(), 4u);

  // A quantizer without an encoding: an error naming it, before anything is written.
  Residual other;
  other->eval();
  QuantizationSimModel uncalibrated(other.ptr(), [&] { other->forward(sample); });
  try {
    uncalibrated.export_onnx(dir.string(), "block", {sample}, forward_of(other));
    FAIL() << "an uninitialized quantizer exported";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no encoding"), std::string::npos) << e.what();
  }
  // An op without ONNX translation, after the quantizers: nothing written either.
  const auto unsupported = [&](const std::vector<at::Tensor>& x) {
    return std::vector<at::Tensor>{torch::fft_fft(block->forward(x[0])).abs()};
  };
  try {
    sim.export_onnx(dir.string(), "block", {sample}, unsupported);
    FAIL() << "an op without ONNX translation exported";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("aten::fft_fft"), std::string::npos) << e.what();
  }
  // A directory that cannot be written (its path is a file): an error naming it.
  const auto file = (dir / "block.encodings").string();
  try {
    sim.export_onnx(file, "block", {sample}, forward_of(block));
    FAIL() << "exported into a file";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
  std::map<std::string, std::string> after;
  for (const auto& entry : fs::directory_iterator(dir)) {
    after[entry.path().filename().string()] = read(entry.path());
  }
  EXPECT_EQ(after, before);  // same files (no temporaries left), byte-identical
  fs::remove_all(dir);
}

TEST(SimOnnxExport, GraphKeyedLoadRefusesWhatItCannotMap) {
  torch::manual_seed(0);
  Residual block;
  block->eval();
  const auto sample = torch::randn({2, 4, 6, 6});
  QuantizationSimModel sim(block.ptr(), [&] { block->forward(sample); });
  sim.compute_encodings([&] { block->forward(torch::randn({16, 4, 6, 6})); });
  const auto dir =
      fs::temp_directory_path() / ("quantsim_sim_onnx_load_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  sim.export_onnx(dir.string(), "b", {sample}, forward_of(block));
  sim.export_onnx((dir / "v1").string(), "b", {sample}, forward_of(block), EncodingVersion::k1_0_0);
  const auto encodings = (dir / "b.encodings").string();
  const auto graph = (dir / "b.onnx").string();
  const auto message_of_load = [&](const std::string& encodings_path,
                                   const std::string& onnx_path) -> std::string {
    try {
      sim.load_onnx_encodings(encodings_path, onnx_path);
    } catch (const c10::Error& e) {
      return e.what();
    }
    return "";
  };
  // The QDQ graph records no quantizer -> tensor map.
  EXPECT_NE(message_of_load(encodings, (dir / "b_qdq.onnx").string()).find("has no metadata"),
            std::string::npos);
  // The 1.0.0 file loads too (bit-exactly: tests/onnx/sim_export_onnxruntime_test.cpp).
  EXPECT_EQ(
      message_of_load((dir / "v1" / "b.encodings").string(), (dir / "v1" / "b.onnx").string()), "");
  // A name no quantizer quantizes.
  auto doc = json::parse(read(encodings));
  doc["activation_encodings"]["not_a_tensor"] = doc["activation_encodings"]["input"];
  const auto edited = (dir / "edited.encodings").string();
  std::ofstream(edited) << doc.dump();
  EXPECT_NE(message_of_load(edited, graph)
                .find("activation_encodings[\"not_a_tensor\"]: no quantizer of the model"),
            std::string::npos)
      << message_of_load(edited, graph);
  // A parameter's tensor under activation_encodings.
  doc = json::parse(read(encodings));
  doc["activation_encodings"]["conv1.weight"] = doc["activation_encodings"]["input"];
  std::ofstream(edited) << doc.dump();
  EXPECT_NE(message_of_load(edited, graph).find("the tensor is a parameter"), std::string::npos)
      << message_of_load(edited, graph);
  // The file as written loads.
  EXPECT_EQ(message_of_load(encodings, graph), "");
  fs::remove_all(dir);
}

/// A depthwise conv whose quantized output feeds an AvgPool configured with is_input_quantized:
/// two quantizers in a row on one tensor (docs/quantization.md §11.4).
struct DepthwisePoolImpl : torch::nn::Module {
  DepthwisePoolImpl() {
    register_module("dw", dw);
    register_module("pool", pool);
  }
  at::Tensor forward(const at::Tensor& x) { return pool(dw(x)); }
  quantsim::nn::FakeQuantizedConv2d dw{torch::nn::Conv2dOptions(4, 4, 3).groups(4).padding(1)};
  quantsim::nn::FakeQuantizedAvgPool2d pool{2};
};
TORCH_MODULE(DepthwisePool);

TEST(SimOnnxExport, TwoQuantizersOfOneTensorGiveOneEntryUnderAGraphName) {
  torch::manual_seed(4);
  DepthwisePool net;
  net->eval();
  const auto x = torch::randn({2, 4, 6, 6});
  auto config = QuantsimConfig::default_json();
  config["op_type"] = {{"AveragePool", {{"is_input_quantized", "True"}}}};
  QuantizationSimModel sim(
      net.ptr(), [&] { net(x); }, SimOptions().config(QuantsimConfig::parse(config)));
  ASSERT_TRUE(static_cast<bool>(net->dw->output_quantizers[0]));
  ASSERT_TRUE(static_cast<bool>(net->pool->input_quantizers[0]));
  sim.compute_encodings([&] { net(torch::randn({8, 4, 6, 6})); });
  const auto dir =
      fs::temp_directory_path() / ("quantsim_sim_onnx_dwpool_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto quantized = sim.export_onnx(dir.string(), "m", {x}, forward_of(net));
  const auto names = graph_names(dir / "m.onnx");
  const auto encodings = json::parse(read(dir / "m.encodings"));
  for (const auto& k : entry_names(encodings.at("activation_encodings"))) {
    EXPECT_EQ(names.count(k), 1u) << k << " is not in m.onnx";
  }
  std::set<std::string> tensors;
  for (const auto& [path, tensor] : quantized) tensors.insert(tensor);
  EXPECT_EQ(entry_names(encodings.at("activation_encodings")).size() +
                entry_names(encodings.at("param_encodings")).size(),
            tensors.size());
  std::printf("depthwise -> pool: %zu quantizers, %zu tensors; dw output -> %s, pool input -> %s\n",
              quantized.size(), tensors.size(), quantized.at("dw.output_quantizers.0").c_str(),
              quantized.at("pool.input_quantizers.0").c_str());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantsim::apps
