// Module table rows of the "activation" and "pooling" groups (docs/modules.md §5); checks in
// module_table.h.

#include <quantsim/nn/modules/activation.h>
#include <quantsim/nn/modules/pooling.h>

#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>

#include "nn/module_table.h"

namespace qs = quantsim;
namespace F = torch::nn::functional;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

at::Tensor x4() { return at::randn({2, 3, 4, 4}); }
at::Tensor x3() { return at::randn({2, 3, 6}); }

std::vector<Row> activation_rows() {
  namespace nn = torch::nn;
  auto act = [](std::string name, auto make) {
    return row(std::move(name), 1, 1, make, [] { return Args{x3()}; });
  };
  auto qact = [](std::string name, auto make) {
    return row<qs::nn::QuantizationMixin>(std::move(name), 1, 1, make, [] { return Args{x3()}; });
  };
  return {
      act("CELU", [] { return nn::CELU(nn::CELUOptions().alpha(0.7)); }),
      act("ELU", [] { return nn::ELU(); }),
      qact("GELU", [] { return nn::GELU(); }),
      act("GLU", [] { return nn::GLU(); }),
      act("Hardshrink", [] { return nn::Hardshrink(nn::HardshrinkOptions().lambda(0.4)); }),
      act("Hardsigmoid", [] { return qs::nn::Hardsigmoid(); }),
      act("Hardswish", [] { return qs::nn::Hardswish(); }),
      act("Hardtanh", [] { return nn::Hardtanh(); }),
      act("LeakyReLU", [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); }),
      act("LogSigmoid", [] { return nn::LogSigmoid(); }),
      act("LogSoftmax", [] { return nn::LogSoftmax(1); }),
      act("Mish", [] { return nn::Mish(); }),
      act("PReLU", [] { return nn::PReLU(nn::PReLUOptions().num_parameters(3)); }),
      act("RReLU", [] { return nn::RReLU(); }).random(),
      act("ReLU", [] { return nn::ReLU(); }),
      act("ReLU6", [] { return nn::ReLU6(); }),
      act("SELU", [] { return nn::SELU(); }),
      act("SiLU", [] { return nn::SiLU(); }),
      qact("Sigmoid", [] { return nn::Sigmoid(); }),
      qact("Softmax", [] { return nn::Softmax(1); }),
      row(
          "Softmax2d", 1, 1, [] { return nn::Softmax2d(); }, [] { return Args{x4()}; }),
      act("Softmin", [] { return nn::Softmin(1); }),
      act("Softplus", [] { return nn::Softplus(nn::SoftplusOptions().beta(2).threshold(3)); }),
      act("Softshrink", [] { return nn::Softshrink(nn::SoftshrinkOptions(0.3)); }),
      act("Softsign", [] { return nn::Softsign(); }),
      act("Tanh", [] { return nn::Tanh(); }),
      act("Tanhshrink", [] { return nn::Tanhshrink(); }),
      act("Threshold", [] { return nn::Threshold(0.1, 20); }),
  };
}

