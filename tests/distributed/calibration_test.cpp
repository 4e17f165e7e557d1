// Data-parallel calibration over two processes on loopback (docs/distributed.md §3): the merged
// statistics give the same encodings on every rank, equal bit for bit to single-process
// calibration for MinMax (all batches) and for the histogram analyzers (one batch per rank).

#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/distributed.h>
#include <quantsim/errors.h>
#include <quantsim/quantsim.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "distributed/two_ranks.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::testing::bitwise_equal;
using qs::testing::gather_from_ranks;
using qs::testing::Group;
using qs::testing::run_two_ranks;

namespace {

using AnalyzerFactory = std::function<std::shared_ptr<qs::EncodingAnalyzer>(std::vector<int64_t>)>;

// Linear(6 -> 4) with a per-channel weight quantizer and per-tensor input/output quantizers, all
// with analyzers from `make`; the same weights on every rank (seeded).
qs::nn::QuantizedLinear make_model(const AnalyzerFactory& make) {
  torch::manual_seed(7);
  qs::nn::QuantizedLinear model(torch::nn::LinearOptions(6, 4));
  const auto quantizer = [&](std::vector<int64_t> shape, bool symmetric) {
    return qs::affine::QuantizeDequantize(
        qs::affine::QuantizerOptions(shape, 8, symmetric).encoding_analyzer(make(shape)));
  };
  model->input_quantizers[0] = quantizer({}, false);
  model->output_quantizers[0] = quantizer({}, false);
  model->param_quantizers["weight"] = quantizer({4, 1}, true);
  return model;
}

// Rank r's batches: rank 0's lie lower, rank 1's higher, so that each rank's range holds values
// outside the other's on one side (the merged histogram is then on neither rank's own range).
std::vector<at::Tensor> batches_of(int rank, int count) {
  torch::manual_seed(100 + rank);
  std::vector<at::Tensor> batches;
  for (int b = 0; b < count; ++b) {
    batches.push_back(torch::randn({40, 6}) * (1.0 + 0.5 * b) + (rank == 0 ? -1.5 : 1.5));
  }
  return batches;
}

// min/max of the model's three quantizers, concatenated.
at::Tensor ranges_of(qs::nn::QuantizedLinear& model) {
  std::vector<at::Tensor> parts;
  for (qs::QuantizerBase* q : {&*model->input_quantizers[0], &*model->output_quantizers[0],
                               &*model->param_quantizers["weight"]}) {
    parts.push_back(q->get_min().value().reshape({-1}));
    parts.push_back(q->get_max().value().reshape({-1}));
  }
  return torch::cat(parts);
}

// The accumulated histograms of the model's activation quantizers (empty for MinMax), as float64.
at::Tensor histograms_of(qs::nn::QuantizedLinear& model) {
  std::vector<at::Tensor> parts{torch::zeros({0}, torch::kDouble)};
  for (qs::QuantizerBase* q : {&*model->input_quantizers[0], &*model->output_quantizers[0]}) {
    const auto& analyzer = dynamic_cast<qs::affine::AffineQuantizerBase&>(*q).encoding_analyzer();
    const auto stats =
        std::dynamic_pointer_cast<const qs::HistogramStatistics>(analyzer->accumulated_stats());
    if (stats) parts.push_back(stats->histogram.reshape({-1}));
  }
  return torch::cat(parts);
}

// Calibrates over `batches_per_rank` batches per rank with analyzers from `make`; every rank
// checks that all ranks agree, rank 0 that single-process calibration over rank 0's then rank 1's
// batches gives the same ranges (when `equal_to_single_process`).
void calibrate_on_two_ranks(const AnalyzerFactory& make, int batches_per_rank,
                            bool equal_to_single_process) {
  const int status = run_two_ranks([&](int rank, const Group& group) {
    auto model = make_model(make);
    qs::nn::compute_encodings(
        *model,
        [&] {
          for (const auto& x : batches_of(rank, batches_per_rank)) model(x);
        },
        group);
    const auto mine = ranges_of(model);
    const auto all = gather_from_ranks(mine, group);
    EXPECT_TRUE(bitwise_equal(all[0], all[1])) << "rank 0: " << all[0] << "\nrank 1: " << all[1];
    const auto my_histograms = histograms_of(model);
    if (my_histograms.numel() > 0) {  // histogram analyzers (Gloo gathers no empty tensor)
      const auto all_histograms = gather_from_ranks(my_histograms, group);
      EXPECT_TRUE(bitwise_equal(all_histograms[0], all_histograms[1]));
    }
    if (rank == 0 && equal_to_single_process) {
      auto single = make_model(make);
      single->compute_encodings([&] {
        for (int r = 0; r < 2; ++r) {
          for (const auto& x : batches_of(r, batches_per_rank)) single(x);
        }
      });
      const auto expected = ranges_of(single);
      EXPECT_TRUE(bitwise_equal(mine, expected))
          << "distributed: " << mine << "\nsingle process: " << expected;
      EXPECT_TRUE(bitwise_equal(my_histograms, histograms_of(single)));
      // Rank 1's data widened the range: the merge did something.
      auto rank0_only = make_model(make);
      rank0_only->compute_encodings([&] {
        for (const auto& x : batches_of(0, batches_per_rank)) rank0_only(x);
      });
      EXPECT_FALSE(bitwise_equal(mine, ranges_of(rank0_only)));
    }
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

}  // namespace

TEST(DistributedCalibration, MinMaxIdenticalAcrossRanksAndEqualToSingleProcess) {
  calibrate_on_two_ranks(
      [](std::vector<int64_t> s) { return std::make_shared<qs::MinMaxEncodingAnalyzer>(s); },
      /*batches_per_rank=*/3, /*equal_to_single_process=*/true);
}

TEST(DistributedCalibration, PercentileIdenticalAcrossRanksAndEqualToSingleProcessWithOneBatch) {
  calibrate_on_two_ranks(
      [](std::vector<int64_t> s) {
        return std::make_shared<qs::PercentileEncodingAnalyzer>(s, 64, 99.0);
      },
      /*batches_per_rank=*/1, /*equal_to_single_process=*/true);
}

TEST(DistributedCalibration, SqnrIdenticalAcrossRanksAndEqualToSingleProcessWithOneBatch) {
  calibrate_on_two_ranks(
      [](std::vector<int64_t> s) {
        return std::make_shared<qs::SqnrEncodingAnalyzer>(s, qs::SqnrOptions().num_bins(64));
      },
      /*batches_per_rank=*/1, /*equal_to_single_process=*/true);
}

// Several batches per rank: each rank's histogram is re-binned onto the union range, which
// single-process calibration does not do to the later batches; every rank still agrees.
TEST(DistributedCalibration, HistogramsWithSeveralBatchesIdenticalAcrossRanks) {
  calibrate_on_two_ranks(
      [](std::vector<int64_t> s) {
        return std::make_shared<qs::PercentileEncodingAnalyzer>(s, 64, 99.0);
      },
      /*batches_per_rank=*/3, /*equal_to_single_process=*/false);
}

// NaN values are counted on every rank, summed, and held by rank 0 alone (reported once); a rank
// that saw no batch receives the others' statistics.
TEST(DistributedCalibration, NanCountsSummedOnRankZeroAndEmptyRankReceivesStatistics) {
  const int status = run_two_ranks([](int rank, const Group& group) {
    qs::MinMaxEncodingAnalyzer min_max({2});
    qs::PercentileEncodingAnalyzer percentile({}, 16, 100.0);
    qs::PercentileEncodingAnalyzer only_rank1({}, 16, 100.0);
    const auto x = rank == 0 ? torch::tensor({{1.f, NAN}, {-2.f, 3.f}})
                             : torch::tensor({{NAN, NAN}, {5.f, -1.f}, {0.f, 0.5f}});
    min_max.update_stats(x);
    percentile.update_stats(x);
    if (rank == 1) only_rank1.update_stats(torch::tensor({4.f, -4.f}));
    qs::distributed::synchronize_statistics({&min_max, &percentile, &only_rank1}, group);
    EXPECT_EQ(min_max.nan_count(), rank == 0 ? 3 : 0);
    EXPECT_EQ(percentile.nan_count(), rank == 0 ? 3 : 0);
    const auto [mn, mx] = min_max.compute_encodings(255, false);
    const auto s =
        std::static_pointer_cast<const qs::MinMaxStatistics>(min_max.accumulated_stats());
    EXPECT_TRUE(bitwise_equal(s->min, torch::tensor({-2.f, -1.f})));
    EXPECT_TRUE(bitwise_equal(s->max, torch::tensor({5.f, 3.f})));
    const auto [pmn, pmx] = percentile.compute_encodings(255, false);
    EXPECT_EQ(pmn.item<float>(), -2.f);
    EXPECT_EQ(pmx.item<float>(), 5.f);
    ASSERT_NE(only_rank1.accumulated_stats(), nullptr) << "rank " << rank;
    const auto [omn, omx] = only_rank1.compute_encodings(255, false);
    EXPECT_EQ(omn.item<float>(), -4.f);
    EXPECT_EQ(omx.item<float>(), 4.f);
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

// compute_encodings' optional times: each part measured on this rank (the forward at least the
// time `run` slept), the encodings the same as without them.
TEST(DistributedCalibration, TimesReportEachPart) {
  const int status = run_two_ranks([](int rank, const Group& group) {
    const AnalyzerFactory percentile = [](std::vector<int64_t> s) {
      return std::make_shared<qs::PercentileEncodingAnalyzer>(s, 128, 99.9);
    };
    auto timed = make_model(percentile), untimed = make_model(percentile);
    const auto run = [&](qs::nn::QuantizedLinear& model, bool sleep) {
      return [&model, rank, sleep] {
        if (sleep) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        model(batches_of(rank, 1)[0]);
      };
    };
    qs::distributed::CalibrationTimes times;
    times.ranges = -1.0;
    qs::distributed::compute_encodings(*timed, run(timed, true), group, &times);
    EXPECT_GE(times.forward, 0.02);
    EXPECT_GT(times.synchronize, 0.0);
    EXPECT_GE(times.ranges, 0.0);
    qs::distributed::compute_encodings(*untimed, run(untimed, false), group);
    EXPECT_TRUE(bitwise_equal(ranges_of(timed), ranges_of(untimed)));
  });
  EXPECT_EQ(status, 0) << "rank 1 failed";
}

// A rank that dies before the merge makes its peer's calibration fail with a c10::Error naming
// the step and the rank, within the group's timeout, and leaves the peer's quantizers unset.
TEST(DistributedCalibration, FailingRankMakesPeerFailWithClearError) {
  const int status = run_two_ranks(
      [](int rank, const Group& group) {
        auto model = make_model(
            [](std::vector<int64_t> s) { return std::make_shared<qs::MinMaxEncodingAnalyzer>(s); });
        if (rank == 1) std::_Exit(3);  // dies during its calibration, before the merge
        try {
          qs::nn::compute_encodings(
              *model, [&] { model(batches_of(0, 1)[0]); }, group);
          ADD_FAILURE() << "rank 0 calibrated without its peer";
        } catch (const c10::Error& e) {
          const std::string message = e.what_without_backtrace();
          EXPECT_NE(message.find("distributed calibration"), std::string::npos) << message;
          EXPECT_NE(message.find("rank 0 of 2"), std::string::npos) << message;
        }
        EXPECT_FALSE(model->output_quantizers[0]->is_initialized());
      },
      std::chrono::seconds(5));
  EXPECT_EQ(status, 3);
}

TEST(DistributedLaunch, MissingOrBadVariablesAreNamed) {
  const auto expect_error = [](const char* needle) {
    try {
      qs::distributed::LaunchEnvironment::from_env();
      ADD_FAILURE() << "no error, expected one naming " << needle;
    } catch (const c10::ValueError& e) {
      EXPECT_NE(std::string(e.what_without_backtrace()).find(needle), std::string::npos)
          << e.what_without_backtrace();
    }
  };
  ::unsetenv("MASTER_ADDR");
  expect_error("MASTER_ADDR");
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", "29x", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "0", 1);
  expect_error("MASTER_PORT='29x'");
  ::setenv("MASTER_PORT", "29500", 1);
  ::setenv("RANK", "2", 1);
  expect_error("RANK=2 must be below WORLD_SIZE=2");
  ::unsetenv("WORLD_SIZE");
  expect_error("WORLD_SIZE");
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "1", 1);
  const auto env = qs::distributed::LaunchEnvironment::from_env();
  EXPECT_EQ(env.master_addr, "127.0.0.1");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 2);
  for (const char* v : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"}) ::unsetenv(v);
}

// A peer that never arrives: the rendezvous fails within its timeout, naming where it waited.
TEST(DistributedLaunch, RendezvousTimesOutNamingTheAddress) {
  const int port = qs::testing::free_port();
  try {
    qs::distributed::init_process_group({"127.0.0.1", port, 0, 2}, std::chrono::seconds(1));
    ADD_FAILURE() << "rendezvous without the peer";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace())
                  .find("distributed rendezvous at 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << e.what_without_backtrace();
  }
}
