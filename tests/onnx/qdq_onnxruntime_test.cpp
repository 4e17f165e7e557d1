// quantsim's quantizers as ONNX nodes (src/onnx/qdq.h), run in ONNX Runtime with its graph
// optimizations disabled: each quantizer's output equals quantsim's quantize_dequantize bit for
// bit, over a sweep of granularities (per tensor, per channel on every axis, blockwise, LPBQ),
// bitwidths 1-16, symmetric and asymmetric grids, on inputs at rounding ties and beyond the range.
// All the quantizers of a test are nodes of one model run in one ONNX Runtime process.

#include "onnx/graph_builder.h"
#include "onnx/model_file.h"
#include "onnx/qdq.h"
#include "testing/onnxruntime.h"
#include "testing/tolerance.h"

#include <quantsim/affine/functional.h>
#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/floating/functional.h>
#include <quantsim/floating/quantizer.h>

#include <filesystem>
#include <random>

namespace {

namespace qs = quantsim;
namespace ox = quantsim::onnx_export;
using qs::affine::AffineEncoding;
using qs::affine::Grid;
using qs::testing::OrtOptimization;

/// One quantizer of the sweep: a tensor named `input` (graph input, or a weight initializer), its
/// encoding and what quantsim computes for it.
struct QdqCase {
  std::string label;
  at::Tensor x;
  std::shared_ptr<AffineEncoding> encoding;
  std::vector<int64_t> export_shape;  // -1: dynamic dim
  bool weight = false;
  at::Tensor expected() const {
    return qs::affine::quantize_dequantize(x, encoding->scale(), encoding->offset(),
                                           encoding->qmin(), encoding->qmax(),
                                           encoding->block_size());
  }
};

/// Values of x / s at and around every grid point, at ties (k + 0.5) and far outside the grid,
/// times the (broadcast) scale, plus infinities.
at::Tensor probing_input(const std::vector<int64_t>& shape, const AffineEncoding& encoding,
                         std::mt19937& rng) {
  const int64_t n = c10::multiply_integers(shape);
  std::uniform_int_distribution<int64_t> level(encoding.qmin() - 3, encoding.qmax() + 3);
  std::uniform_int_distribution<int> kind(0, 9);
  std::vector<float> t(n);
  for (auto& v : t) {
    const int k = kind(rng);
    const double base = static_cast<double>(level(rng));
    v = static_cast<float>(k < 4 ? base + 0.5 : k < 7 ? base : k < 8 ? base + 0.25 : base * 40.0);
  }
  at::Tensor grid_values = at::tensor(t).reshape(shape);
  // x = (t + o) * s in quantsim's layout, so that x / s lands on (or next to) t - o + o.
  const at::Tensor ones = at::ones(shape);
  const at::Tensor s = qs::affine::dequantize(
      ones, encoding.scale(), at::zeros_like(encoding.offset()), encoding.block_size());
  const at::Tensor o = qs::affine::dequantize(ones, at::ones_like(encoding.scale()),
                                              encoding.offset(), encoding.block_size()) -
                       1.0f;
  at::Tensor x = (grid_values + o) * s;
  x.view({-1})[0] = std::numeric_limits<float>::infinity();
  if (n > 1) x.view({-1})[1] = -std::numeric_limits<float>::infinity();
  return x;
}

/// An encoding of `scale_shape` with random scales (some powers of two, whose ties are exact),
/// offset 0 on a signed grid when symmetric, random integer offsets on an unsigned one otherwise.
std::shared_ptr<AffineEncoding> random_encoding(const std::vector<int64_t>& scale_shape,
                                                int64_t bitwidth, bool symmetric,
                                                std::vector<int64_t> block_size,
                                                std::mt19937& rng) {
  const Grid grid = Grid::from_bitwidth(bitwidth, /*is_signed=*/symmetric);
  const at::Tensor exponent = at::randint(-8, 2, scale_shape, at::kFloat);
  const at::Tensor mantissa = at::rand(scale_shape) + 1.0f;
  const bool power_of_two = rng() % 2 == 0;
  const at::Tensor scale =
      power_of_two ? at::pow(2.0f, exponent) : mantissa * at::pow(2.0f, exponent);
  at::Tensor offset = at::zeros(scale_shape);
  if (!symmetric) {
    offset = -at::randint(grid.qmin, grid.qmax + 1, scale_shape, at::kFloat);
  }
  return std::make_shared<AffineEncoding>(scale, offset, grid, symmetric, std::move(block_size));
}

/// Writes one model holding every case (activations as graph inputs x<i>, weights as
/// initializers) with outputs y<i>, runs it in ONNX Runtime and compares each output with
/// quantsim's.
void expect_onnxruntime_equals_quantsim(const std::vector<QdqCase>& cases) {
  const OrtOptimization level = OrtOptimization::kDisabled;
  onnx::GraphProto graph;
  graph.set_name("quantizers");
  qs::testing::OrtInputs feeds;
  for (size_t i = 0; i < cases.size(); ++i) {
    const QdqCase& c = cases[i];
    const std::string input = "x" + std::to_string(i), output = "y" + std::to_string(i);
    if (c.weight) {
      ox::append_quantized_weight(graph, c.x, output, *c.encoding, "w" + std::to_string(i));
    } else {
      ox::set_value_info(*graph.add_input(), input, at::kFloat, c.export_shape);
      ox::append_quantize_dequantize(graph, input, output, *c.encoding, c.export_shape,
                                     "q" + std::to_string(i));
      feeds.emplace_back(input, c.x);
    }
    ox::set_value_info(*graph.add_output(), output, at::kFloat, c.export_shape);
  }
  const auto path =
      std::filesystem::temp_directory_path() / ("qdq_ort_" + std::to_string(::getpid()) + ".onnx");
  ox::write_model(ox::make_model(graph, ox::kCheckedOpset), path.string());
  // The same model twice in one process: as written, and with every graph optimization.
  const auto outputs = qs::testing::run_in_onnxruntime(
      path.string(), std::vector<qs::testing::OrtInputs>{feeds, feeds}, level);
  const auto optimized =
      qs::testing::run_in_onnxruntime(path.string(), feeds, OrtOptimization::kAll);
  std::filesystem::remove(path);
  ASSERT_EQ(outputs.size(), 2u);
  ASSERT_EQ(outputs[0].size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].label);
    const at::Tensor expected = cases[i].expected();
    EXPECT_TRUE(qs::testing::bitwise_equal(outputs[0][i], expected));
    EXPECT_TRUE(qs::testing::bitwise_equal(outputs[1][i], expected)) << "second run";
    // With every optimization ORT drops the float arithmetic's Sub/Add of a zero offset
    // (symmetric 9-16-bit grids), so a value that rounds to -0 stays -0 where eq. (2)'s q + o
    // makes it +0 (docs/onnx.md §4): equal as numbers, not always bit for bit.
    EXPECT_TRUE(at::equal(optimized[i], expected)) << "optimizations on";
  }
}

