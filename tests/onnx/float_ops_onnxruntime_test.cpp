// Float ops of the ONNX exporter (src/onnx/aten_to_onnx.cpp), one test per op family: small
// modules exported with quantsim::export_onnx at batch 2 and run in ONNX Runtime (graph
// optimizations disabled) at batch 2 and 5 (the batch dim is dynamic).
//
// Tolerance rule (Agree in tests/testing/tolerance.h's spirit): bit-exact, except
// - sums of n products (Conv, Gemm, MatMul, normalizations, average pooling): libtorch and
//   ONNX Runtime each round a dot product of length n within n*u*M of the exact value
//   (u = 2^-24, M = the sum of the magnitudes |x_i w_i|, computed by running the layer on |x|
//   with |weights|), so the bound per element is 2*(n+1)*u*M, and the mean error is at most
//   sqrt(n)*u*mean(M) (rounding errors of different signs cancel);
// - transcendental functions (exp, tanh, erf, sigmoid...; ORT's MLAS and libtorch's Sleef
//   kernels are different approximations): 8 ulps of the result's magnitude (max 1) per element
//   plus 1e-7 absolute, and 1 ulp on the mean.

#include <quantsim/onnx/export.h>

#include "testing/onnxruntime.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace qs = quantsim;
namespace nn = torch::nn;
namespace F = torch::nn::functional;
using qs::testing::OrtOptimization;

constexpr double kU = 5.9604644775390625e-08;  // 2^-24

/// What the runtime's outputs must satisfy.
struct Tolerance {
  enum class Kind { kExact, kDotProduct, kTranscendental, kReduction } kind = Kind::kExact;
  int64_t n = 0;  // dot product or reduction length
  /// The magnitudes M of a dot-product op at x (its layer on |x| with |weights|).
  std::function<at::Tensor(const at::Tensor&)> magnitudes;
};
Tolerance exact() { return {}; }
/// Normalizations, means and averages reduce n values: 2*(n+1)*u of the output's magnitude (at
/// least 1) per element, sqrt(n)*u of it on the mean.
Tolerance reduction(int64_t n) { return {Tolerance::Kind::kReduction, n, nullptr}; }
Tolerance transcendental() { return {Tolerance::Kind::kTranscendental, 0, nullptr}; }
Tolerance dot_product(int64_t n, std::function<at::Tensor(const at::Tensor&)> magnitudes) {
  return {Tolerance::Kind::kDotProduct, n, std::move(magnitudes)};
}

/// QUANTSIM_REPORT_DIFFS=1 prints each comparison's max and mean |diff| (the figures the
/// report quotes).
std::string current_check;
void report(const at::Tensor& diff) {
  if (std::getenv("QUANTSIM_REPORT_DIFFS") == nullptr) return;
  std::printf("%s: max |diff| %.3g, mean %.3g, %.1f%% of elements differ\n", current_check.c_str(),
              diff.max().item<double>(), diff.mean().item<double>(),
              100.0 * (diff > 0).sum().item<double>() / std::max<int64_t>(diff.numel(), 1));
}

