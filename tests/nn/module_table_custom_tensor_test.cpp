// Module table rows of the "custom_tensor" group (docs/modules.md §5); checks in module_table.h.

#include <quantsim/nn/modules/custom_tensor.h>

#include "nn/module_table.h"

namespace qs = quantsim;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

namespace custom = qs::nn::custom;

at::Tensor longs(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }
at::Tensor x4() { return at::randn({2, 4, 4, 4}); }
at::Tensor x23() { return at::randn({2, 3}); }

/// A one-input row of the module `make` returns, on the input `x` returns.
template <typename Make, typename X>
Row unary(std::string name, Make make, X x) {
  return row(std::move(name), 1, 1, make, [x] { return Args{x()}; });
}

// The custom ChannelShuffle row is torch.nn's ChannelShuffle (one float module), checked with the
// shape rows.
static_assert(
    std::is_same_v<custom::FakeQuantizedChannelShuffle, qs::nn::FakeQuantizedChannelShuffle>);

std::vector<Row> spatial_reduction_rows() {
  return {
      unary(
          "MaxPool2d", [] { return custom::MaxPool2d(custom::MaxPool2dOptions(2)); }, x4),
      unary(
          "AdaptiveAvgPool2d",
          [] {
            return custom::AdaptiveAvgPool2d(custom::AdaptiveAvgPool2dOptions({2, 3}));
          },
          x4),
      unary(
          "AvgPool2d",
          [] { return custom::AvgPool2d(custom::AvgPool2dOptions(3).stride(1).padding(1)); }, x4),
      unary(
          "DepthToSpaceDCRMode", [] { return custom::DepthToSpaceDCRMode(2); }, x4),
      unary(
          "OneHot", [] { return custom::OneHot(5); },
          [] {
            return at::randint(5, {2, 3}, at::kLong);
          })
          .not_differentiable(),
      unary(
          "NonZero", [] { return custom::NonZero(); },
          [] {
            return at::relu(at::randn({3, 4}));
          })
          .not_differentiable(),
      unary(
          "Mean", [] { return custom::Mean(custom::MeanOptions().dim(std::vector<int64_t>{1})); },
          x4),
      unary(
          "Mean", [] { return custom::Mean(); }, x4)
          .with_variant("all"),
      unary(
          "Sum",
          [] {
            return custom::Sum(custom::SumOptions().dim(std::vector<int64_t>{1, 2}).keepdim(true));
          },
          x4),
      unary(
          "Prod", [] { return custom::Prod(custom::ProdOptions().dim(1)); }, x23),
      unary(
          "Argmin", [] { return custom::Argmin(custom::ArgminOptions().dim(1)); }, x23)
          .not_differentiable(),
      unary(
          "Argmax", [] { return custom::Argmax(); }, x23)
          .not_differentiable(),
      unary(
          "Norm", [] { return custom::Norm(custom::NormOptions().dim(std::vector<int64_t>{1})); },
          x23),
      unary(
          "CumSum", [] { return custom::CumSum(1); }, x23),
      unary(
          "TopK", [] { return custom::TopK(2); },
          [] {
            return at::randn({2, 5});
          }),
      unary(
          "Interpolate",
          [] {
            return custom::Interpolate(custom::InterpolateOptions()
                                           .scale_factor(std::vector<double>{2, 2})
                                           .mode(torch::kBilinear)
                                           .align_corners(false));
          },
          x4),
      unary(
          "Normalize", [] { return custom::Normalize(); }, x23),
      unary(
          "Pad",
          [] {
            return custom::Pad(custom::PadOptions({1, 2}).value(0.5));
          },
          x23),
      row(
          "RoiAlign", 1, 1, [] { return custom::RoiAlign(custom::RoiAlignOptions(2, 0.5, 2)); },
          [] {
            return Args{
                x4() * 2,
                at::tensor({0.0F, 0.0F, 5.0F, 5.0F, 1.0F, 2.0F, 7.0F, 6.5F}).reshape({2, 4}),
                longs({1, 0})};
          }),
  };
}

