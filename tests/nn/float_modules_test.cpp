// Float modules that libtorch lacks (quantsim/nn/float_modules.h) against the torch functionals
// they must reproduce and against hand-computed values.

#include <quantsim/nn/float_modules.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "testing/printing.h"
#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
namespace F = torch::nn::functional;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::f32_2d;
using qs::testing::printed;

namespace {

at::Tensor random(at::IntArrayRef shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen);
}

std::vector<std::string> keys(const torch::OrderedDict<std::string, at::Tensor>& dict) {
  return dict.keys();
}

}  // namespace

TEST(ChannelShuffle, InterleavesGroups) {
  qs::nn::ChannelShuffle shuffle(2);
  const auto x = at::arange(4 * 3, at::kFloat).reshape({1, 4, 3});
  // channels 0 1 2 3 in 2 groups -> 0 2 1 3
  const auto expected = x.index_select(1, at::tensor({0, 2, 1, 3}, at::kLong));
  EXPECT_TRUE(bitwise_equal(shuffle(x), expected));
  const auto x4 = random({2, 6, 3, 2}, 1);
  EXPECT_TRUE(bitwise_equal(qs::nn::ChannelShuffle(3)(x4), at::channel_shuffle(x4, 3)));
  EXPECT_EQ(printed(*shuffle), "quantsim::nn::ChannelShuffle(groups=2)");
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(shuffle).forward(x), expected));
}

TEST(Hardsigmoid, MatchesFormulaAndTorch) {
  const auto x = f32({-4, -3, -1.5, 0, 1, 3, 5});
  qs::nn::Hardsigmoid hs;
  const auto expected = f32({0, 0, 0.25, 0.5, 4.0 / 6, 1, 1});
  EXPECT_TRUE(all_close(hs(x), expected));
  EXPECT_TRUE(bitwise_equal(hs(x), at::hardsigmoid(x)));
  EXPECT_EQ(printed(*hs), "quantsim::nn::Hardsigmoid()");

  auto y = x.clone();
  qs::nn::Hardsigmoid inplace(qs::nn::HardsigmoidOptions().inplace(true));
  inplace(y);
  EXPECT_TRUE(bitwise_equal(y, at::hardsigmoid(x)));
  EXPECT_EQ(printed(*inplace), "quantsim::nn::Hardsigmoid(inplace=true)");
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(hs).forward(x), at::hardsigmoid(x)));
}

TEST(Hardswish, MatchesFormulaAndTorch) {
  const auto x = f32({-4, -3, -1.5, 0, 1, 3, 5});
  qs::nn::Hardswish hs;
  const auto expected = f32({0, 0, -1.5 * 0.25, 0, 4.0 / 6, 3, 5});
  EXPECT_TRUE(all_close(hs(x), expected));
  EXPECT_TRUE(bitwise_equal(hs(x), at::hardswish(x)));
  EXPECT_EQ(printed(*hs), "quantsim::nn::Hardswish()");
  auto y = x.clone();
  qs::nn::Hardswish(qs::nn::HardswishOptions().inplace(true))(y);
  EXPECT_TRUE(bitwise_equal(y, at::hardswish(x)));
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(hs).forward(x), at::hardswish(x)));
}

// SyncBatchNorm in one process is BatchNorm{1,2,3}d: same outputs and same running statistics.
template <typename TorchBatchNorm>
void expect_same_as_batch_norm(at::IntArrayRef shape, torch::nn::BatchNormOptions options) {
  SCOPED_TRACE(::testing::Message() << "input " << shape);
  qs::nn::SyncBatchNorm sync(options);
  TorchBatchNorm reference(options);
  {
    torch::NoGradGuard no_grad;
    const auto w = random({options.num_features()}, 7), b = random({options.num_features()}, 8);
    if (options.affine()) {
      sync->weight.copy_(w), reference->weight.copy_(w);
      sync->bias.copy_(b), reference->bias.copy_(b);
    }
  }
  for (int step = 0; step < 3; ++step) {
    const auto x = random(shape, 10 + step) * 2 + 1;
    EXPECT_TRUE(bitwise_equal(sync(x), reference(x)));
  }
  if (options.track_running_stats()) {
    EXPECT_TRUE(bitwise_equal(sync->running_mean, reference->running_mean));
    EXPECT_TRUE(bitwise_equal(sync->running_var, reference->running_var));
    EXPECT_TRUE(bitwise_equal(sync->num_batches_tracked, reference->num_batches_tracked));
  }
  sync->eval();
  reference->eval();
  const auto x = random(shape, 20);
  EXPECT_TRUE(bitwise_equal(sync(x), reference(x)));
}

