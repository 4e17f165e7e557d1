#include "net.h"

namespace quantsim::apps {

nlohmann::json NetOptions::to_json() const {
  return {{"architecture", "conv-bn-relu x3, fc-relu, fc"},
          {"channels", {channels[0], channels[1], channels[2]}},
          {"hidden", hidden}};
}

NetImpl::NetImpl(NetOptions options) : options_(options) { reset(); }

void NetImpl::reset() {
  const auto& c = options_.channels;
  // No conv bias: the batch norm that follows has its own shift.
  conv1 =
      register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, c[0], 3).padding(1).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(c[0]));
  relu1 = register_module("relu1", nn::ReLU());
  pool1 = register_module("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  conv2 =
      register_module("conv2", nn::Conv2d(nn::Conv2dOptions(c[0], c[1], 3).padding(1).bias(false)));
  bn2 = register_module("bn2", nn::BatchNorm2d(c[1]));
  relu2 = register_module("relu2", nn::ReLU());
  pool2 = register_module("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  conv3 =
      register_module("conv3", nn::Conv2d(nn::Conv2dOptions(c[1], c[2], 3).padding(1).bias(false)));
  bn3 = register_module("bn3", nn::BatchNorm2d(c[2]));
  relu3 = register_module("relu3", nn::ReLU());
  pool3 = register_module("pool3", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
  flatten = register_module("flatten", nn::Flatten());
  fc1 = register_module("fc1", nn::Linear(9 * c[2], options_.hidden));
  relu4 = register_module("relu4", nn::ReLU());
  fc2 = register_module("fc2", nn::Linear(options_.hidden, 10));
}

at::Tensor NetImpl::forward(const at::Tensor& x) {
  at::Tensor h = pool1(relu1(bn1(conv1(x))));
  h = pool2(relu2(bn2(conv2(h))));
  h = pool3(relu3(bn3(conv3(h))));
  return fc2(relu4(fc1(flatten(h))));
}

}  // namespace quantsim::apps
