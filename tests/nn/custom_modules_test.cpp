// Custom float modules (docs/modules.md §6, quantsim/nn/custom.h): each against the torch function
// it wraps, the special ones against hand-computed tensors from their headers' formulas (and the
// ONNX operator examples), and every one through torch::nn::AnyModule.

#include <quantsim/nn/custom.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "testing/printing.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
namespace custom = quantsim::nn::custom;
namespace F = torch::nn::functional;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::f32_2d;
using qs::testing::printed;
using torch::nn::AnyModule;

namespace {

at::Tensor random(at::IntArrayRef shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen);
}

at::Tensor i64(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }

using Unary = std::function<at::Tensor(const at::Tensor&)>;
using Binary = std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;

}  // namespace

// ---- elementwise -------------------------------------------------------------------------------

TEST(CustomElementwise, UnaryModulesAreTheirTorchFunctions) {
  // In (0.05, 0.95) so that log, sqrt, asin and rsqrt are finite; a few halves for round.
  const auto x = at::cat({at::rand({37}, at::make_generator<at::CPUGeneratorImpl>(1)) * 0.9 + 0.05,
                          f32({0.5, 1.5, 2.5})});
  std::vector<std::tuple<std::string, AnyModule, Unary>> cases{
      {"Exponential", AnyModule(custom::Exponential()), [](auto& t) { return at::exp(t); }},
      {"Erf", AnyModule(custom::Erf()), [](auto& t) { return at::erf(t); }},
      {"Sqrt", AnyModule(custom::Sqrt()), [](auto& t) { return at::sqrt(t); }},
      {"Log", AnyModule(custom::Log()), [](auto& t) { return at::log(t); }},
      {"Abs", AnyModule(custom::Abs()), [](auto& t) { return at::abs(t); }},
      {"Neg", AnyModule(custom::Neg()), [](auto& t) { return at::neg(t); }},
      {"ElementwiseCeil", AnyModule(custom::ElementwiseCeil()),
       [](auto& t) { return at::ceil(t); }},
      {"ElementwiseFloor", AnyModule(custom::ElementwiseFloor()),
       [](auto& t) { return at::floor(t); }},
      {"Sin", AnyModule(custom::Sin()), [](auto& t) { return at::sin(t); }},
      {"Cos", AnyModule(custom::Cos()), [](auto& t) { return at::cos(t); }},
      {"Asin", AnyModule(custom::Asin()), [](auto& t) { return at::asin(t); }},
      {"Atan", AnyModule(custom::Atan()), [](auto& t) { return at::atan(t); }},
      {"Round", AnyModule(custom::Round()), [](auto& t) { return at::round(t); }},
      {"LogicalNot", AnyModule(custom::LogicalNot()), [](auto& t) { return at::logical_not(t); }},
      {"ElementwiseUnarySign", AnyModule(custom::ElementwiseUnarySign()),
       [](auto& t) { return at::sign(t); }},
      {"RSqrt", AnyModule(custom::RSqrt()), [](auto& t) { return at::rsqrt(t); }},
      {"Square", AnyModule(custom::Square()), [](auto& t) { return at::square(t); }},
  };
  for (auto& [name, module, fn] : cases) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(bitwise_equal(module.forward(x), fn(x)));
    EXPECT_EQ(printed(*module.ptr()), "quantsim::nn::custom::" + name + "()");
  }
  EXPECT_TRUE(bitwise_equal(custom::Abs()(f32({-1.5, 2})), f32({1.5, 2})));
  // Round is half to even; sign of 0 is 0.
  EXPECT_TRUE(bitwise_equal(custom::Round()(f32({0.5, 1.5, 2.5, -0.5})), f32({0, 2, 2, -0.0})));
  EXPECT_TRUE(bitwise_equal(custom::ElementwiseUnarySign()(f32({-3, 0, 2})), f32({-1, 0, 1})));
}

TEST(CustomElementwise, BinaryModulesAreTheirTorchFunctions) {
  const auto x = random({3, 4}, 2), y = random({4}, 3) + 3;  // y broadcasts, y > 0
  std::vector<std::tuple<std::string, AnyModule, Binary>> cases{
      {"Add", AnyModule(custom::Add()), [](auto& a, auto& b) { return a + b; }},
      {"Multiply", AnyModule(custom::Multiply()), [](auto& a, auto& b) { return a * b; }},
      {"Subtract", AnyModule(custom::Subtract()), [](auto& a, auto& b) { return a - b; }},
      {"Divide", AnyModule(custom::Divide()), [](auto& a, auto& b) { return a / b; }},
      {"FloorDivide", AnyModule(custom::FloorDivide()),
       [](auto& a, auto& b) { return at::floor_divide(a, b); }},
      {"Greater", AnyModule(custom::Greater()), [](auto& a, auto& b) { return a > b; }},
      {"Less", AnyModule(custom::Less()), [](auto& a, auto& b) { return a < b; }},
      {"GreaterEqual", AnyModule(custom::GreaterEqual()), [](auto& a, auto& b) { return a >= b; }},
      {"LessEqual", AnyModule(custom::LessEqual()), [](auto& a, auto& b) { return a <= b; }},
      {"NotEqual", AnyModule(custom::NotEqual()), [](auto& a, auto& b) { return a != b; }},
      {"Equal", AnyModule(custom::Equal()), [](auto& a, auto& b) { return a == b; }},
      {"Remainder", AnyModule(custom::Remainder()),
       [](auto& a, auto& b) { return at::remainder(a, b); }},
      {"Fmod", AnyModule(custom::Fmod()), [](auto& a, auto& b) { return at::fmod(a, b); }},
      {"Pow", AnyModule(custom::Pow()), [](auto& a, auto& b) { return at::pow(a.abs(), b); }},
      {"Maximum", AnyModule(custom::Maximum()), [](auto& a, auto& b) { return at::maximum(a, b); }},
      {"Max", AnyModule(custom::Max()), [](auto& a, auto& b) { return at::maximum(a, b); }},
      {"Minimum", AnyModule(custom::Minimum()), [](auto& a, auto& b) { return at::minimum(a, b); }},
      {"Min", AnyModule(custom::Min()), [](auto& a, auto& b) { return at::minimum(a, b); }},
      {"LogicalOr", AnyModule(custom::LogicalOr()),
       [](auto& a, auto& b) { return at::logical_or(a > 0, b > 3); }},
      {"LogicalAnd", AnyModule(custom::LogicalAnd()),
       [](auto& a, auto& b) { return at::logical_and(a > 0, b > 3); }},
  };
  for (auto& [name, module, fn] : cases) {
    SCOPED_TRACE(name);
    at::Tensor actual;
    if (name == "Pow") {
      actual = module.forward(x.abs(), y);
    } else if (name == "LogicalOr" || name == "LogicalAnd") {
      actual = module.forward(at::Tensor(x > 0), at::Tensor(y > 3));
    } else {
      actual = module.forward(x, y);
    }
    EXPECT_TRUE(bitwise_equal(actual, fn(x, y)));
    EXPECT_EQ(printed(*module.ptr()), "quantsim::nn::custom::" + name + "()");
  }
  // Hand-computed signs of remainder (sign of y) and fmod (sign of x).
  EXPECT_TRUE(bitwise_equal(custom::Remainder()(f32({-3, 3}), f32({2, -2})), f32({1, -1})));
  EXPECT_TRUE(bitwise_equal(custom::Fmod()(f32({-3, 3}), f32({2, -2})), f32({-1, 1})));
  // A Python scalar operand is a 0-dim tensor.
  EXPECT_TRUE(bitwise_equal(custom::Add()(x, at::scalar_tensor(2.0)), x + 2.0));
}

