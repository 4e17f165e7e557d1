// Module table rows of the "shape" and "loss" groups (docs/modules.md §5); checks in
// module_table.h.

#include <quantsim/nn/modules/loss.h>
#include <quantsim/nn/modules/shape.h>

#include <torch/nn/modules/adaptive.h>
#include <torch/nn/modules/distance.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/loss.h>
#include <torch/nn/modules/padding.h>
#include <torch/nn/modules/pixelshuffle.h>
#include <torch/nn/modules/upsampling.h>

#include "nn/module_table.h"

namespace qs = quantsim;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

at::Tensor longs(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }
/// Targets of +-1.
at::Tensor signs(at::IntArrayRef sizes) { return at::randint(2, sizes, at::kFloat) * 2 - 1; }

std::vector<Row> shape_rows() {
  namespace nn = torch::nn;
  auto x3 = [] { return Args{at::randn({2, 3, 5})}; };
  auto x4 = [] { return Args{at::randn({2, 4, 3, 3})}; };
  auto x5 = [] { return Args{at::randn({1, 2, 3, 3, 3})}; };
  return {
      row(
          "AlphaDropout", 1, 1, [] { return nn::AlphaDropout(0.5); }, x4)
          .random(),
      row(
          "ChannelShuffle", 1, 1, [] { return qs::nn::ChannelShuffle(2); }, x4),
      row(
          "ConstantPad1d", 1, 1, [] { return nn::ConstantPad1d(nn::ConstantPad1dOptions(2, 0.5)); },
          x3),
      row(
          "ConstantPad2d", 1, 1,
          [] {
            return nn::ConstantPad2d(nn::ConstantPad2dOptions({1, 0, 2, 1}, -0.5));
          },
          x4),
      row(
          "ConstantPad3d", 1, 1,
          [] { return nn::ConstantPad3d(nn::ConstantPad3dOptions(1, 0.25)); }, x5),
      row(
          "Dropout", 1, 1, [] { return nn::Dropout(0.5); }, x3)
          .random(),
      row(
          "Dropout2d", 1, 1, [] { return nn::Dropout2d(0.5); }, x4)
          .random(),
      row(
          "Dropout3d", 1, 1, [] { return nn::Dropout3d(0.5); }, x5)
          .random(),
      row(
          "FeatureAlphaDropout", 1, 1, [] { return nn::FeatureAlphaDropout(0.5); }, x4)
          .random(),
      row(
          "PixelShuffle", 1, 1, [] { return nn::PixelShuffle(2); }, x4),
      row(
          "PixelUnshuffle", 1, 1, [] { return nn::PixelUnshuffle(2); },
          [] {
            return Args{at::randn({1, 2, 4, 6})};
          }),
      row(
          "ReflectionPad1d", 1, 1, [] { return nn::ReflectionPad1d(2); }, x3),
      row(
          "ReflectionPad2d", 1, 1, [] { return nn::ReflectionPad2d(1); }, x4),
      row(
          "ReplicationPad1d", 1, 1, [] { return nn::ReplicationPad1d(2); }, x3),
      row(
          "ReplicationPad2d", 1, 1, [] { return nn::ReplicationPad2d(1); }, x4),
      row(
          "ReplicationPad3d", 1, 1, [] { return nn::ReplicationPad3d(1); }, x5),
      row(
          "Upsample", 1, 1,
          [] {
            return nn::Upsample(nn::UpsampleOptions()
                                    .scale_factor(std::vector<double>{2, 2})
                                    .mode(torch::kBilinear)
                                    .align_corners(false));
          },
          x4),
      row(
          "UpsamplingBilinear2d", 1, 1,
          [] {
            return qs::nn::UpsamplingBilinear2d(
                qs::nn::UpsamplingOptions().scale_factor(std::vector<double>{2, 2}));
          },
          x4),
      row(
          "UpsamplingNearest2d", 1, 1,
          [] {
            return qs::nn::UpsamplingNearest2d(
                qs::nn::UpsamplingOptions().size(std::vector<int64_t>{5, 4}));
          },
          x4),
      row(
          "ZeroPad2d", 1, 1,
          [] {
            return nn::ZeroPad2d(nn::ZeroPad2dOptions({1, 2, 0, 1}));
          },
          x4),
  };
}

