// quantsim::affine::{quantize, dequantize, quantize_dequantize}: docs/quantization.md §2-§6,
// against the reference's values.

#include <quantsim/affine/functional.h>

#include "kernels/affine.h"
#include "testing/tolerance.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>

namespace qs = quantsim;
using qs::testing::all_close;
using qs::testing::bitwise_equal;

namespace {
at::Tensor f32(std::vector<float> v) { return torch::tensor(v); }
}  // namespace

// QDQ((), 8, asym) after set_range(-1, 1): scale fp32(2/255), offset -127
// (docs/quantization.md §4).
TEST(AffineFunctional, Check5PerTensorAsymmetric) {
  const auto x = f32({-1.2f, -1.f, -0.5f, 0.f, 0.3f, 0.999f, 1.5f});
  const auto scale = torch::tensor(2.f) / 255;
  const auto offset = torch::tensor(-127.f);
  EXPECT_TRUE(all_close(
      qs::affine::quantize_dequantize(x, scale, offset, 0, 255),
      f32({-0.99607849f, -0.99607849f, -0.50196081f, 0.f, 0.29803923f, 0.99607849f, 1.00392163f})));
  EXPECT_TRUE(bitwise_equal(qs::affine::quantize(x, scale, offset, 0, 255),
                            f32({0, 0, 63, 127, 165, 254, 255})));
}

// Gradients (8)-(10) with upstream ones, the reference's values (rtol 1e-5).
TEST(AffineFunctional, Check12BackendGradients) {
  const auto x0 = f32({-1.3f, -0.76f, -0.11f, 0.f, 1.01f, 3.f, 10.4f});
  auto run = [&](bool dequantize_after) {
    auto x = x0.clone().requires_grad_();
    auto s = torch::tensor(0.5f).requires_grad_();
    auto o = torch::tensor(-5.f).requires_grad_();
    auto y = dequantize_after ? qs::affine::quantize_dequantize(x, s, o, 0, 15)
                              : qs::affine::quantize(x, s, o, 0, 15);
    y.backward(torch::ones_like(y));
    return std::make_tuple(x.grad(), s.grad(), o.grad());
  };
  {
    const auto [dx, ds, doff] = run(true);
    EXPECT_TRUE(bitwise_equal(dx, f32({1, 1, 1, 1, 1, 1, 0})));
    EXPECT_TRUE(all_close(ds, torch::tensor(9.32f), 0, 1e-5));
    EXPECT_TRUE(all_close(doff, torch::tensor(0.5f), 0, 1e-5));
  }
  {
    const auto [dx, ds, doff] = run(false);
    EXPECT_TRUE(bitwise_equal(dx, f32({2, 2, 2, 2, 2, 2, 0})));
    EXPECT_TRUE(all_close(ds, torch::tensor(-7.36f), 0, 1e-5));
    EXPECT_TRUE(all_close(doff, torch::tensor(-6.f), 0, 1e-5));
  }
  auto q = f32({0, 3, 5, 15}).requires_grad_();
  auto s = torch::tensor(0.5f).requires_grad_();
  auto o = torch::tensor(-5.f).requires_grad_();
  auto y = qs::affine::dequantize(q, s, o);
  EXPECT_TRUE(all_close(y, f32({-2.5f, -1.f, 0.f, 5.f})));
  y.backward(torch::ones_like(y));
  EXPECT_TRUE(all_close(q.grad(), f32({0.5f, 0.5f, 0.5f, 0.5f})));
  EXPECT_TRUE(all_close(s.grad(), torch::tensor(3.f), 0, 1e-5));
  EXPECT_TRUE(all_close(o.grad(), torch::tensor(2.f), 0, 1e-5));
}

