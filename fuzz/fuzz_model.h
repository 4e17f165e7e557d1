// The model the encodings and state fuzzers load into: one of each kind of quantizer that reads
// a legacy encoding (per-tensor and per-channel affine, a quantizer shared by two slots, LPBQ,
// float), calibrated on a fixed input so that its own exports make valid seeds.
#pragma once

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/nn/calibration.h>
#include <quantsim/nn/modules.h>

#include <torch/torch.h>

namespace quantsim::fuzz {

/// conv1 -> add(y, relu(y)) -> flatten -> fc -> lpbq, on 1x2x4x4 inputs.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    torch::manual_seed(0);
    conv1 =
        register_module("conv1", nn::QuantizedConv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)));
    add = register_module("add", nn::custom::QuantizedAdd());
    fc = register_module("fc", nn::QuantizedLinear(torch::nn::LinearOptions(64, 8)));
    lpbq = register_module("lpbq", nn::QuantizedLinear(torch::nn::LinearOptions(8, 2)));
  }
  at::Tensor forward(const at::Tensor& x) {
    const auto y = conv1(x);
    return lpbq(fc(add(y, y.relu()).flatten(1)));
  }
  nn::QuantizedConv2d conv1{nullptr};
  nn::custom::QuantizedAdd add{nullptr};
  nn::QuantizedLinear fc{nullptr};
  nn::QuantizedLinear lpbq{nullptr};
};
TORCH_MODULE(Net);

inline at::Tensor sample_input() { return torch::linspace(-2, 3, 32).view({1, 2, 4, 4}); }

/// The model with every slot filled (the bias of lpbq left empty) and calibrated.
inline Net calibrated_net() {
  using affine::QuantizeDequantize;
  Net net;
  net->conv1->input_quantizers[0] = QuantizeDequantize({}, 8, false);
  net->conv1->output_quantizers[0] = QuantizeDequantize({}, 8, false);
  net->conv1->param_quantizers["weight"] = QuantizeDequantize({4, 1, 1, 1}, 4, true);
  net->conv1->param_quantizers["bias"] = QuantizeDequantize({}, 16, true);
  auto shared = QuantizeDequantize({}, 8, false);
  net->add->input_quantizers[0] = shared;
  net->add->input_quantizers[1] = shared;
  net->add->output_quantizers[0] = QuantizeDequantize({}, 8, false);
  net->fc->param_quantizers["weight"] = QuantizeDequantize({8, 1}, 4, true);
  net->fc->output_quantizers[0] = floating::FloatQuantizeDequantize(torch::kHalf);
  net->lpbq->param_quantizers["weight"] = affine::GroupedBlockQuantizeDequantize(
      {2, 2}, 4, true, /*decompressed_bw=*/8, /*block_size=*/{1, 4}, {1, -1});
  net->lpbq->output_quantizers[0] = QuantizeDequantize({}, 8, true);
  torch::NoGradGuard no_grad;
  net->eval();
  nn::compute_encodings(*net, [&] { net->forward(sample_input()); });
  return net;
}

}  // namespace quantsim::fuzz