TEST(QdqOnnxRuntime, PerTensorEveryBitwidthSymmetricAndAsymmetric) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(1);
  std::vector<QdqCase> cases;
  for (int64_t bitwidth = 1; bitwidth <= 16; ++bitwidth) {
    for (const bool symmetric : {false, true}) {
      if (symmetric && bitwidth == 1) continue;  // a 1-step symmetric grid is refused
      auto encoding = random_encoding({}, bitwidth, symmetric, {}, rng);
      const std::vector<int64_t> shape = {3, 4, 50};
      cases.push_back({c10::str("per-tensor ", bitwidth, " bits, symmetric ", symmetric),
                       probing_input(shape, *encoding, rng),
                       encoding,
                       {-1, 4, 50}});
    }
  }
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, PerChannelOnEveryAxis) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(2);
  std::vector<QdqCase> cases;
  const std::vector<int64_t> shape = {2, 3, 4, 5};
  for (int64_t axis = 0; axis < 4; ++axis) {
    for (const int64_t bitwidth : {2, 4, 8, 12, 16}) {
      for (const bool symmetric : {false, true}) {
        std::vector<int64_t> scale_shape(4, 1);
        scale_shape[axis] = shape[axis];
        auto encoding = random_encoding(scale_shape, bitwidth, symmetric, {}, rng);
        std::vector<int64_t> export_shape = shape;
        if (axis != 0) export_shape[0] = -1;  // the batch stays dynamic
        cases.push_back({c10::str("axis ", axis, ", ", bitwidth, " bits, symmetric ", symmetric),
                         probing_input(shape, *encoding, rng), encoding, export_shape});
      }
    }
  }
  // A scale of lower rank than the tensor (right-aligned, as a Linear's (C, 1) on a 3-D input).
  auto encoding = random_encoding({6, 1}, 8, false, {}, rng);
  cases.push_back({"scale (6, 1) on (-1, 6, 7)",
                   probing_input({3, 6, 7}, *encoding, rng),
                   encoding,
                   {-1, 6, 7}});
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, BlockwiseAndBroadcastScales) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(3);
  std::vector<QdqCase> cases;
  struct Blocks {
    std::vector<int64_t> shape, scale_shape, block_size, export_shape;
  };
  const std::vector<Blocks> layouts = {
      {{8, 16}, {8, 4}, {1, 4}, {8, 16}},    // Linear weight, blocks of 4 inputs
      {{8, 16}, {2, 4}, {4, 4}, {8, 16}},    // 2-D blocks
      {{8, 16}, {8, 2}, {-1, -1}, {8, 16}},  // -1: the whole dim per scale
      {{6, 8, 3, 3}, {6, 2, 1, 1}, {1, 4, 3, 3}, {6, 8, 3, 3}},  // Conv2d weight
      {{5, 4, 12}, {4, 3}, {1, 4}, {-1, 4, 12}},                 // activations, dynamic batch
      {{2, 3, 4, 5}, {3, 1, 5}, {}, {-1, 3, 4, 5}},              // broadcast scale over two dims
  };
  for (const auto& layout : layouts) {
    for (const int64_t bitwidth : {3, 4, 8, 9, 16}) {
      for (const bool symmetric : {false, true}) {
        auto encoding =
            random_encoding(layout.scale_shape, bitwidth, symmetric, layout.block_size, rng);
        cases.push_back(
            {c10::str("shape ", layout.shape, " scale ", layout.scale_shape, " blocks ",
                      layout.block_size, ", ", bitwidth, " bits, symmetric ", symmetric),
             probing_input(layout.shape, *encoding, rng), encoding, layout.export_shape});
      }
    }
  }
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, WeightsAsIntegerInitializers) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(4);
  std::vector<QdqCase> cases;
  struct Layout {
    std::vector<int64_t> shape, scale_shape, block_size;
  };
  const std::vector<Layout> layouts = {
      {{8, 16}, {}, {}},
      {{8, 16}, {8, 1}, {}},
      {{4, 6, 3, 3}, {1, 6, 1, 1}, {}},  // ConvTranspose2d: output channels on dim 1
      {{8, 16}, {8, 4}, {1, 4}},
      {{6, 8, 3, 3}, {6, 2, 1, 1}, {1, 4, 3, 3}},
  };
  for (const auto& layout : layouts) {
    for (const int64_t bitwidth : {1, 2, 4, 8, 10, 16}) {
      for (const bool symmetric : {false, true}) {
        if (symmetric && bitwidth == 1) continue;
        auto encoding =
            random_encoding(layout.scale_shape, bitwidth, symmetric, layout.block_size, rng);
        cases.push_back(
            {c10::str("weight ", layout.shape, " scale ", layout.scale_shape, " blocks ",
                      layout.block_size, ", ", bitwidth, " bits, symmetric ", symmetric),
             probing_input(layout.shape, *encoding, rng), encoding, layout.shape,
             /*weight=*/true});
      }
    }
  }
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, GroupedBlockQuantizerThroughItsFinalScales) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(5);
  std::vector<QdqCase> cases;
  for (const int64_t bitwidth : {4, 8}) {
    qs::affine::GroupedBlockQuantizeDequantize lpbq({8, 4}, bitwidth, /*symmetric=*/true,
                                                    /*decompressed_bw=*/bitwidth + 4, {1, 4},
                                                    {1, -1});
    const at::Tensor w = at::randn({8, 16});
    lpbq->compute_encodings([&] { lpbq(w); });
    auto encoding = std::dynamic_pointer_cast<AffineEncoding>(lpbq->get_encoding());
    ASSERT_TRUE(encoding);
    // The quantizer itself is what the exported nodes must reproduce.
    ASSERT_TRUE(qs::testing::bitwise_equal(lpbq(w), QdqCase{"", w, encoding, {}}.expected()));
    cases.push_back({c10::str("LPBQ weight, ", bitwidth, " bits"), w, encoding, {8, 16}, true});
    const at::Tensor x = probing_input({8, 16}, *encoding, rng);
    cases.push_back({c10::str("LPBQ activation, ", bitwidth, " bits"), x, encoding, {8, 16}});
  }
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, NarrowGridsAndZeroPointsBeyondTheStorageType) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(6);
  std::vector<QdqCase> cases;
  // "Strict symmetric" [-127, 127]: int8 storage clipped to it.
  auto strict =
      std::make_shared<AffineEncoding>(at::tensor(0.03f), at::tensor(0.f), Grid{-127, 127}, true);
  cases.push_back({"grid [-127, 127]", probing_input({4, 40}, *strict, rng), strict, {-1, 40}});
  // An unsigned 8-bit grid whose zero point is beyond uint8 (range not containing 0): wider
  // arithmetic.
  auto shifted = std::make_shared<AffineEncoding>(at::tensor(0.5f), at::tensor(20.f),
                                                  Grid::from_bitwidth(8, false), false);
  cases.push_back(
      {"offset 20 on [0, 255]", probing_input({4, 40}, *shifted, rng), shifted, {-1, 40}});
  expect_onnxruntime_equals_quantsim(cases);
}