// Gradients exist exactly for the inputs that require grad (docs/quantization.md §6).
TEST(AffineFunctional, Check14GradientsOnlyWhereRequired) {
  for (int mask = 0; mask < 8; ++mask) {
    for (int op = 0; op < 3; ++op) {
      auto x = f32({-1.3f, 0.2f, 4.f}).requires_grad_((mask & 1) != 0);
      auto s = torch::tensor(0.5f).requires_grad_((mask & 2) != 0);
      auto o = torch::tensor(-5.f).requires_grad_((mask & 4) != 0);
      auto y = op == 0   ? qs::affine::quantize(x, s, o, 0, 15)
               : op == 1 ? qs::affine::dequantize(x, s, o)
                         : qs::affine::quantize_dequantize(x, s, o, 0, 15);
      SCOPED_TRACE(::testing::Message() << "mask " << mask << " op " << op);
      EXPECT_EQ(y.requires_grad(), mask != 0);
      if (mask == 0) continue;
      y.sum().backward();
      EXPECT_EQ(x.grad().defined(), (mask & 1) != 0);
      EXPECT_EQ(s.grad().defined(), (mask & 2) != 0);
      EXPECT_EQ(o.grad().defined(), (mask & 4) != 0);
    }
  }
  // Under no-grad nothing is recorded.
  torch::NoGradGuard no_grad;
  auto s = torch::tensor(0.5f).requires_grad_();
  EXPECT_FALSE(
      qs::affine::quantize_dequantize(f32({1.f}), s, torch::tensor(0.f), 0, 15).requires_grad());
}

// docs/quantization.md §2: dequantize(quantize(x)) == quantize_dequantize(x), bit-exactly.
TEST(AffineFunctional, Check18DequantizeOfQuantizeIsQuantizeDequantize) {
  const auto x = torch::arange(-200, 200, torch::kFloat) / 100;
  for (auto [s, o, qmin, qmax] :
       {std::make_tuple(0.0123f, 0.f, -128, 127), std::make_tuple(2.f / 255, -127.f, 0, 255),
        std::make_tuple(0.3f, -3.f, 0, 15)}) {
    const auto st = torch::tensor(s), ot = torch::tensor(o);
    EXPECT_TRUE(
        bitwise_equal(qs::affine::dequantize(qs::affine::quantize(x, st, ot, qmin, qmax), st, ot),
                      qs::affine::quantize_dequantize(x, st, ot, qmin, qmax)));
  }
  // Also per-channel, blockwise and in float64.
  const auto w = torch::randn({6, 8}, torch::kDouble);
  const auto s = torch::rand({6, 2}, torch::kDouble) * 0.05 + 0.01,
             o = torch::zeros({6, 2}, torch::kDouble);
  EXPECT_TRUE(bitwise_equal(
      qs::affine::dequantize(qs::affine::quantize(w, s, o, -8, 7, {1, 4}), s, o, {1, 4}),
      qs::affine::quantize_dequantize(w, s, o, -8, 7, {1, 4})));
}

// docs/quantization.md §5: internal dtype rules.
TEST(AffineFunctional, Check19InternalDtype) {
  const auto s = torch::tensor(0.01f), o = torch::tensor(0.f);
  const auto h = torch::randn({10}).to(torch::kHalf);
  EXPECT_THROW(qs::affine::quantize(h, s, o, 0, 65535), c10::Error);
  const auto y = qs::affine::quantize_dequantize(h, s, o, 0, 255);
  EXPECT_EQ(y.scalar_type(), torch::kHalf);
  // 8-bit QDQ of float16 runs in float32: same as computing in float32 and casting.
  EXPECT_TRUE(bitwise_equal(
      y, qs::affine::quantize_dequantize(h.to(torch::kFloat), s, o, 0, 255).to(torch::kHalf)));
  // float16 Quantize: 13-bit signed and 12-bit unsigned grids are not representable.
  EXPECT_THROW(qs::affine::quantize(h, s, o, -4096, 4095), c10::Error);
  EXPECT_THROW(qs::affine::quantize(h, s, o, 0, 4095), c10::Error);
  EXPECT_NO_THROW(qs::affine::quantize(h, s, o, -2048, 2047));
  const auto b = torch::randn({10}).to(torch::kBFloat16);
  EXPECT_THROW(qs::affine::quantize(b, s, o, -512, 511), c10::Error);
  EXPECT_THROW(qs::affine::quantize(b, s, o, 0, 511), c10::Error);

  const auto x = torch::randn({10}) * 1e9;
  const int64_t u32 = (int64_t{1} << 32) - 1;
  EXPECT_THROW(qs::affine::quantize(x, s, o, 0, u32), c10::Error);
  const auto q64 = qs::affine::quantize_dequantize(x, s, o, 0, u32);  // runs in float64
  EXPECT_EQ(q64.scalar_type(), torch::kFloat);
  EXPECT_TRUE(
      bitwise_equal(q64, qs::affine::quantize_dequantize(x.to(torch::kDouble), s.to(torch::kDouble),
                                                         o.to(torch::kDouble), 0, u32)
                             .to(torch::kFloat)));
  // The widest grid int64 can name is not representable even in float64 (as [0, 2^64-1] in the
  // reference).
  const int64_t widest = std::numeric_limits<int64_t>::max();
  EXPECT_THROW(qs::affine::quantize(x, s, o, 0, widest), c10::Error);
  EXPECT_THROW(qs::affine::quantize_dequantize(x, s, o, 0, widest), c10::Error);
}

