// Module table rows of the "recurrent" group (docs/modules.md §5.3); checks in module_table.h.

#include <quantsim/nn/modules/rnn.h>

#include <torch/nn/modules/rnn.h>

#include "nn/module_table.h"

namespace qs = quantsim;
using qs::testing::module_table::Args;
using qs::testing::module_table::ModuleTable;
using qs::testing::module_table::Row;
using qs::testing::module_table::row;
using qs::testing::module_table::RowName;

namespace {

using State = c10::optional<std::tuple<at::Tensor, at::Tensor>>;

const std::vector<std::string> kLayer0 = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                          "bias_hh_l0"};
const std::vector<std::string> kCell = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

std::vector<std::string> keys_of(int64_t layers, bool bidirectional) {
  std::vector<std::string> keys;
  for (int64_t l = 0; l < layers; ++l) {
    for (const char* suffix : {"", "_reverse"}) {
      if (*suffix != '\0' && !bidirectional) continue;
      for (const char* kind : {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"}) {
        keys.push_back(kind + std::to_string(l) + suffix);
      }
    }
  }
  return keys;
}

std::vector<Row> recurrent_rows() {
  namespace nn = torch::nn;
  // (seq 3, batch 2, features 4) -> hidden 5.
  auto x = [] { return at::randn({3, 2, 4}); };
  auto h = [](int64_t layers) { return at::randn({layers, 2, 5}); };
  return {
      row(
          "RNN", 2, 2, [] { return nn::RNN(nn::RNNOptions(4, 5)); },
          [=] {
            return Args{x(), h(1)};
          })
          .with_param_keys(kLayer0),
      row(
          "RNN", 2, 2, [] { return nn::RNN(nn::RNNOptions(4, 5)); },
          [=] {
            return Args{x(), at::Tensor()};
          })
          .with_param_keys(kLayer0)
          .with_filled_inputs({1})
          .with_variant("no hx"),
      row(
          "RNN", 2, 2,
          [] {
            return nn::RNN(
                nn::RNNOptions(4, 5).num_layers(2).bidirectional(true).nonlinearity(torch::kReLU));
          },
          [=] {
            return Args{x(), h(4)};
          })
          .with_param_keys(keys_of(2, true))
          .with_variant("2 layers bidirectional"),
      row(
          "GRU", 2, 2, [] { return nn::GRU(nn::GRUOptions(4, 5)); },
          [=] {
            return Args{x(), h(1)};
          })
          .with_param_keys(kLayer0),
      row(
          "GRU", 2, 2, [] { return nn::GRU(nn::GRUOptions(4, 5)); },
          [=] {
            return Args{x(), at::Tensor()};
          })
          .with_param_keys(kLayer0)
          .with_filled_inputs({1})
          .with_variant("no hx"),
      row(
          "LSTM", 3, 3, [] { return nn::LSTM(nn::LSTMOptions(4, 5)); },
          [=] {
            return Args{x(), State(std::make_tuple(h(1), h(1)))};
          })
          .with_param_keys(kLayer0),
      row(
          "LSTM", 3, 3, [] { return nn::LSTM(nn::LSTMOptions(4, 5)); },
          [=] {
            return Args{x(), State()};
          })
          .with_param_keys(kLayer0)
          .with_filled_inputs({1, 2})
          .with_variant("no hx"),
      row(
          "LSTM", 3, 3,
          [] { return nn::LSTM(nn::LSTMOptions(4, 5).num_layers(2).batch_first(true)); },
          [=] {
            return Args{at::randn({2, 3, 4}), State(std::make_tuple(h(2), h(2)))};
          })
          .with_param_keys(keys_of(2, false))
          .with_variant("2 layers batch first"),
      row(
          "RNNCell", 2, 1, [] { return nn::RNNCell(nn::RNNCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}), at::randn({2, 5})};
          })
          .with_param_keys(kCell),
      row(
          "RNNCell", 2, 1, [] { return nn::RNNCell(nn::RNNCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}), at::Tensor()};
          })
          .with_param_keys(kCell)
          .with_filled_inputs({1})
          .with_variant("no hx"),
      row(
          "GRUCell", 2, 1, [] { return nn::GRUCell(nn::GRUCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}), at::randn({2, 5})};
          })
          .with_param_keys(kCell),
      row(
          "GRUCell", 2, 1, [] { return nn::GRUCell(nn::GRUCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}), at::Tensor()};
          })
          .with_param_keys(kCell)
          .with_filled_inputs({1})
          .with_variant("no hx"),
      row(
          "LSTMCell", 3, 2, [] { return nn::LSTMCell(nn::LSTMCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}),
                        State(std::make_tuple(at::randn({2, 5}), at::randn({2, 5})))};
          })
          .with_param_keys(kCell),
      row(
          "LSTMCell", 3, 2, [] { return nn::LSTMCell(nn::LSTMCellOptions(4, 5)); },
          [] {
            return Args{at::randn({2, 4}), State()};
          })
          .with_param_keys(kCell)
          .with_filled_inputs({1, 2})
          .with_variant("no hx"),
  };
}

}  // namespace

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
INSTANTIATE_TEST_SUITE_P(Recurrent, ModuleTable, ::testing::ValuesIn(recurrent_rows()), RowName());
#endif
