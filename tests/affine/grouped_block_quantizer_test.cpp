// LPBQ, GroupedBlockQuantizeDequantize (docs/quantization.md §4): validation and its equivalences
// with plain blockwise, per-tensor and per-channel quantization.

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <vector>

#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::affine::GroupedBlockQuantizeDequantize;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizerOptions;
using qs::testing::bitwise_equal;

namespace {

using Shape = std::vector<int64_t>;

template <typename Holder>
void calibrate(Holder& q, const at::Tensor& x) {
  q->compute_encodings([&] { q(x); });
}

}  // namespace

TEST(GroupedBlockQuantizer, InvalidSettingsThrow) {
  // Asymmetric.
  EXPECT_THROW(GroupedBlockQuantizeDequantize(QuantizerOptions({2, 4, 6}, 4, false), 8),
               c10::Error);
  // One grouping entry per shape dim.
  EXPECT_THROW(
      GroupedBlockQuantizeDequantize(QuantizerOptions({2, 4, 6}, 4, true), 8, {-1, -1, -1, -1}),
      c10::Error);
  // A group must divide its dim.
  EXPECT_THROW(GroupedBlockQuantizeDequantize(QuantizerOptions({2, 4, 6}, 4, true), 8, {1, 3, 1}),
               c10::Error);
  // decompressed_bw < bitwidth.
  EXPECT_THROW(GroupedBlockQuantizeDequantize(QuantizerOptions({2, 4, 6}, 4, true), 3), c10::Error);
  EXPECT_NO_THROW(GroupedBlockQuantizeDequantize(QuantizerOptions({2, 4, 6}, 4, true), 4));
  EXPECT_NO_THROW(GroupedBlockQuantizeDequantize({2, 4, 6}, 4, true, 8, {2, 2, 2}, {2, -1, 3}));
}

TEST(GroupedBlockQuantizer, UninitializedGettersAreEmpty) {
  GroupedBlockQuantizeDequantize q({8, 4}, 4, true, 8, {-1, -1}, {1, -1});
  EXPECT_FALSE(q->get_scale().has_value());
  EXPECT_FALSE(q->get_per_channel_scale().has_value());
  EXPECT_FALSE(q->get_per_block_integer_scale().has_value());
  EXPECT_THROW(q(torch::randn({8, 12})), c10::Error);
}

// Default grouping (all 1) and explicit all-1 grouping are plain blockwise quantization: same
// scale, same output, same min/max gradients.
TEST(GroupedBlockQuantizer, GroupsOfOneAreBlockwiseQuantization) {
  torch::manual_seed(0);
  const auto x = torch::randn({4, 8, 12});
  GroupedBlockQuantizeDequantize by_default({2, 4, 6}, 4, true, 8, {2, 2, 2});
  GroupedBlockQuantizeDequantize ones({2, 4, 6}, 4, true, 8, {2, 2, 2}, {1, 1, 1});
  QuantizeDequantize blockwise(QuantizerOptions({2, 4, 6}, 4, true).block_size({2, 2, 2}));
  calibrate(by_default, x);
  calibrate(ones, x);
  calibrate(blockwise, x);

  EXPECT_EQ(by_default->block_grouping(), Shape({1, 1, 1}));
  EXPECT_TRUE(bitwise_equal(*by_default->get_scale(), *blockwise->get_scale()));
  EXPECT_TRUE(bitwise_equal(*ones->get_scale(), *blockwise->get_scale()));

  const auto grad = torch::randn({4, 8, 12});
  const auto out_ones = ones(x), out_blockwise = blockwise(x);
  EXPECT_TRUE(bitwise_equal(by_default(x), out_blockwise));
  EXPECT_TRUE(bitwise_equal(out_ones, out_blockwise));
  out_ones.backward(grad);
  out_blockwise.backward(grad);
  ASSERT_TRUE(blockwise->min.grad().defined());
  EXPECT_TRUE(bitwise_equal(ones->min.grad(), blockwise->min.grad()));
  EXPECT_TRUE(bitwise_equal(ones->max.grad(), blockwise->max.grad()));
}

