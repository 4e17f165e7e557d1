#include "kernels/iteration.h"

#include <algorithm>
#include <numeric>

namespace quantsim::kernels {

BroadcastLayout::BroadcastLayout(const at::Tensor& x, at::IntArrayRef param_sizes) {
  const int64_t ndim = x.dim();
  const int64_t pdim = static_cast<int64_t>(param_sizes.size());
  TORCH_INTERNAL_ASSERT(pdim <= ndim, "parameter rank exceeds input rank");
  numel_ = x.numel();

  // Contiguous strides of the parameter, right-aligned to x; 0 where it is broadcast.
  c10::SmallVector<int64_t, 8> pstride(ndim, 0);
  int64_t running = 1;
  for (int64_t i = pdim - 1; i >= 0; --i) {
    const int64_t d = ndim - pdim + i;
    TORCH_INTERNAL_ASSERT(param_sizes[i] == 1 || param_sizes[i] == x.size(d),
                          "parameter not expandable to input");
    pstride[d] = param_sizes[i] == 1 ? 0 : running;
    running *= param_sizes[i];
  }

  // Dimensions in memory order (largest stride first); size-1 dims carry no information.
  c10::SmallVector<int64_t, 8> order;
  for (int64_t d = 0; d < ndim; ++d) {
    if (x.size(d) != 1) order.push_back(d);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return x.stride(a) > x.stride(b); });

  // Coalesce neighbours whose parameter walk is also linear across the pair.
  for (int64_t d : order) {
    const int64_t size = x.size(d);
    const int64_t ps = pstride[d];
    if (!sizes_.empty() && param_strides_.back() == ps * size) {
      sizes_.back() *= size;
      param_strides_.back() = ps;
      continue;
    }
    sizes_.push_back(size);
    param_strides_.push_back(ps);
  }
  if (sizes_.empty()) {  // scalar or all-ones shape
    sizes_.push_back(1);
    param_strides_.push_back(0);
  }
}

int64_t BroadcastLayout::independent_slice() const {
  if (param_strides_[0] == 0 || numel_ == 0) return 0;
  int64_t inner_span = 0;  // largest parameter offset reached inside one outer index
  for (size_t d = 1; d < sizes_.size(); ++d) inner_span += (sizes_[d] - 1) * param_strides_[d];
  if (inner_span >= param_strides_[0]) return 0;
  return numel_ / sizes_[0];
}

}  // namespace quantsim::kernels