// docs/quantization.md §3: scale must be expandable to the input.
TEST(AffineFunctional, Check20BroadcastValidation) {
  auto expect_all_throw = [](std::vector<int64_t> scale_shape, std::vector<int64_t> input_shape) {
    const auto x = torch::randn(input_shape);
    const auto s = torch::ones(scale_shape), o = torch::zeros(scale_shape);
    SCOPED_TRACE(::testing::Message()
                 << at::IntArrayRef(scale_shape) << " vs " << at::IntArrayRef(input_shape));
    EXPECT_THROW(qs::affine::quantize(x, s, o, 0, 255), c10::Error);
    EXPECT_THROW(qs::affine::dequantize(x, s, o), c10::Error);
    EXPECT_THROW(qs::affine::quantize_dequantize(x, s, o, 0, 255), c10::Error);
  };
  expect_all_throw({3, 1, 1}, {2, 1, 4, 5});
  expect_all_throw({5, 1, 1, 1, 1}, {2, 1, 4, 5});
  for (auto shape : std::vector<std::vector<int64_t>>{{4}, {2}, {3, 1}, {2, 1, 1}}) {
    expect_all_throw(shape, {2, 3, 4, 5});
  }
  // Valid ones for contrast.
  EXPECT_NO_THROW(qs::affine::quantize(torch::randn({2, 3, 4, 5}), torch::ones({3, 1, 1}),
                                       torch::zeros({3, 1, 1}), 0, 255));
  EXPECT_NO_THROW(
      qs::affine::quantize(torch::randn({2, 3, 4, 5}), torch::ones({5}), torch::zeros({}), 0, 255));
  // Other invalid arguments.
  EXPECT_THROW(qs::affine::quantize(torch::randn({3}), torch::ones({}), torch::zeros({}), 5, 4),
               c10::Error);
  EXPECT_THROW(qs::affine::quantize(torch::arange(3), torch::ones({}), torch::zeros({}), 0, 4),
               c10::Error);
}

// docs/quantization.md §3: blockwise quantization.
TEST(AffineFunctional, Check21Blockwise) {
  const auto x = torch::tensor({{-1.2f, 2.4f}, {-0.6f, -0.18f}});
  auto expect_q = [&](at::Tensor s, std::vector<int64_t> block, at::Tensor expected) {
    const auto o = torch::zeros_like(s);
    SCOPED_TRACE(::testing::Message() << "block " << at::IntArrayRef(block));
    EXPECT_TRUE(bitwise_equal(qs::affine::quantize(x, s, o, -128, 127, block), expected));
    EXPECT_TRUE(all_close(
        qs::affine::dequantize(qs::affine::quantize(x, s, o, -128, 127, block), s, o, block), x));
    EXPECT_TRUE(all_close(qs::affine::quantize_dequantize(x, s, o, -128, 127, block), x));
  };
  const auto row = torch::tensor({{0.03f, 0.02f}});
  const auto row_expected = torch::tensor({{-40.f, 120.f}, {-20.f, -9.f}});
  expect_q(row, {2, 1}, row_expected);
  expect_q(row, {-1, 1}, row_expected);
  expect_q(row, {}, row_expected);
  const auto col = torch::tensor({{0.03f}, {0.02f}});
  const auto col_expected = torch::tensor({{-40.f, 80.f}, {-30.f, -9.f}});
  expect_q(col, {1, 2}, col_expected);
  expect_q(col, {1, -1}, col_expected);
  expect_q(col, {}, col_expected);
  expect_q(torch::tensor({{0.03f, 0.02f}, {0.01f, 0.09f}}), {1, 1},
           torch::tensor({{-40.f, 120.f}, {-60.f, -2.f}}));

  const auto s = torch::ones({2, 1}), o = torch::zeros({2, 1});
  EXPECT_THROW(qs::affine::quantize(x, s, o, -128, 127, {1}), c10::Error);  // len != scale.dim()
  EXPECT_THROW(qs::affine::quantize(torch::randn({3, 2}), s, o, -128, 127, {-1, 2}),
               c10::Error);                                                    // 3 % 2
  EXPECT_THROW(qs::affine::quantize(x, s, o, -128, 127, {2, 2}), c10::Error);  // 2*2 != 2

  const auto shapes = qs::affine::block_shapes({8, 6, 8, 3}, {4, 3, 8, 1}, {-1, 2, 1, 3});
  EXPECT_EQ(shapes.input, (std::vector<int64_t>{4, 2, 3, 2, 8, 1, 1, 3}));
  EXPECT_EQ(shapes.scale, (std::vector<int64_t>{4, 1, 3, 1, 8, 1, 1, 1}));
}