::testing::AssertionResult agree(const at::Tensor& actual, const at::Tensor& expected,
                                 const Tolerance& tolerance, const at::Tensor& x) {
  if (actual.sizes() != expected.sizes() || actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure()
           << "shape/dtype " << actual.sizes() << " " << actual.scalar_type() << " vs "
           << expected.sizes() << " " << expected.scalar_type();
  }
  const auto a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  const auto diff = (a - e).abs();
  report(diff);
  if (tolerance.kind == Tolerance::Kind::kExact) {
    if (at::equal(actual, expected)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "not bit-exact: max |diff| " << diff.max().item<double>() << ", mean "
           << diff.mean().item<double>();
  }
  at::Tensor bound;
  double mean_bound = 0;
  if (tolerance.kind == Tolerance::Kind::kReduction) {
    const auto scale = e.abs().clamp_min(1.0);
    bound = 2.0 * (tolerance.n + 1) * kU * scale;
    mean_bound = std::sqrt(static_cast<double>(tolerance.n)) * kU * scale.mean().item<double>();
  } else if (tolerance.kind == Tolerance::Kind::kDotProduct) {
    const auto m = tolerance.magnitudes(x).to(at::kDouble);
    bound = 2.0 * (tolerance.n + 1) * kU * m;
    mean_bound = std::sqrt(static_cast<double>(tolerance.n)) * kU * m.mean().item<double>();
  } else {
    const auto scale = e.abs().clamp_min(1.0);
    bound = 8 * 2 * kU * scale + 1e-7;
    mean_bound = 2 * kU * scale.mean().item<double>();
  }
  const auto over = (diff > bound).sum().item<int64_t>();
  const double mean = diff.mean().item<double>();
  if (over == 0 && mean <= mean_bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << over << " elements beyond the bound; max |diff| " << diff.max().item<double>()
         << ", mean |diff| " << mean << " (bound " << mean_bound << ")";
}

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "quantsim_float_ops_test";
  std::filesystem::create_directories(dir);
  return (dir / (name + ".onnx")).string();
}

/// Exports fn (on `module`'s parameters) at batch 2, runs the file in ONNX Runtime at batch 2 and
/// at batch 5, and compares with libtorch.
void check(const std::string& name, nn::Module& module,
           const std::function<at::Tensor(const at::Tensor&)>& fn,
           const std::function<at::Tensor(int64_t)>& make_input, const Tolerance& tolerance) {
  SCOPED_TRACE(name);
  current_check = name;
  module.eval();
  const auto path = temp_path(name);
  const auto x2 = make_input(2), x5 = make_input(5);
  qs::export_onnx(
      module, [&](const std::vector<at::Tensor>& x) { return std::vector<at::Tensor>{fn(x[0])}; },
      {x2}, qs::OnnxExportOptions().float_path(path));
  const auto outputs = qs::testing::run_in_onnxruntime(path, {{{"input", x2}}, {{"input", x5}}},
                                                       OrtOptimization::kDisabled);
  torch::NoGradGuard no_grad;
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_TRUE(agree(outputs[0].at(0), fn(x2), tolerance, x2)) << "batch 2";
  EXPECT_TRUE(agree(outputs[1].at(0), fn(x5), tolerance, x5)) << "batch 5";
}

template <typename Holder>
void check_module(const std::string& name, Holder module,
                  const std::function<at::Tensor(int64_t)>& make_input,
                  const Tolerance& tolerance) {
  check(
      name, *module.ptr(), [&](const at::Tensor& x) { return module->forward(x); }, make_input,
      tolerance);
}

std::function<at::Tensor(int64_t)> randn(std::vector<int64_t> shape, uint64_t seed = 0) {
  return [shape, seed](int64_t batch) {
    auto s = shape;
    s.insert(s.begin(), batch);
    torch::manual_seed(seed + batch);
    return torch::randn(s);
  };
}

/// Integer-valued inputs in [-4, 4] (sums of their products are exact in any order).
std::function<at::Tensor(int64_t)> small_integers(std::vector<int64_t> shape,
                                                  at::ScalarType dtype = at::kFloat) {
  return [shape, dtype](int64_t batch) {
    auto s = shape;
    s.insert(s.begin(), batch);
    torch::manual_seed(100 + batch);
    return torch::randint(-4, 5, s).to(dtype);
  };
}

/// A copy of a layer with |weights|: its forward on |x| gives the magnitudes M of the bound.
template <typename Holder>
std::function<at::Tensor(const at::Tensor&)> magnitudes(const Holder& layer) {
  auto copy = std::dynamic_pointer_cast<typename Holder::ContainedType>(layer->clone());
  torch::NoGradGuard no_grad;
  for (auto& p : copy->parameters()) p.abs_();
  return [copy](const at::Tensor& x) {
    torch::NoGradGuard no_grad;
    return copy->forward(x.abs());
  };
}

}  // namespace

