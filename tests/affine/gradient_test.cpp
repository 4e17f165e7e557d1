// Finite-difference checks of the gradients of docs/quantization.md §6. The quantization ops are
// piecewise constant, so their gradients are defined with a straight-through estimator: round(t) is
// treated as t + c with c = round(t0) - t0 frozen at the evaluation point (and the clamp mask
// frozen too). Central differences of that surrogate, on float64 data kept away from rounding
// boundaries, must match the autograd gradients of scale and offset.

#include <quantsim/affine/functional.h>

#include "testing/tolerance.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace qs = quantsim;

namespace {

enum class Op { kQuantize, kQuantizeDequantize };

struct Problem {
  at::Tensor x, s, o, w;  // w: upstream gradient, loss = sum(w * op(x))
  int64_t qmin, qmax;
};

// The surrogate of eq. (8)-(10) at the point (x, s0, o0), evaluated at (s, o).
at::Tensor surrogate(const Problem& p, Op op, const at::Tensor& s, const at::Tensor& o) {
  const auto t0 = p.x / p.s;
  const auto c = at::round(t0) - t0;
  const auto xr0 = at::round(t0) - p.o;
  const auto inside = (xr0 >= p.qmin) & (xr0 <= p.qmax);
  const auto bound =
      at::where(xr0 < p.qmin, at::full_like(xr0, p.qmin), at::full_like(xr0, p.qmax));
  const auto q = at::where(inside, p.x / s + c - o, bound);
  return op == Op::kQuantize ? q : (q + o) * s;
}

double loss(const Problem& p, Op op, const at::Tensor& s, const at::Tensor& o) {
  return (surrogate(p, op, s, o) * p.w).sum().item<double>();
}

// Data on the grid plus offsets in [-0.35, 0.35] steps: every x/s is >= 0.15 from a tie.
Problem make_problem(std::vector<int64_t> shape, std::vector<int64_t> param_shape, int64_t qmin,
                     int64_t qmax, bool symmetric) {
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  Problem p;
  p.qmin = qmin;
  p.qmax = qmax;
  p.s = torch::rand(param_shape, opts) * 0.05 + 0.02;
  p.o = symmetric ? torch::zeros(param_shape, opts)
                  : torch::round(torch::rand(param_shape, opts) * -(qmax - qmin) / 2.0) - qmin;
  const auto k = torch::randint(qmin - 20, qmax + 20, shape, opts) + p.o;  // some clip
  p.x = (k + (torch::rand(shape, opts) - 0.5) * 0.7) * p.s;
  p.w = torch::randn(shape, opts);
  return p;
}

void check(const Problem& p, Op op) {
  auto s = p.s.clone().requires_grad_();
  auto o = p.o.clone().requires_grad_();
  const auto y = op == Op::kQuantize ? qs::affine::quantize(p.x, s, o, p.qmin, p.qmax)
                                     : qs::affine::quantize_dequantize(p.x, s, o, p.qmin, p.qmax);
  EXPECT_TRUE(qs::testing::all_close(y, surrogate(p, op, p.s, p.o), 1e-12));  // same function
  (y * p.w).sum().backward();
  const double h = 1e-7;
  for (int64_t i = 0; i < p.s.numel(); ++i) {
    auto ds = torch::zeros_like(p.s);
    ds.view(-1)[i] = h;
    const double fd_s = (loss(p, op, p.s + ds, p.o) - loss(p, op, p.s - ds, p.o)) / (2 * h);
    const double fd_o = (loss(p, op, p.s, p.o + ds) - loss(p, op, p.s, p.o - ds)) / (2 * h);
    const double g_s = s.grad().view(-1)[i].item<double>();
    const double g_o = o.grad().view(-1)[i].item<double>();
    EXPECT_NEAR(g_s, fd_s, 1e-5 * (1 + std::abs(fd_s))) << "scale element " << i;
    EXPECT_NEAR(g_o, fd_o, 1e-5 * (1 + std::abs(fd_o))) << "offset element " << i;
  }
}

}  // namespace

TEST(AffineGradients, PerTensorMatchesFiniteDifferences) {
  torch::manual_seed(0);
  for (Op op : {Op::kQuantize, Op::kQuantizeDequantize}) {
    check(make_problem({200}, {}, 0, 255, false), op);
    check(make_problem({200}, {}, -8, 7, true), op);
  }
}

TEST(AffineGradients, PerChannelMatchesFiniteDifferences) {
  torch::manual_seed(1);
  for (Op op : {Op::kQuantize, Op::kQuantizeDequantize}) {
    check(make_problem({4, 50}, {4, 1}, 0, 15, false), op);
    check(make_problem({3, 5, 8}, {5, 1}, -128, 127, true), op);
  }
}

TEST(AffineGradients, DequantizeMatchesFiniteDifferences) {
  // dequantize is smooth: plain central differences, no surrogate needed.
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto q = torch::randint(0, 16, {3, 7}, opts);
  const auto w = torch::randn({3, 7}, opts);
  auto s = (torch::rand({3, 1}, opts) + 0.1).requires_grad_();
  auto o = torch::randn({3, 1}, opts).requires_grad_();
  auto qv = q.clone().requires_grad_();
  (qs::affine::dequantize(qv, s, o) * w).sum().backward();
  const auto f = [&](const at::Tensor& qq, const at::Tensor& ss, const at::Tensor& oo) {
    return (((qq + oo) * ss) * w).sum().item<double>();
  };
  const double h = 1e-6;
  for (int64_t i = 0; i < 3; ++i) {
    auto d = torch::zeros({3, 1}, opts);
    d[i][0] = h;
    EXPECT_NEAR(s.grad()[i][0].item<double>(),
                (f(q, s.detach() + d, o.detach()) - f(q, s.detach() - d, o.detach())) / (2 * h),
                1e-6);
    EXPECT_NEAR(o.grad()[i][0].item<double>(),
                (f(q, s.detach(), o.detach() + d) - f(q, s.detach(), o.detach() - d)) / (2 * h),
                1e-6);
  }
  EXPECT_TRUE(qs::testing::all_close(qv.grad(), (w * s.detach()).expand({3, 7}), 1e-12));
}
