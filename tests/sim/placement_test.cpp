// Quantizer placement on the abstract op graph (quantsim/sim/placement.h), which the C++ and the
// Python QuantizationSimModel share: supergroups, batch-norm folding, model inputs and outputs,
// parameter quantizer shapes, with the default configuration.

#include <quantsim/sim/placement.h>

#include <gtest/gtest.h>

namespace qs = quantsim;

namespace {

/// An op with one input and one output slot.
qs::PlacementOp unary(const std::string& name, const std::string& type, int64_t producer,
                      int64_t consumers, int64_t input_tensor, int64_t output_tensor) {
  qs::PlacementOp op;
  op.name = name;
  op.type = type;
  op.producers = {{producer}};
  op.consumers = {consumers};
  op.input_tensors = {input_tensor};
  op.output_tensors = {output_tensor};
  op.called = true;
  return op;
}

}  // namespace

// x -> conv -> bn -> relu -> fc: the batch norm folds into the conv, Conv + Relu (the batch norm
// looked through) is a supergroup, so only the model input, relu's and fc's outputs are quantized.
TEST(Placement, ConvBatchNormReluChain) {
  const std::vector<qs::PlacementOp> ops = {
      unary("conv", "Conv2d", -1, 1, 0, 1), unary("bn", "BatchNorm2d", 0, 1, 1, 2),
      unary("relu", "ReLU", 1, 1, 2, 3), unary("fc", "Linear", 2, 0, 4, 5)};
  const auto config = qs::QuantsimConfig::default_config();
  EXPECT_EQ(qs::foldable_batch_norms(ops), (std::map<size_t, size_t>{{1, 0}}));
  const auto plans = qs::plan_slots(ops, config);
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].inputs, std::vector<bool>{true});
  EXPECT_EQ(plans[0].outputs, std::vector<bool>{false});
  EXPECT_TRUE(plans[1].folded_batch_norm);
  EXPECT_EQ(plans[1].outputs, std::vector<bool>{false});
  EXPECT_EQ(plans[2].outputs, std::vector<bool>{true});
  // fc reads a view of relu's output (tensor 4, not 3): produced by relu all the same.
  EXPECT_EQ(plans[3].inputs, std::vector<bool>{false});
  EXPECT_EQ(plans[3].outputs, std::vector<bool>{true});
  // A folded batch norm's parameters stay float; a conv weight is per channel, symmetric.
  EXPECT_FALSE(qs::place_param(config, "BatchNorm2d", "weight", {8}, true));
  const auto weight = qs::place_param(config, "Conv2d", "weight", {8, 3, 3, 3}, false);
  ASSERT_TRUE(weight);
  EXPECT_EQ(weight->shape, (std::vector<int64_t>{8, 1, 1, 1}));
  EXPECT_TRUE(weight->symmetric);
  EXPECT_FALSE(qs::place_param(config, "Conv2d", "bias", {8}, false));
  // A transposed conv's channels are on axis 1.
  const auto deconv = qs::place_param(config, "ConvTranspose2d", "weight", {3, 8, 3, 3}, false);
  ASSERT_TRUE(deconv);
  EXPECT_EQ(deconv->shape, (std::vector<int64_t>{1, 8, 1, 1}));
  EXPECT_FALSE(qs::place_activation(config, "ReLU").symmetric);
}

// A conv whose output is also read by another op neither folds nor fuses.
TEST(Placement, SharedOutputBreaksFoldAndSupergroup) {
  auto conv = unary("conv", "Conv2d", -1, 2, 0, 1);
  std::vector<qs::PlacementOp> ops = {conv, unary("bn", "BatchNorm2d", 0, 0, 1, 2),
                                      unary("relu", "ReLU", 0, 0, 1, 3)};
  EXPECT_TRUE(qs::foldable_batch_norms(ops).empty());
  const auto plans = qs::plan_slots(ops, qs::QuantsimConfig::default_config());
  EXPECT_EQ(plans[0].outputs, std::vector<bool>{true});
  EXPECT_FALSE(plans[1].folded_batch_norm);
  // A grouped transposed conv does not fold a batch norm either.
  ops = {unary("deconv", "ConvTranspose2d", -1, 1, 0, 1), unary("bn", "BatchNorm2d", 0, 0, 1, 2)};
  EXPECT_EQ(qs::foldable_batch_norms(ops).size(), 1u);
  ops[0].groups = 2;
  EXPECT_TRUE(qs::foldable_batch_norms(ops).empty());
}