TEST(OnnxFloatOps, Convolutions) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(1);
  nn::Conv1d c1(nn::Conv1dOptions(3, 4, 3).stride(2).padding(1));
  check_module("conv1d", c1, randn({3, 11}), dot_product(9, magnitudes(c1)));
  nn::Conv2d c2(nn::Conv2dOptions(4, 6, 3).padding(2).dilation(2).groups(2));
  check_module("conv2d", c2, randn({4, 9, 9}), dot_product(18, magnitudes(c2)));
  nn::Conv2d c2b(nn::Conv2dOptions(3, 4, {3, 1}).stride({2, 1}).bias(false));
  check_module("conv2d_nobias", c2b, randn({3, 8, 5}), dot_product(9, magnitudes(c2b)));
  nn::Conv3d c3(nn::Conv3dOptions(2, 3, 2));
  check_module("conv3d", c3, randn({2, 4, 5, 3}), dot_product(16, magnitudes(c3)));
  nn::ConvTranspose2d t2(
      nn::ConvTranspose2dOptions(4, 3, 3).stride(2).padding(1).output_padding(1));
  check_module("conv_transpose2d", t2, randn({4, 5, 5}), dot_product(36, magnitudes(t2)));
  nn::ConvTranspose1d t1(nn::ConvTranspose1dOptions(2, 2, 4).stride(3).groups(2));
  check_module("conv_transpose1d", t1, randn({2, 6}), dot_product(4, magnitudes(t1)));
}

TEST(OnnxFloatOps, LinearAndMatMul) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(2);
  nn::Linear linear(16, 5);
  check_module("linear", linear, randn({16}), dot_product(16, magnitudes(linear)));
  nn::Linear linear3d(8, 3);
  check_module("linear_3d", linear3d, randn({4, 8}), dot_product(8, magnitudes(linear3d)));
  nn::Linear no_bias(nn::LinearOptions(8, 3).bias(false));
  check_module("linear_nobias", no_bias, randn({8}), dot_product(8, magnitudes(no_bias)));
  nn::Module none;
  const auto w = torch::randn({6, 4});
  check(
      "matmul_bmm", none,
      [&](const at::Tensor& x) { return torch::bmm(x, x.transpose(1, 2)).matmul(x).matmul(w); },
      randn({3, 6}), dot_product(6 * 3 * 6, [&](const at::Tensor& x) {
        const auto a = x.abs();
        return torch::bmm(a, a.transpose(1, 2)).matmul(a).matmul(w.abs());
      }));
}

namespace {

void randomize_statistics(nn::BatchNorm2d& bn) {
  torch::NoGradGuard no_grad;
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.5, 2);
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.uniform_(-0.5, 0.5);
}

}  // namespace

TEST(OnnxFloatOps, NormalizationsAndEmbedding) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(3);
  nn::BatchNorm2d bn(4);
  randomize_statistics(bn);
  check_module("batch_norm", bn, randn({4, 5, 5}), reduction(1));
  nn::LayerNorm ln(nn::LayerNormOptions({6}));
  check_module("layer_norm", ln, randn({3, 6}), reduction(6));
  nn::LayerNorm ln2(nn::LayerNormOptions({3, 6}).elementwise_affine(false));
  check_module("layer_norm_2d", ln2, randn({3, 6}), reduction(18));
  nn::GroupNorm gn(nn::GroupNormOptions(2, 4));
  check_module("group_norm", gn, randn({4, 3, 3}), reduction(18));
  nn::InstanceNorm2d in(nn::InstanceNorm2dOptions(3).affine(true));
  check_module("instance_norm", in, randn({3, 4, 4}), reduction(16));
  nn::Embedding embedding(10, 4);
  check_module(
      "embedding", embedding,
      [](int64_t batch) {
        return torch::randint(0, 10, {batch, 7}, at::kLong);
      },
      exact());
}

