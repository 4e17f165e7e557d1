// The affine quantizer's direct forward (src/affine/learned_range.h): outputs and gradients of
// x, min and max bit-identical to autograd over the composed ops it replaces, eq. (3)-(5) of
// docs/quantization.md, and a cached encoding that follows every change of the range.

#include <quantsim/affine/functional.h>
#include <quantsim/affine/quantizer.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::affine::QuantizeDequantize;
using qs::testing::bitwise_equal;

namespace {

using Shape = std::vector<int64_t>;

/// The quantizer's forward as it was composed before the direct path: eq. (4), (5) with torch
/// ops, then affine::quantize_dequantize; autograd records every op.
torch::Tensor composed_forward(const torch::Tensor& x, const torch::Tensor& min,
                               const torch::Tensor& max, int64_t qmin, int64_t qmax,
                               bool symmetric) {
  const auto scale = (max.to(torch::kFloat) - min.to(torch::kFloat)) / (qmax - qmin);
  const auto offset = symmetric ? torch::zeros(min.sizes(), scale.options())
                                : qs::affine::ste_round(min.to(torch::kFloat) / scale) - qmin;
  return qs::affine::quantize_dequantize(x, scale, offset, qmin, qmax);
}

struct Case {
  Shape input, range;
  int64_t bitwidth;
  bool symmetric;
};

std::string describe(const Case& c) {
  return ::testing::PrintToString(c.input) + " range " + ::testing::PrintToString(c.range) +
         " bitwidth " + std::to_string(c.bitwidth) + (c.symmetric ? " symmetric" : " asymmetric");
}

/// Random data with values beyond the range and on rounding ties of the grid.
torch::Tensor input_for(const Shape& shape, double spread) {
  auto x = torch::randn(shape) * spread;
  auto flat = x.view({-1});
  for (int64_t i = 0; i < flat.numel(); i += 7) flat[i] = std::round(flat[i].item<double>()) + 0.5;
  return x;
}

/// Runs the quantizer and the composed ops on the same x, min, max and compares outputs and the
/// gradients of every combination of inputs requiring them.
void expect_same_as_composed(const Case& c, bool grad_x, bool grad_min, bool grad_max) {
  SCOPED_TRACE(describe(c) + " grads x/min/max " + std::to_string(grad_x) +
               std::to_string(grad_min) + std::to_string(grad_max));
  QuantizeDequantize q(c.range, c.bitwidth, c.symmetric);
  // A per-element range, wide and narrow, with minima on both sides of zero.
  const auto lo = -torch::rand(c.range) * 3 - 0.01;
  const auto hi = torch::rand(c.range) * 2 + 0.02;
  q->set_range(lo, hi);
  q->min.requires_grad_(grad_min);
  q->max.requires_grad_(grad_max);
  const auto x_data = input_for(c.input, 2.0);

  auto x1 = x_data.clone().requires_grad_(grad_x);
  auto x2 = x_data.clone().requires_grad_(grad_x);
  auto min2 = q->min.detach().clone().requires_grad_(grad_min);
  auto max2 = q->max.detach().clone().requires_grad_(grad_max);
  const auto y1 = q(x1);
  const auto y2 = composed_forward(x2, min2, max2, q->qmin(), q->qmax(), c.symmetric);
  ASSERT_TRUE(bitwise_equal(y1, y2));
  ASSERT_EQ(y1.requires_grad(), y2.requires_grad());
  if (!y1.requires_grad()) return;
  const auto g = torch::randn(c.input);
  // Twice: the second backward accumulates into the first's gradients.
  for (int pass = 0; pass < 2; ++pass) {
    q(x1).backward(g);
    composed_forward(x2, min2, max2, q->qmin(), q->qmax(), c.symmetric).backward(g);
  }
  if (grad_x) EXPECT_TRUE(bitwise_equal(x1.grad(), x2.grad()));
  if (grad_min) EXPECT_TRUE(bitwise_equal(q->min.grad(), min2.grad()));
  if (grad_max) EXPECT_TRUE(bitwise_equal(q->max.grad(), max2.grad()));
}

const std::vector<Case> kCases = {
    {{64}, {}, 8, false},
    {{64}, {}, 8, true},
    {{3, 5, 7}, {1}, 4, false},
    {{16, 9}, {16, 1}, 8, true},
    {{16, 9}, {16, 1}, 8, false},
    {{4, 6, 5, 5}, {6, 1, 1}, 3, false},
    {{4, 6, 5, 5}, {1, 6, 1, 1}, 2, true},
    {{10, 12}, {12}, 16, false},
    {{10, 12}, {12}, 20, true},
    {{2, 300}, {}, 24, false},
};

}  // namespace

