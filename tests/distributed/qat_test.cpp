// Data-parallel quantization-aware training over two processes on loopback
// (docs/distributed.md §4): average_gradients gives every rank the mean gradient of every
// parameter, the quantizers' ranges included, so that the ranks stay identical step after step.

#include <quantsim/analyzers/min_max.h>
#include <quantsim/distributed.h>
#include <quantsim/quantsim.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include "distributed/two_ranks.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::testing::bitwise_equal;
using qs::testing::gather_from_ranks;
using qs::testing::Group;
using qs::testing::run_two_ranks;

namespace {

// Linear(6 -> 4) -> ReLU -> Linear(4 -> 3), each with 8-bit input, output and per-channel
// weight quantizers; the same initial weights on every rank.
torch::nn::Sequential make_model() {
  torch::manual_seed(11);
  qs::nn::QuantizedLinear first(torch::nn::LinearOptions(6, 4));
  qs::nn::QuantizedLinear second(torch::nn::LinearOptions(4, 3));
  for (auto* layer : {&first, &second}) {
    auto& l = **layer;
    l.input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    l.output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    l.param_quantizers["weight"] =
        qs::affine::QuantizeDequantize({l.options.out_features(), 1}, 8, true);
  }
  return torch::nn::Sequential(first, torch::nn::ReLU(), second);
}

at::Tensor batch_of(int rank, int step) {
  torch::manual_seed(1000 + 10 * rank + step);
  return torch::randn({8, 6}) * (1.0 + rank);
}

at::Tensor flat(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.detach().reshape({-1}));
  return torch::cat(parts);
}

std::vector<at::Tensor> grads_of(torch::nn::Module& model) {
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) grads.push_back(p.grad());
  return grads;
}

// Three SGD steps on each rank's own batches with gradients averaged (in buckets of
// `bucket_bytes`): after each, every parameter (quantizer ranges included) is bit-identical on
// both ranks, and each averaged gradient is the mean of the two ranks' gradients.
void train_three_steps(int64_t bucket_bytes) {
  const int status = run_two_ranks([bucket_bytes](int rank, const Group& group) {
    auto model = make_model();
    qs::nn::compute_encodings(
        *model.ptr(), [&] { model->forward(batch_of(rank, -1)); }, group);
    const auto calibrated = flat(model->parameters());
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.05));
    for (int step = 0; step < 3; ++step) {
      optimizer.zero_grad();
      model->forward(batch_of(rank, step)).pow(2).mean().backward();
      const auto before = gather_from_ranks(flat(grads_of(*model.ptr())), group);
      EXPECT_FALSE(bitwise_equal(before[0], before[1])) << "each rank's own data, step " << step;
      qs::distributed::average_gradients(*model.ptr(), group, bucket_bytes);
      const auto averaged = flat(grads_of(*model.ptr()));
      EXPECT_TRUE(bitwise_equal(averaged, (before[0] + before[1]) / 2)) << "step " << step;
      optimizer.step();
      const auto params = gather_from_ranks(flat(model->parameters()), group);
      EXPECT_TRUE(bitwise_equal(params[0], params[1])) << "step " << step;
    }
    // The quantizers' ranges trained too.
    for (const auto& item : model->named_parameters()) {
      if (item.key().find("quantizers") == std::string::npos) continue;
      EXPECT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0) << item.key();
    }
    EXPECT_FALSE(bitwise_equal(flat(model->parameters()), calibrated));
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

}  // namespace

TEST(DistributedQat, ThreeStepsKeepParametersAndRangesIdenticalAcrossRanks) {
  train_three_steps(qs::distributed::kDefaultBucketBytes);
}

// 64-byte buckets: most parameters travel alone or in pairs, the result is the same.
TEST(DistributedQat, SmallBucketsGiveTheSameMean) { train_three_steps(64); }

// Rank 0's parameters and buffers reach rank 1, whose own initialization differed.
TEST(DistributedQat, BroadcastStateCopiesRankZerosParameters) {
  const int status = run_two_ranks([](int rank, const Group& group) {
    torch::manual_seed(rank);
    torch::nn::Linear model(5, 3);
    qs::distributed::broadcast_state(*model.ptr(), group);
    torch::manual_seed(0);
    torch::nn::Linear rank0(5, 3);
    EXPECT_TRUE(bitwise_equal(flat(model->parameters()), flat(rank0->parameters())));
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

// bfloat16 gradients (which Gloo cannot reduce: they travel in float32), an empty parameter
// (skipped on every rank) and a parameter whose gradient only rank 0 has (rank 1 contributes
// zeros): every rank receives the same means.
TEST(DistributedQat, AveragesBfloat16AndMissingGradientsSkipsEmptyParameters) {
  const int status = run_two_ranks([](int rank, const Group& group) {
    auto bf16 = torch::zeros({3}, torch::kBFloat16).requires_grad_();
    bf16.mutable_grad() = torch::tensor({1.f, 2.f, 3.f}).to(torch::kBFloat16) * (rank + 1);
    auto empty = torch::zeros({0}).requires_grad_();
    auto only_rank0 = torch::zeros({2}).requires_grad_();
    if (rank == 0) only_rank0.mutable_grad() = torch::tensor({4.f, -2.f});
    qs::distributed::average_gradients({bf16, empty, only_rank0}, group);
    EXPECT_TRUE(bitwise_equal(bf16.grad(), torch::tensor({1.5f, 3.f, 4.5f}).to(torch::kBFloat16)));
    EXPECT_FALSE(empty.grad().defined());
    EXPECT_TRUE(bitwise_equal(only_rank0.grad(), torch::tensor({2.f, -1.f})));
    // A model without calibrating quantizers has nothing to merge.
    qs::distributed::synchronize_statistics({}, group);
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}
