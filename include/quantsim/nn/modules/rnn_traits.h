#pragma once

/// The hand-written part of the recurrent rows' ModuleTraits (the rows themselves, with their
/// counts, are in tools/module_table.py, which generates quantsim/nn/modules/rnn.h): the hooks
/// that bind parameter quantizers to the weights the forward reads, and that fill in the hidden
/// state the caller omitted so that the h0/c0 quantizers see the zeros the float module uses.
///
/// libtorch's RNN, LSTM and GRU run on a cached weight list (`flat_weights_`), which the
/// quantized call patches (the reference on torch 1.13 patches only the attributes and silently
/// computes with float weights; docs/modules.md §5.3, docs/differences.md).

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/utils/rnn.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace quantsim::nn {

namespace detail {

/// The parameters RNN, LSTM and GRU hand to torch::rnn_tanh/lstm/gru: libtorch's `forward`
/// reads the protected cache `flat_weights_` (parallel to `flat_weights_names_`), not the
/// parameter table, so that is where the quantized weights must go.
template <typename Float>
struct RecurrentTraits {
  static std::vector<std::pair<std::string, at::Tensor*>> parameter_slots(Float& module) {
    auto& names = module.*Access::names();
    auto& weights = module.*Access::weights();
    std::vector<std::pair<std::string, at::Tensor*>> slots;
    for (size_t i = 0; i < names.size() && i < weights.size(); ++i) {
      slots.emplace_back(names[i], &weights[i]);
    }
    return slots;
  }

  /// A missing hidden state becomes the zeros the float module would create, shaped
  /// (num_layers * num_directions, batch, size).
  static void complete_arguments(const Float& module, const at::Tensor& input, at::Tensor& hx) {
    if (!hx.defined()) hx = zero_state(module, input, batch_of(module, input), hidden_size(module));
  }
  static void complete_arguments(const Float& module,
                                 const torch::nn::utils::rnn::PackedSequence& input,
                                 at::Tensor& hx) {
    if (!hx.defined()) hx = zero_state(module, input.data(), batch_of(input), hidden_size(module));
  }
  static void complete_arguments(const Float& module, const at::Tensor& input,
                                 c10::optional<std::tuple<at::Tensor, at::Tensor>>& hx) {
    if (!hx) hx = lstm_zero_state(module, input, batch_of(module, input));
  }
  static void complete_arguments(const Float& module,
                                 const torch::nn::utils::rnn::PackedSequence& input,
                                 c10::optional<std::tuple<at::Tensor, at::Tensor>>& hx) {
    if (!hx) hx = lstm_zero_state(module, input.data(), batch_of(input));
  }

 private:
  struct Access : Float {
    static auto names() { return &Access::flat_weights_names_; }
    static auto weights() { return &Access::flat_weights_; }
  };

  static int64_t batch_of(const Float& module, const at::Tensor& input) {
    return input.size(module.options_base.batch_first() ? 0 : 1);
  }
  static int64_t batch_of(const torch::nn::utils::rnn::PackedSequence& input) {
    return input.batch_sizes()[0].template item<int64_t>();
  }
  /// h's last dimension: the projection size when the LSTM projects.
  static int64_t hidden_size(const Float& module) {
    const auto proj_size = module.options_base.proj_size();
    return proj_size > 0 ? proj_size : module.options_base.hidden_size();
  }
  static at::Tensor zero_state(const Float& module, const at::Tensor& input, int64_t batch,
                               int64_t size) {
    const int64_t directions = module.options_base.bidirectional() ? 2 : 1;
    return at::zeros({module.options_base.num_layers() * directions, batch, size}, input.options());
  }
  static std::tuple<at::Tensor, at::Tensor> lstm_zero_state(const Float& module,
                                                            const at::Tensor& input,
                                                            int64_t batch) {
    return {zero_state(module, input, batch, hidden_size(module)),
            zero_state(module, input, batch, module.options_base.hidden_size())};
  }
};

/// The cells call torch::*_cell with their members weight_ih, weight_hh, bias_ih, bias_hh.
template <typename Float>
struct CellTraits {
  static std::vector<std::pair<std::string, at::Tensor*>> parameter_slots(Float& module) {
    return {{"weight_ih", &module.weight_ih},
            {"weight_hh", &module.weight_hh},
            {"bias_ih", &module.bias_ih},
            {"bias_hh", &module.bias_hh}};
  }

  /// A missing hidden state becomes the zeros the float module would create: (batch, hidden).
  static void complete_arguments(const Float& module, const at::Tensor& input, at::Tensor& hx) {
    if (!hx.defined()) hx = zero_state(module, input);
  }
  static void complete_arguments(const Float& module, const at::Tensor& input,
                                 c10::optional<std::tuple<at::Tensor, at::Tensor>>& hx) {
    if (!hx) hx = std::make_tuple(zero_state(module, input), zero_state(module, input));
  }

 private:
  static at::Tensor zero_state(const Float& module, const at::Tensor& input) {
    return at::zeros({input.size(0), module.options_base.hidden_size()}, input.options());
  }
};

}  // namespace detail

}  // namespace quantsim::nn
