#include <quantsim/affine/grid.h>
#include <quantsim/errors.h>

namespace quantsim::affine {

namespace {
int64_t ceil_div2(int64_t n) { return n / 2 + (n % 2 != 0 && n > 0 ? 1 : 0); }
}  // namespace

Grid Grid::from_num_steps(int64_t num_steps, bool is_signed) {
  TORCH_CHECK_VALUE(num_steps >= 1, "`num_steps` must be >= 1, got ", num_steps);
  if (is_signed) return Grid{-ceil_div2(num_steps), num_steps / 2};
  return Grid{0, num_steps};
}

Grid Grid::from_bitwidth(int64_t bitwidth, bool is_signed) {
  TORCH_CHECK_VALUE(bitwidth >= 1 && bitwidth <= 63, "`bitwidth` must be in [1, 63], got ",
                    bitwidth);
  const int64_t n = static_cast<int64_t>((uint64_t{1} << bitwidth) - 1);
  return from_num_steps(n, is_signed);
}

Grid Grid::from_range(int64_t qmin, int64_t qmax) {
  TORCH_CHECK_VALUE(qmin < qmax, "`qmin` must be less than `qmax`, got qmin=", qmin,
                    ", qmax=", qmax);
  return Grid{qmin, qmax};
}

bool Grid::has_bitwidth() const {
  if (!(qmin + qmax == -1 || qmin == 0)) return false;
  const uint64_t size = static_cast<uint64_t>(qmax - qmin) + 1;
  return size >= 2 && (size & (size - 1)) == 0;
}

int64_t Grid::bitwidth() const {
  TORCH_CHECK(has_bitwidth(), "bitwidth is undefined for the non-standard grid [", qmin, ", ", qmax,
              "]: the grid must be [0, 2^B-1] or [-2^(B-1), 2^(B-1)-1]");
  const uint64_t size = static_cast<uint64_t>(qmax - qmin) + 1;
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
  TORCH_CHECK(qmin + qmax == -1 || qmin == 0, "cannot set the bitwidth of the grid [", qmin, ", ",
              qmax, "]: it is neither signed [-2^(B-1), 2^(B-1)-1] nor unsigned [0, n]");
  return from_bitwidth(bitwidth, /*is_signed=*/qmin < 0);
}

Grid Grid::with_signed(bool want_signed) const {
  const bool now_signed = qmin < 0;
  if (want_signed == now_signed) return *this;
  if (!want_signed) return Grid{0, qmax - qmin};
  const int64_t sum = qmax + qmin;
  const int64_t centroid = sum / 2 + (sum % 2 != 0 && sum > 0 ? 1 : 0);
  return Grid{qmin - centroid, qmax - centroid};
}

}  // namespace quantsim::affine
