// The `quantsim` operator library (include/quantsim/ops.h): through the dispatcher, from
// TorchScript and under the tracer, the operators are the functional API bit for bit.

#include <quantsim/affine/functional.h>
#include <quantsim/floating/functional.h>
#include <quantsim/ops.h>

#include "testing/tolerance.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace qs = quantsim;
using qs::testing::bitwise_equal;

namespace {

/// The encodings the tests sweep: per tensor, per channel on axis 0 and on axis 1, blockwise.
struct Case {
  std::vector<int64_t> x_shape, scale_shape, block_size;
  int64_t qmin, qmax;
};
std::vector<Case> cases() {
  return {{{4, 6}, {}, {}, 0, 255},
          {{4, 6}, {4, 1}, {}, -128, 127},
          {{3, 4, 5}, {4, 1}, {}, -8, 7},
          {{4, 8}, {4, 2}, {1, 4}, -8, 7},
          {{2, 4, 8}, {2, 2}, {2, 4}, 0, 15}};
}

struct Encoding {
  at::Tensor x, scale, offset;
};
Encoding encoding(const Case& c, bool requires_grad) {
  torch::manual_seed(7);
  Encoding e{torch::randn(c.x_shape) * 3, torch::rand(c.scale_shape) * 0.2 + 0.05,
             torch::randint(-3, 3, c.scale_shape).to(at::kFloat)};
  if (requires_grad) {
    for (auto* t : {&e.x, &e.scale, &e.offset}) t->requires_grad_();
  }
  return e;
}

std::vector<at::Tensor> gradients(const at::Tensor& y, const Encoding& e) {
  auto grad = torch::linspace(-1, 1, y.numel()).reshape(y.sizes());
  return torch::autograd::grad({y}, {e.x, e.scale, e.offset}, {grad});
}

/// The graph libtorch's tracer records for fn(x).
std::shared_ptr<torch::jit::Graph> trace(const at::Tensor& x,
                                         const std::function<at::Tensor(const at::Tensor&)>& fn) {
  auto traced = torch::jit::tracer::trace(
      {x},
      [&](torch::jit::Stack inputs) -> torch::jit::Stack { return {fn(inputs[0].toTensor())}; },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/false);
  return traced.first->graph;
}

std::vector<std::string> node_kinds(const torch::jit::Graph& graph) {
  std::vector<std::string> kinds;
  for (const auto* node : graph.nodes()) kinds.emplace_back(node->kind().toQualString());
  return kinds;
}

/// `torch.ops.<namespace>.<op>` for TorchScript compiled from C++: Python's resolver gives the
/// operator library's ops to scripts, torch::jit's native resolver knows only `torch.<aten op>`.
struct OpsNamespace : torch::jit::SugaredValue {
  std::string kind() const override { return "torch.ops"; }
  std::shared_ptr<torch::jit::SugaredValue> attr(const torch::jit::SourceRange&,
                                                 torch::jit::GraphFunction&,
                                                 const std::string& field) override {
    return std::make_shared<torch::jit::BuiltinModule>(field);
  }
};
struct TorchWithOps : torch::jit::BuiltinModule {
  TorchWithOps() : BuiltinModule("aten") {}
  std::shared_ptr<torch::jit::SugaredValue> attr(const torch::jit::SourceRange& loc,
                                                 torch::jit::GraphFunction& m,
                                                 const std::string& field) override {
    if (field == "ops") return std::make_shared<OpsNamespace>();
    return BuiltinModule::attr(loc, m, field);
  }
};
struct OpsResolver : torch::jit::NativeResolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(
      const std::string& name, torch::jit::GraphFunction& m,
      const torch::jit::SourceRange& loc) override {
    if (name == "torch") return std::make_shared<TorchWithOps>();
    return NativeResolver::resolveValue(name, m, loc);
  }
};

}  // namespace

TEST(OpsLibrary, SchemasAreRegistered) {
  for (const char* name :
       {"quantsim::quantize", "quantsim::dequantize", "quantsim::quantize_dequantize",
        "quantsim::float_quantize_dequantize"}) {
    EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({name, ""}).has_value()) << name;
  }
}

TEST(OpsLibrary, AffineOpsEqualTheFunctionalApiWithGradients) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c10::str("x ", at::IntArrayRef(c.x_shape), " scale ",
                          at::IntArrayRef(c.scale_shape), " block ",
                          at::IntArrayRef(c.block_size)));
    const auto a = encoding(c, true), b = encoding(c, true);
    const auto y_op =
        qs::ops::quantize_dequantize(a.x, a.scale, a.offset, c.qmin, c.qmax, c.block_size);
    const auto y_fn =
        qs::affine::quantize_dequantize(b.x, b.scale, b.offset, c.qmin, c.qmax, c.block_size);
    EXPECT_TRUE(bitwise_equal(y_op, y_fn));
    const auto g_op = gradients(y_op, a), g_fn = gradients(y_fn, b);
    for (size_t i = 0; i < g_op.size(); ++i) EXPECT_TRUE(bitwise_equal(g_op[i], g_fn[i])) << i;

    const auto q_op = qs::ops::quantize(a.x, a.scale, a.offset, c.qmin, c.qmax, c.block_size);
    const auto q_fn = qs::affine::quantize(b.x, b.scale, b.offset, c.qmin, c.qmax, c.block_size);
    EXPECT_TRUE(bitwise_equal(q_op, q_fn));
    const auto gq_op = gradients(q_op, a), gq_fn = gradients(q_fn, b);
    for (size_t i = 0; i < gq_op.size(); ++i) EXPECT_TRUE(bitwise_equal(gq_op[i], gq_fn[i])) << i;

    const auto d_op = qs::ops::dequantize(q_op.detach(), a.scale, a.offset, c.block_size);
    const auto d_fn = qs::affine::dequantize(q_fn.detach(), b.scale, b.offset, c.block_size);
    EXPECT_TRUE(bitwise_equal(d_op, d_fn));
  }
}

