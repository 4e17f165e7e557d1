// Module table rows of the "normalization", "conv" and "linear" groups (docs/modules.md §5); checks
// in module_table.h.

#include <quantsim/nn/modules/conv.h>
#include <quantsim/nn/modules/linear.h>
#include <quantsim/nn/modules/normalization.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/fold.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "nn/module_table.h"

namespace qs = quantsim;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

using IntArrayOption = c10::optional<at::IntArrayRef>;

std::vector<Row> normalization_rows() {
  namespace nn = torch::nn;
  auto x3 = [] { return Args{at::randn({4, 3, 5})}; };
  auto x4 = [] { return Args{at::randn({2, 3, 4, 4})}; };
  auto x5 = [] { return Args{at::randn({2, 3, 2, 3, 3})}; };
  return {
      row(
          "BatchNorm1d", 1, 1, [] { return nn::BatchNorm1d(3); }, x3),
      row(
          "BatchNorm2d", 1, 1, [] { return nn::BatchNorm2d(3); }, x4),
      row(
          "BatchNorm3d", 1, 1, [] { return nn::BatchNorm3d(3); }, x5),
      row(
          "CrossMapLRN2d", 1, 1, [] { return nn::CrossMapLRN2d(nn::CrossMapLRN2dOptions(3)); }, x4),
      row(
          "GroupNorm", 1, 1, [] { return nn::GroupNorm(nn::GroupNormOptions(2, 4)); },
          [] {
            return Args{at::randn({2, 4, 3})};
          }),
      row(
          "InstanceNorm1d", 1, 1,
          [] { return nn::InstanceNorm1d(nn::InstanceNorm1dOptions(3).affine(true)); }, x3),
      row(
          "InstanceNorm2d", 1, 1,
          [] { return nn::InstanceNorm2d(nn::InstanceNorm2dOptions(3).affine(true)); }, x4),
      row(
          "InstanceNorm3d", 1, 1,
          [] { return nn::InstanceNorm3d(nn::InstanceNorm3dOptions(3).affine(true)); }, x5),
      row<qs::nn::QuantizationMixin>(
          "LayerNorm", 1, 1, [] { return nn::LayerNorm(nn::LayerNormOptions({4})); },
          [] {
            return Args{at::randn({2, 3, 4})};
          }),
      row(
          "LocalResponseNorm", 1, 1, [] { return nn::LocalResponseNorm(2); }, x4),
      row(
          "SyncBatchNorm", 1, 1,
          [] { return qs::nn::SyncBatchNorm(qs::nn::SyncBatchNormOptions(3)); }, x4),
  };
}

std::vector<Row> conv_rows() {
  namespace nn = torch::nn;
  return {
      row<qs::nn::QuantizationMixin>(
          "Conv1d", 1, 1, [] { return nn::Conv1d(3, 4, 3); },
          [] {
            return Args{at::randn({2, 3, 7})};
          }),
      row<qs::nn::QuantizationMixin>(
          "Conv2d", 1, 1, [] { return nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding(1)); },
          [] {
            return Args{at::randn({2, 3, 5, 5})};
          }),
      row<qs::nn::QuantizationMixin>(
          "Conv3d", 1, 1, [] { return nn::Conv3d(2, 3, 2); },
          [] {
            return Args{at::randn({1, 2, 4, 4, 4})};
          }),
      row(
          "ConvTranspose1d", 1, 1,
          [] { return nn::ConvTranspose1d(nn::ConvTranspose1dOptions(3, 2, 3).stride(2)); },
          [] {
            return Args{at::randn({2, 3, 5}), IntArrayOption()};
          }),
      row(
          "ConvTranspose2d", 1, 1,
          [] { return nn::ConvTranspose2d(nn::ConvTranspose2dOptions(3, 2, 3).stride(2)); },
          [] {
            return Args{at::randn({1, 3, 4, 4}), IntArrayOption()};
          }),
      row(
          "ConvTranspose3d", 1, 1,
          [] { return nn::ConvTranspose3d(nn::ConvTranspose3dOptions(2, 2, 2).stride(2)); },
          [] {
            return Args{at::randn({1, 2, 3, 3, 3}), IntArrayOption()};
          }),
      row(
          "Fold", 1, 1,
          [] {
            return nn::Fold(nn::FoldOptions({4, 4}, {2, 2}));
          },
          [] {
            return Args{at::randn({1, 3 * 2 * 2, 9})};
          }),
      row(
          "Unfold", 1, 1,
          [] {
            return nn::Unfold(nn::UnfoldOptions({2, 2}));
          },
          [] {
            return Args{at::randn({1, 3, 4, 4})};
          }),
  };
}

std::vector<Row> linear_rows() {
  namespace nn = torch::nn;
  auto bags = [] { return at::randint(10, {6}, at::kLong); };
  auto offsets = [] { return at::tensor(std::vector<int64_t>{0, 2, 5}, at::kLong); };
  return {
      row(
          "Bilinear", 2, 1, [] { return nn::Bilinear(3, 4, 5); },
          [] {
            return Args{at::randn({2, 3}), at::randn({2, 4})};
          }),
      // Embedding 0/1, EmbeddingBag 1/1, Linear 1/1 with {weight, bias}.
      row(
          "Embedding", 0, 1, [] { return nn::Embedding(10, 4); },
          [] {
            return Args{at::randint(10, {2, 3}, at::kLong)};
          })
          .with_param_keys({"weight"}),
      // Only per_sample_weights (the third argument) is quantized (docs/modules.md §5.3).
      row(
          "EmbeddingBag", 1, 1,
          [] { return nn::EmbeddingBag(nn::EmbeddingBagOptions(10, 4).mode(torch::kSum)); },
          [=] {
            return Args{bags(), offsets(), at::rand({6})};
          })
          .with_param_keys({"weight"}),
      // Without per_sample_weights the input quantizer has nothing to quantize.
      row(
          "EmbeddingBag", 1, 1,
          [] { return nn::EmbeddingBag(nn::EmbeddingBagOptions(10, 4).mode(torch::kMean)); },
          [=] {
            return Args{bags(), offsets(), at::Tensor()};
          })
          .with_variant("no per_sample_weights"),
      row(
          "Flatten", 1, 1, [] { return nn::Flatten(); },
          [] {
            return Args{at::randn({2, 3, 4})};
          }),
      row(
          "Identity", 1, 1, [] { return nn::Identity(); },
          [] {
            return Args{at::randn({2, 3})};
          }),
      row<qs::nn::QuantizationMixin>(
          "Linear", 1, 1, [] { return nn::Linear(4, 3); },
          [] {
            return Args{at::randn({2, 4})};
          })
          .with_param_keys({"weight", "bias"}),
      row(
          "Unflatten", 1, 1,
          [] {
            return nn::Unflatten(nn::UnflattenOptions(1, {2, 2}));
          },
          [] {
            return Args{at::randn({2, 4, 3})};
          }),
  };
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(Normalization, ModuleTable, ::testing::ValuesIn(normalization_rows()),
                         RowName());
INSTANTIATE_TEST_SUITE_P(Conv, ModuleTable, ::testing::ValuesIn(conv_rows()), RowName());
INSTANTIATE_TEST_SUITE_P(Linear, ModuleTable, ::testing::ValuesIn(linear_rows()), RowName());
#endif
