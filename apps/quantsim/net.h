#pragma once

/// The demo's convolutional network, written as any libtorch model is but with
/// `namespace nn = quantsim::nn::drop_in;`, so that it is a simulation model from the start: with
/// no quantizer configured it computes exactly its float model.

#include <quantsim/nn/drop_in.h>
#include <torch/nn/cloneable.h>

#include <nlohmann/json.hpp>

#include <array>
#include <string>

namespace quantsim::apps {

namespace nn = quantsim::nn::drop_in;

/// Widths of the network.
struct NetOptions {
  /// Output channels of the three conv blocks. Default: 32, 64, 64.
  std::array<int64_t, 3> channels = {32, 64, 64};
  /// Hidden units of the first Linear layer. Default: 128.
  int64_t hidden = 128;

  /// The options as a JSON object (part of the checkpoint key and of report.json).
  nlohmann::json to_json() const;
};

/// Three conv blocks and a classifier for 28x28 grey images in 10 classes:
///
///     conv1 3x3 (1->c0)  bn1 relu1 pool1 2x2    28 -> 14
///     conv2 3x3 (c0->c1) bn2 relu2 pool2 2x2    14 -> 7
///     conv3 3x3 (c1->c2) bn3 relu3 pool3 2x2     7 -> 3
///     flatten  fc1 (9*c2 -> hidden) relu4  fc2 (hidden -> 10)
///
/// Each block is Conv -> BatchNorm -> ReLU, the pattern a runtime folds into one quantized op
/// (a supergroup of the default configuration). Every call goes through a module (no functional
/// ops), so that a recorded forward pass sees each tensor's producer.
///
///     Net net;
///     at::Tensor logits = net->forward(images);  // (N, 10)
class NetImpl : public torch::nn::Cloneable<NetImpl> {
 public:
  explicit NetImpl(NetOptions options = {});
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  const NetOptions& options() const { return options_; }

  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::ReLU relu1{nullptr}, relu2{nullptr}, relu3{nullptr}, relu4{nullptr};
  nn::MaxPool2d pool1{nullptr}, pool2{nullptr}, pool3{nullptr};
  nn::Flatten flatten{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  NetOptions options_;
};
TORCH_MODULE(Net);

}  // namespace quantsim::apps
