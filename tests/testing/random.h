#pragma once

// Random test inputs shared by the property tests: layouts (shape, parameter shape, memory
// order) and data with +-inf/NaN mixed in.

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace quantsim::testing {

/// A tensor shape, a parameter shape expandable to it (right-aligned, each dim 1 or equal,
/// possibly of lower rank) and a memory order (a permutation of the dims, outermost first).
struct RandomLayout {
  std::vector<int64_t> shape, params, order;
};

/// Rank 1 to 4, each dim in [1, max_dim].
inline RandomLayout random_layout(std::mt19937& rng, int64_t max_dim) {
  RandomLayout l;
  const int64_t rank = 1 + rng() % 4;
  for (int64_t d = 0; d < rank; ++d) {
    l.shape.push_back(1 + rng() % max_dim);
    l.params.push_back(rng() % 2 ? l.shape.back() : 1);
    l.order.push_back(d);
  }
  l.params.erase(l.params.begin(), l.params.begin() + rng() % (rank + 1));  // lower-rank params
  std::shuffle(l.order.begin(), l.order.end(), rng);
  return l;
}

/// x's values stored in memory order `order` (dense, contiguous only for the identity order).
inline at::Tensor with_memory_order(const at::Tensor& x, const std::vector<int64_t>& order) {
  std::vector<int64_t> inverse(order.size());
  for (size_t d = 0; d < order.size(); ++d) inverse[order[d]] = static_cast<int64_t>(d);
  return x.permute(order).contiguous().permute(inverse);
}

/// randn(sizes) * 3 + 1 (torch's generator) with a share of +inf, -inf and NaN, a third each.
inline at::Tensor noisy_randn(at::IntArrayRef sizes, double special_share) {
  auto x = at::randn(sizes) * 3 + 1;
  const auto u = at::rand(sizes);
  const double third = special_share / 3;
  x.masked_fill_(u < third, std::numeric_limits<float>::infinity());
  x.masked_fill_((u >= third) & (u < 2 * third), -std::numeric_limits<float>::infinity());
  x.masked_fill_((u >= 2 * third) & (u < special_share), std::nan(""));
  return x;
}

}  // namespace quantsim::testing
