// The demo's network: shapes, and that every layer is a quantized module (drop-in namespace).
#include "apps/quantsim/net.h"

#include <quantsim/nn/base_quantization_mixin.h>

#include <gtest/gtest.h>

namespace quantsim::apps {
namespace {

TEST(Net, ClassifiesTenClassesAndEveryLayerIsQuantizable) {
  torch::manual_seed(0);
  Net net;
  net->eval();
  EXPECT_EQ(net->forward(torch::randn({2, 1, 28, 28})).sizes(), at::IntArrayRef({2, 10}));
  std::vector<std::string> quantizable;
  for (const auto& item : net->named_children()) {
    if (dynamic_cast<quantsim::nn::BaseQuantizationMixin*>(item.value().get())) {
      quantizable.push_back(item.key());
    }
  }
  EXPECT_EQ(quantizable, (std::vector<std::string>{"conv1", "bn1", "relu1", "pool1", "conv2", "bn2",
                                                   "relu2", "pool2", "conv3", "bn3", "relu3",
                                                   "pool3", "flatten", "fc1", "relu4", "fc2"}));
  EXPECT_EQ(net->fc1->weight.sizes(), at::IntArrayRef({128, 9 * 64}));
}

TEST(Net, CloneKeepsQuantizedModulesAndCopiesParameters) {
  torch::manual_seed(0);
  Net net;
  auto copy = std::dynamic_pointer_cast<NetImpl>(net->clone());
  ASSERT_TRUE(copy);
  EXPECT_NE(dynamic_cast<quantsim::nn::BaseQuantizationMixin*>(copy->conv2.ptr().get()), nullptr);
  EXPECT_TRUE(copy->conv2->weight.equal(net->conv2->weight));
  EXPECT_FALSE(copy->conv2->weight.is_same(net->conv2->weight));
  net->eval();
  copy->eval();
  at::Tensor x = torch::randn({3, 1, 28, 28});
  EXPECT_TRUE(copy->forward(x).equal(net->forward(x)));
}

TEST(Net, OptionsJson) {
  NetOptions options;
  options.channels = {8, 16, 24};
  options.hidden = 32;
  EXPECT_EQ(options.to_json(), (nlohmann::json{{"architecture", "conv-bn-relu x3, fc-relu, fc"},
                                               {"channels", {8, 16, 24}},
                                               {"hidden", 32}}));
}

}  // namespace
}  // namespace quantsim::apps