TEST(QdqOnnxRuntime, QuantizeAndDequantizeAsSeparateNodes) {
  QS_REQUIRE_ONNXRUNTIME();
  std::mt19937 rng(7);
  struct Layout {
    std::vector<int64_t> shape, scale_shape, block_size, export_shape;
    int64_t bitwidth;
    bool symmetric;
  };
  const std::vector<Layout> layouts = {
      {{4, 30}, {}, {}, {-1, 30}, 4, false},
      {{2, 3, 4, 5}, {3, 1, 1}, {}, {-1, 3, 4, 5}, 8, true},
      {{8, 16}, {8, 4}, {1, 4}, {8, 16}, 12, false},
      {{8, 16}, {8, 4}, {1, 4}, {8, 16}, 3, true},
  };
  onnx::GraphProto graph;
  graph.set_name("quantize_dequantize");
  qs::testing::OrtInputs feeds;
  std::vector<at::Tensor> expected;
  for (size_t i = 0; i < layouts.size(); ++i) {
    const Layout& l = layouts[i];
    const auto encoding =
        random_encoding(l.scale_shape, l.bitwidth, l.symmetric, l.block_size, rng);
    const at::Tensor x = probing_input(l.shape, *encoding, rng);
    const std::string n = std::to_string(i);
    ox::set_value_info(*graph.add_input(), "x" + n, at::kFloat, l.export_shape);
    ox::append_quantize(graph, "x" + n, "q" + n, *encoding, l.export_shape, "quantize" + n);
    ox::append_dequantize(graph, "q" + n, "d" + n, *encoding, l.export_shape, "dequantize" + n);
    ox::set_value_info(*graph.add_output(), "q" + n, at::kFloat, l.export_shape);
    ox::set_value_info(*graph.add_output(), "d" + n, at::kFloat, l.export_shape);
    feeds.emplace_back("x" + n, x);
    const at::Tensor q = qs::affine::quantize(x, encoding->scale(), encoding->offset(),
                                              encoding->qmin(), encoding->qmax(), l.block_size);
    expected.push_back(q);
    expected.push_back(
        qs::affine::dequantize(q, encoding->scale(), encoding->offset(), l.block_size));
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("qdq_ort_split_" + std::to_string(::getpid()) + ".onnx");
  ox::write_model(ox::make_model(graph, ox::kCheckedOpset), path.string());
  const auto outputs = qs::testing::run_in_onnxruntime(path.string(), feeds);
  std::filesystem::remove(path);
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(c10::str(i % 2 == 0 ? "quantize" : "dequantize", " of layout ", i / 2));
    if (i % 2 == 0) {
      // Integers carry no sign of zero: where round(x / s) - o is -0 (x in (-s/2, 0), o = 0)
      // quantsim's float grid value is -0 and the runtime's +0 (docs/onnx.md §4).
      EXPECT_TRUE(at::equal(outputs[i], expected[i]));
      EXPECT_TRUE(qs::testing::bitwise_equal(outputs[i], expected[i] + 0.0f));
    } else {
      EXPECT_TRUE(qs::testing::bitwise_equal(outputs[i], expected[i]));
    }
  }
}