TEST(LearnedRange, OutputAndGradientsEqualTheComposedOps) {
  torch::manual_seed(11);
  for (const auto& c : kCases) {
    for (int mask = 0; mask < 8; ++mask) {
      expect_same_as_composed(c, mask & 1, mask & 2, mask & 4);
    }
  }
}

TEST(LearnedRange, NoGradModeEqualsTheComposedOps) {
  torch::manual_seed(12);
  for (const auto& c : kCases) {
    SCOPED_TRACE(describe(c));
    QuantizeDequantize q(c.range, c.bitwidth, c.symmetric);
    q->set_range(-torch::rand(c.range) - 0.5, torch::rand(c.range) + 0.25);
    const auto x = input_for(c.input, 1.5);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(bitwise_equal(
        q(x), composed_forward(x, q->min, q->max, q->qmin(), q->qmax(), c.symmetric)));
  }
}

// Every way the range or grid can change after a call shows in the next call.
TEST(LearnedRange, CachedEncodingFollowsTheRange) {
  torch::manual_seed(13);
  QuantizeDequantize q(Shape{}, 8, false);
  q->set_range(-1.0, 1.0);
  const auto x = torch::randn({256}) * 2;
  const auto expect_current = [&](const char* after) {
    SCOPED_TRACE(after);
    torch::NoGradGuard no_grad;
    const auto y = q(x);
    EXPECT_TRUE(bitwise_equal(
        y, composed_forward(x, q->min, q->max, q->qmin(), q->qmax(), q->symmetric())));
  };
  torch::NoGradGuard no_grad;
  const auto first = q(x);
  expect_current("first call");
  q->set_range(-0.5, 0.75);
  expect_current("set_range");
  EXPECT_FALSE(bitwise_equal(q(x), first));
  q->min.fill_(-0.25);  // in place, as an optimizer step does
  expect_current("min modified in place");
  q->max.mul_(2);
  expect_current("max modified in place");
  q->set_bitwidth(4);
  expect_current("set_bitwidth(4)");
  q->set_signed(true);
  expect_current("set_signed(true)");
  q->min.set_data(torch::full({}, -2.0f));  // new storage, same tensor
  expect_current("min.set_data");
}

TEST(LearnedRange, UninitializedRangeStillRaises) {
  QuantizeDequantize q(Shape{}, 8, false);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(q(torch::randn({8})), c10::Error);
  q->set_range(-1.0, 1.0);
  EXPECT_NO_THROW(q(torch::randn({8})));
}

// Frozen ranges (requires_grad false) and the gradient of x alone after an optimizer-style
// update between steps: each step sees the updated range.
TEST(LearnedRange, TrainingStepsSeeUpdatedRanges) {
  torch::manual_seed(14);
  QuantizeDequantize q(Shape{1}, 8, false);
  q->set_range(-1.0, 1.0);
  auto min2 = q->min.detach().clone().requires_grad_(true);
  auto max2 = q->max.detach().clone().requires_grad_(true);
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(step);
    const auto x = torch::randn({32}) * 1.5;
    auto y1 = q(x);
    auto y2 = composed_forward(x, min2, max2, q->qmin(), q->qmax(), false);
    ASSERT_TRUE(bitwise_equal(y1, y2));
    y1.pow(2).sum().backward();
    y2.pow(2).sum().backward();
    ASSERT_TRUE(bitwise_equal(q->min.grad(), min2.grad()));
    ASSERT_TRUE(bitwise_equal(q->max.grad(), max2.grad()));
    torch::NoGradGuard no_grad;
    for (auto* pair : {&q->min, &q->max}) pair->sub_(pair->grad() * 0.1);
    min2.sub_(min2.grad() * 0.1);
    max2.sub_(max2.grad() * 0.1);
    for (auto* t : {&q->min, &q->max, &min2, &max2}) t->mutable_grad().zero_();
  }
}
