#pragma once

/// The integer grid [qmin, qmax] of an affine quantizer (docs/quantization.md §1).

#include <cstdint>

namespace quantsim::affine {

/// Inclusive integer range that quantized values are clamped to. `num_steps() = qmax - qmin`.
///
/// The factories accept only grids whose every integer is exact in float64, the widest dtype the
/// kernels compute in (docs/quantization.md §5): -2^53 <= qmin < qmax <= 2^53. A wider grid
/// could be built but no forward could ever run on it.
struct Grid {
  int64_t qmin = 0;
  int64_t qmax = 0;

  /// Largest |qmin|, |qmax| of a usable grid: 2^53, beyond which float64 skips integers.
  static constexpr int64_t kMaxMagnitude = int64_t{1} << 53;
  /// Widest bitwidths within kMaxMagnitude: [0, 2^53 - 1] and [-2^53, 2^53 - 1].
  static constexpr int64_t kMaxUnsignedBitwidth = 53;
  static constexpr int64_t kMaxSignedBitwidth = 54;

  /// qmax - qmin; c10::ValueError instead of an int64 overflow for a grid built field by field
  /// such as {-2^62, 2^62}.
  int64_t num_steps() const;
  bool operator==(const Grid& o) const { return qmin == o.qmin && qmax == o.qmax; }

  /// Grid of `num_steps` steps: signed `[-ceil(n/2), floor(n/2)]`, unsigned `[0, n]`.
  /// `from_num_steps(254, true) == {-127, 127}`. Throws c10::ValueError for n < 1.
  static Grid from_num_steps(int64_t num_steps, bool is_signed);
  /// Grid of a `bitwidth`-bit integer: `from_bitwidth(8, true) == {-128, 127}`.
  /// Throws c10::ValueError unless 1 <= bitwidth <= 53 (unsigned) or 54 (signed).
  static Grid from_bitwidth(int64_t bitwidth, bool is_signed);
  /// Validated explicit grid; throws c10::ValueError when qmin >= qmax or when either bound lies
  /// beyond +-2^53.
  static Grid from_range(int64_t qmin, int64_t qmax);

  /// True iff the grid is a standard integer type's range (`qmin + qmax == -1` or `qmin == 0`
  /// with a power-of-two size), so that `bitwidth()` and `is_signed()` are defined.
  bool has_bitwidth() const;
  /// log2(qmax - qmin + 1); c10::Error for a non-standard grid such as [-1, 14] or [-127, 127].
  int64_t bitwidth() const;
  /// qmin < 0 <= qmax; c10::Error for a non-standard grid.
  bool is_signed() const;
  /// The same signedness with `bitwidth` bits; c10::ValueError for bitwidth < 1,
  /// c10::Error for a grid that is neither signed-standard nor unsigned ([0, n]).
  Grid with_bitwidth(int64_t bitwidth) const;
  /// Shifts the grid: signed->unsigned by -qmin, unsigned->signed by ceil((qmax+qmin)/2).
  Grid with_signed(bool is_signed) const;
};

}  // namespace quantsim::affine