TEST(QdqOnnxRuntime, QuantizerModulesAsTheyCompute) {
  QS_REQUIRE_ONNXRUNTIME();
  const at::Tensor x = at::randn({3, 4, 5, 5}) * 3;
  const at::Tensor w = at::randn({4, 8});
  qs::affine::QuantizeDequantize per_tensor({}, 8, /*symmetric=*/false);
  qs::affine::QuantizeDequantize per_channel({4, 1, 1}, 4, /*symmetric=*/true);
  qs::affine::QuantizeDequantize weight_quantizer({4, 1}, 6, /*symmetric=*/true);
  qs::floating::FloatQuantizeDequantize half(torch::kHalf);
  per_tensor->compute_encodings([&] { per_tensor(x); });
  per_channel->compute_encodings([&] { per_channel(x); });
  weight_quantizer->compute_encodings([&] { weight_quantizer(w); });

  onnx::GraphProto graph;
  graph.set_name("modules");
  const std::vector<int64_t> shape = {-1, 4, 5, 5};
  ox::set_value_info(*graph.add_input(), "x", at::kFloat, shape);
  ox::append_quantizer(graph, "x", "y0", *per_tensor, shape, "per_tensor");
  ox::append_quantizer(graph, "x", "y1", *per_channel, shape, "per_channel");
  ox::append_quantizer(graph, "x", "y2", *half, shape, "half");
  ox::append_quantized_weight(graph, w, "w0", *weight_quantizer, "fc.weight");
  ox::append_quantized_weight(graph, w, "w1", *half, "fc2.weight");
  for (const char* y : {"y0", "y1", "y2"}) {
    ox::set_value_info(*graph.add_output(), y, at::kFloat, shape);
  }
  for (const char* y : {"w0", "w1"}) ox::set_value_info(*graph.add_output(), y, at::kFloat, {4, 8});
  const auto path = std::filesystem::temp_directory_path() /
                    ("qdq_ort_modules_" + std::to_string(::getpid()) + ".onnx");
  ox::write_model(ox::make_model(graph, ox::kCheckedOpset), path.string());
  const auto outputs = qs::testing::run_in_onnxruntime(path.string(), {{"x", x}});
  std::filesystem::remove(path);
  ASSERT_EQ(outputs.size(), 5u);
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[0], per_tensor(x)));
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[1], per_channel(x)));
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[2], half(x)));
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[3], weight_quantizer(w)));
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[4], half(w)));
}