std::vector<Row> loss_rows() {
  namespace nn = torch::nn;
  // (input, floating target) of an elementwise loss.
  auto pair = [] { return Args{at::randn({4, 3}), at::randn({4, 3})}; };
  auto classes = [] { return at::randint(5, {4}, at::kLong); };
  auto triplet = [] { return Args{at::randn({4, 5}), at::randn({4, 5}), at::randn({4, 5})}; };
  return {
      // The loss is a double in libtorch: its output quantizer has no tensor (ASMoutput's leaf).
      row(
          "AdaptiveLogSoftmaxWithLoss", 2, 2,
          [] {
            return nn::AdaptiveLogSoftmaxWithLoss(
                nn::AdaptiveLogSoftmaxWithLossOptions(8, 10, {4, 8}).div_value(2));
          },
          [] {
            return Args{at::randn({5, 8}), at::randint(10, {5}, at::kLong)};
          }),
      // BCELoss 2/1.
      row(
          "BCELoss", 2, 1, [] { return nn::BCELoss(); },
          [] {
            return Args{at::sigmoid(at::randn({4, 3})), at::rand({4, 3})};
          }),
      row(
          "BCEWithLogitsLoss", 2, 1, [] { return nn::BCEWithLogitsLoss(); },
          [] {
            return Args{at::randn({4, 3}), at::rand({4, 3})};
          }),
      row(
          "CTCLoss", 1, 1, [] { return nn::CTCLoss(); },
          [] {
            return Args{at::log_softmax(at::randn({6, 2, 5}), 2),
                        longs({1, 2, 3, 4, 1, 0}).view({2, 3}), longs({6, 5}), longs({3, 2})};
          }),
      row(
          "CosineEmbeddingLoss", 2, 1, [] { return nn::CosineEmbeddingLoss(); },
          [] {
            return Args{at::randn({4, 5}), at::randn({4, 5}), signs({4})};
          }),
      row(
          "CosineSimilarity", 2, 1, [] { return nn::CosineSimilarity(); },
          [] {
            return Args{at::randn({4, 5}), at::randn({4, 5})};
          }),
      // A class-index target is not quantized (not floating)...
      row(
          "CrossEntropyLoss", 2, 1, [] { return nn::CrossEntropyLoss(); },
          [=] {
            return Args{at::randn({4, 5}), classes()};
          }),
      // ... a class-probability target is.
      row(
          "CrossEntropyLoss", 2, 1, [] { return nn::CrossEntropyLoss(); },
          [] {
            return Args{at::randn({4, 5}), at::softmax(at::randn({4, 5}), 1)};
          })
          .with_variant("probabilities"),
      // GaussianNLLLoss 3/1.
      row(
          "GaussianNLLLoss", 3, 1, [] { return qs::nn::GaussianNLLLoss(); },
          [] {
            return Args{at::randn({4, 3}), at::randn({4, 3}), at::rand({4, 3}) + 0.1};
          }),
      row(
          "HingeEmbeddingLoss", 1, 1, [] { return nn::HingeEmbeddingLoss(); },
          [] {
            return Args{at::randn({4, 3}), signs({4, 3})};
          }),
      row(
          "HuberLoss", 2, 1, [] { return nn::HuberLoss(nn::HuberLossOptions().delta(0.5)); }, pair),
      row(
          "KLDivLoss", 2, 1,
          [] { return nn::KLDivLoss(nn::KLDivLossOptions().reduction(torch::kBatchMean)); },
          [] {
            return Args{at::log_softmax(at::randn({4, 5}), 1), at::softmax(at::randn({4, 5}), 1)};
          }),
      row(
          "L1Loss", 2, 1, [] { return nn::L1Loss(); }, pair),
      row(
          "MSELoss", 2, 1, [] { return nn::MSELoss(); }, pair),
      row(
          "MarginRankingLoss", 2, 1,
          [] { return nn::MarginRankingLoss(nn::MarginRankingLossOptions().margin(0.2)); },
          [] {
            return Args{at::randn({4}), at::randn({4}), signs({4})};
          }),
      row(
          "MultiLabelMarginLoss", 1, 1, [] { return nn::MultiLabelMarginLoss(); },
          [] {
            return Args{at::randn({2, 4}), longs({3, 0, -1, 1, 1, 2, 3, -1}).view({2, 4})};
          }),
      row(
          "MultiLabelSoftMarginLoss", 1, 1, [] { return nn::MultiLabelSoftMarginLoss(); },
          [] {
            return Args{at::randn({2, 4}), at::randint(2, {2, 4}, at::kFloat)};
          }),
      row(
          "MultiMarginLoss", 1, 1, [] { return nn::MultiMarginLoss(); },
          [=] {
            return Args{at::randn({4, 5}), classes()};
          }),
      row(
          "NLLLoss", 1, 1, [] { return nn::NLLLoss(); },
          [=] {
            return Args{at::log_softmax(at::randn({4, 5}), 1), classes()};
          }),
      row(
          "NLLLoss2d", 1, 1, [] { return qs::nn::NLLLoss2d(); },
          [] {
            return Args{at::log_softmax(at::randn({2, 3, 4, 4}), 1),
                        at::randint(3, {2, 4, 4}, at::kLong)};
          }),
      row(
          "PairwiseDistance", 2, 1, [] { return nn::PairwiseDistance(); },
          [] {
            return Args{at::randn({4, 5}), at::randn({4, 5})};
          }),
      row(
          "PoissonNLLLoss", 2, 1, [] { return nn::PoissonNLLLoss(); },
          [] {
            return Args{at::randn({4, 3}), at::rand({4, 3}) * 3};
          }),
      row(
          "SmoothL1Loss", 2, 1, [] { return nn::SmoothL1Loss(); }, pair),
      row(
          "SoftMarginLoss", 1, 1, [] { return nn::SoftMarginLoss(); },
          [] {
            return Args{at::randn({4, 3}), signs({4, 3})};
          }),
      row(
          "TripletMarginLoss", 3, 1, [] { return nn::TripletMarginLoss(); }, triplet),
      row(
          "TripletMarginWithDistanceLoss", 3, 1, [] { return nn::TripletMarginWithDistanceLoss(); },
          triplet),
  };
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(Shape, ModuleTable, ::testing::ValuesIn(shape_rows()), RowName());
INSTANTIATE_TEST_SUITE_P(Loss, ModuleTable, ::testing::ValuesIn(loss_rows()), RowName());
#endif