TEST(SyncBatchNorm, IsBatchNormOverAnyRank) {
  expect_same_as_batch_norm<torch::nn::BatchNorm2d>({4, 3, 5, 2}, torch::nn::BatchNormOptions(3));
  expect_same_as_batch_norm<torch::nn::BatchNorm1d>({6, 3}, torch::nn::BatchNormOptions(3));
  expect_same_as_batch_norm<torch::nn::BatchNorm1d>({6, 3, 4},
                                                    torch::nn::BatchNormOptions(3).momentum(0.3));
  expect_same_as_batch_norm<torch::nn::BatchNorm3d>(
      {2, 3, 2, 3, 2}, torch::nn::BatchNormOptions(3).momentum(c10::nullopt));
  expect_same_as_batch_norm<torch::nn::BatchNorm2d>(
      {4, 3, 5, 2}, torch::nn::BatchNormOptions(3).affine(false).track_running_stats(false));
}

TEST(SyncBatchNorm, StateIsNamedAsTorch) {
  qs::nn::SyncBatchNorm bn(qs::nn::SyncBatchNormOptions(4));
  EXPECT_EQ(keys(bn->named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(keys(bn->named_buffers()),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_TRUE(bitwise_equal(bn->weight, at::ones({4})));
  EXPECT_TRUE(bitwise_equal(bn->running_var, at::ones({4})));
  EXPECT_EQ(printed(*bn),
            "quantsim::nn::SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=true, "
            "track_running_stats=true)");
  auto clone = std::dynamic_pointer_cast<qs::nn::SyncBatchNormImpl>(bn->clone());
  ASSERT_TRUE(clone);
  EXPECT_NE(clone->weight.data_ptr(), bn->weight.data_ptr());
  EXPECT_THROW(bn(at::ones({4})), c10::ValueError);
  EXPECT_THROW(bn(at::ones({1, 4})), c10::ValueError);  // one value per channel
  const auto x = random({3, 4}, 2);
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(bn).forward(x).detach(),
                            torch::nn::BatchNorm1d(4)(x).detach()));
}

TEST(UpsamplingBilinear2d, AlignsCorners) {
  const auto x = f32_2d({{0, 1}, {2, 3}}).reshape({1, 1, 2, 2});
  qs::nn::UpsamplingBilinear2d up(qs::nn::UpsamplingOptions().size(std::vector<int64_t>{3, 3}));
  const auto expected = f32_2d({{0, 0.5, 1}, {1, 1.5, 2}, {2, 2.5, 3}}).reshape({1, 1, 3, 3});
  EXPECT_TRUE(all_close(up(x), expected));
  EXPECT_EQ(printed(*up), "quantsim::nn::UpsamplingBilinear2d(size=[3, 3])");

  const auto y = random({2, 3, 4, 5}, 3);
  qs::nn::UpsamplingBilinear2d scaled(
      qs::nn::UpsamplingOptions().scale_factor(std::vector<double>{2}));
  EXPECT_TRUE(
      bitwise_equal(scaled(y), F::interpolate(y, F::InterpolateFuncOptions()
                                                     .scale_factor(std::vector<double>{2, 2})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(true))));
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(scaled).forward(y), scaled(y)));
}

TEST(UpsamplingNearest2d, RepeatsPixels) {
  const auto x = f32_2d({{0, 1}, {2, 3}}).reshape({1, 1, 2, 2});
  qs::nn::UpsamplingNearest2d up(
      qs::nn::UpsamplingOptions().scale_factor(std::vector<double>{2, 2}));
  const auto expected =
      f32_2d({{0, 0, 1, 1}, {0, 0, 1, 1}, {2, 2, 3, 3}, {2, 2, 3, 3}}).reshape({1, 1, 4, 4});
  EXPECT_TRUE(bitwise_equal(up(x), expected));
  EXPECT_EQ(printed(*up), "quantsim::nn::UpsamplingNearest2d(scale_factor=[2, 2])");
  const auto y = random({1, 2, 3, 5}, 4);
  qs::nn::UpsamplingNearest2d sized(qs::nn::UpsamplingOptions().size(std::vector<int64_t>{7, 4}));
  EXPECT_TRUE(bitwise_equal(
      sized(y), F::interpolate(y, F::InterpolateFuncOptions().size(std::vector<int64_t>{7, 4}))));
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(sized).forward(y), sized(y)));
}