TEST(OnnxFloatOps, Activations) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(4);
  const auto input = [](int64_t batch) {
    torch::manual_seed(batch);
    return torch::randn({batch, 3, 40}) * 4;
  };
  check_module("relu", nn::ReLU(), input, exact());
  check_module("relu6", nn::ReLU6(), input, exact());
  check_module("leaky_relu", nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.1)), input,
               exact());
  check_module("hardtanh", nn::Hardtanh(nn::HardtanhOptions().min_val(-2).max_val(3)), input,
               exact());
  nn::PReLU prelu(nn::PReLUOptions().num_parameters(3));
  {
    torch::NoGradGuard no_grad;
    prelu->weight.uniform_(0, 0.5);
  }
  check_module("prelu", prelu, input, exact());
  check_module("prelu_shared", nn::PReLU(), input, exact());
  check_module("elu", nn::ELU(nn::ELUOptions().alpha(0.7)), input, transcendental());
  check_module("selu", nn::SELU(), input, transcendental());
  check_module("celu", nn::CELU(nn::CELUOptions().alpha(1.5)), input, transcendental());
  check_module("gelu", nn::GELU(), input, transcendental());
  check_module("gelu_tanh", nn::GELU(nn::GELUOptions().approximate("tanh")), input,
               transcendental());
  check_module("silu", nn::SiLU(), input, transcendental());
  check_module("mish", nn::Mish(), input, transcendental());
  check_module("sigmoid", nn::Sigmoid(), input, transcendental());
  check_module("tanh", nn::Tanh(), input, transcendental());
  nn::Module none;
  check(
      "hardsigmoid", none, [](const at::Tensor& x) { return torch::hardsigmoid(x); }, input,
      transcendental());
  check(
      "hardswish", none, [](const at::Tensor& x) { return torch::hardswish(x); }, input,
      transcendental());
  check_module("softplus", nn::Softplus(), input, transcendental());
  check_module("softplus_beta", nn::Softplus(nn::SoftplusOptions().beta(2)), input,
               transcendental());
  check_module("softsign", nn::Softsign(), input, transcendental());
  check_module("softmax", nn::Softmax(2), input, transcendental());
  check_module("log_softmax", nn::LogSoftmax(1), input, transcendental());
}

TEST(OnnxFloatOps, Pooling) {
  QS_REQUIRE_ONNXRUNTIME();
  check_module("max_pool1d", nn::MaxPool1d(nn::MaxPool1dOptions(3).stride(2).padding(1)),
               randn({3, 11}), exact());
  check_module("max_pool2d", nn::MaxPool2d(nn::MaxPool2dOptions(2).ceil_mode(true)),
               randn({3, 7, 7}), exact());
  check_module("max_pool2d_dilated", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(1).dilation(2)),
               randn({3, 8, 8}), exact());
  check_module("max_pool3d", nn::MaxPool3d(2), randn({2, 4, 4, 4}), exact());
  check_module("avg_pool2d", nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(2).padding(1)),
               randn({3, 8, 8}), reduction(9));
  check_module("avg_pool2d_exclude_pad",
               nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(false)),
               randn({3, 8, 8}), reduction(9));
  check_module("avg_pool1d", nn::AvgPool1d(2), randn({3, 8}), reduction(2));
  check_module("avg_pool3d", nn::AvgPool3d(2), randn({2, 4, 4, 4}), reduction(8));
  check_module("adaptive_avg_pool2d", nn::AdaptiveAvgPool2d(2), randn({3, 8, 6}), reduction(12));
  check_module("adaptive_avg_pool2d_global", nn::AdaptiveAvgPool2d(1), randn({3, 5, 5}),
               reduction(25));
  check_module("adaptive_max_pool2d", nn::AdaptiveMaxPool2d(2), randn({3, 8, 6}), exact());
  check_module("lp_pool2d", nn::LPPool2d(nn::LPPool2dOptions(2, 2)), randn({3, 6, 6}),
               reduction(4));
}