TEST(QdqExport, UninitializedOrCalibratingQuantizersAreAnErrorNamingThem) {
  onnx::GraphProto graph;
  qs::affine::QuantizeDequantize quantizer({}, 8, false);
  try {
    ox::append_quantizer(graph, "x", "y", *quantizer, {4}, "conv1.output_0");
    FAIL() << "exported an uninitialized quantizer";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("conv1.output_0"), std::string::npos);
    EXPECT_NE(std::string(e.what_without_backtrace()).find("not initialized"), std::string::npos);
  }
  quantizer->set_range(-1.0, 1.0);
  {
    auto calibrating = quantizer->compute_encodings();
    quantizer(at::randn({4}));
    try {
      ox::append_quantized_weight(graph, at::randn({4}), "y", *quantizer, "fc.weight");
      FAIL() << "exported a calibrating quantizer";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what_without_backtrace()).find("fc.weight"), std::string::npos);
      EXPECT_NE(std::string(e.what_without_backtrace()).find("calibrating"), std::string::npos);
    }
  }
  EXPECT_EQ(graph.node_size(), 0);
  EXPECT_EQ(graph.initializer_size(), 0);
}

TEST(QdqOnnxRuntime, Float16AndBFloat16AsCastPairs) {
  QS_REQUIRE_ONNXRUNTIME();
  onnx::GraphProto graph;
  graph.set_name("casts");
  for (const char* name : {"float16", "bfloat16"}) {
    ox::set_value_info(*graph.add_input(), std::string("x_") + name, at::kFloat, {-1});
    ox::set_value_info(*graph.add_output(), std::string("y_") + name, at::kFloat, {-1});
    ox::append_float_quantize_dequantize(graph, std::string("x_") + name, std::string("y_") + name,
                                         qs::floating::FloatFormat::from_name(name), false, name);
  }
  // Every float32 bit pattern class: ties of both formats, subnormals, overflow, infinities.
  at::Tensor x =
      at::randint(0, 1 << 30, {4096}, at::kInt).mul(4).add(at::randint(0, 4, {4096}, at::kInt));
  x = x.view(at::kFloat);
  x = at::where(x.isnan(), at::zeros_like(x), x);
  x = at::cat({x, -x, at::tensor({65519.f, 65520.f, 1e38f, 3.3961e38f, 5.96e-8f, 2.98e-8f})});
  const auto path = std::filesystem::temp_directory_path() /
                    ("qdq_ort_cast_" + std::to_string(::getpid()) + ".onnx");
  ox::write_model(ox::make_model(graph, ox::kCheckedOpset), path.string());
  const auto outputs =
      qs::testing::run_in_onnxruntime(path.string(), {{"x_float16", x}, {"x_bfloat16", x}});
  std::filesystem::remove(path);
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[0], x.to(at::kHalf).to(at::kFloat)));
  EXPECT_TRUE(qs::testing::bitwise_equal(outputs[1], x.to(at::kBFloat16).to(at::kFloat)));
}

