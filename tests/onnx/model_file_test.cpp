// The ONNX exporter's file layer (src/onnx/model_file.h): models carry quantsim's opset, are
// checked by libonnx's checker before anything is written, and are written atomically.

#include "onnx/model_file.h"
#include "onnx/graph_builder.h"
#include "testing/files.h"
#include "testing/onnxruntime.h"
#include "testing/tolerance.h"

#include <onnx/checker.h>

#include <filesystem>

namespace {

namespace fs = std::filesystem;
namespace ox = quantsim::onnx_export;

/// y = Relu(x), x of shape (batch, 3).
onnx::GraphProto relu_graph() {
  onnx::GraphProto graph;
  graph.set_name("relu");
  ox::set_value_info(*graph.add_input(), "x", at::kFloat, {-1, 3});
  ox::set_value_info(*graph.add_output(), "y", at::kFloat, {-1, 3});
  ox::add_node(graph, "Relu", {"x"}, {"y"}, "relu");
  return graph;
}

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qs_model_file_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ModelFile, WritesACheckedModelOfQuantsimsOpset) {
  const auto path = (dir_ / "relu.onnx").string();
  ox::write_model(ox::make_model(relu_graph(), ox::kCheckedOpset), path);
  onnx::ModelProto read;
  ASSERT_TRUE(read.ParseFromString(quantsim::testing::read_file(path)));
  EXPECT_EQ(read.ir_version(), 8);
  ASSERT_EQ(read.opset_import_size(), 1);
  EXPECT_EQ(read.opset_import(0).domain(), "");
  EXPECT_EQ(read.opset_import(0).version(), 17);
  EXPECT_EQ(read.producer_name(), "quantsim");
  EXPECT_NO_THROW(onnx::checker::check_model(read));
  // Only the model: no temporary file is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ModelFile, ARejectedModelWritesNothingAndKeepsTheEarlierFile) {
  const auto path = (dir_ / "model.onnx").string();
  quantsim::testing::write_text(path, "earlier export");
  onnx::GraphProto graph = relu_graph();
  ox::add_node(graph, "NoSuchOperator", {"y"}, {"z"}, "bad");
  try {
    ox::write_model(ox::make_model(graph, ox::kCheckedOpset), path);
    FAIL() << "the checker accepted an unknown operator";
  } catch (const c10::ValueError& e) {
    const std::string message = e.what_without_backtrace();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("NoSuchOperator"), std::string::npos) << message;
  }
  EXPECT_EQ(quantsim::testing::read_file(path), "earlier export");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ModelFile, AnUnwritableDirectoryIsAnErrorNamingThePath) {
  const auto path = (dir_ / "missing" / "model.onnx").string();
  try {
    ox::write_model(ox::make_model(relu_graph(), ox::kCheckedOpset), path);
    FAIL() << "wrote into a directory that does not exist";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find(path), std::string::npos)
        << e.what_without_backtrace();
  }
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

TEST_F(ModelFile, OnlyQuantsimsOpsetIsAccepted) {
  EXPECT_THROW(ox::make_model(relu_graph(), 13), c10::ValueError);
}

TEST_F(ModelFile, RunsInOnnxRuntimeManyBatchesInOneProcess) {
  QS_REQUIRE_ONNXRUNTIME();
  const auto path = (dir_ / "relu.onnx").string();
  ox::write_model(ox::make_model(relu_graph(), ox::kCheckedOpset), path);
  // Batch sizes 1, 5 and 1000 through the dynamic batch dim, one Node process.
  std::vector<quantsim::testing::OrtInputs> runs;
  for (const int64_t batch : {1, 5, 1000}) runs.push_back({{"x", at::randn({batch, 3})}});
  const auto outputs =
      quantsim::testing::run_in_onnxruntime(path, runs, quantsim::testing::OrtOptimization::kAll);
  ASSERT_EQ(outputs.size(), 3u);
  for (size_t i = 0; i < runs.size(); ++i) {
    ASSERT_EQ(outputs[i].size(), 1u);
    EXPECT_TRUE(quantsim::testing::bitwise_equal(outputs[i][0], at::relu(runs[i][0].second)));
  }
}

TEST_F(ModelFile, TheRuntimesErrorsReachTheCaller) {
  QS_REQUIRE_ONNXRUNTIME();
  const auto path = (dir_ / "relu.onnx").string();
  ox::write_model(ox::make_model(relu_graph(), ox::kCheckedOpset), path);
  try {
    quantsim::testing::run_in_onnxruntime(path, {{"x", at::randn({2, 4})}});
    FAIL() << "ONNX Runtime accepted an input of the wrong shape";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("ONNX Runtime failed"),
              std::string::npos)
        << e.what_without_backtrace();
  }
}

}  // namespace
