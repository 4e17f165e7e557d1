#include <quantsim/affine/functional.h>
#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/ops.h>

#include <ATen/ATen.h>

namespace quantsim::affine {

GroupedBlockQuantizeDequantizeImpl::GroupedBlockQuantizeDequantizeImpl(
    QuantizerOptions options, int64_t decompressed_bw, std::vector<int64_t> block_grouping)
    : AffineQuantizer(std::move(options)),
      decompressed_bw_(decompressed_bw),
      block_grouping_(std::move(block_grouping)) {
  TORCH_CHECK(symmetric(), "GroupedBlockQuantizeDequantize supports only symmetric quantization");
  TORCH_CHECK(decompressed_bw_ >= bitwidth(), "`decompressed_bw` (", decompressed_bw_,
              ") must be >= `bitwidth` (", bitwidth(), ")");
  // The decompressed grid is signed: beyond 2^53 float64 cannot hold it (and 2^(dbw - bw),
  // eq. (7), would overflow int64 first).
  TORCH_CHECK_VALUE(decompressed_bw_ <= Grid::kMaxSignedBitwidth, "`decompressed_bw` must be in [",
                    bitwidth(), ", ", Grid::kMaxSignedBitwidth, "], got ", decompressed_bw_);
  if (block_grouping_.empty()) block_grouping_.assign(shape().size(), 1);
  TORCH_CHECK(block_grouping_.size() == shape().size(), "`block_grouping` ",
              at::IntArrayRef(block_grouping_), " must have one entry per dim of `shape` ",
              at::IntArrayRef(shape()));
  for (size_t d = 0; d < shape().size(); ++d) {
    const int64_t g = block_grouping_[d];
    TORCH_CHECK(g == -1 || (g >= 1 && shape()[d] % g == 0), "`block_grouping`[", d, "] = ", g,
                " must be -1 or divide the shape dim ", shape()[d]);
  }
}

GroupedBlockQuantizeDequantizeImpl::GroupedBlockQuantizeDequantizeImpl(
    std::vector<int64_t> shape, int64_t bitwidth, bool symmetric, int64_t decompressed_bw,
    std::vector<int64_t> block_size, std::vector<int64_t> block_grouping)
    : GroupedBlockQuantizeDequantizeImpl(
          QuantizerOptions(std::move(shape), bitwidth, symmetric).block_size(std::move(block_size)),
          decompressed_bw, std::move(block_grouping)) {}

std::pair<at::Tensor, at::Tensor> GroupedBlockQuantizeDequantizeImpl::grouped_scales(
    const at::Tensor& mn, const at::Tensor& mx, at::ScalarType dtype) const {
  const auto s_blk = AffineQuantizerBase::scale_from(mn, mx, dtype);  // (6)
  std::vector<int64_t> expanded, group_axes;
  for (size_t d = 0; d < shape().size(); ++d) {
    const int64_t g = block_grouping_[d] == -1 ? shape()[d] : block_grouping_[d];
    expanded.push_back(shape()[d] / g);
    expanded.push_back(g);
    group_axes.push_back(static_cast<int64_t>(2 * d + 1));
  }
  const auto s_grouped = s_blk.reshape(expanded);
  const auto s_max = group_axes.empty() ? s_grouped : at::amax(s_grouped, group_axes, true);
  const auto s_ch =
      s_max / static_cast<double>(int64_t{1} << (decompressed_bw_ - bitwidth()));  // (7)
  return {s_grouped, s_ch};
}

at::Tensor GroupedBlockQuantizeDequantizeImpl::scale_from(const at::Tensor& mn,
                                                          const at::Tensor& mx,
                                                          at::ScalarType dtype) const {
  const auto [s_grouped, s_ch] = grouped_scales(mn, mx, dtype);
  const int64_t levels = int64_t{1} << (decompressed_bw_ - bitwidth());
  // While tracing (ONNX export), eq. (7) as aten ops, which the tracer records and the exporter
  // folds into one constant named after this quantizer: the fused kernel writes its output
  // through raw pointers the tracer does not see (the graph would hold only the output's
  // allocation, and folding that gives garbage). The same float32 arithmetic: a true division,
  // rounding half to even, the clamp, one multiplication by the scale.
  const auto s_final =
      ops::tracing()
          ? at::clamp(at::round(s_grouped / s_ch), 1, levels) * s_ch
          : quantize_dequantize(s_grouped, s_ch, at::zeros({}, s_ch.options()), 1, levels);  // (8)
  return s_final.reshape(shape());
}

c10::optional<at::Tensor> GroupedBlockQuantizeDequantizeImpl::get_per_channel_scale(
    at::ScalarType dtype) const {
  if (!is_initialized()) return c10::nullopt;
  auto s_ch = grouped_scales(min, max, dtype).second;
  std::vector<int64_t> per_group;
  for (size_t d = 0; d < shape().size(); ++d) per_group.push_back(s_ch.size(2 * d));
  return s_ch.reshape(per_group);
}

c10::optional<at::Tensor> GroupedBlockQuantizeDequantizeImpl::get_per_block_integer_scale() const {
  if (!is_initialized()) return c10::nullopt;
  const auto [s_grouped, s_ch] = grouped_scales(min, max, at::kFloat);
  const auto s_final = scale_from(min, max, at::kFloat).reshape(s_grouped.sizes());
  return at::round(s_final / s_ch).to(at::kLong).reshape(shape());
}

at::Tensor GroupedBlockQuantizeDequantizeImpl::forward(const at::Tensor& x) {
  const auto enc = forward_encoding(x);
  // A traced model records the quantizer as one quantsim::quantize_dequantize node, marked as
  // this quantizer's.
  if (ops::tracing()) {
    return ops::traced_by(
        ops::quantize_dequantize(x, enc.scale(), enc.offset(), qmin(), qmax(), block_size()),
        static_cast<const QuantizerBase*>(this));
  }
  return quantize_dequantize(x, enc.scale(), enc.offset(), qmin(), qmax(), block_size());
}

}  // namespace quantsim::affine
