// Module table rows of the "custom_elementwise" group (docs/modules.md §5); checks in
// module_table.h.

#include <quantsim/nn/modules/custom_elementwise.h>

#include "nn/module_table.h"

namespace qs = quantsim;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

namespace custom = qs::nn::custom;

at::Tensor x23() { return at::randn({2, 3}); }
/// Positive values away from 0 (Log, Sqrt, RSqrt, divisors).
at::Tensor positive() { return at::rand({2, 3}) + 0.5; }
at::Tensor mask() { return at::rand({2, 3}) > 0.5; }

/// A one-input row of a stateless module.
template <typename Module>
Row unary(std::string name, std::function<at::Tensor()> x = x23) {
  return row(
      std::move(name), 1, 1, [] { return Module(); }, [x] { return Args{x()}; });
}

/// A two-input row of a stateless module.
template <template <typename> class Mixin = qs::nn::FakeQuantizationMixin, typename Module>
Row binary(std::string name, std::function<at::Tensor()> y = x23) {
  return row<Mixin>(
      std::move(name), 2, 1, [] { return Module(); },
      [y] {
        return Args{x23(), y()};
      });
}

std::vector<Row> unary_rows() {
  return {
      row(
          "Cast", 1, 1, [] { return custom::Cast(at::kInt); }, [] { return Args{x23() * 4}; })
          .not_differentiable(),
      row(
          "Cast", 1, 1, [] { return custom::Cast(at::kFloat); }, [] { return Args{x23()}; })
          .with_variant("float"),
      unary<custom::Exponential>("Exponential"),
      unary<custom::Erf>("Erf"),
      unary<custom::Sqrt>("Sqrt", positive),
      unary<custom::Log>("Log", positive),
      unary<custom::Abs>("Abs"),
      unary<custom::Neg>("Neg"),
      unary<custom::ElementwiseCeil>("ElementwiseCeil"),
      unary<custom::ElementwiseFloor>("ElementwiseFloor"),
      unary<custom::Sin>("Sin"),
      unary<custom::Cos>("Cos"),
      unary<custom::Asin>("Asin",
                          [] {
                            return at::rand({2, 3}) * 1.8 - 0.9;
                          }),
      unary<custom::Atan>("Atan"),
      unary<custom::Round>("Round", [] { return x23() * 4; }),
      unary<custom::LogicalNot>("LogicalNot").not_differentiable(),
      row(
          "LogicalNot", 1, 1, [] { return custom::LogicalNot(); }, [] { return Args{mask()}; })
          .not_differentiable()
          .with_variant("bool"),
      unary<custom::ElementwiseUnarySign>("ElementwiseUnarySign"),
      unary<custom::RSqrt>("RSqrt", positive),
      unary<custom::Square>("Square"),
      row(
          "CustomSiLU", 2, 1, [] { return custom::CustomSiLU(); }, [] { return Args{x23()}; }),
  };
}

std::vector<Row> binary_rows() {
  using qs::nn::QuantizationMixin;
  auto ints = [] { return at::randint(-5, 5, {2, 3}); };
  return {
      row(
          "MatMul", 2, 1, [] { return custom::MatMul(); },
          [] {
            return Args{at::randn({2, 3, 4}), at::randn({4, 5})};
          }),
      binary<QuantizationMixin, custom::Add>("Add"),
      row<QuantizationMixin>(
          "Add", 2, 1, [] { return custom::Add(); },
          [] {
            return Args{at::randn({2, 3}), at::randn({3})};
          })
          .with_variant("broadcast"),
      binary<QuantizationMixin, custom::Multiply>("Multiply"),
      binary<QuantizationMixin, custom::Subtract>("Subtract"),
      binary<qs::nn::FakeQuantizationMixin, custom::Divide>("Divide", positive),
      binary<qs::nn::FakeQuantizationMixin, custom::FloorDivide>("FloorDivide", positive)
          .without_backward(),
      binary<qs::nn::FakeQuantizationMixin, custom::Greater>("Greater").not_differentiable(),
      binary<qs::nn::FakeQuantizationMixin, custom::Less>("Less").not_differentiable(),
      binary<qs::nn::FakeQuantizationMixin, custom::GreaterEqual>("GreaterEqual")
          .not_differentiable(),
      binary<qs::nn::FakeQuantizationMixin, custom::LessEqual>("LessEqual").not_differentiable(),
      binary<qs::nn::FakeQuantizationMixin, custom::NotEqual>("NotEqual").not_differentiable(),
      binary<qs::nn::FakeQuantizationMixin, custom::Equal>("Equal").not_differentiable(),
      row(
          "Equal", 2, 1, [] { return custom::Equal(); },
          [=] {
            return Args{ints(), ints()};
          })
          .not_differentiable()
          .with_variant("int"),
      binary<qs::nn::FakeQuantizationMixin, custom::Remainder>("Remainder", positive),
      binary<qs::nn::FakeQuantizationMixin, custom::Fmod>("Fmod", positive),
      row(
          "Pow", 2, 1, [] { return custom::Pow(); },
          [] {
            return Args{positive(), at::randn({2, 3})};
          }),
      binary<qs::nn::FakeQuantizationMixin, custom::Maximum>("Maximum"),
      binary<qs::nn::FakeQuantizationMixin, custom::Max>("Max"),
      binary<qs::nn::FakeQuantizationMixin, custom::Minimum>("Minimum"),
      binary<qs::nn::FakeQuantizationMixin, custom::Min>("Min"),
      row(
          "Bmm", 2, 1, [] { return custom::Bmm(); },
          [] {
            return Args{at::randn({2, 3, 4}), at::randn({2, 4, 5})};
          }),
      row(
          "LogicalOr", 2, 1, [] { return custom::LogicalOr(); },
          [] {
            return Args{mask(), mask()};
          })
          .not_differentiable(),
      row(
          "LogicalAnd", 2, 1, [] { return custom::LogicalAnd(); },
          [] {
            return Args{mask(), mask()};
          })
          .not_differentiable(),
      row(
          "LogicalAnd", 2, 1, [] { return custom::LogicalAnd(); },
          [] {
            return Args{x23(), x23()};
          })
          .not_differentiable()
          .with_variant("float"),
      row(
          "Baddbmm", 3, 1,
          [] { return custom::Baddbmm(custom::BaddbmmOptions().beta(0.5).alpha(2)); },
          [] {
            return Args{at::randn({2, 3, 5}), at::randn({2, 3, 4}), at::randn({2, 4, 5})};
          }),
      row(
          "Addmm", 3, 1, [] { return custom::Addmm(); },
          [] {
            return Args{at::randn({3, 5}), at::randn({3, 4}), at::randn({4, 5})};
          }),
      row(
          "Where", 3, 1, [] { return custom::Where(); },
          [] {
            return Args{mask(), x23(), x23()};
          }),
  };
}

std::vector<Row> rows() {
  auto rows = unary_rows();
  for (auto& r : binary_rows()) rows.push_back(std::move(r));
  return rows;
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(CustomElementwise, ModuleTable, ::testing::ValuesIn(rows()), RowName());
#endif
