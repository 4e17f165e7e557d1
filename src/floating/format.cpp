#include <quantsim/errors.h>
#include <quantsim/floating/format.h>

#include <cmath>

namespace quantsim::floating {

void check_bits(int64_t exponent_bits, int64_t mantissa_bits) {
  TORCH_CHECK_VALUE(exponent_bits >= 1 && exponent_bits <= 8,
                    "`exponent_bits` must be in [1, 8], got ", exponent_bits);
  TORCH_CHECK_VALUE(mantissa_bits >= 0 && mantissa_bits <= 23,
                    "`mantissa_bits` must be in [0, 23], got ", mantissa_bits);
}

double maxval_ieee(int64_t exponent_bits, int64_t mantissa_bits) {
  check_bits(exponent_bits, mantissa_bits);
  const int64_t emax = (int64_t{1} << exponent_bits) - 1;  // (F1)
  return (2.0 - std::ldexp(1.0, static_cast<int>(-mantissa_bits))) *
         std::ldexp(1.0, static_cast<int>(emax - emax / 2 - 1));
}

FloatFormat FloatFormat::ieee(int64_t exponent_bits, int64_t mantissa_bits) {
  FloatFormat format;
  format.exponent_bits = exponent_bits;
  format.mantissa_bits = mantissa_bits;
  format.maxval = maxval_ieee(exponent_bits, mantissa_bits);  // validates the bits
  return format;
}

FloatFormat FloatFormat::from_name(const std::string& name) {
  FloatFormat format;
  if (name == "E4M3") {
    format = ieee(4, 3);
  } else if (name == "float16") {
    format = ieee(5, 10);
  } else if (name == "bfloat16") {
    format = ieee(8, 7);
  } else if (name == "E4M3FN") {
    // OCP 8-bit Floating Point Specification (OFP8) v1.0, 2023, E4M3: exponent bias 7;
    // S.1111.111 is NaN, so the largest finite value is S.1111.110 = 1.75 * 2^8 = 448.
    format.exponent_bits = 4;
    format.mantissa_bits = 3;
    format.bias = 7;
    format.maxval = 448.0;
  } else if (name == "E5M2") {
    // OFP8 v1.0 E5M2: exponent bias 15, exponent field 31 reserved for inf/NaN (as IEEE 754),
    // so the largest finite value is S.11110.11 = 1.75 * 2^15 = 57344.
    format.exponent_bits = 5;
    format.mantissa_bits = 2;
    format.bias = 15;
    format.maxval = 57344.0;
  } else {
    TORCH_CHECK_VALUE(false, "unknown float format \"", name,
                      "\"; expected one of E4M3, E4M3FN, E5M2, float16, bfloat16");
  }
  format.name = name;
  return format;
}

}  // namespace quantsim::floating
