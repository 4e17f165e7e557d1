// Reference implementations of the statistics kernels: torch ops, following
// docs/quantization.md §8.2-§8.3.

#include "kernels/statistics.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace quantsim::kernels {
namespace {

// x permuted so that the parameter dims come first, viewed as (P, slice): row p = parameter p.
at::Tensor rows_by_parameter(const at::Tensor& x, at::IntArrayRef param_sizes) {
  check_statistics_shape(x, param_sizes);
  const int64_t n = x.dim(), pdim = static_cast<int64_t>(param_sizes.size());
  std::vector<int64_t> kept, reduced;
  for (int64_t d = 0; d < n; ++d) {
    const int64_t i = d - (n - pdim);
    (i >= 0 && param_sizes[i] != 1 ? kept : reduced).push_back(d);
  }
  std::vector<int64_t> order(kept);
  order.insert(order.end(), reduced.begin(), reduced.end());
  int64_t p = 1;
  for (int64_t d : kept) p *= x.size(d);
  return x.permute(order).reshape({p, -1});
}

// trunc_int32((v - origin) / width), capped at num_bins - 1 as the reference does; the floor
// at 0 only guards the index_add against garbage rows (NaN converts to INT_MIN).
at::Tensor bin_index(const at::Tensor& v, const at::Tensor& origin, const at::Tensor& width,
                     int64_t num_bins) {
  return ((v - origin) / width).to(at::kInt).to(at::kLong).clamp(0, num_bins - 1);
}

}  // namespace

void check_statistics_shape(const at::Tensor& x, at::IntArrayRef param_sizes) {
  TORCH_CHECK(at::is_expandable_to(param_sizes, x.sizes()), "statistics of shape ", param_sizes,
              " cannot be collected from an input of shape ", x.sizes(),
              " (the shape must be expandable to the input)");
}

MinMaxStats min_max_reference(const at::Tensor& x, at::IntArrayRef param_sizes) {
  const auto rows = rows_by_parameter(x, param_sizes);
  const double inf = std::numeric_limits<double>::infinity();
  const auto nan = at::isnan(rows);
  const auto finite = at::isfinite(rows);
  MinMaxStats s;
  s.min = at::where(nan, at::full({}, inf, rows.options()), rows).amin(1).reshape(param_sizes);
  s.max = at::where(nan, at::full({}, -inf, rows.options()), rows).amax(1).reshape(param_sizes);
  s.finite_min =
      at::where(finite, rows, at::full({}, inf, rows.options())).amin(1).reshape(param_sizes);
  s.finite_max =
      at::where(finite, rows, at::full({}, -inf, rows.options())).amax(1).reshape(param_sizes);
  s.nan_count = nan.sum().item<int64_t>();
  return s;
}

at::Tensor histogram_reference(const at::Tensor& x, at::IntArrayRef param_sizes,
                               const at::Tensor& lo, const at::Tensor& hi, int64_t num_bins) {
  TORCH_CHECK(num_bins >= 1, "`num_bins` must be >= 1, got ", num_bins);
  auto rows = rows_by_parameter(x, param_sizes);
  if (rows.scalar_type() == at::kHalf || rows.scalar_type() == at::kBFloat16) {
    rows = rows.to(at::kFloat);
  }
  const auto l = lo.reshape({-1, 1}).to(rows.scalar_type());
  const auto h = hi.reshape({-1, 1}).to(rows.scalar_type());
  // bin = trunc((v - lo) / (hi - lo) * B), right edge folded into the last bin; below lo: bin 0,
  // above hi: last bin; NaN: no bin (weight 0).
  auto bin = ((rows - l) / (h - l) * static_cast<double>(num_bins)).trunc();
  bin = at::where(rows < l, at::zeros_like(bin), bin);
  bin = at::where(rows > h, at::full_like(bin, num_bins - 1), bin);
  bin = at::clamp_max(bin, num_bins - 1);
  const auto is_nan = at::isnan(rows);
  const auto index = at::where(is_nan, at::zeros_like(bin), bin).to(at::kLong);
  const auto weight = (~is_nan).to(at::kDouble);
  return at::zeros({rows.size(0), num_bins}, at::kDouble).scatter_add_(1, index, weight);
}

