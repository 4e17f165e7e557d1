#pragma once

/// Floating-point formats simulated by the float quantizers (docs/quantization.md §7): the
/// reference's IEEE-style formats (any exponent/mantissa split, bias derived from the largest
/// value) and the OCP 8-bit formats E4M3FN and E5M2, selectable by name.

#include <c10/util/Optional.h>

#include <cstdint>
#include <string>

namespace quantsim::floating {

/// Largest finite value of the reference's IEEE-style format with E exponent and M mantissa bits:
///
///     maxval_ieee(E, M) = (2 - 2^-M) * 2^(emax - floor(emax / 2) - 1),   emax = 2^E - 1     (F1)
///
/// (5, 10) is 65504 (float16), (8, 7) is 3.3895314e38 (bfloat16), (4, 3) is 240 (the
/// reference's E4M3, not OCP E4M3FN's 448). c10::ValueError for bits out of range (see
/// check_bits).
///     double m = quantsim::floating::maxval_ieee(4, 3);  // 240
double maxval_ieee(int64_t exponent_bits, int64_t mantissa_bits);

/// c10::ValueError unless 1 <= exponent_bits <= 8 and 0 <= mantissa_bits <= 23.
///
/// The grid is computed in float32, so a format must not be wider than float32 in either field:
/// more exponent bits overflow maxval, more mantissa bits than the input has are meaningless.
void check_bits(int64_t exponent_bits, int64_t mantissa_bits);

/// A floating-point format: field widths, largest finite value and how the exponent bias is set.
///
/// The quantize-dequantize of docs/quantization.md §7 maps x to the nearest value (ties to even) of
///
///     s * 2^(e - M - B),  e = max(floor(log2|x| + B), 1),  |x| clamped to maxval          (F2)
///
/// For the reference's IEEE-style formats (`bias` empty) B follows from maxval:
/// B = 2^E - log2(maxval) + log2(2 - 2^-M) - 1 (F3), which is 2^(E-1) at maxval_ieee(E, M), so
/// the exponent field runs over [1, 2^E - 1] with no code reserved for inf/NaN. OCP formats
/// reserve codes, so their largest value is not maxval_ieee and B cannot come from (F3): `bias`
/// holds the standard's integer bias and maxval the standard's largest finite value. A
/// calibrated maxval m rescales either kind of grid (for OCP formats B = bias - log2(m / maxval)).
///
/// Example:
///     auto fn = quantsim::floating::FloatFormat::from_name("E4M3FN");  // bias 7, maxval 448
struct FloatFormat {
  /// Name of a named format ("E4M3", "E4M3FN", "E5M2", "float16", "bfloat16"); empty for an
  /// ad-hoc IEEE-style (exponent_bits, mantissa_bits) format.
  std::string name;
  int64_t exponent_bits = 0;
  int64_t mantissa_bits = 0;
  /// Fixed exponent bias of an OCP format; empty for the reference's IEEE-style formats.
  c10::optional<int64_t> bias;
  /// Largest finite value; inputs saturate to +-maxval.
  double maxval = 0;

  /// The reference's IEEE-style format: maxval_ieee(E, M), bias from (F3).
  static FloatFormat ieee(int64_t exponent_bits, int64_t mantissa_bits);
  /// "E4M3" = ieee(4, 3) (maxval 240, the reference's E4M3);
  /// "E4M3FN" = OCP FP8 E4M3 (bias 7, maxval 448, no infinities, subnormals down to 2^-9);
  /// "E5M2" = OCP FP8 E5M2 (bias 15, maxval 57344, subnormals down to 2^-16);
  /// "float16" = ieee(5, 10) and "bfloat16" = ieee(8, 7), simulated by a cast round trip.
  /// c10::ValueError for any other name.
  static FloatFormat from_name(const std::string& name);

  /// E + M + 1.
  int64_t bitwidth() const { return exponent_bits + mantissa_bits + 1; }
  /// IEEE-style E5M10: the cast round trip through float16 simulates it.
  bool is_float16() const { return !bias && exponent_bits == 5 && mantissa_bits == 10; }
  /// IEEE-style E8M7: the cast round trip through bfloat16 simulates it.
  bool is_bfloat16() const { return !bias && exponent_bits == 8 && mantissa_bits == 7; }
};

}  // namespace quantsim::floating