TEST(OnnxFloatOps, ShapeOps) {
  QS_REQUIRE_ONNXRUNTIME();
  nn::Module none;
  const auto input = randn({6, 4, 5});
  using torch::indexing::None;
  using torch::indexing::Slice;
  check_module("flatten", nn::Flatten(), input, exact());
  check_module("flatten_inner", nn::Flatten(nn::FlattenOptions().start_dim(2).end_dim(3)), input,
               exact());
  check(
      "view_batch", none,
      [](const at::Tensor& x) {
        return x.view({x.size(0), -1, 5});
      },
      input, exact());
  check(
      "reshape_batch_last", none,
      [](const at::Tensor& x) {
        return x.reshape({4, x.size(0), -1});
      },
      randn({4, 5}), exact());
  check(
      "permute_transpose", none,
      [](const at::Tensor& x) {
        return x.permute({0, 3, 1, 2}).transpose(1, 2).contiguous();
      },
      input, exact());
  check(
      "cat_split_chunk", none,
      [](const at::Tensor& x) {
        const auto pieces = x.split(2, 1);
        const auto chunks = x.chunk(2, 3);
        return torch::cat({pieces[2], pieces[0], chunks[1].narrow(1, 0, 2)}, 3);
      },
      input, exact());
  check(
      "split_with_sizes", none,
      [](const at::Tensor& x) {
        const auto pieces = x.split_with_sizes({1, 3, 2}, 1);
        return torch::cat({pieces[1], pieces[0]}, 1);
      },
      input, exact());
  check(
      "slice", none,
      [](const at::Tensor& x) {
        return x.index({Slice(), Slice(1, 5, 2), Slice(None, -1)});
      },
      input, exact());
  check(
      "squeeze_unsqueeze", none,
      [](const at::Tensor& x) { return x.unsqueeze(2).unsqueeze(-1).squeeze(-1).squeeze(); },
      randn({1, 4, 5}), exact());
  check(
      "pad_constant", none,
      [](const at::Tensor& x) {
        return F::pad(x, F::PadFuncOptions({1, 2, 0, 3}).value(0.5));
      },
      input, exact());
  check(
      "pad_reflect", none,
      [](const at::Tensor& x) {
        return F::pad(x, F::PadFuncOptions({2, 1, 1, 2}).mode(torch::kReflect));
      },
      input, exact());
  check(
      "pad_replicate", none,
      [](const at::Tensor& x) {
        return F::pad(x, F::PadFuncOptions({1, 1}).mode(torch::kReplicate));
      },
      randn({3, 5}), exact());
}

TEST(OnnxFloatOps, ElementwiseAndReductions) {
  QS_REQUIRE_ONNXRUNTIME();
  nn::Module none;
  const auto input = randn({3, 4, 5});
  const auto w = torch::randn({5});
  check(
      "arithmetic", none,
      [&](const at::Tensor& x) {
        return ((x + 1.5) * x - x / 3 + x * w - 2 * x).sub(w, 0.5).neg().clamp(-2, 3);
      },
      input, exact());
  check(
      "abs_sqrt_reciprocal_pow", none,
      [&](const at::Tensor& x) {
        const auto a = x.abs() + 0.5;
        return a.sqrt() + a.reciprocal() + a.pow(2) + a.floor() + a.ceil() + a.round() + x.sign() +
               torch::maximum(x, w) + torch::minimum(x, w);
      },
      input, exact());
  check(
      "exp_log_rsqrt_erf", none,
      [&](const at::Tensor& x) {
        const auto a = x.abs() + 0.5;
        return a.log() + x.exp() + a.rsqrt() + x.erf() + x.sin() + x.cos();
      },
      input, transcendental());
  check(
      "sum_amax_amin_max", none,
      [](const at::Tensor& x) {
        return x.sum({1}) + x.amax(1) + x.amin({1, 2}, true).squeeze(2) + std::get<0>(x.max(1)) +
               std::get<0>(x.min(1, true)).squeeze(1);
      },
      input, reduction(4));
  check(
      "mean_prod", none,
      [](const at::Tensor& x) {
        return x.mean({-1}, true) + x.prod(2, true) + x.sum({1, 2}, true);
      },
      input, reduction(60));
  check(
      "argmax", none,
      [](const at::Tensor& x) { return std::get<1>(x.max(2)).to(at::kFloat) + x.sum(2); }, input,
      reduction(5));
}