TEST(CustomElementwise, CustomSiLUIsMulOfSigmoid) {
  custom::CustomSiLU silu;
  const auto x = random({2, 5}, 4);
  EXPECT_TRUE(bitwise_equal(silu(x), x * at::sigmoid(x)));
  EXPECT_TRUE(all_close(silu(x), at::silu(x), 1e-6));
  const auto children = silu->named_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children.keys(), (std::vector<std::string>{"sigmoid", "mul"}));
  EXPECT_TRUE(std::dynamic_pointer_cast<torch::nn::SigmoidImpl>(children["sigmoid"]));
  EXPECT_TRUE(std::dynamic_pointer_cast<custom::MultiplyImpl>(children["mul"]));
  auto clone = std::dynamic_pointer_cast<custom::CustomSiLUImpl>(silu->clone());
  ASSERT_TRUE(clone);
  EXPECT_NE(clone->mul.get(), silu->mul.get());
  EXPECT_TRUE(bitwise_equal(clone->forward(x), silu(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(silu).forward(x), silu(x)));
}

TEST(CustomElementwise, WhereAndMaskedFill) {
  const auto x = f32({1, 2, 3}), y = f32({-1, -2, -3});
  const auto cond = f32({1, 0, 1}).to(at::kBool);
  EXPECT_TRUE(bitwise_equal(custom::Where()(cond, x, y), f32({1, -2, 3})));
  EXPECT_TRUE(bitwise_equal(AnyModule(custom::Where()).forward(cond, x, y), f32({1, -2, 3})));

  auto target = x.clone();
  const auto out = custom::MaskedFill()(target, cond, at::scalar_tensor(9.0));
  EXPECT_TRUE(bitwise_equal(out, f32({9, 2, 9})));
  EXPECT_TRUE(bitwise_equal(target, f32({9, 2, 9})));  // in place, as Tensor.masked_fill_
  auto other = x.clone();
  EXPECT_TRUE(
      bitwise_equal(AnyModule(custom::MaskedFill()).forward(other, cond, at::scalar_tensor(0.0)),
                    f32({0, 2, 0})));
}

// ---- reductions --------------------------------------------------------------------------------