TEST(QdqExport, OtherFloatFormatsAreAnErrorNamingTheFormat) {
  onnx::GraphProto graph;
  try {
    ox::append_float_quantize_dequantize(
        graph, "x", "y", qs::floating::FloatFormat::from_name("E4M3"), false, "fc.output_0");
    FAIL() << "E4M3 exported";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("E4M3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fc.output_0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ox::append_float_quantize_dequantize(
                   graph, "x", "y", qs::floating::FloatFormat::from_name("float16"), true, "a"),
               c10::ValueError);
  EXPECT_EQ(graph.node_size(), 0);
}

TEST(QdqExport, RefusesWhatHasNoExactExport) {
  onnx::GraphProto graph;
  const auto non_integer_offset =
      AffineEncoding(at::tensor(0.1f), at::tensor(-3.5f), Grid::from_bitwidth(8, false));
  EXPECT_THROW(ox::append_quantize_dequantize(graph, "x", "y", non_integer_offset, {4}, "a"),
               c10::ValueError);
  const auto wide =
      AffineEncoding(at::tensor(0.1f), at::tensor(0.f), Grid::from_bitwidth(17, true));
  EXPECT_THROW(ox::append_quantize_dequantize(graph, "x", "y", wide, {4}, "a"), c10::ValueError);
  const auto per_channel =
      AffineEncoding(at::ones({5, 1}), at::zeros({5, 1}), Grid::from_bitwidth(8, true));
  EXPECT_THROW(ox::append_quantize_dequantize(graph, "x", "y", per_channel, {4, 3}, "a"),
               c10::ValueError);
  EXPECT_EQ(graph.node_size(), 0);
}

}  // namespace