/// Arguments that no ONNX attribute expresses, exported by exact decompositions
/// (docs/onnx_graph.md §3): div's rounding modes, circular padding, dtype arguments, conv padding
/// 'same'/'valid' and the functional transposed convolution. Integer-valued data keep the
/// convolutions' and sums' results exact in any summation order, so all but softmax (a
/// transcendental function) are bit-exact.
TEST(OnnxFloatOps, ArgumentsByExactDecompositions) {
  QS_REQUIRE_ONNXRUNTIME();
  nn::Module none;
  // Divisors of both signs, small and large, exact, and zero; dividends random, integers, zeros
  // of both signs, and multiples of the divisor.
  const auto w = torch::tensor({3.0f, -3.0f, 0.5f, -0.5f, 7.0f, -7.0f, 0.1f, -0.1f, 2.0f, -2.0f,
                                1e-3f, -1e-3f, 0.0f, -0.0f, 1.5f, -1.5f});
  const auto dividends = [&](int64_t batch) {
    torch::manual_seed(batch);
    auto x = torch::randn({batch, 4, 16}) * 10;
    x.select(1, 1).copy_(torch::randint(-8, 9, {batch, 16}).to(at::kFloat));
    x.select(1, 2).copy_(
        torch::where(torch::rand({batch, 16}) < 0.5, torch::zeros({1}), -torch::zeros({1})));
    x.select(1, 3).copy_(torch::randint(-5, 6, {batch, 16}).to(at::kFloat) * w);
    // No 0 / 0 (NaN, which bit-exact comparisons cannot compare) in the zero divisors' columns.
    x.narrow(2, 12, 2).fill_(5);
    return x;
  };
  {
    // The data tell torch's floor division from floor(x / y) (which rounds the quotient first)
    // and trunc from a sign-less rounding: a naive translation fails here.
    const auto x = dividends(5);
    EXPECT_FALSE(at::equal(x.div(w, "floor"), (x / w).floor()));
    EXPECT_TRUE(at::equal(x.div(w, "trunc").signbit(), (x / w).signbit()));
    EXPECT_TRUE((x.div(w, "trunc") == 0).logical_and((x / w) < 0).any().item<bool>());
  }
  check(
      "div_rounding_modes", none,
      [&](const at::Tensor& x) {
        return torch::cat(
            {x.div(w, "trunc"), x.div(w, "floor"), x.div(-2.5, "floor"), x.div(0.75, "trunc"),
             x.div(w), torch::floor_divide(x, w), x.true_divide(w)},
            1);
      },
      dividends, exact());
  check(
      "circular_pad", none,
      [](const at::Tensor& x) {
        const auto p2 = F::pad(x, F::PadFuncOptions({2, 1, 0, 3}).mode(torch::kCircular));
        const auto p1 = F::pad(x.flatten(2), F::PadFuncOptions({5, 4}).mode(torch::kCircular));
        return torch::cat({p2.flatten(1), p1.flatten(1)}, 1);
      },
      randn({3, 5, 6}), exact());
  check(
      "sum_prod_dtypes", none,
      [](const at::Tensor& x) {  // int32 in: int64 (promoted or asked for) out
        return x.sum({1, 2}) + x.sum(at::kLong) + x.prod(2, false, at::kLong).sum(1) +
               x.sum({2}, false, at::kLong).prod(1);
      },
      small_integers({3, 4}, at::kInt), exact());
  check(
      "sum_mean_dtype_double", none,
      [](const at::Tensor& x) {
        return x.sum({1}, true, at::kDouble) + x.mean({1}, true, at::kDouble) + x.sum(at::kDouble);
      },
      small_integers({6, 5}), exact());
  check(
      "softmax_log_softmax_dtype", none,
      [](const at::Tensor& x) {
        return torch::softmax(x, 1, at::kDouble) + torch::log_softmax(x, 2, at::kDouble);
      },
      randn({4, 6}), transcendental());

  torch::manual_seed(7);
  const auto integer_valued = [](auto& layer) {
    torch::NoGradGuard no_grad;
    for (auto& p : layer->parameters()) p.copy_(torch::randint(-3, 4, p.sizes()));
  };
  // Even kernel with odd dilation: torch pads the odd remainder after the input.
  nn::Conv2d same(nn::Conv2dOptions(3, 4, {4, 3}).padding(torch::kSame).dilation({1, 2}));
  integer_valued(same);
  check_module("conv2d_same", same, small_integers({3, 7, 9}), exact());
  nn::Conv1d same1(nn::Conv1dOptions(2, 2, 5).padding(torch::kSame).groups(2));
  integer_valued(same1);
  check_module("conv1d_same", same1, small_integers({2, 8}), exact());
  nn::Conv1d valid(nn::Conv1dOptions(2, 3, 4).padding(torch::kValid));
  integer_valued(valid);
  check_module("conv1d_valid", valid, small_integers({2, 9}), exact());
  const auto wt = torch::randint(-3, 4, {3, 2, 3, 3}).to(at::kFloat);
  const auto bt = torch::randint(-3, 4, {2}).to(at::kFloat);
  check(
      "conv_transpose2d_functional", none,
      [&](const at::Tensor& x) {
        return F::conv_transpose2d(x, wt,
                                   F::ConvTranspose2dFuncOptions()
                                       .bias(bt)
                                       .stride(2)
                                       .padding(1)
                                       .output_padding(1)
                                       .dilation(2));
      },
      small_integers({3, 5, 4}), exact());
}