TEST(CustomReduction, AreTheirTorchFunctions) {
  const auto x = random({3, 4, 5}, 5);
  using std::vector;
  custom::Mean mean(custom::ReduceOptions().dim(vector<int64_t>{1, 2}).keepdim(true));
  EXPECT_TRUE(bitwise_equal(mean(x), at::mean(x, {1, 2}, true)));
  EXPECT_TRUE(bitwise_equal(custom::Mean()(x), at::mean(x)));
  custom::Sum sum(custom::SumOptions().dim(vector<int64_t>{0}));
  EXPECT_TRUE(bitwise_equal(sum(x), at::sum(x, {0})));
  EXPECT_TRUE(bitwise_equal(custom::Sum()(x), at::sum(x)));
  custom::Prod prod(custom::ProdOptions().dim(-1).keepdim(true));
  EXPECT_TRUE(bitwise_equal(prod(x), at::prod(x, -1, true)));
  EXPECT_TRUE(bitwise_equal(custom::Prod()(f32({2, 3, 4})), at::scalar_tensor(24.0)));
  custom::Argmax argmax(custom::ArgmaxOptions().dim(1));
  EXPECT_TRUE(bitwise_equal(argmax(x), at::argmax(x, 1)));
  EXPECT_EQ(argmax(x).scalar_type(), at::kLong);
  EXPECT_TRUE(bitwise_equal(custom::Argmin()(f32({3, 1, 2, 1})), at::scalar_tensor(1, at::kLong)));
  EXPECT_TRUE(bitwise_equal(custom::Argmax()(f32({3, 1, 5, 5})), at::scalar_tensor(2, at::kLong)));

  EXPECT_TRUE(all_close(custom::Norm()(f32({3, 4})), at::scalar_tensor(5.0)));
  EXPECT_TRUE(bitwise_equal(custom::Norm()(x), at::linalg_vector_norm(x)));
  custom::Norm l1(custom::NormOptions().p(1).dim(vector<int64_t>{2}).keepdim(true));
  EXPECT_TRUE(all_close(l1(x), x.abs().sum(2, true), 1e-6));
  custom::CumSum cumsum(1);
  EXPECT_TRUE(bitwise_equal(cumsum(x), at::cumsum(x, 1)));
  EXPECT_TRUE(bitwise_equal(custom::CumSum(0)(f32({1, 2, 3})), f32({1, 3, 6})));

  custom::TopK topk(custom::TopKOptions(2).dim(1).largest(false));
  const auto [values, indices] = topk(x);
  const auto [ref_values, ref_indices] = at::topk(x, 2, 1, false);
  EXPECT_TRUE(bitwise_equal(values, ref_values));
  EXPECT_TRUE(bitwise_equal(indices, ref_indices));
  const auto [v, i] = custom::TopK(2)(f32({1, 5, 3}));
  EXPECT_TRUE(bitwise_equal(v, f32({5, 3})));
  EXPECT_TRUE(bitwise_equal(i, i64({1, 2})));

  EXPECT_EQ(printed(*mean), "quantsim::nn::custom::Mean(dim=[1, 2], keepdim=true)");
  EXPECT_EQ(printed(*custom::Argmin()), "quantsim::nn::custom::Argmin(dim=None, keepdim=false)");
  EXPECT_EQ(printed(*topk), "quantsim::nn::custom::TopK(k=2, dim=1, largest=false, sorted=true)");

  EXPECT_TRUE(bitwise_equal(AnyModule(mean).forward(x), mean(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(sum).forward(x), sum(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(prod).forward(x), prod(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(argmax).forward(x), argmax(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(custom::Argmin()).forward(x), at::argmin(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(l1).forward(x), l1(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(cumsum).forward(x), cumsum(x)));
  const auto any_topk = AnyModule(topk).forward<std::tuple<at::Tensor, at::Tensor>>(x);
  EXPECT_TRUE(bitwise_equal(std::get<0>(any_topk), ref_values));
}

// ---- tensor ops --------------------------------------------------------------------------------

TEST(CustomTensorOps, ShapeAndLayout) {
  const auto x = at::arange(24, at::kFloat).reshape({2, 3, 4});
  custom::Reshape reshape(std::vector<int64_t>{4, -1});
  EXPECT_TRUE(bitwise_equal(reshape(x), x.reshape({4, 6})));
  custom::Permute permute(std::vector<int64_t>{2, 0, 1});
  EXPECT_TRUE(bitwise_equal(permute(x), x.permute({2, 0, 1})));
  custom::Tile tile(std::vector<int64_t>{2, 1});
  EXPECT_TRUE(bitwise_equal(tile(f32({1, 2})), f32_2d({{1, 2}, {1, 2}})));
  custom::Expand expand(std::vector<int64_t>{3, -1});
  EXPECT_TRUE(bitwise_equal(expand(f32({1, 2})), f32_2d({{1, 2}, {1, 2}, {1, 2}})));
  EXPECT_TRUE(bitwise_equal(custom::Shape()(x), i64({2, 3, 4})));
  EXPECT_TRUE(bitwise_equal(custom::NonZero()(f32_2d({{0, 1}, {2, 0}})),
                            at::tensor({0, 1, 1, 0}, at::kLong).reshape({2, 2})));

  EXPECT_EQ(printed(*reshape), "quantsim::nn::custom::Reshape(shape=[4, -1])");
  EXPECT_TRUE(bitwise_equal(AnyModule(reshape).forward(x), x.reshape({4, 6})));
  EXPECT_TRUE(bitwise_equal(AnyModule(permute).forward(x), x.permute({2, 0, 1})));
  EXPECT_TRUE(bitwise_equal(AnyModule(tile).forward(x), x.tile({2, 1})));
  EXPECT_TRUE(bitwise_equal(AnyModule(expand).forward(f32({1, 2})), expand(f32({1, 2}))));
  EXPECT_TRUE(bitwise_equal(AnyModule(custom::Shape()).forward(x), i64({2, 3, 4})));
  EXPECT_TRUE(bitwise_equal(AnyModule(custom::NonZero()).forward(x), at::nonzero(x)));
}

TEST(CustomTensorOps, StridedSliceIsPythonSlicing) {
  const auto x = at::arange(24, at::kFloat).reshape({4, 6});
  // x[1:3, 0:6:2]
  custom::StridedSlice slice(custom::StridedSliceOptions({{1, 3}, {0, 6, 2}}));
  EXPECT_TRUE(bitwise_equal(slice(x), f32_2d({{6, 8, 10}, {12, 14, 16}})));
  // x[:-3] (slice(stop)), x[-2:100, 5:1] (clamped, empty)
  EXPECT_TRUE(bitwise_equal(
      custom::StridedSlice(custom::StridedSliceOptions(std::vector<std::vector<int64_t>>{{-3}}))(x),
      x.slice(0, 0, 1)));
  const auto empty = custom::StridedSlice(custom::StridedSliceOptions({{-2, 100}, {5, 1}}))(x);
  EXPECT_EQ(empty.sizes(), (at::IntArrayRef{2, 0}));
  EXPECT_EQ(printed(*slice), "quantsim::nn::custom::StridedSlice(ranges=[[1, 3], [0, 6, 2]])");
  EXPECT_THROW(custom::StridedSlice(custom::StridedSliceOptions({{0, 1, 1, 1}})), c10::ValueError);
  EXPECT_TRUE(bitwise_equal(AnyModule(slice).forward(x), slice(x)));
}

TEST(CustomTensorOps, SplitAndConcat) {
  const auto x = at::arange(10, at::kFloat);
  custom::Split by_size(4);
  const auto chunks = by_size(x);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_TRUE(bitwise_equal(chunks[2], f32({8, 9})));
  custom::Split by_sections(custom::SplitOptions(std::vector<int64_t>{3, 7}));
  const auto sections = by_sections(x);
  ASSERT_EQ(sections.size(), 2u);
  EXPECT_TRUE(bitwise_equal(sections[0], f32({0, 1, 2})));
  EXPECT_EQ(printed(*by_sections),
            "quantsim::nn::custom::Split(split_size_or_sections=[3, 7], dim=0)");
  const auto any_chunks = AnyModule(by_size).forward<std::vector<at::Tensor>>(x);
  EXPECT_EQ(any_chunks.size(), 3u);

  const auto a = random({2, 3}, 6), b = random({2, 1}, 7);
  custom::Concat cat(1);
  EXPECT_TRUE(bitwise_equal(cat->forward({a, b}), at::cat({a, b}, 1)));
  EXPECT_TRUE(bitwise_equal(custom::Concat()->forward({a, a}), at::cat({a, a}, 0)));
  EXPECT_EQ(printed(*cat), "quantsim::nn::custom::Concat(axis=1)");
  EXPECT_TRUE(
      bitwise_equal(AnyModule(cat).forward(std::vector<at::Tensor>{a, b}), at::cat({a, b}, 1)));
  torch::nn::Sequential seq(custom::Split(std::vector<int64_t>{1, 2}), custom::Concat(0));
  EXPECT_TRUE(bitwise_equal(seq->forward(f32({1, 2, 3})), f32({1, 2, 3})));
}

TEST(CustomTensorOps, CastAndOneHot) {
  custom::Cast cast(at::kHalf);
  const auto x = f32({1.5, -2});
  EXPECT_TRUE(bitwise_equal(cast(x), x.to(at::kHalf)));
  EXPECT_EQ(custom::Cast(at::kFloat)(x).data_ptr(), x.data_ptr());  // Tensor.type: no copy
  EXPECT_EQ(printed(*cast), "quantsim::nn::custom::Cast(dtype=Half)");
  EXPECT_TRUE(bitwise_equal(AnyModule(cast).forward(x), x.to(at::kHalf)));

  const auto labels = i64({2, 0});
  EXPECT_TRUE(bitwise_equal(custom::OneHot(3)(labels),
                            at::tensor({0, 0, 1, 1, 0, 0}, at::kLong).reshape({2, 3})));
  custom::OneHot shifted(custom::OneHotOptions(3).off_value(-1).on_value(2));
  EXPECT_TRUE(bitwise_equal(shifted(labels),
                            at::tensor({-1, -1, 2, 2, -1, -1}, at::kLong).reshape({2, 3})));
  custom::OneHot floating(custom::OneHotOptions(3).off_value(0.25).on_value(0.75));
  EXPECT_TRUE(bitwise_equal(floating(labels), f32_2d({{0.25, 0.25, 0.75}, {0.75, 0.25, 0.25}})));
  EXPECT_EQ(printed(*shifted),
            "quantsim::nn::custom::OneHot(num_classes=3, off_value=-1, "
            "on_value=2)");
  EXPECT_TRUE(bitwise_equal(AnyModule(shifted).forward(labels), shifted(labels)));
}

// ---- gather / scatter --------------------------------------------------------------------------

TEST(CustomScatterGather, GatherAndIndexSelect) {
  const auto x = random({3, 4}, 8);
  const auto index = i64({0, 3, 1, 1, 2, 0}).reshape({3, 2});
  custom::Gather gather(1);
  EXPECT_TRUE(bitwise_equal(gather(x, index), at::gather(x, 1, index)));
  custom::IndexSelect select(0);
  EXPECT_TRUE(bitwise_equal(select(x, i64({2, 0})), at::index_select(x, 0, i64({2, 0}))));
  EXPECT_TRUE(bitwise_equal(AnyModule(gather).forward(x, index), at::gather(x, 1, index)));
  EXPECT_TRUE(bitwise_equal(AnyModule(select).forward(x, i64({1})), x.slice(0, 1, 2)));
}

TEST(CustomScatterGather, CustomGatherIsOnnxGather) {
  const auto data = f32_2d({{1, 2}, {3, 4}, {5, 6}});
  // axis 0, indices (1, 2) with a negative index: shape data[:0] + (1, 2) + data[1:] = (1, 2, 2)
  const auto out = custom::CustomGather()(data, i64({0, -1}).reshape({1, 2}));
  EXPECT_TRUE(bitwise_equal(out, f32_2d({{1, 2}, {5, 6}}).reshape({1, 2, 2})));
  // axis 1, indices (3): shape (3) + (3) = (3, 3)
  custom::CustomGather by_column(1);
  EXPECT_TRUE(
      bitwise_equal(by_column(data, i64({1, -2, 1})), f32_2d({{2, 1, 2}, {4, 3, 4}, {6, 5, 6}})));
  EXPECT_TRUE(
      bitwise_equal(AnyModule(by_column).forward(data, i64({1})), f32({2, 4, 6}).reshape({3, 1})));
}

TEST(CustomScatterGather, GatherNdIsOnnxGatherNd) {
  // The examples of the ONNX GatherND specification.
  custom::GatherNd g0;
  const auto d2 = at::tensor({0, 1, 2, 3}, at::kLong).reshape({2, 2});
  EXPECT_TRUE(bitwise_equal(g0(d2, i64({0, 0, 1, 1}).reshape({2, 2})), i64({0, 3})));
  EXPECT_TRUE(
      bitwise_equal(g0(d2, i64({1, 0}).reshape({2, 1})), i64({2, 3, 0, 1}).reshape({2, 2})));
  const auto d3 = at::arange(8, at::kLong).reshape({2, 2, 2});
  EXPECT_TRUE(
      bitwise_equal(g0(d3, i64({0, 1, 1, 0}).reshape({2, 2})), i64({2, 3, 4, 5}).reshape({2, 2})));
  EXPECT_TRUE(bitwise_equal(g0(d3, i64({0, 1, 1, 0}).reshape({2, 1, 2})),
                            i64({2, 3, 4, 5}).reshape({2, 1, 2})));
  custom::GatherNd g1(1);
  EXPECT_TRUE(
      bitwise_equal(g1(d3, i64({1, 0}).reshape({2, 1})), i64({2, 3, 4, 5}).reshape({2, 2})));
  EXPECT_TRUE(bitwise_equal(AnyModule(g1).forward(d3, i64({1, 0}).reshape({2, 1})),
                            i64({2, 3, 4, 5}).reshape({2, 2})));
  EXPECT_EQ(printed(*g1), "quantsim::nn::custom::GatherNd(batch_dims=1)");
  EXPECT_THROW(g0(d2, i64({0, 0, 0}).reshape({1, 3})), c10::ValueError);
}

TEST(CustomScatterGather, ScatterNDIsOnnxScatterND) {
  const auto data = f32({1, 2, 3, 4, 5, 6, 7, 8});
  const auto indices = i64({4, 3, 1, 7}).reshape({4, 1});
  const auto updates = f32({9, 10, 11, 12});
  custom::ScatterND replace;
  EXPECT_TRUE(bitwise_equal(replace(data, indices, updates), f32({1, 11, 3, 10, 9, 6, 7, 12})));
  EXPECT_TRUE(bitwise_equal(data, f32({1, 2, 3, 4, 5, 6, 7, 8})));  // out of place
  custom::ScatterND add(1), mul(2);
  EXPECT_TRUE(bitwise_equal(add(data, indices, updates), f32({1, 13, 3, 14, 14, 6, 7, 20})));
  EXPECT_TRUE(bitwise_equal(mul(data, indices, updates), f32({1, 22, 3, 40, 45, 6, 7, 96})));
  // Slices: data (4, 2, 2), indices (2, 1) replace data[0] and data[2].
  const auto cube = at::zeros({4, 2, 2});
  const auto slices = at::ones({2, 2, 2}) * f32({5, 7}).reshape({2, 1, 1});
  auto expected = cube.clone();
  expected[0].fill_(5);
  expected[2].fill_(7);
  EXPECT_TRUE(bitwise_equal(replace(cube, i64({0, 2}).reshape({2, 1}), slices), expected));
  // Full index rows: data (2, 2), indices (2, 2) address elements.
  EXPECT_TRUE(
      bitwise_equal(replace(at::zeros({2, 2}), i64({0, 1, 1, 0}).reshape({2, 2}), f32({3, 4})),
                    f32_2d({{0, 3}, {4, 0}})));
  EXPECT_TRUE(bitwise_equal(AnyModule(replace).forward(data, indices, updates),
                            f32({1, 11, 3, 10, 9, 6, 7, 12})));
}

TEST(CustomScatterGather, ScatterElementsIsOnnxScatterElements) {
  auto data = at::zeros({3, 3});
  const auto indices = i64({1, 0, 2, 0, 2, 1}).reshape({2, 3});
  const auto updates = f32_2d({{1.0, 1.1, 1.2}, {2.0, 2.1, 2.2}});
  custom::ScatterElements scatter(0);
  const auto out = scatter(data, indices, updates);
  const auto expected = f32_2d({{2.0, 1.1, 0}, {1.0, 0, 2.2}, {0, 2.1, 1.2}});
  EXPECT_TRUE(bitwise_equal(out, expected));
  EXPECT_TRUE(bitwise_equal(data, expected));  // in place, as the reference

  auto row = f32_2d({{1, 2, 3, 4, 5}});
  custom::ScatterElements sum(custom::ScatterElementsOptions(1).reduce("sum"));
  EXPECT_TRUE(all_close(sum(row, i64({1, 1}).reshape({1, 2}), f32_2d({{1.1, 2.1}})),
                        f32_2d({{1, 5.2, 3, 4, 5}})));
  EXPECT_EQ(printed(*sum), "quantsim::nn::custom::ScatterElements(dim=1, reduce=sum)");
  auto again = at::zeros({3, 3});
  EXPECT_TRUE(bitwise_equal(AnyModule(scatter).forward(again, indices, updates), expected));
}

// ---- linear algebra ----------------------------------------------------------------------------

TEST(CustomLinear, ProductsAreTheirTorchFunctions) {
  const auto a = random({2, 3, 4}, 9), b = random({2, 4, 5}, 10), c = random({2, 3, 5}, 11);
  EXPECT_TRUE(bitwise_equal(custom::MatMul()(a, b), at::matmul(a, b)));
  EXPECT_TRUE(bitwise_equal(custom::Bmm()(a, b), at::bmm(a, b)));
  custom::Baddbmm baddbmm(custom::BaddbmmOptions().beta(0.5).alpha(2));
  EXPECT_TRUE(bitwise_equal(baddbmm(c, a, b), at::baddbmm(c, a, b, 0.5, 2)));
  custom::Addmm addmm;
  EXPECT_TRUE(bitwise_equal(addmm(c[0], a[0], b[0]), at::addmm(c[0], a[0], b[0])));
  EXPECT_EQ(printed(*baddbmm), "quantsim::nn::custom::Baddbmm(beta=0.5, alpha=2)");

  EXPECT_TRUE(bitwise_equal(AnyModule(custom::MatMul()).forward(a, b), at::matmul(a, b)));
  EXPECT_TRUE(bitwise_equal(AnyModule(custom::Bmm()).forward(a, b), at::bmm(a, b)));
  EXPECT_TRUE(bitwise_equal(AnyModule(baddbmm).forward(c, a, b), at::baddbmm(c, a, b, 0.5, 2)));
  EXPECT_TRUE(
      bitwise_equal(AnyModule(addmm).forward(c[0], a[0], b[0]), at::addmm(c[0], a[0], b[0])));
}

TEST(CustomLinear, DynamicLinearAndConv) {
  const auto x = random({3, 4}, 12), w = random({5, 4}, 13), bias = random({5}, 14);
  custom::DynamicLinear linear;
  EXPECT_TRUE(bitwise_equal(linear(x, w, bias), at::linear(x, w, bias)));
  EXPECT_TRUE(bitwise_equal(linear(x, w), at::linear(x, w)));
  AnyModule any_linear(linear);
  EXPECT_TRUE(bitwise_equal(any_linear.forward(x, w), at::linear(x, w)));  // default bias
  EXPECT_TRUE(bitwise_equal(any_linear.forward(x, w, bias), at::linear(x, w, bias)));

  const auto img = random({2, 4, 7, 6}, 15), kernel = random({6, 2, 3, 3}, 16),
             kbias = random({6}, 17);
  custom::DynamicConv2d conv(custom::DynamicConv2dOptions().stride(2).padding(1).groups(2));
  EXPECT_TRUE(bitwise_equal(conv(img, kernel, kbias),
                            at::conv2d(img, kernel, kbias, {2, 2}, {1, 1}, {1, 1}, 2)));
  AnyModule any_conv(conv);
  EXPECT_TRUE(bitwise_equal(any_conv.forward(img, kernel),
                            at::conv2d(img, kernel, {}, {2, 2}, {1, 1}, {1, 1}, 2)));
  EXPECT_EQ(printed(*conv),
            "quantsim::nn::custom::DynamicConv2d(stride=[2, 2], padding=[1, 1], dilation=[1, 1], "
            "groups=2)");
}

// ---- spatial -----------------------------------------------------------------------------------

TEST(CustomSpatial, PoolingResamplingAndPadding) {
  const auto x = random({2, 3, 7, 6}, 18);
  custom::MaxPool2d max_pool(custom::MaxPool2dOptions(3).stride(2).padding(1));
  EXPECT_TRUE(bitwise_equal(max_pool(x),
                            F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1))));
  custom::AdaptiveAvgPool2d adaptive(custom::AdaptiveAvgPool2dOptions({2, 3}));
  EXPECT_TRUE(bitwise_equal(adaptive(x),
                            F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({2, 3}))));
  custom::AvgPool2d avg_pool(custom::AvgPool2dOptions(2).ceil_mode(true));
  EXPECT_TRUE(
      bitwise_equal(avg_pool(x), F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).ceil_mode(true))));
  custom::Interpolate interpolate(custom::InterpolateOptions()
                                      .size(std::vector<int64_t>{9, 4})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
  EXPECT_TRUE(bitwise_equal(interpolate(x), F::interpolate(x, F::InterpolateFuncOptions()
                                                                  .size(std::vector<int64_t>{9, 4})
                                                                  .mode(torch::kBilinear)
                                                                  .align_corners(false))));
  custom::Pad pad(custom::PadOptions({1, 2, 0, 1}).mode(torch::kReflect));
  EXPECT_TRUE(
      bitwise_equal(pad(x), F::pad(x, F::PadFuncOptions({1, 2, 0, 1}).mode(torch::kReflect))));
  EXPECT_TRUE(
      bitwise_equal(custom::Pad(custom::PadOptions({1, 0}).value(7))(f32({1, 2})), f32({7, 1, 2})));
  EXPECT_EQ(printed(*pad), "quantsim::nn::custom::Pad(pad=[1, 2, 0, 1], mode=kReflect, value=0)");
  EXPECT_EQ(printed(*max_pool),
            "quantsim::nn::custom::MaxPool2d(kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], "
            "dilation=[1, 1], ceil_mode=false)");

  EXPECT_TRUE(bitwise_equal(AnyModule(max_pool).forward(x), max_pool(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(adaptive).forward(x), adaptive(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(avg_pool).forward(x), avg_pool(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(interpolate).forward(x), interpolate(x)));
  EXPECT_TRUE(bitwise_equal(AnyModule(pad).forward(x), pad(x)));
}

TEST(CustomSpatial, ChannelShuffleHandComputed) {
  // AIMET's custom ChannelShuffle is torch.nn.ChannelShuffle on 4-D inputs: one float module.
  static_assert(std::is_same_v<custom::ChannelShuffleImpl, qs::nn::ChannelShuffleImpl>);
  const auto x = at::arange(6, at::kFloat).reshape({1, 6, 1, 1});
  custom::ChannelShuffle shuffle(3);
  // view(1, 3, 2) -> transpose -> channels 0 2 4 1 3 5
  EXPECT_TRUE(bitwise_equal(shuffle(x), f32({0, 2, 4, 1, 3, 5}).reshape({1, 6, 1, 1})));
  const auto y = random({2, 6, 3, 2}, 19);
  EXPECT_TRUE(bitwise_equal(AnyModule(shuffle).forward(y), at::channel_shuffle(y, 3)));
  EXPECT_THROW(shuffle(at::ones({1, 4, 1, 1})), c10::Error);  // 4 channels in 3 groups
}

TEST(CustomSpatial, DepthToSpaceIsOnnxDepthToSpace) {
  // The examples of the ONNX DepthToSpace specification: x = arange(48).reshape(1, 8, 2, 3).
  const auto x = at::arange(48, at::kFloat).reshape({1, 8, 2, 3});
  custom::DepthToSpaceDCRMode dcr(2);
  const auto expected_dcr = f32({0,  12, 1,  13, 2,  14, 24, 36, 25, 37, 26, 38, 3,  15, 4,  16,
                                 5,  17, 27, 39, 28, 40, 29, 41, 6,  18, 7,  19, 8,  20, 30, 42,
                                 31, 43, 32, 44, 9,  21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47})
                                .reshape({1, 2, 4, 6});
  EXPECT_TRUE(bitwise_equal(dcr(x), expected_dcr));
  custom::DepthToSpaceCRDMode crd(custom::DepthToSpaceCRDModeOptions(2));
  const auto expected_crd = f32({0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
                                 5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
                                 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47})
                                .reshape({1, 2, 4, 6});
  EXPECT_TRUE(bitwise_equal(crd(x), expected_crd));
  EXPECT_TRUE(bitwise_equal(crd(x), at::pixel_shuffle(x, 2)));
  // Rectangular CRD blocks: out[k][h*bh + i][w*bw + j] = x[k*bh*bw + i*bw + j][h][w]
  custom::DepthToSpaceCRDMode rect(custom::DepthToSpaceCRDModeOptions({1, 2}));
  const auto z = at::arange(4, at::kFloat).reshape({1, 2, 1, 2});
  // out[0][0][0][2w + j] = x[j][0][w]
  EXPECT_TRUE(bitwise_equal(rect(z), f32({0, 2, 1, 3}).reshape({1, 1, 1, 4})));
  EXPECT_EQ(printed(*dcr), "quantsim::nn::custom::DepthToSpaceDCRMode(block_size=2)");
  EXPECT_EQ(printed(*rect), "quantsim::nn::custom::DepthToSpaceCRDMode(block_size=[1, 2])");
  EXPECT_TRUE(bitwise_equal(AnyModule(dcr).forward(x), expected_dcr));
  EXPECT_TRUE(bitwise_equal(AnyModule(crd).forward(x), expected_crd));
}

// ---- normalization -----------------------------------------------------------------------------

TEST(CustomNormalization, BatchNormIsFunctional) {
  const auto x = random({4, 3, 2, 2}, 20);
  const auto w = random({3}, 21), b = random({3}, 22);
  auto mean = at::zeros({3}), var = at::ones({3});
  custom::BatchNorm eval_bn;
  EXPECT_TRUE(
      bitwise_equal(eval_bn(x, mean, var, w, b),
                    F::batch_norm(x, mean, var, F::BatchNormFuncOptions().weight(w).bias(b))));
  EXPECT_TRUE(bitwise_equal(eval_bn(x, mean, var), F::batch_norm(x, mean, var)));

  custom::BatchNorm train_bn(custom::BatchNormOptions().training(true).momentum(0.5).eps(1e-3));
  auto ref_mean = mean.clone(), ref_var = var.clone();
  const auto out = train_bn(x, mean, var, w, b);
  const auto ref = F::batch_norm(
      x, ref_mean, ref_var,
      F::BatchNormFuncOptions().weight(w).bias(b).training(true).momentum(0.5).eps(1e-3));
  EXPECT_TRUE(bitwise_equal(out, ref));
  EXPECT_TRUE(bitwise_equal(mean, ref_mean));  // running statistics updated in place
  EXPECT_TRUE(bitwise_equal(var, ref_var));
  EXPECT_THROW(train_bn(at::ones({1, 3}), at::Tensor(), at::Tensor()), c10::ValueError);
  EXPECT_EQ(printed(*train_bn),
            "quantsim::nn::custom::BatchNorm(training=true, momentum=0.5, eps=0.001)");

  AnyModule any(eval_bn);
  EXPECT_TRUE(bitwise_equal(any.forward(x, mean, var), F::batch_norm(x, mean, var)));
  EXPECT_TRUE(bitwise_equal(any.forward(x, mean, var, w),
                            F::batch_norm(x, mean, var, F::BatchNormFuncOptions().weight(w))));
  EXPECT_TRUE(
      bitwise_equal(any.forward(x, mean, var, w, b),
                    F::batch_norm(x, mean, var, F::BatchNormFuncOptions().weight(w).bias(b))));
}

TEST(CustomNormalization, GroupNormAndNormalize) {
  const auto x = random({2, 6, 3}, 23);
  const auto w = random({6}, 24), b = random({6}, 25);
  custom::GroupNorm gn(custom::GroupNormOptions(3).eps(1e-4));
  EXPECT_TRUE(bitwise_equal(
      gn(x, w, b), F::group_norm(x, F::GroupNormFuncOptions(3).weight(w).bias(b).eps(1e-4))));
  EXPECT_TRUE(bitwise_equal(gn(x), F::group_norm(x, F::GroupNormFuncOptions(3).eps(1e-4))));
  EXPECT_THROW(custom::GroupNorm(2)(at::ones({1, 2})), c10::ValueError);
  EXPECT_EQ(printed(*gn), "quantsim::nn::custom::GroupNorm(num_groups=3, eps=0.0001)");
  AnyModule any_gn(gn);
  EXPECT_TRUE(bitwise_equal(any_gn.forward(x), gn(x)));
  EXPECT_TRUE(bitwise_equal(any_gn.forward(x, w, b), gn(x, w, b)));

  custom::Normalize normalize(custom::NormalizeOptions().p(1).dim(-1));
  EXPECT_TRUE(bitwise_equal(normalize(x), F::normalize(x, F::NormalizeFuncOptions().p(1).dim(-1))));
  EXPECT_TRUE(all_close(custom::Normalize()(f32_2d({{3, 4}})), f32_2d({{0.6, 0.8}})));
  EXPECT_TRUE(bitwise_equal(AnyModule(normalize).forward(x), normalize(x)));
}

TEST(CustomNormalization, RmsNormHandComputed) {
  custom::RmsNorm norm(custom::RmsNormOptions({1, 2}, {1}, 0.0));
  EXPECT_EQ(norm->named_parameters().keys(), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_TRUE(bitwise_equal(norm->weight, at::ones({2})));
  EXPECT_TRUE(bitwise_equal(norm->bias, at::zeros({2})));
  // mean(x²) = (9 + 16) / 2 = 12.5; rms = 3.5355339
  const auto x = f32_2d({{3, 4}});
  EXPECT_TRUE(all_close(norm(x), f32_2d({{3 / std::sqrt(12.5), 4 / std::sqrt(12.5)}})));
  {
    torch::NoGradGuard no_grad;
    norm->weight.copy_(f32({2, 1}));
    norm->bias.copy_(f32({1, 0}));
  }
  EXPECT_TRUE(all_close(norm(x), f32_2d({{6 / std::sqrt(12.5) + 1, 4 / std::sqrt(12.5)}})));
  // Computed in float32, returned in the input's dtype.
  const auto half = norm(x.to(at::kHalf));
  EXPECT_EQ(half.scalar_type(), at::kHalf);
  EXPECT_TRUE(bitwise_equal(half, norm(x).to(at::kHalf)));

  custom::RmsNorm last(custom::RmsNormOptions({2, 3, 4}, {-1}, 1e-6));
  EXPECT_EQ(last->weight.sizes(), (at::IntArrayRef{4}));
  const auto y = random({2, 3, 4}, 26);
  EXPECT_TRUE(bitwise_equal(last(y), y / at::sqrt(at::mean(y * y, {-1}, true) + 1e-6)));
  EXPECT_EQ(printed(*last),
            "quantsim::nn::custom::RmsNorm(input_shape=[2, 3, 4], axes=[-1], eps=1e-06)");
  EXPECT_TRUE(bitwise_equal(AnyModule(last).forward(y), last(y)));
}

// ---- detection ---------------------------------------------------------------------------------

TEST(CustomDetection, NmsIsGreedyByScore) {
  // x1y1x2y2: box 1 overlaps box 0 with IoU 90 / 110 = 0.818; box 2 is apart.
  const auto boxes = f32_2d({{0, 0, 10, 10}, {1, 0, 11, 10}, {20, 20, 30, 30}});
  EXPECT_TRUE(bitwise_equal(custom::nms(boxes, f32({0.9, 0.8, 0.7}), 0.5), i64({0, 2})));
  EXPECT_TRUE(bitwise_equal(custom::nms(boxes, f32({0.7, 0.8, 0.9}), 0.5), i64({2, 1})));
  EXPECT_TRUE(bitwise_equal(custom::nms(boxes, f32({0.7, 0.8, 0.9}), 0.85), i64({2, 1, 0})));
  // IoU exactly at the threshold is kept (suppression needs IoU > threshold): IoU = 50 / 100.
  const auto halves = f32_2d({{0, 0, 10, 10}, {0, 0, 10, 5}});
  EXPECT_TRUE(bitwise_equal(custom::nms(halves, f32({1, 0.5}), 0.5), i64({0, 1})));
  EXPECT_TRUE(bitwise_equal(custom::nms(halves, f32({1, 0.5}), 0.49), i64({0})));
  EXPECT_EQ(custom::nms(at::zeros({0, 4}), at::zeros({0}), 0.5).numel(), 0);
}

TEST(CustomDetection, NonMaxSuppressionHandComputed) {
  // One batch, boxes as (y1, x1, y2, x2).
  const auto boxes = f32_2d({{0, 0, 10, 10}, {0, 1, 10, 11}, {20, 20, 30, 30}}).unsqueeze(0);
  const auto scores = f32_2d({{0.9, 0.8, 0.7}, {0.1, 0.95, 0.6}}).unsqueeze(0);  // (1, 2, 3)
  custom::NonMaxSuppression nms(custom::NonMaxSuppressionOptions(0.5, 0.2, 2));
  // class 0: 0 kept, 1 suppressed by 0, 2 kept; class 1: 0 below the score threshold, 1 and 2.
  EXPECT_TRUE(
      bitwise_equal(nms(boxes, scores), i64({0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 2}).reshape({4, 3})));
  custom::NonMaxSuppression one(custom::NonMaxSuppressionOptions(0.5, 0.2, 1));
  EXPECT_TRUE(bitwise_equal(one(boxes, scores), i64({0, 0, 0, 0, 1, 1}).reshape({2, 3})));
  custom::NonMaxSuppression three(custom::NonMaxSuppressionOptions(0.5, 0.2, 3));
  EXPECT_TRUE(
      bitwise_equal(three(boxes, scores),
                    i64({0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0}).reshape({6, 3})));
  // Two batches: rows are batch-major.
  const auto two = custom::NonMaxSuppression(custom::NonMaxSuppressionOptions(0.5, 0.75, 1))(
      at::cat({boxes, boxes}), at::cat({scores, scores.flip(1)}));
  EXPECT_TRUE(bitwise_equal(two, i64({0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0}).reshape({4, 3})));
  EXPECT_EQ(printed(*nms),
            "quantsim::nn::custom::NonMaxSuppression(iou_threshold=0.5, score_threshold=0.2, "
            "max_output_boxes_per_class=2)");
  EXPECT_TRUE(bitwise_equal(AnyModule(nms).forward(boxes, scores), nms(boxes, scores)));
}

TEST(CustomDetection, RoiAlignHandComputed) {
  // v[y][x] = 4y + x is linear, so every in-bounds bilinear sample equals 4y + x exactly.
  const auto input = at::arange(16, at::kFloat).reshape({1, 1, 4, 4});
  const auto roi = [](double x1, double y1, double x2, double y2) {
    return f32({x1, y1, x2, y2}).reshape({1, 4});
  };
  const auto batch0 = i64({0});
  // Box (0,0)-(2,2), one 2x2 bin of 2x2 samples at (0.5|1.5, 0.5|1.5): mean 5.
  custom::RoiAlign one_bin(custom::RoiAlignOptions(1, 1.0, 2));
  EXPECT_TRUE(all_close(one_bin(input, roi(0, 0, 2, 2), batch0), f32({5}).reshape({1, 1, 1, 1})));
  // Adaptive sampling: ceil(2 / 1) = 2 samples per axis, the same points.
  custom::RoiAlign adaptive(custom::RoiAlignOptions(1, 1.0, -1));
  EXPECT_TRUE(all_close(adaptive(input, roi(0, 0, 2, 2), batch0), f32({5}).reshape({1, 1, 1, 1})));
  // spatial_scale 0.5 maps box (0,0)-(4,4) to (0,0)-(2,2).
  custom::RoiAlign scaled(custom::RoiAlignOptions(1, 0.5, 2));
  EXPECT_TRUE(all_close(scaled(input, roi(0, 0, 4, 4), batch0), f32({5}).reshape({1, 1, 1, 1})));
  // 2x2 bins, one sample each at the bin centres (0.5|1.5, 0.5|1.5).
  custom::RoiAlign bins(custom::RoiAlignOptions(2, 1.0, 1));
  EXPECT_TRUE(all_close(bins(input, roi(0, 0, 2, 2), batch0),
                        f32({2.5, 3.5, 6.5, 7.5}).reshape({1, 1, 2, 2})));
  // Samples past the last pixel clamp to it; samples beyond -1 or the size contribute 0.
  custom::RoiAlign single(custom::RoiAlignOptions(1, 1.0, 1));
  EXPECT_TRUE(all_close(single(input, roi(2, 2, 5, 5), batch0), f32({15}).reshape({1, 1, 1, 1})));
  EXPECT_TRUE(
      all_close(single(input, roi(4.5, 4.5, 6.5, 6.5), batch0), f32({0}).reshape({1, 1, 1, 1})));
  // A degenerate box is forced to 1x1 (aligned=false): sample at (1.5, 1.5).
  EXPECT_TRUE(all_close(single(input, roi(1, 1, 1, 1), batch0), f32({7.5}).reshape({1, 1, 1, 1})));
  // aligned=true shifts by -0.5 pixel: box (1,1)-(3,3) samples (1.5-0.5+..): centre (1.5, 1.5).
  custom::RoiAlign aligned(custom::RoiAlignOptions(1, 1.0, 1).aligned(true));
  EXPECT_TRUE(all_close(aligned(input, roi(1, 1, 3, 3), batch0), f32({7.5}).reshape({1, 1, 1, 1})));

  // Batch index picks the image; channels are independent.
  const auto two = at::cat({input, input + 100}).repeat({1, 2, 1, 1});  // (2, 2, 4, 4)
  const auto rois = at::cat({roi(0, 0, 2, 2), roi(0, 0, 2, 2)});
  const auto out = one_bin(two, rois, f32({1, 0}));
  EXPECT_TRUE(all_close(out, f32({105, 105, 5, 5}).reshape({2, 2, 1, 1})));

  // Gradient: each of the 4 samples spreads 1/4 over its 4 neighbours, averaged over 4 samples.
  const auto x = input.clone().requires_grad_();
  one_bin(x, roi(0, 0, 2, 2), batch0).sum().backward();
  EXPECT_NEAR(x.grad().sum().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(x.grad()[0][0][1][1].item<double>(), 0.25, 1e-6);
  EXPECT_NEAR(x.grad()[0][0][0][0].item<double>(), 1.0 / 16, 1e-6);
  EXPECT_EQ(x.grad()[0][0][3][3].item<double>(), 0.0);

  EXPECT_EQ(printed(*bins),
            "quantsim::nn::custom::RoiAlign(output_size=[2, 2], spatial_scale=1, "
            "sampling_ratio=1, aligned=false)");
  EXPECT_TRUE(all_close(AnyModule(bins).forward(input, roi(0, 0, 2, 2), batch0),
                        f32({2.5, 3.5, 6.5, 7.5}).reshape({1, 1, 2, 2})));
}
