#pragma once

/// `AffineEncoding`: scale, offset and integer grid of an affine quantization
/// (docs/quantization.md §10.1).

#include <quantsim/affine/grid.h>
#include <quantsim/encoding.h>

#include <vector>

namespace quantsim::affine {

/// Scale s and offset o on the integer grid [qmin, qmax] (docs/quantization.md, eq. 1-2).
///
/// s and o have the encoding's shape and broadcast to a tensor as in docs/quantization.md §3, or,
/// with a non-empty `block_size` (one entry per scale dim), to blocks of its last dims. The offset
/// is subtracted when quantizing (o = -zero_point). Represented real range:
///
///     min = (o + qmin) * s        max = (o + qmax) * s
///
/// The reference's two constructor spellings map to the Grid factories:
///
///     AffineEncoding(s, o, bitwidth, signed, symmetry)  ->
///         AffineEncoding(s, o, Grid::from_bitwidth(bitwidth, signed), symmetry)
///     AffineEncoding(s, o, qmin, qmax, symmetry)        ->
///         AffineEncoding(s, o, Grid{qmin, qmax}, symmetry)
///
/// Example:
///     AffineEncoding enc(torch::tensor(1.f), torch::tensor(-5.f), Grid::from_bitwidth(8, false));
///     enc.min();  // -5      enc.max();  // 250      enc.dtype();  // uint8
///     enc.granularity();  // "pertensor"
class AffineEncoding : public EncodingBase {
 public:
  /// c10::ValueError when grid.qmin >= grid.qmax (the reference's ValueError); c10::Error
  /// when scale/offset are undefined or not floating, when the offset does not broadcast to the
  /// scale's shape, or when a non-empty `block_size` has not one entry per scale dim.
  AffineEncoding(at::Tensor scale, at::Tensor offset, Grid grid, bool symmetry = false,
                 std::vector<int64_t> block_size = {});

  /// Scale s, the real step between neighbouring grid integers.
  const at::Tensor& scale() const { return scale_; }
  /// Offset o (AIMET convention: subtracted when quantizing, o = -zero_point).
  const at::Tensor& offset() const { return offset_; }
  /// The integer grid [qmin, qmax].
  Grid grid() const { return grid_; }
  int64_t qmin() const { return grid_.qmin; }
  int64_t qmax() const { return grid_.qmax; }
  /// qmax - qmin.
  int64_t num_steps() const { return grid_.num_steps(); }
  /// Whether the encoding was made symmetric (offset fixed at 0). Only reported, not enforced.
  bool symmetry() const { return symmetry_; }
  /// Block sizes of a blockwise encoding (docs/quantization.md §3); empty for
  /// per-tensor/per-channel.
  const std::vector<int64_t>& block_size() const { return block_size_; }
  /// (offset + qmin) * scale, in the scale's dtype.
  at::Tensor min() const;
  /// (offset + qmax) * scale, in the scale's dtype.
  at::Tensor max() const;
  /// qmin < 0 <= qmax; c10::Error for a non-standard grid.
  bool is_signed() const { return grid_.is_signed(); }

  /// Always "affine".
  std::string mapping() const override { return "affine"; }
  /// log2(qmax - qmin + 1); c10::Error for a non-standard grid such as [-127, 127].
  int64_t bitwidth() const override { return grid_.bitwidth(); }
  /// "pertensor" for a 0-dim scale, "blockwise" with a block size, "perchannel" when at most one
  /// scale dim is not 1 (so shape (1,) is "perchannel", docs/quantization.md §3), else "unknown".
  std::string granularity() const override;
  std::shared_ptr<EncodingBase> to(c10::optional<c10::Device> device,
                                   c10::optional<at::ScalarType> dtype) const override;
  std::shared_ptr<EncodingBase> copy() const override;
  std::shared_ptr<EncodingBase> clone() const override;
  std::shared_ptr<EncodingBase> detach() const override;
  /// Eq. (1) with scale and offset cast to x's dtype.
  at::Tensor quantize(const at::Tensor& x) const override;
  /// Eq. (2) with scale and offset cast to q's dtype.
  at::Tensor dequantize(const at::Tensor& q) const override;
  /// Smallest of uint8 ([0, 255] fits), int8, int16, int32 that holds the grid; int64 beyond
  /// int32 (the reference says int32 there, which cannot hold the grid).
  at::ScalarType dtype() const override;
  /// One dict per scale element, row-major (docs/quantization.md §10.1):
  ///
  ///     {min, max, scale, offset: offset + qmin, bitwidth, dtype: "int",
  ///      is_symmetric: "True" | "False"}
  ///
  /// A signed-symmetric 8-bit encoding of scale 0.01 gives
  /// `{min -1.28, max 1.27, scale 0.01, offset -128, bitwidth 8, ...}`. c10::Error for a grid
  /// without a bitwidth (as the reference).
  nlohmann::json to_legacy_format() const override;

 private:
  at::Tensor scale_, offset_;
  Grid grid_;
  bool symmetry_;
  std::vector<int64_t> block_size_;
};

}  // namespace quantsim::affine
