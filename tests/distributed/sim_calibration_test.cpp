// QuantizationSimModel::compute_encodings(forward_pass, process_group) over two processes on
// loopback (docs/distributed.md §3): every quantizer of a whole simulated model gets the same
// range on both ranks, and the single-process range over both ranks' batches (MinMax: any number
// of batches; SQNR and Percentile: one batch per rank).

#include <quantsim/distributed.h>
#include <quantsim/errors.h>
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

struct TwoLayersImpl : torch::nn::Module {
  TwoLayersImpl() {
    fc1 = register_module("fc1", qs::nn::QuantizedLinear(6, 8));
    relu = register_module("relu", qs::nn::FakeQuantizedReLU());
    fc2 = register_module("fc2", qs::nn::QuantizedLinear(8, 3));
  }
  at::Tensor forward(const at::Tensor& x) { return fc2(relu(fc1(x))); }
  qs::nn::QuantizedLinear fc1{nullptr};
  qs::nn::FakeQuantizedReLU relu{nullptr};
  qs::nn::QuantizedLinear fc2{nullptr};
};
TORCH_MODULE(TwoLayers);

at::Tensor batch_of(int rank, int b) {
  torch::manual_seed(200 + 10 * rank + b);
  return torch::randn({32, 6}) * (1.0 + 0.5 * b) + (rank == 0 ? -1.0 : 1.0);
}

// Every initialized quantizer's min and max, in module order.
at::Tensor ranges_of(torch::nn::Module& model) {
  std::vector<at::Tensor> parts;
  for (const auto& m : model.modules()) {
    auto* q = dynamic_cast<qs::affine::AffineQuantizerBase*>(m.get());
    if (q == nullptr || !q->is_initialized()) continue;
    parts.push_back(q->get_min().value().reshape({-1}));
    parts.push_back(q->get_max().value().reshape({-1}));
  }
  return torch::cat(parts);
}

void calibrate_sim(qs::QuantScheme scheme, int batches_per_rank) {
  const int status = run_two_ranks([&](int rank, const Group& group) {
    const auto options = qs::SimOptions().quant_scheme(scheme).percentile(99.0);
    const auto make = [&] {
      torch::manual_seed(3);
      TwoLayers model;
      auto sim = std::make_unique<qs::QuantizationSimModel>(
          model.ptr(), [&, model]() mutable { model(batch_of(0, 0)); }, options);
      return std::make_pair(model, std::move(sim));
    };
    auto [model, sim] = make();
    sim->compute_encodings(
        [&, model]() mutable {
          for (int b = 0; b < batches_per_rank; ++b) model(batch_of(rank, b));
        },
        group);
    const auto mine = ranges_of(*model.ptr());
    // fc1's input and per-channel weight, relu's output (fc1 -> relu is a supergroup), fc2's
    // weight and output.
    EXPECT_EQ(mine.numel(), 2 * (1 + 8 + 1 + 3 + 1));
    const auto all = gather_from_ranks(mine, group);
    EXPECT_TRUE(bitwise_equal(all[0], all[1])) << "rank 0: " << all[0] << "\nrank 1: " << all[1];
    if (rank == 0) {
      auto [single_model, single] = make();
      single->compute_encodings([&, single_model]() mutable {
        for (int r = 0; r < 2; ++r) {
          for (int b = 0; b < batches_per_rank; ++b) single_model(batch_of(r, b));
        }
      });
      EXPECT_TRUE(bitwise_equal(mine, ranges_of(*single_model.ptr())));
    }
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

}  // namespace

TEST(DistributedSimCalibration, MinMaxEqualToSingleProcessOverAllBatches) {
  calibrate_sim(qs::QuantScheme::kPostTrainingTf, /*batches_per_rank=*/3);
}

TEST(DistributedSimCalibration, SqnrEqualToSingleProcessWithOneBatchPerRank) {
  calibrate_sim(qs::QuantScheme::kPostTrainingTfEnhanced, /*batches_per_rank=*/1);
}

TEST(DistributedSimCalibration, PercentileEqualToSingleProcessWithOneBatchPerRank) {
  calibrate_sim(qs::QuantScheme::kPostTrainingPercentile, /*batches_per_rank=*/1);
}
