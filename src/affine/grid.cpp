#include <quantsim/affine/grid.h>
#include <quantsim/errors.h>

namespace quantsim::affine {

namespace {
int64_t ceil_div2(int64_t n) { return n / 2 + (n % 2 != 0 && n > 0 ? 1 : 0); }

// Grid sizes in unsigned arithmetic, which wraps instead of overflowing: only used to test the
// shape of a grid that may not have been validated.
uint64_t size_of(int64_t qmin, int64_t qmax) {
  return static_cast<uint64_t>(qmax) - static_cast<uint64_t>(qmin) + 1;
}
}  // namespace

int64_t Grid::num_steps() const {
  int64_t steps = 0;
  TORCH_CHECK_VALUE(!__builtin_sub_overflow(qmax, qmin, &steps), "the grid [", qmin, ", ", qmax,
                    "] has more steps than int64 holds; a usable grid lies within [-2^53, 2^53]");
  return steps;
}

Grid Grid::from_num_steps(int64_t num_steps, bool is_signed) {
  TORCH_CHECK_VALUE(num_steps >= 1, "`num_steps` must be >= 1, got ", num_steps);
  if (is_signed) return from_range(-ceil_div2(num_steps), num_steps / 2);
  return from_range(0, num_steps);
}

Grid Grid::from_bitwidth(int64_t bitwidth, bool is_signed) {
  const int64_t widest = is_signed ? kMaxSignedBitwidth : kMaxUnsignedBitwidth;
  TORCH_CHECK_VALUE(bitwidth >= 1 && bitwidth <= widest, "`bitwidth` must be in [1, ", widest,
                    "] for a", is_signed ? " signed" : "n unsigned", " grid, got ", bitwidth,
                    ": quantization computes in float64 at the widest, whose integers are exact "
                    "only up to 2^53");
  const int64_t n = static_cast<int64_t>((uint64_t{1} << bitwidth) - 1);
  return from_num_steps(n, is_signed);
}

Grid Grid::from_range(int64_t qmin, int64_t qmax) {
  TORCH_CHECK_VALUE(qmin < qmax, "`qmin` must be less than `qmax`, got qmin=", qmin,
                    ", qmax=", qmax);
  TORCH_CHECK_VALUE(-kMaxMagnitude <= qmin && qmax <= kMaxMagnitude, "the grid [", qmin, ", ", qmax,
                    "] is not exactly representable: quantization computes in float64 at "
                    "the widest, whose integers are exact only within [-2^53, 2^53] = [",
                    -kMaxMagnitude, ", ", kMaxMagnitude, "]");
  return Grid{qmin, qmax};
}

bool Grid::has_bitwidth() const {
  if (!(qmin == -1 - qmax || qmin == 0)) return false;
  const uint64_t size = size_of(qmin, qmax);
  return size >= 2 && (size & (size - 1)) == 0;
}

int64_t Grid::bitwidth() const {
  TORCH_CHECK(has_bitwidth(), "bitwidth is undefined for the non-standard grid [", qmin, ", ", qmax,
              "]: the grid must be [0, 2^B-1] or [-2^(B-1), 2^(B-1)-1]");
  const uint64_t size = size_of(qmin, qmax);
  int64_t b = 0;
  while ((uint64_t{1} << b) < size) ++b;
  return b;
}

bool Grid::is_signed() const {
  TORCH_CHECK(has_bitwidth(), "signedness is undefined for the non-standard grid [", qmin, ", ",
              qmax, "]");
  return qmin < 0 && 0 <= qmax;
}

Grid Grid::with_bitwidth(int64_t bitwidth) const {
  // Only the signedness pattern matters, not the current size (as the reference's setter): the
  // unsigned [0, 0xff7f] has no bitwidth, yet setting 16 gives [0, 65535].
  TORCH_CHECK_VALUE(bitwidth >= 1, "`bitwidth` must be >= 1, got ", bitwidth);
  TORCH_CHECK(qmin == -1 - qmax || qmin == 0, "cannot set the bitwidth of the grid [", qmin, ", ",
              qmax, "]: it is neither signed [-2^(B-1), 2^(B-1)-1] nor unsigned [0, n]");
  return from_bitwidth(bitwidth, /*is_signed=*/qmin < 0);
}

Grid Grid::with_signed(bool want_signed) const {
  const Grid grid = from_range(qmin, qmax);  // bounded: the sums below cannot overflow
  const bool now_signed = grid.qmin < 0;
  if (want_signed == now_signed) return grid;
  if (!want_signed) return from_range(0, grid.qmax - grid.qmin);
  const int64_t sum = grid.qmax + grid.qmin;
  const int64_t centroid = sum / 2 + (sum % 2 != 0 && sum > 0 ? 1 : 0);
  return from_range(grid.qmin - centroid, grid.qmax - centroid);
}

}  // namespace quantsim::affine
