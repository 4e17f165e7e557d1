// Fused affine kernels == their normative references (bit-exact element-wise, reduction-close
// for summed gradients), over sweeps of shapes, memory orders, parameter layouts, dtypes, grids.

#include "testing/affine_tester.h"
#include "testing/random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include <torch/torch.h>

using quantsim::affine::Grid;
using quantsim::testing::AffineKernelTester;

TEST(AffineKernels, PerTensorSizes) {
  // Sizes around the vector width and the parallel grain (32768), including empty.
  for (int64_t n : {0, 1, 7, 8, 9, 31, 33, 1000, 32767, 32768, 32769, 100003}) {
    AffineKernelTester().shape({n}).test_all();
  }
}

TEST(AffineKernels, PerChannelEveryAxis) {
  const std::vector<int64_t> shape{5, 6, 7, 9};
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    std::vector<int64_t> params(shape.size(), 1);
    params[axis] = shape[axis];
    AffineKernelTester().shape(shape).param_shape(params).test_all();
    AffineKernelTester().shape(shape).param_shape(params).symmetric(true).bitwidth(4).test_all();
  }
}

TEST(AffineKernels, ChannelsLastAndTransposedLayouts) {
  AffineKernelTester()
      .shape({2, 16, 5, 7})
      .param_shape({16, 1, 1})
      .memory_order({0, 2, 3, 1})
      .test_all();
  AffineKernelTester().shape({33, 65}).param_shape({33, 1}).memory_order({1, 0}).test_all();
  AffineKernelTester().shape({33, 65}).param_shape({65}).memory_order({1, 0}).test_all();
}

TEST(AffineKernels, BroadcastPatternsAndElementwise) {
  AffineKernelTester().shape({4, 3, 8}).param_shape({4, 1, 8}).test_all();
  AffineKernelTester().shape({4, 3, 8}).param_shape({4, 3, 8}).test_all();
  AffineKernelTester().shape({4, 3, 8}).param_shape({3, 1}).test_all();
  // Block view (S0, B0, S1, B1) with scale (S0, 1, S1, 1), as the ops layer builds it.
  AffineKernelTester().shape({6, 4, 10, 3}).param_shape({6, 1, 10, 1}).test_all();
}

TEST(AffineKernels, DtypesAndGrids) {
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    AffineKernelTester().shape({3, 1000}).param_shape({3, 1}).dtype(dtype).bitwidth(4).test_all();
    AffineKernelTester().shape({3, 1000}).dtype(dtype).grid(Grid{-8, 7}).symmetric(true).test_all();
  }
  AffineKernelTester().shape({2000}).grid(Grid{0, 65535}).test_all();
  AffineKernelTester()
      .shape({2000})
      .dtype(at::kDouble)
      .grid(Grid{0, (int64_t{1} << 32) - 1})
      .test_all();
  AffineKernelTester().shape({2000}).grid(Grid{-127, 127}).symmetric(true).test_all();
}

TEST(AffineKernels, RandomSweep) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 40; ++trial) {
    const auto layout = quantsim::testing::random_layout(rng, 13);
    const at::ScalarType dtypes[] = {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16};
    AffineKernelTester()
        .shape(layout.shape)
        .param_shape(layout.params)
        .memory_order(layout.order)
        .dtype(dtypes[rng() % 4])
        .bitwidth(2 + rng() % 7)
        .symmetric(rng() % 2)
        .seed(trial)
        .test_all();
  }
}

TEST(AffineKernels, ReducedGradientsDoNotDependOnThreadCount) {
  const auto x = at::randn({300000});
  const auto s = at::full({}, 0.02f), o = at::full({}, -10.f), g = at::randn({300000});
  const int saved = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = quantsim::kernels::quantize_dequantize_backward_fused(g, x, s, o, Grid{0, 255},
                                                                         {true, true, true});
  at::set_num_threads(2);
  const auto two = quantsim::kernels::quantize_dequantize_backward_fused(g, x, s, o, Grid{0, 255},
                                                                         {true, true, true});
  at::set_num_threads(saved);
  EXPECT_TRUE(quantsim::testing::bitwise_equal(one.scale, two.scale));
  EXPECT_TRUE(quantsim::testing::bitwise_equal(one.offset, two.offset));
}

TEST(AffineKernels, SignedZerosNaNAndInfinities) {
  // -0.0 survives the clamp at qmin = 0 as in torch's clamp; NaN propagates; +-inf clip.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const auto x = torch::tensor({-1e-6f, -0.0f, 0.0f, nan, inf, -inf, 3.f, -3.f});
  const auto g = torch::ones_like(x);
  for (float offset : {0.f, -7.f}) {
    const auto s = torch::tensor(0.1f), o = torch::tensor(offset);
    for (auto grid : {Grid{0, 255}, Grid{-128, 127}}) {
      EXPECT_TRUE(
          quantsim::testing::bitwise_equal(quantsim::kernels::quantize_fused(x, s, o, grid),
                                           quantsim::kernels::quantize_reference(x, s, o, grid)));
      EXPECT_TRUE(quantsim::testing::bitwise_equal(
          quantsim::kernels::quantize_dequantize_fused(x, s, o, grid),
          quantsim::kernels::quantize_dequantize_reference(x, s, o, grid)));
      EXPECT_TRUE(quantsim::testing::bitwise_equal(
          quantsim::kernels::quantize_dequantize_backward_fused(g, x, s, o, grid,
                                                                {true, false, false})
              .input,
          quantsim::kernels::quantize_dequantize_backward_reference(g, x, s, o, grid,
                                                                    {true, false, false})
              .input));
    }
  }
  // The sign of zero is visible in Quantize's output: round(-1e-6 / 0.1) - 0 = -0.0.
  const auto q =
      quantsim::kernels::quantize_fused(x, torch::tensor(0.1f), torch::tensor(0.f), Grid{0, 255});
  EXPECT_TRUE(std::signbit(q[0].item<float>()));
  EXPECT_TRUE(std::isnan(q[3].item<float>()));
  EXPECT_EQ(q[4].item<float>(), 255.f);
  EXPECT_EQ(q[5].item<float>(), 0.f);
}
