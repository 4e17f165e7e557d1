// Fused statistics kernels. Until the single-pass loops land they delegate to the reference.

#include "kernels/statistics.h"

namespace quantsim::kernels {

MinMaxStats min_max_fused(const at::Tensor& x, at::IntArrayRef param_sizes) {
  return min_max_reference(x, param_sizes);
}

at::Tensor histogram_fused(const at::Tensor& x, at::IntArrayRef param_sizes, const at::Tensor& lo,
                           const at::Tensor& hi, int64_t num_bins) {
  return histogram_reference(x, param_sizes, lo, hi, num_bins);
}

}  // namespace quantsim::kernels