TEST(OpsLibrary, FloatOpEqualsTheFunctionalApiWithGradients) {
  torch::manual_seed(3);
  const auto x0 = torch::randn({5, 7}) * 100;
  for (const auto& name : {"E4M3", "E4M3FN", "E5M2", "float16", "bfloat16"}) {
    const auto format = qs::floating::FloatFormat::from_name(name);
    for (const auto& maxval : {at::Tensor(), torch::full({5, 1}, 37.5f)}) {
      SCOPED_TRACE(c10::str(name, maxval.defined() ? " with maxval" : ""));
      auto x_op = x0.clone().requires_grad_(), x_fn = x0.clone().requires_grad_();
      const auto y_op = qs::ops::float_quantize_dequantize(x_op, format, maxval);
      const auto y_fn = qs::floating::quantize_dequantize(x_fn, format, maxval);
      EXPECT_TRUE(bitwise_equal(y_op, y_fn));
      const auto grad = torch::linspace(-1, 1, y_op.numel()).reshape(y_op.sizes());
      EXPECT_TRUE(bitwise_equal(torch::autograd::grad({y_op}, {x_op}, {grad})[0],
                                torch::autograd::grad({y_fn}, {x_fn}, {grad})[0]));
    }
  }
}

TEST(OpsLibrary, BadArgumentsGiveTheFunctionalApisErrors) {
  const auto x = torch::randn({4, 6});
  const auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const c10::ValueError& e) {
      return std::string("ValueError: ") + e.what_without_backtrace();
    } catch (const c10::Error& e) {
      return std::string("Error: ") + e.what_without_backtrace();
    }
    return std::string("no error");
  };
  const auto s = torch::full({3, 1}, 0.1f), o = torch::zeros({3, 1});
  // A scale that does not broadcast, a block size that does not divide, an empty grid.
  EXPECT_EQ(message([&] { qs::ops::quantize_dequantize(x, s, o, 0, 255); }),
            message([&] { qs::affine::quantize_dequantize(x, s, o, 0, 255); }));
  const auto sb = torch::full({4, 2}, 0.1f), ob = torch::zeros({4, 2});
  EXPECT_EQ(message([&] {
              qs::ops::quantize(x, sb, ob, -8, 7, {1, 4});
            }),
            message([&] {
              qs::affine::quantize(x, sb, ob, -8, 7, {1, 4});
            }));
  const auto s1 = torch::tensor(0.1f), o1 = torch::tensor(0.f);
  EXPECT_EQ(message([&] { qs::ops::quantize_dequantize(x, s1, o1, 5, 4); }),
            message([&] { qs::affine::quantize_dequantize(x, s1, o1, 5, 4); }));
  EXPECT_NE(message([&] { qs::ops::quantize_dequantize(x, s, o, 0, 255); }), "no error");
  const auto ints = torch::ones({3}, at::kInt);
  const auto format = qs::floating::FloatFormat::from_name("E4M3");
  EXPECT_EQ(message([&] { qs::ops::float_quantize_dequantize(ints, format); }),
            message([&] { qs::floating::quantize_dequantize(ints, format); }));
  EXPECT_NE(message([&] { qs::ops::float_quantize_dequantize(ints, format); }), "no error");
}

TEST(OpsLibrary, TheTracerRecordsOneNodePerOp) {
  const auto c = cases()[3];
  const auto e = encoding(c, false);
  const auto graph = trace(e.x, [&](const at::Tensor& x) {
    const auto y = qs::ops::quantize_dequantize(x, e.scale, e.offset, c.qmin, c.qmax, c.block_size);
    return qs::ops::float_quantize_dequantize(y.relu(),
                                              qs::floating::FloatFormat::from_name("float16"));
  });
  // The constants of the arguments (prim::Constant, prim::ListConstruct) and one node per op:
  // nothing the kernels run inside is recorded.
  std::vector<std::string> ops;
  for (const auto& kind : node_kinds(*graph)) {
    if (kind.rfind("prim::", 0) != 0) ops.push_back(kind);
  }
  EXPECT_EQ(ops, (std::vector<std::string>{"quantsim::quantize_dequantize", "aten::relu",
                                           "quantsim::float_quantize_dequantize"}));
}

TEST(OpsLibrary, TorchScriptCallsTheOps) {
  const auto cu = std::make_shared<torch::jit::CompilationUnit>();
  cu->define(c10::nullopt, R"JIT(
def qdq(x, scale, offset):
    return torch.ops.quantsim.quantize_dequantize(x, scale, offset, -8, 7, [1, 4])
def fqdq(x):
    return torch.ops.quantsim.float_quantize_dequantize(x, 4, 3, None, 240.0)
)JIT",
             std::make_shared<OpsResolver>(), nullptr);
  const auto c = cases()[3];
  const auto e = encoding(c, false);
  const auto y = cu->run_method("qdq", e.x, e.scale, e.offset).toTensor();
  EXPECT_TRUE(bitwise_equal(
      y, qs::affine::quantize_dequantize(e.x, e.scale, e.offset, -8, 7, c.block_size)));
  const auto x = torch::randn({16}) * 300;
  EXPECT_TRUE(bitwise_equal(
      cu->run_method("fqdq", x).toTensor(),
      qs::floating::quantize_dequantize(x, qs::floating::FloatFormat::from_name("E4M3"))));
}