TEST(OnnxFloatOps, UpsampleDropoutIdentity) {
  QS_REQUIRE_ONNXRUNTIME();
  const auto input = randn({3, 4, 5});
  check_module("upsample_nearest",
               nn::Upsample(nn::UpsampleOptions().scale_factor(std::vector<double>{2, 3})), input,
               exact());
  check_module("upsample_bilinear",
               nn::Upsample(nn::UpsampleOptions()
                                .scale_factor(std::vector<double>{2, 2})
                                .mode(torch::kBilinear)
                                .align_corners(false)),
               input, transcendental());
  check_module("upsample_bilinear_align_corners",
               nn::Upsample(nn::UpsampleOptions()
                                .size(std::vector<int64_t>{7, 9})
                                .mode(torch::kBilinear)
                                .align_corners(true)),
               input, transcendental());
  nn::Module none;
  check(
      "interpolate_nearest_size", none,
      [](const at::Tensor& x) {
        return F::interpolate(
            x, F::InterpolateFuncOptions().size(std::vector<int64_t>{8, 10}).mode(torch::kNearest));
      },
      input, exact());
  nn::Sequential dropouts(nn::Dropout(0.5), nn::Identity(), nn::Dropout2d(0.3), nn::ReLU());
  check_module("dropout_identity", dropouts, input, exact());
}

namespace {

/// Pre-norm transformer block: LayerNorm, attention (MatMul, Softmax), GELU MLP, residual Adds.
struct BlockImpl : nn::Module {
  BlockImpl()
      : ln1(register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({16})))),
        ln2(register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({16})))),
        qkv(register_module("qkv", nn::Linear(16, 48))),
        proj(register_module("proj", nn::Linear(16, 16))),
        up(register_module("up", nn::Linear(16, 32))),
        down(register_module("down", nn::Linear(32, 16))) {}
  at::Tensor forward(const at::Tensor& x) {
    const auto parts = qkv->forward(ln1->forward(x)).chunk(3, -1);
    const auto attention = torch::softmax(parts[0].matmul(parts[1].transpose(1, 2)) / 4.0, -1);
    const auto y = x + proj->forward(attention.matmul(parts[2]));
    return y + down->forward(torch::gelu(up->forward(ln2->forward(y))));
  }
  nn::LayerNorm ln1, ln2;
  nn::Linear qkv, proj, up, down;
};
TORCH_MODULE(Block);

/// conv-bn-relu-conv-bn plus the input, then relu.
struct ResidualImpl : nn::Module {
  ResidualImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1)))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1)))),
        bn1(register_module("bn1", nn::BatchNorm2d(4))),
        bn2(register_module("bn2", nn::BatchNorm2d(4))) {
    randomize_statistics(bn1);
    randomize_statistics(bn2);
  }
  at::Tensor forward(const at::Tensor& x) {
    const auto y = bn2->forward(conv2->forward(torch::relu(bn1->forward(conv1->forward(x)))));
    return torch::relu(y + x);
  }
  nn::Conv2d conv1, conv2;
  nn::BatchNorm2d bn1, bn2;
};
TORCH_MODULE(Residual);

}  // namespace

// Whole blocks chain dot products (length up to 36 here) and normalizations; errors compound
// through a few layers, so the bound is the reduction rule at n = 4 * 36 (each of the four
// stages may add the error of one length-36 sum, relative to magnitudes of about 1).
TEST(OnnxFloatOps, TransformerAndResidualBlocks) {
  QS_REQUIRE_ONNXRUNTIME();
  torch::manual_seed(8);
  check_module("transformer_block", Block(), randn({5, 16}), reduction(4 * 36));
  check_module("residual_block", Residual(), randn({4, 6, 6}), reduction(4 * 36));
}