// One group spanning every dim with decompressed_bw == bitwidth leaves a single scale: per-tensor
// quantization. Grouping every dim but the channel dim gives per-channel quantization.
TEST(GroupedBlockQuantizer, WholeDimGroupsWithoutCompressionArePerTensorOrPerChannel) {
  struct Case {
    const char* name;
    Shape shape, block_size, grouping, reference_shape;
  };
  const Case cases[] = {
      {"per tensor", {2, 4, 6}, {2, 2, 2}, {-1, -1, -1}, {1, 1, 1}},
      {"per channel", {2, 8, 6}, {2, 1, 2}, {-1, 1, -1}, {1, 8, 1}},
  };
  torch::manual_seed(0);
  const auto x = torch::randn({4, 8, 12});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    GroupedBlockQuantizeDequantize lpbq(c.shape, 4, true, /*decompressed_bw=*/4, c.block_size,
                                        c.grouping);
    QuantizeDequantize reference(c.reference_shape, 4, true);
    calibrate(lpbq, x);
    calibrate(reference, x);
    const auto scale = *lpbq->get_scale();
    EXPECT_EQ(scale.sizes(), at::IntArrayRef(c.shape));
    EXPECT_TRUE(bitwise_equal(scale, reference->get_scale()->expand(c.shape).contiguous()));
    EXPECT_TRUE(bitwise_equal(lpbq(x), reference(x)));
  }
}

// The largest block scale of a channel is the per-channel scale, kept exactly (its integer scale
// is 2^(dbw - bw)); the other blocks are rounded onto that channel's grid, so outputs differ.
TEST(GroupedBlockQuantizer, LargestScaleOfEachGroupIsThePerChannelScale) {
  torch::manual_seed(0);
  const auto x = torch::randn({8, 12});
  GroupedBlockQuantizeDequantize lpbq({8, 4}, 4, true, 8, {-1, -1}, {1, -1});
  QuantizeDequantize per_channel({8, 1}, 4, true);
  calibrate(lpbq, x);
  calibrate(per_channel, x);

  const auto scale = *lpbq->get_scale();
  EXPECT_EQ(scale.sizes(), at::IntArrayRef({8, 4}));
  EXPECT_TRUE(
      bitwise_equal(std::get<0>(scale.max(1, /*keepdim=*/true)), *per_channel->get_scale()));
  EXPECT_FALSE(lpbq(x).equal(per_channel(x)));

  const auto integer = *lpbq->get_per_block_integer_scale();
  const auto channel = *lpbq->get_per_channel_scale();
  EXPECT_EQ(integer.scalar_type(), torch::kLong);
  EXPECT_EQ(channel.sizes(), at::IntArrayRef({8, 1}));
  EXPECT_TRUE(
      bitwise_equal(std::get<0>(integer.max(1, true)), torch::full({8, 1}, 16, torch::kLong)));
  EXPECT_TRUE((integer >= 1).all().item<bool>());
  // s_final = integer scale * per-channel scale, eq. (7).
  EXPECT_TRUE(bitwise_equal(scale, integer.to(torch::kFloat) * channel));
}

// Eq. (6)-(8) rebuilt from the plain blockwise scales for several (bitwidth, decompressed_bw):
// gamma = max over the group / 2^(dbw - bw), s = max(1, round(s_blk / gamma)) * gamma.
TEST(GroupedBlockQuantizer, BlockScalesAreRoundedOntoTheGroupGrid) {
  const std::pair<int64_t, int64_t> widths[] = {{4, 8}, {4, 16}, {4, 12}, {3, 5}, {5, 9}, {6, 6}};
  torch::manual_seed(0);
  const auto x = torch::randn({4, 8, 12});
  for (const auto& [bitwidth, decompressed_bw] : widths) {
    SCOPED_TRACE(::testing::Message()
                 << "bitwidth " << bitwidth << " decompressed_bw " << decompressed_bw);
    const Shape grouping{2, 2, 3};
    GroupedBlockQuantizeDequantize lpbq({2, 4, 6}, bitwidth, true, decompressed_bw, {2, 2, 2},
                                        grouping);
    QuantizeDequantize blockwise(QuantizerOptions({2, 4, 6}, bitwidth, true).block_size({2, 2, 2}));
    calibrate(lpbq, x);
    calibrate(blockwise, x);
    const auto actual = *lpbq->get_scale();
    const auto s_blk = *blockwise->get_scale();
    const double levels = static_cast<double>(int64_t{1} << (decompressed_bw - bitwidth));
    for (int64_t i = 0; i < 2 / grouping[0]; ++i) {
      for (int64_t j = 0; j < 4 / grouping[1]; ++j) {
        for (int64_t k = 0; k < 6 / grouping[2]; ++k) {
          using torch::indexing::Slice;
          const std::vector<torch::indexing::TensorIndex> region = {
              Slice(i * grouping[0], (i + 1) * grouping[0]),
              Slice(j * grouping[1], (j + 1) * grouping[1]),
              Slice(k * grouping[2], (k + 1) * grouping[2])};
          const auto group = s_blk.index(region);
          const auto gamma = group.max() / levels;
          const auto expected = torch::clamp_min(torch::round(group / gamma), 1) * gamma;
          EXPECT_TRUE(bitwise_equal(actual.index(region), expected));
        }
      }
    }
  }
}