std::vector<Row> tensor_rows() {
  return {
      unary(
          "Reshape",
          [] {
            return custom::Reshape(std::vector<int64_t>{4, -1});
          },
          x4),
      unary(
          "Permute",
          [] {
            return custom::Permute(std::vector<int64_t>{0, 2, 3, 1});
          },
          x4),
      unary(
          "Tile",
          [] {
            return custom::Tile(std::vector<int64_t>{2, 1});
          },
          x23),
      unary(
          "Shape", [] { return custom::Shape(); }, x23)
          .not_differentiable(),
      unary(
          "Expand",
          [] {
            return custom::Expand(std::vector<int64_t>{4, 2, 3});
          },
          x23),
      unary(
          "StridedSlice",
          [] {
            return custom::StridedSlice(std::vector<std::vector<int64_t>>{{0, 2}, {1, 4, 2}, {3}});
          },
          x4),
      unary(
          "Split", [] { return custom::Split(custom::SplitOptions(2).dim(1)); }, x4),
      row(
          "Concat", 1, 1, [] { return custom::Concat(1); },
          [] {
            return Args{std::vector<at::Tensor>{x23(), at::randn({2, 1}), at::randn({2, 4})}};
          }),
      row(
          "Gather", 1, 1, [] { return custom::Gather(1); },
          [] {
            return Args{at::randn({2, 4}), longs({0, 3, 3, 1, 2, 0}).reshape({2, 3})};
          }),
      row(
          "IndexSelect", 1, 1, [] { return custom::IndexSelect(1); },
          [] {
            return Args{at::randn({2, 5}), longs({4, 0, 2})};
          }),
      row(
          "CustomGather", 2, 1, [] { return custom::CustomGather(1); },
          [] {
            return Args{at::randn({2, 5}), longs({-1, 0, 2})};
          }),
      row(
          "GatherNd", 2, 1, [] { return custom::GatherNd(); },
          [] {
            return Args{at::randn({2, 3, 4}), longs({1, 2, 0, 1}).reshape({2, 2})};
          }),
      row(
          "ScatterND", 3, 1, [] { return custom::ScatterND(); },
          [] {
            return Args{at::randn({4, 3}), longs({0, 2}).reshape({2, 1}), at::randn({2, 3})};
          }),
      row(
          "ScatterElements", 3, 1, [] { return custom::ScatterElements(1); },
          [] {
            return Args{at::randn({2, 4}), longs({0, 2, 3, 1}).reshape({2, 2}), at::randn({2, 2})};
          }),
      row(
          "DynamicConv2d", 3, 1,
          [] { return custom::DynamicConv2d(custom::DynamicConv2dOptions().padding(1)); },
          [] {
            return Args{x4(), at::randn({3, 4, 3, 3}), at::randn({3})};
          }),
      row(
          "DynamicConv2d", 3, 1, [] { return custom::DynamicConv2d(); },
          [] {
            return Args{x4(), at::randn({3, 4, 3, 3}), at::Tensor()};
          })
          .with_variant("no bias"),
      row(
          "BatchNorm", 5, 1, [] { return custom::BatchNorm(); },
          [] {
            return Args{x4(), at::randn({4}), at::rand({4}) + 0.5, at::randn({4}), at::randn({4})};
          })
          .without_gradient_to({1, 2}),
      row(
          "BatchNorm", 5, 1, [] { return custom::BatchNorm(); },
          [] {
            return Args{x4(), at::randn({4}), at::rand({4}) + 0.5, at::Tensor(), at::Tensor()};
          })
          .without_gradient_to({1, 2})
          .with_variant("no affine"),
      row(
          "AimetGroupNorm", 4, 1, [] { return custom::GroupNorm(2); },
          [] {
            return Args{x4(), at::randn({4}), at::randn({4})};
          }),
      row(
          "NonMaxSuppression", 1, 1,
          [] { return custom::NonMaxSuppression(custom::NonMaxSuppressionOptions(0.5, 0.1, 3)); },
          [] {
            // (y1, x1, y2, x2) with some overlaps.
            auto corner = at::rand({2, 6, 2}) * 4;
            auto boxes = at::cat({corner, corner + at::rand({2, 6, 2}) * 3 + 0.5}, 2);
            return Args{boxes, at::rand({2, 3, 6})};
          })
          .not_differentiable(),
      row(
          "MaskedFill", 2, 1, [] { return custom::MaskedFill(); },
          [] {
            return Args{x23(), at::rand({2, 3}) > 0.5, at::full({}, 0.75)};
          }),
  };
}

std::vector<Row> rows() {
  auto rows = spatial_reduction_rows();
  for (auto& r : tensor_rows()) rows.push_back(std::move(r));
  return rows;
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(CustomTensor, ModuleTable, ::testing::ValuesIn(rows()), RowName());
#endif