at::Tensor merge_histograms_reference(const at::Tensor& add, const at::Tensor& hist,
                                      const at::Tensor& cur_min, const at::Tensor& cur_max,
                                      const at::Tensor& umin, const at::Tensor& umax) {
  const int64_t H = hist.size(0), B = hist.size(1);
  const auto grown = (umin != cur_min) | (umax != cur_max);
  const auto cmin = cur_min.reshape({-1, 1}), cmax = cur_max.reshape({-1, 1});
  const auto dmin = umin.unsqueeze(1);
  const auto dest_width = (umax - umin).unsqueeze(1) / B;
  const auto src_width = (cmax - cmin) / B;
  const auto src_start = cmin + src_width * at::arange(B, cmin.options()).unsqueeze(0);  // (H,B)
  const auto dest_bin = bin_index(src_start, dmin, dest_width, B);
  const auto dest_end = dmin + dest_width * (dest_bin + 1).to(cmin.scalar_type());
  // The reference's counts are float32: the split is rounded in that precision.
  const auto count_type = at::promote_types(cmin.scalar_type(), at::kFloat);
  const auto counts = hist.to(count_type);
  const auto split = at::round(((dest_end - src_start) / src_width).to(count_type) * counts);
  auto moved = at::minimum(split, counts);
  // A degenerate source range (all its finite values equal) has zero-width bins; the reference
  // divides 0 by 0 there and fills the merged histogram with NaN. Each source bin moves whole to
  // the destination bin of that value instead (docs/differences.md).
  moved = at::where((src_width == 0).expand_as(moved), counts, moved);
  const auto rest = counts - moved;  // 0 where the bin was not split
  const auto other_bin = bin_index(src_start + dest_width, dmin, dest_width, B);

  const auto row_base = at::arange(H, dest_bin.options()).unsqueeze(1) * B;
  auto updates = at::zeros({H * B}, hist.options());
  updates.index_add_(0, (row_base + dest_bin).reshape({-1}), moved.to(at::kDouble).reshape({-1}));
  updates.index_add_(0, (row_base + other_bin).reshape({-1}), rest.to(at::kDouble).reshape({-1}));
  return add + at::where(grown.unsqueeze(1), updates.view({H, B}), hist);
}

at::Tensor sqnr_noise_reference(const at::Tensor& hist, const at::Tensor& edges,
                                const at::Tensor& deltas, const at::Tensor& offsets,
                                int64_t num_steps, double gamma) {
  // One (histograms x candidates x bins) float32 block of 16 MiB at most; the blocking does not
  // change any value (each noise is one sum over the bins).
  constexpr int64_t kMaxBlockElements = int64_t{1} << 22;
  const int64_t h = hist.size(0), bins = hist.size(1), count = deltas.size(1);
  const auto width = edges.select(1, 1) - edges.select(1, 0);
  const auto steps = width.unsqueeze(1) * at::arange(0, bins, edges.options()).unsqueeze(0);
  const auto mid = ((edges.select(1, 0) + width / 2).unsqueeze(1) + steps).unsqueeze(1);  // h,1,B
  const auto weights = hist.unsqueeze(1);
  const int64_t block = std::max<int64_t>(1, kMaxBlockElements / std::max<int64_t>(1, h * bins));
  std::vector<at::Tensor> parts;
  for (int64_t begin = 0; begin < count; begin += block) {
    const int64_t end = std::min(count, begin + block);
    const auto delta = deltas.slice(1, begin, end).unsqueeze(2);  // (h, c, 1)
    const auto offset =
        offsets.size(1) == 1 ? offsets.unsqueeze(2) : offsets.slice(1, begin, end).unsqueeze(2);
    auto q = mid.div(delta).sub_(offset).round_();  // (h, c, B)
    at::Tensor clipped;
    if (gamma != 1.0) clipped = (q < 0).logical_or_(q > num_steps);
    auto error = q.clamp_(0, num_steps).add_(offset).mul_(delta).sub_(mid).pow_(2).mul_(weights);
    if (gamma != 1.0) {
      error.mul_(at::where(clipped, at::scalar_tensor(gamma, error.options()),
                           at::scalar_tensor(1.0, error.options())));
    }
    parts.push_back(error.sum(-1));
  }
  return at::cat(parts, 1).to(at::kDouble);
}

}  // namespace quantsim::kernels
