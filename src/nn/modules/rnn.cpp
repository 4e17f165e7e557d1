#include <quantsim/nn/modules/rnn.h>
#include <quantsim/nn/registry.h>

#include "nn/modules/registration.h"

namespace quantsim::nn {

template class FakeQuantizationMixin<torch::nn::RNNImpl>;
template class FakeQuantizationMixin<torch::nn::LSTMImpl>;
template class FakeQuantizationMixin<torch::nn::GRUImpl>;
template class FakeQuantizationMixin<torch::nn::RNNCellImpl>;
template class FakeQuantizationMixin<torch::nn::LSTMCellImpl>;
template class FakeQuantizationMixin<torch::nn::GRUCellImpl>;

void register_rnn_modules() {
  register_quantized_module<torch::nn::RNNImpl>();
  register_quantized_module<torch::nn::LSTMImpl>();
  register_quantized_module<torch::nn::GRUImpl>();
  register_quantized_module<torch::nn::RNNCellImpl>();
  register_quantized_module<torch::nn::LSTMCellImpl>();
  register_quantized_module<torch::nn::GRUCellImpl>();
}

}  // namespace quantsim::nn
