#pragma once

/// `AffineEncoding`: scale, offset and integer grid of an affine quantization (spec §1.10).

#include <quantsim/affine/grid.h>
#include <quantsim/encoding.h>

#include <vector>

namespace quantsim::affine {

/// Scale s and offset o (same shape, broadcast to the tensor as in §1.3/§1.4) on the grid
/// [qmin, qmax]. Represented real range: min = (o + qmin) * s, max = (o + qmax) * s.
///
/// Example:
///     AffineEncoding enc(torch::tensor(1.f), torch::tensor(-5.f), Grid::from_bitwidth(8, false));
///     enc.min();  // -5      enc.max();  // 250      enc.dtype();  // uint8
class AffineEncoding : public EncodingBase {
 public:
  AffineEncoding(at::Tensor scale, at::Tensor offset, Grid grid, bool symmetry = false,
                 std::vector<int64_t> block_size = {});

  const at::Tensor& scale() const { return scale_; }
  const at::Tensor& offset() const { return offset_; }
  Grid grid() const { return grid_; }
  int64_t qmin() const { return grid_.qmin; }
  int64_t qmax() const { return grid_.qmax; }
  int64_t num_steps() const { return grid_.num_steps(); }
  bool symmetry() const { return symmetry_; }
  const std::vector<int64_t>& block_size() const { return block_size_; }
  /// (offset + qmin) * scale
  at::Tensor min() const;
  /// (offset + qmax) * scale
  at::Tensor max() const;
  /// qmin < 0 <= qmax; c10::Error for a non-standard grid.
  bool is_signed() const { return grid_.is_signed(); }

  std::string mapping() const override { return "affine"; }
  int64_t bitwidth() const override { return grid_.bitwidth(); }
  std::string granularity() const override;
  std::shared_ptr<EncodingBase> to(c10::optional<c10::Device> device,
                                   c10::optional<at::ScalarType> dtype) const override;
  std::shared_ptr<EncodingBase> copy() const override;
  std::shared_ptr<EncodingBase> clone() const override;
  std::shared_ptr<EncodingBase> detach() const override;
  at::Tensor quantize(const at::Tensor& x) const override;
  at::Tensor dequantize(const at::Tensor& q) const override;
  at::ScalarType dtype() const override;
  nlohmann::json to_legacy_format() const override;

 private:
  at::Tensor scale_, offset_;
  Grid grid_;
  bool symmetry_;
  std::vector<int64_t> block_size_;
};

}  // namespace quantsim::affine
