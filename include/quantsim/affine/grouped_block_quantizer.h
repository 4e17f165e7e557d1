#pragma once

/// `GroupedBlockQuantizeDequantize`: low-power blockwise quantization, LPBQ
/// (docs/quantization.md §4).
///
/// Each block's scale is itself quantized onto a per-group (usually per-channel) grid, so that
/// hardware stores one float scale per channel and a small integer per block:
///
///     s_blk   = (max - min) / n                                    (4)
///     s_ch    = max_{group}(s_blk) / 2^(dbw - bw)                  (6)
///     s_final = clamp(round(s_blk / s_ch), 1, 2^(dbw - bw)) * s_ch  (7)

#include <quantsim/affine/quantizer.h>

namespace quantsim::affine {

class GroupedBlockQuantizeDequantizeImpl
    : public AffineQuantizer<GroupedBlockQuantizeDequantizeImpl> {
 public:
  /// `options` must be symmetric and carry a block size; `block_grouping` has one entry per
  /// dim of the shape (-1: the whole dim is one group; default all 1, i.e. plain blockwise).
  /// c10::Error when a group does not divide its dim or `decompressed_bw < bitwidth`;
  /// c10::ValueError for `decompressed_bw` beyond 54 (Grid::kMaxSignedBitwidth).
  GroupedBlockQuantizeDequantizeImpl(QuantizerOptions options, int64_t decompressed_bw,
                                     std::vector<int64_t> block_grouping = {});
  GroupedBlockQuantizeDequantizeImpl(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric,
                                     int64_t decompressed_bw, std::vector<int64_t> block_size,
                                     std::vector<int64_t> block_grouping = {});

  at::Tensor forward(const at::Tensor& x);
  at::Tensor fake_quantize(const at::Tensor& x) override { return forward(x); }

  int64_t decompressed_bw() const { return decompressed_bw_; }
  const std::vector<int64_t>& block_grouping() const { return block_grouping_; }
  /// Eq. (7), one value per group; nullopt when uninitialized.
  c10::optional<at::Tensor> get_per_channel_scale(at::ScalarType dtype = at::kFloat) const;
  /// round(s_final / s_ch) as int64, of the quantizer's shape; nullopt when uninitialized.
  c10::optional<at::Tensor> get_per_block_integer_scale() const;

 protected:
  at::Tensor scale_from(const at::Tensor& min, const at::Tensor& max,
                        at::ScalarType dtype) const override;
  const char* kind() const override { return "GroupedBlockQuantizeDequantize"; }

 private:
  /// (s_blk viewed with each grouped dim split as (groups, group size), s_ch keepdim).
  std::pair<at::Tensor, at::Tensor> grouped_scales(const at::Tensor& min, const at::Tensor& max,
                                                   at::ScalarType dtype) const;

  int64_t decompressed_bw_;
  std::vector<int64_t> block_grouping_;
};

class GroupedBlockQuantizeDequantize
    : public torch::nn::ModuleHolder<GroupedBlockQuantizeDequantizeImpl> {
 public:
  using torch::nn::ModuleHolder<GroupedBlockQuantizeDequantizeImpl>::ModuleHolder;
  GroupedBlockQuantizeDequantize(QuantizerOptions options, int64_t decompressed_bw,
                                 std::vector<int64_t> block_grouping = {})
      : ModuleHolder(std::make_shared<GroupedBlockQuantizeDequantizeImpl>(
            std::move(options), decompressed_bw, std::move(block_grouping))) {}
  GroupedBlockQuantizeDequantize(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric,
                                 int64_t decompressed_bw, std::vector<int64_t> block_size,
                                 std::vector<int64_t> block_grouping = {})
      : ModuleHolder(std::make_shared<GroupedBlockQuantizeDequantizeImpl>(
            std::move(shape), bitwidth, symmetric, decompressed_bw, std::move(block_size),
            std::move(block_grouping))) {}
};

}  // namespace quantsim::affine