std::vector<Row> pooling_rows() {
  namespace nn = torch::nn;
  auto x5 = [] { return at::randn({1, 2, 4, 4, 4}); };
  // MaxUnpool's inputs: max_pool's values and indices, and the output size (libtorch 1.13's
  // _unpool_output_size accepts only the full size, N and C included).
  auto unpool_args = [](at::Tensor x, auto pooled) {
    auto [values, indices] = pooled(x);
    return Args{values, indices, c10::optional<std::vector<int64_t>>(x.sizes().vec())};
  };
  return {
      row(
          "AdaptiveAvgPool1d", 1, 1, [] { return nn::AdaptiveAvgPool1d(4); },
          [] { return Args{x3()}; }),
      row(
          "AdaptiveAvgPool2d", 1, 1, [] { return nn::AdaptiveAvgPool2d(3); },
          [] { return Args{x4()}; }),
      row(
          "AdaptiveAvgPool3d", 1, 1, [] { return nn::AdaptiveAvgPool3d(3); },
          [=] { return Args{x5()}; }),
      row(
          "AdaptiveMaxPool1d", 1, 1, [] { return nn::AdaptiveMaxPool1d(4); },
          [] { return Args{x3()}; }),
      row(
          "AdaptiveMaxPool2d", 1, 1, [] { return nn::AdaptiveMaxPool2d(3); },
          [] { return Args{x4()}; }),
      row(
          "AdaptiveMaxPool3d", 1, 1, [] { return nn::AdaptiveMaxPool3d(3); },
          [=] { return Args{x5()}; }),
      row(
          "AvgPool1d", 1, 1, [] { return nn::AvgPool1d(2); }, [] { return Args{x3()}; }),
      row(
          "AvgPool2d", 1, 1, [] { return nn::AvgPool2d(nn::AvgPool2dOptions(3).padding(1)); },
          [] { return Args{x4()}; }),
      row(
          "AvgPool3d", 1, 1, [] { return nn::AvgPool3d(2); }, [=] { return Args{x5()}; }),
      row(
          "FractionalMaxPool2d", 1, 1,
          [] {
            return nn::FractionalMaxPool2d(
                nn::FractionalMaxPool2dOptions(2).output_size(torch::ExpandingArray<2>(3)));
          },
          [] {
            return Args{at::randn({2, 3, 7, 7})};
          })
          .random(),
      row(
          "FractionalMaxPool3d", 1, 1,
          [] {
            return nn::FractionalMaxPool3d(nn::FractionalMaxPool3dOptions(2).output_ratio(
                torch::ExpandingArray<3, double>(0.5)));
          },
          [=] { return Args{x5()}; })
          .random(),
      row(
          "LPPool1d", 1, 1, [] { return nn::LPPool1d(nn::LPPool1dOptions(2, 2)); },
          [] { return Args{x3()}; }),
      // An odd norm of a negative sum is NaN: positive inputs.
      row(
          "LPPool2d", 1, 1, [] { return nn::LPPool2d(nn::LPPool2dOptions(3, 2)); },
          [] {
            return Args{at::rand({2, 3, 4, 4})};
          }),
      row(
          "MaxPool1d", 1, 1, [] { return nn::MaxPool1d(nn::MaxPool1dOptions(3).stride(2)); },
          [] { return Args{x3()}; }),
      row(
          "MaxPool2d", 1, 1, [] { return nn::MaxPool2d(2); }, [] { return Args{x4()}; }),
      row(
          "MaxPool3d", 1, 1, [] { return nn::MaxPool3d(2); }, [=] { return Args{x5()}; }),
      row(
          "MaxUnpool1d", 1, 1, [] { return nn::MaxUnpool1d(2); },
          [=] {
            return unpool_args(x3(), [](const at::Tensor& x) {
              return F::max_pool1d_with_indices(x, F::MaxPool1dFuncOptions(2));
            });
          }),
      row(
          "MaxUnpool2d", 1, 1, [] { return nn::MaxUnpool2d(2); },
          [=] {
            return unpool_args(x4(), [](const at::Tensor& x) {
              return F::max_pool2d_with_indices(x, F::MaxPool2dFuncOptions(2));
            });
          }),
      row(
          "MaxUnpool3d", 1, 1, [] { return nn::MaxUnpool3d(2); },
          [=] {
            return unpool_args(x5(), [](const at::Tensor& x) {
              return F::max_pool3d_with_indices(x, F::MaxPool3dFuncOptions(2));
            });
          }),
  };
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(Activation, ModuleTable, ::testing::ValuesIn(activation_rows()),
                         RowName());
INSTANTIATE_TEST_SUITE_P(Pooling, ModuleTable, ::testing::ValuesIn(pooling_rows()), RowName());
#endif