TEST(NLLLoss2d, IsNllLossOnImages) {
  const auto logp = at::log_softmax(random({2, 3, 4, 5}, 5), 1);
  const auto target = at::randint(0, 3, {2, 4, 5}, at::make_generator<at::CPUGeneratorImpl>(6));
  qs::nn::NLLLoss2d loss;
  EXPECT_TRUE(bitwise_equal(loss(logp, target), F::nll_loss(logp, target)));
  // Hand-computed: mean over pixels of -logp[target].
  const auto picked = -logp.gather(1, target.unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(all_close(loss(logp, target), picked.mean(), 1e-6));

  const auto weight = f32({0.5, 2, 1});
  qs::nn::NLLLoss2d weighted(
      qs::nn::NLLLoss2dOptions().weight(weight).ignore_index(1).reduction(torch::kSum));
  EXPECT_TRUE(bitwise_equal(
      weighted(logp, target),
      F::nll_loss(logp, target,
                  F::NLLLossFuncOptions().weight(weight).ignore_index(1).reduction(torch::kSum))));
  EXPECT_EQ(keys(weighted->named_buffers()), std::vector<std::string>{"weight"});
  EXPECT_EQ(printed(*weighted), "quantsim::nn::NLLLoss2d(ignore_index=1, reduction=sum)");
  EXPECT_TRUE(bitwise_equal(torch::nn::AnyModule(loss).forward(logp, target), loss(logp, target)));
}

TEST(GaussianNLLLoss, HandComputed) {
  const auto input = f32({1, 2}), target = f32({0, 0}), var = f32({1, 4});
  // 0.5 * (log 1 + 1 / 1) = 0.5;  0.5 * (log 4 + 4 / 4) = 1.1931472
  const double l0 = 0.5, l1 = 0.5 * (std::log(4.0) + 1.0);
  qs::nn::GaussianNLLLoss none(qs::nn::GaussianNLLLossOptions().reduction(torch::kNone));
  EXPECT_TRUE(all_close(none(input, target, var), f32({l0, l1})));
  qs::nn::GaussianNLLLoss mean;
  EXPECT_TRUE(all_close(mean(input, target, var), at::scalar_tensor((l0 + l1) / 2)));
  qs::nn::GaussianNLLLoss sum_full(
      qs::nn::GaussianNLLLossOptions().full(true).reduction(torch::kSum));
  const double c = 0.5 * std::log(2 * M_PI);
  EXPECT_TRUE(all_close(sum_full(input, target, var), at::scalar_tensor(l0 + l1 + 2 * c)));
  EXPECT_EQ(printed(*mean), "quantsim::nn::GaussianNLLLoss(full=false, eps=1e-06, reduction=mean)");
  EXPECT_TRUE(all_close(torch::nn::AnyModule(mean).forward(input, target, var),
                        at::scalar_tensor((l0 + l1) / 2)));
}

TEST(GaussianNLLLoss, HomoscedasticVarBroadcastsOverLastDim) {
  const auto input = random({3, 4}, 1), target = random({3, 4}, 2);
  const auto var = random({3}, 3).abs() + 0.1;
  qs::nn::GaussianNLLLoss loss(qs::nn::GaussianNLLLossOptions().reduction(torch::kNone));
  const auto full_var = var.unsqueeze(1).expand({3, 4});
  EXPECT_TRUE(bitwise_equal(loss(input, target, var), loss(input, target, full_var)));
  EXPECT_TRUE(bitwise_equal(loss(input, target, var.unsqueeze(1)), loss(input, target, full_var)));
  const auto expected = 0.5 * (at::log(full_var) + at::pow(input - target, 2) / full_var);
  EXPECT_TRUE(bitwise_equal(loss(input, target, full_var), expected));
  EXPECT_THROW(loss(input, target, at::ones({4})), c10::ValueError);
  EXPECT_THROW(loss(input, target, at::ones({3, 2})), c10::ValueError);
  EXPECT_THROW(loss(input, target, -at::ones({3, 4})), c10::ValueError);
}

TEST(GaussianNLLLoss, ClampIsInvisibleToAutograd) {
  const auto input = f32({1, 1}), target = f32({0, 0});
  const auto var = f32({0, 2}).requires_grad_();
  qs::nn::GaussianNLLLoss loss(qs::nn::GaussianNLLLossOptions().eps(0.5).reduction(torch::kSum));
  const auto l = loss(input, target, var);
  // var 0 is clamped to 0.5: 0.5 * (log 0.5 + 1 / 0.5)
  EXPECT_NEAR(l.item<double>(), 0.5 * (std::log(0.5) + 2) + 0.5 * (std::log(2.0) + 0.5), 1e-6);
  l.backward();
  // d/dv 0.5 (log v + d²/v) = 0.5 (1/v - d²/v²), at the clamped v, passed through to var.
  EXPECT_TRUE(all_close(var.grad(), f32({0.5 * (2 - 4), 0.5 * (0.5 - 0.25)})));
  EXPECT_TRUE(bitwise_equal(var.detach(), f32({0, 2})));
}