// docs/quantization.md §3: blockwise == element-wise with the scale repeated over each block
// (reference composed independently of the block view), for several block layouts and leading dims.
TEST(AffineFunctional, BlockwiseMatchesRepeatedScale) {
  const auto x = torch::randn({3, 8, 12});
  const auto s = torch::rand({4, 3}) * 0.05 + 0.01;
  const auto o = torch::round(torch::rand({4, 3}) * -100);
  const auto full_s = s.repeat_interleave(2, 0).repeat_interleave(4, 1);
  const auto full_o = o.repeat_interleave(2, 0).repeat_interleave(4, 1);
  EXPECT_TRUE(bitwise_equal(
      qs::affine::quantize_dequantize(x, s, o, 0, 255, {2, 4}),
      qs::kernels::quantize_dequantize_reference(x, full_s.expand_as(x).contiguous(),
                                                 full_o.expand_as(x).contiguous(), {0, 255})));
  // Block size 1 everywhere with a full-size scale == no block size.
  const auto fs = torch::rand({8, 12}) * 0.05 + 0.01, fo = torch::zeros({8, 12});
  EXPECT_TRUE(bitwise_equal(qs::affine::quantize_dequantize(x, fs, fo, -8, 7, {1, 1}),
                            qs::affine::quantize_dequantize(x, fs, fo, -8, 7)));
}

// Layouts and sizes that must not crash, with the memory format preserved
// (docs/quantization.md §2).
TEST(AffineFunctional, LayoutsDtypesAndEmptyTensors) {
  const auto s = torch::tensor(0.05f), o = torch::tensor(-3.f);
  const auto cl = torch::randn({2, 3, 4, 5}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto y = qs::affine::quantize_dequantize(cl, s, o, 0, 255);
  EXPECT_TRUE(y.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(bitwise_equal(y, qs::affine::quantize_dequantize(cl.contiguous(), s, o, 0, 255)));
  const auto sliced = torch::randn({6, 10}).slice(1, 1, 9, 2);  // neither contiguous nor dense
  EXPECT_TRUE(bitwise_equal(qs::affine::quantize_dequantize(sliced, s, o, 0, 255),
                            qs::affine::quantize_dequantize(sliced.contiguous(), s, o, 0, 255)));
  const auto pc = torch::rand({3, 1}) * 0.1 + 0.01;
  const auto transposed = torch::randn({5, 3}).t();  // dense, not contiguous
  EXPECT_TRUE(bitwise_equal(
      qs::affine::quantize(transposed, pc, torch::zeros({3, 1}), -128, 127),
      qs::affine::quantize(transposed.contiguous(), pc, torch::zeros({3, 1}), -128, 127)));
  for (auto shape : std::vector<std::vector<int64_t>>{{0}, {3, 0, 2}, {0, 4}}) {
    auto e = torch::randn(shape).requires_grad_();
    auto ss = torch::tensor(0.1f).requires_grad_();
    auto out = qs::affine::quantize_dequantize(e, ss, torch::tensor(0.f), -128, 127);
    EXPECT_EQ(out.sizes(), e.sizes());
    out.sum().backward();
    EXPECT_EQ(ss.grad().item<float>(), 0.f);
  }
  for (auto dtype : {torch::kHalf, torch::kBFloat16, torch::kDouble}) {
    const auto x = torch::randn({64}).to(dtype);
    const auto out = qs::affine::quantize_dequantize(x, s, o, 0, 15);
    EXPECT_EQ(out.scalar_type(), dtype);
    // Equal to Q then DQ when both run in the same internal dtype (bfloat16 4-bit QDQ widens
    // to float32, docs/quantization.md §5).
    if (dtype != torch::kBFloat16) {
      EXPECT_TRUE(
          bitwise_equal(out, qs::affine::dequantize(qs::affine::quantize(x, s, o, 0, 15), s, o)));
    }
  }
}
