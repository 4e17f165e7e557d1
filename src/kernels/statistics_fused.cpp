// Fused statistics kernels: one pass over memory, multi-threaded with per-task partial results
// folded in a fixed order. Normative reference: kernels/statistics_reference.cpp. Compiled with
// the same flags as the affine kernels (-fno-trapping-math lets GCC if-convert the compares).

#include "kernels/iteration.h"
#include "kernels/statistics.h"
#include "kernels/vectorize.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace quantsim::kernels {
namespace {

// Accumulators of one parameter: min/max over non-NaN values and over finite values.
template <typename T>
struct Extremes {
  T min = std::numeric_limits<T>::infinity();
  T max = -std::numeric_limits<T>::infinity();
  T finite_min = std::numeric_limits<T>::infinity();
  T finite_max = -std::numeric_limits<T>::infinity();

  // `a < b ? a : b` keeps b when a is NaN: NaN never enters. The finite extremes are tracked
  // only when asked (kFinite): without infinities in the data they equal min and max.
  template <bool kFinite>
  void add(T v) {
    min = v < min ? v : min;
    max = v > max ? v : max;
    if (!kFinite) return;
    const bool finite = v >= -std::numeric_limits<T>::max() && v <= std::numeric_limits<T>::max();
    finite_min = finite && v < finite_min ? v : finite_min;
    finite_max = finite && v > finite_max ? v : finite_max;
  }
  void merge(const Extremes& o) { add_extremes(o.min, o.max, o.finite_min, o.finite_max); }
  void add_extremes(T mn, T mx, T fmn, T fmx) {
    min = mn < min ? mn : min;
    max = mx > max ? mx : max;
    finite_min = fmn < finite_min ? fmn : finite_min;
    finite_max = fmx > finite_max ? fmx : finite_max;
  }
};

// Extremes of a contiguous run, with the NaN count. The float32 version keeps eight independent
// lanes in vector registers (the compiler does not vectorise a min reduction by itself, because
// of NaN and signed-zero rules that the lanes respect).
template <bool kFinite, typename T>
__attribute__((always_inline)) inline void reduce_run(const T* x, int64_t n, Extremes<T>& e,
                                                      int64_t& nans) {
  for (int64_t i = 0; i < n; ++i) {
    e.template add<kFinite>(x[i]);
    nans += x[i] != x[i];
  }
}

using f32x8 = float __attribute__((vector_size(32)));
using i32x8 = int32_t __attribute__((vector_size(32)));

template <bool kFinite>
__attribute__((always_inline)) inline void reduce_run(const float* x, int64_t n, Extremes<float>& e,
                                                      int64_t& nans) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kMax = std::numeric_limits<float>::max();
  f32x8 mn = kInf - f32x8{}, mx = -kInf - f32x8{}, fmn = mn, fmx = mx;
  const f32x8 pos_inf = mn, neg_inf = mx;
  i32x8 nan_lanes = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f32x8 v;
    std::memcpy(&v, x + i, sizeof(v));
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
    if (kFinite) {
      const i32x8 finite = (v >= -kMax) & (v <= kMax);
      const f32x8 low = finite ? v : pos_inf;
      const f32x8 high = finite ? v : neg_inf;
      fmn = low < fmn ? low : fmn;
      fmx = high > fmx ? high : fmx;
    }
    nan_lanes -= (v != v);  // -1 per NaN
  }
  for (int l = 0; l < 8; ++l) {
    e.add_extremes(mn[l], mx[l], fmn[l], fmx[l]);
    nans += nan_lanes[l];
  }
  for (; i < n; ++i) {
    e.template add<kFinite>(x[i]);
    nans += x[i] != x[i];
  }
}

template <typename T, bool kFinite>
QS_VECTORIZE void min_max_range(const BroadcastLayout& layout, const T* x, Extremes<T>* acc,
                                int64_t* nans, int64_t begin, int64_t end) {
  int64_t nan_count = 0;
  for (RowCursor row(layout, begin, end); !row.done(); row.next()) {
    const T* xr = x + row.offset();
    const int64_t len = row.length(), poff = row.param_offset(), ps = row.param_stride();
    if (ps == 0) {
      reduce_run<kFinite>(xr, len, acc[poff], nan_count);
    } else {
      for (int64_t i = 0; i < len; ++i) {
        acc[poff + i * ps].template add<kFinite>(xr[i]);
        nan_count += xr[i] != xr[i];
      }
    }
  }
  *nans += nan_count;
}

// Bin of a value on [lo, hi] with `bins` equal bins: trunc((v - lo) / (hi - lo) * bins) in the
// input's type, the right edge folded into the last bin; values below lo go to bin 0, above hi to
// the last bin (the end-bin rule of docs/quantization.md §8.3). This is torch.histc's CPU
// arithmetic as measured on torch 1.13 (it agrees on all random data and on 398 of 400 sweeps of
// values within one ulp of a bin edge; see docs/differences.md).
template <typename T>
inline int64_t bin_of(T v, T lo, T hi, int64_t bins) {
  if (v < lo) return 0;
  if (v > hi) return bins - 1;
  const auto pos = static_cast<int64_t>((v - lo) / (hi - lo) * static_cast<T>(bins));
  return pos >= bins ? bins - 1 : pos;
}

// bin_of for a whole run with one range, written with selects only so that it vectorises:
// the same arithmetic, then the end-bin rules; NaN gets the extra index `bins`.
template <typename T>
__attribute__((always_inline)) inline int32_t run_bin(T v, T lo, T hi, T width, T fbins) {
  T p = (v - lo) / width * fbins;
  p = p >= fbins ? fbins - T(1) : p;  // the right edge belongs to the last bin
  p = v < lo ? T(0) : p;
  p = v > hi ? fbins - T(1) : p;
  p = v != v ? fbins : p;
  return static_cast<int32_t>(p);
}

// Requests the cache lines of [p, p + bytes) ahead of use. The binning loops read x in tiles
// separated by the scatter of their counts, which issues no loads of x: without this the hardware
// prefetcher stops at each tile's end and the next tile starts with misses to memory (the index
// loop then waits on its loads half of the time). Address arithmetic in integers: the lines past
// the end of x may be requested too, which never faults.
__attribute__((always_inline)) inline void prefetch_line(const void* base, int64_t byte_offset) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(base) +
                                                   static_cast<uintptr_t>(byte_offset)));
}

// Counts of the elements [begin, end) of x into counts[p * bins + bin] (bin_of on [lo[p], hi[p]]).
// `active` (null: all): the parameters to count; the others' elements are skipped. kExtremes:
// also the extremes of every element (active or not) into acc[p] and the NaN count into *nans,
// as min_max_range<T, true>, in the same pass over memory.
template <typename T, bool kExtremes>
QS_VECTORIZE void histogram_range(const BroadcastLayout& layout, const T* x, const T* lo,
                                  const T* hi, const uint8_t* active, int64_t bins, int64_t* counts,
                                  Extremes<T>* acc, int64_t* nans, int64_t begin, int64_t end) {
  constexpr int64_t kTile = 1024;
  // Interleaved sub-histograms: a bin hit twice in a row does not serialise on one counter
  // (store-to-load forwarding), which costs ~3x per element on a single counter.
  constexpr int kSubs = 4;
  constexpr int64_t kLine = 64;  // bytes
  alignas(64) int32_t index[kTile];
  std::vector<uint32_t> sub;
  int64_t nan_count = 0;
  for (RowCursor row(layout, begin, end); !row.done(); row.next()) {
    const T* xr = x + row.offset();
    const int64_t len = row.length(), poff = row.param_offset(), ps = row.param_stride();
    if (ps != 0) {
      for (int64_t i = 0; i < len; ++i) {
        const T v = xr[i];
        const int64_t p = poff + i * ps;
        if (kExtremes) {
          acc[p].template add<true>(v);
          nan_count += v != v;
        }
        if (v != v || (active != nullptr && active[p] == 0)) continue;
        ++counts[p * bins + bin_of(v, lo[p], hi[p], bins)];
      }
      continue;
    }
    if (active != nullptr && active[poff] == 0) {
      if (kExtremes) reduce_run<true>(xr, len, acc[poff], nan_count);
      continue;
    }
    const T l = lo[poff], h = hi[poff], width = h - l, fbins = static_cast<T>(bins);
    int64_t* row_counts = counts + poff * bins;
    const int64_t stride = bins + 1;  // slot `bins` collects NaN
    // Sub-histograms pay off from a few elements per bin (zeroing and folding them costs
    // 2 x kSubs x bins); uint32 counts are folded before they could wrap.
    const bool use_subs = len >= kSubs * bins;
    if (use_subs && sub.empty()) sub.assign(kSubs * stride, 0);
    auto fold = [&] {
      for (int k = 0; k < kSubs; ++k) {
        for (int64_t b = 0; b < bins; ++b) row_counts[b] += sub[k * stride + b];
      }
      std::fill(sub.begin(), sub.end(), 0u);
    };
    for (int64_t t0 = 0; t0 < len; t0 += kTile) {
      if (use_subs && t0 > 0 && (t0 % (int64_t{1} << 30)) == 0) fold();
      const int64_t n = std::min(kTile, len - t0);
      const T* xt = xr + t0;
      if (kExtremes) reduce_run<true>(xt, n, acc[poff], nan_count);
      for (int64_t i = 0; i < n; ++i) index[i] = run_bin(xt[i], l, h, width, fbins);
      // The next tile (or the next row's first tile), one line per line's worth counted.
      constexpr int64_t kPerLine = kLine / static_cast<int64_t>(sizeof(T));
      const int64_t ahead = kTile * static_cast<int64_t>(sizeof(T));
      if (use_subs) {
        static_assert(kSubs == 4, "the unrolled loop below assumes four sub-histograms");
        uint32_t* s0 = sub.data();
        uint32_t *s1 = s0 + stride, *s2 = s1 + stride, *s3 = s2 + stride;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
          if (i % kPerLine == 0) prefetch_line(xt, ahead + i * static_cast<int64_t>(sizeof(T)));
          ++s0[index[i]];
          ++s1[index[i + 1]];
          ++s2[index[i + 2]];
          ++s3[index[i + 3]];
        }
        for (; i < n; ++i) ++s0[index[i]];
      } else {
        for (int64_t i = 0; i < n; ++i) {
          if (i % kPerLine == 0) prefetch_line(xt, ahead + i * static_cast<int64_t>(sizeof(T)));
          if (index[i] < bins) ++row_counts[index[i]];
        }
      }
    }
    if (use_subs) fold();
  }
  if (kExtremes) *nans += nan_count;
}

// ---- Histogram merge (docs/quantization.md eq. (S4)) --------------------------------------------

// trunc_int32((v - origin) / width) as torch converts (INT_MIN when out of range or NaN), then
// capped to [0, bins - 1] as the reference's bin_index.
template <typename T>
__attribute__((always_inline)) inline int64_t merge_bin(T v, T origin, T width, int64_t bins) {
  const T q = (v - origin) / width;
  const int64_t i = q >= T(-2147483648.0) && q < T(2147483648.0)
                        ? static_cast<int64_t>(static_cast<int32_t>(q))
                        : std::numeric_limits<int32_t>::min();
  return i < 0 ? 0 : i > bins - 1 ? bins - 1 : i;
}

// Rows [begin, end) of merge_histograms_fused; T is the ranges' dtype and the count type.
template <typename T>
QS_VECTORIZE void merge_rows(double* add, const double* hist, const T* cmin, const T* cmax,
                             const T* umin, const T* umax, int64_t bins, int64_t begin,
                             int64_t end) {
  for (int64_t h = begin; h < end; ++h) {
    double* out = add + h * bins;
    const double* in = hist + h * bins;
    if (umin[h] == cmin[h] && umax[h] == cmax[h]) {
      for (int64_t i = 0; i < bins; ++i) out[i] += in[i];
      continue;
    }
    const T origin = umin[h], fbins = static_cast<T>(bins);
    const T dest_width = (umax[h] - umin[h]) / fbins;
    const T src_width = (cmax[h] - cmin[h]) / fbins;
    for (int64_t i = 0; i < bins; ++i) {
      const T start = cmin[h] + src_width * static_cast<T>(i);
      const int64_t dest = merge_bin(start, origin, dest_width, bins);
      const T dest_end = origin + dest_width * static_cast<T>(dest + 1);
      const T count = static_cast<T>(in[i]);
      T moved = count;  // a zero-width source range moves each bin whole
      if (src_width != 0) {
        const T split = std::nearbyint((dest_end - start) / src_width * count);
        moved = split < count ? split : count;
      }
      out[dest] += static_cast<double>(moved);
      const T rest = count - moved;
      out[merge_bin(static_cast<T>(start + dest_width), origin, dest_width, bins)] +=
          static_cast<double>(rest);
    }
  }
}

// ---- SQNR candidate noise (docs/quantization.md eq. (S7)) ---------------------------------------

constexpr float kSqnrInf = std::numeric_limits<float>::infinity();
// 2^24: float32 holds every integer level below it, so the per-level walk can step by 1.
constexpr float kSqnrExactLevels = 16777216.0f;

// The reference's float32 level of a bin mid-point: round_half_even(mid / delta - offset).
__attribute__((always_inline)) inline float sqnr_level(float mid, float delta, float offset) {
  return std::nearbyint(mid / delta - offset);
}

// One histogram prepared for closed-form segment errors: its float32 mid-points (as the
// reference computes them) and prefix sums over the bins, in float64, of the counts, of
// counts x (mid - center) and of counts x (mid - center)^2. Centering on the weighted mean keeps
// the cancellation in H a^2 - 2 a S1 + S2 small.
struct SqnrHistogram {
  std::vector<float> mid, weight;            // per bin: float32 mid-point and count
  std::vector<double> count, first, second;  // B + 1 prefix sums each
  double base = 0, width = 0, center = 0;
  int64_t bins = 0;

  void prepare(const float* hist, const float* edges, int64_t num_bins) {
    bins = num_bins;
    mid.resize(bins);
    weight.assign(hist, hist + bins);
    count.assign(bins + 1, 0.0);
    first.assign(bins + 1, 0.0);
    second.assign(bins + 1, 0.0);
    const float w = edges[1] - edges[0];
    const float b = edges[0] + w / 2;
    double total = 0, moment = 0;
    for (int64_t j = 0; j < bins; ++j) {
      mid[j] = b + w * static_cast<float>(j);
      total += hist[j];
      moment += static_cast<double>(hist[j]) * mid[j];
    }
    base = b;
    width = w;
    center = total > 0 ? moment / total : 0.0;
    for (int64_t j = 0; j < bins; ++j) {
      const double h = hist[j], c = static_cast<double>(mid[j]) - center;
      count[j + 1] = count[j] + h;
      first[j + 1] = first[j] + h * c;
      second[j + 1] = second[j] + h * c * c;
    }
  }

  // Sum over bins [b, e) of count * (a - mid)^2, a relative to the center.
  __attribute__((always_inline)) double segment(double a, int64_t b, int64_t e) const {
    const double err =
        a * a * (count[e] - count[b]) - 2 * a * (first[e] - first[b]) + (second[e] - second[b]);
    return err > 0 ? err : 0.0;  // cancellation must not make a noise negative
  }

  // Estimated first bin in [lo, hi] whose mid-point reaches position e (in bins from the first
  // mid-point): ceil(e), clamped.
  __attribute__((always_inline)) static int64_t clamp_ceil(double e, int64_t lo, int64_t hi) {
    const double c = std::ceil(e);
    return !(c > static_cast<double>(lo))   ? lo
           : !(c < static_cast<double>(hi)) ? hi
                                            : static_cast<int64_t>(c);
  }
  // Position of the half-way point below level k: ((k - 0.5 + o) * delta - base) / width.
  __attribute__((always_inline)) double position(double k, double delta, double offset) const {
    return ((k - 0.5 + offset) * delta - base) / width;
  }

  // The exact first bin in [lo, hi] whose float32 level is >= k (hi if none): the estimate,
  // corrected by walking (levels are non-decreasing in the bin index).
  __attribute__((always_inline)) int64_t boundary(float k, float delta, float offset, int64_t lo,
                                                  int64_t hi) const {
    int64_t j = clamp_ceil(position(k, delta, offset), lo, hi);
    while (j > lo && sqnr_level(mid[j - 1], delta, offset) >= k) --j;
    while (j < hi && sqnr_level(mid[j], delta, offset) < k) ++j;
    return j;
  }

  __attribute__((always_inline)) double noise(float delta, float offset, int64_t num_steps,
                                              double gamma) const {
    // n as the reference compares it: float32 (2^32 - 1 rounds to 2^32).
    const float n = static_cast<float>(num_steps);
    // The reference's dequantized level (clamp(q) + o) * delta, in float32.
    auto level_value = [&](float q) { return static_cast<double>((q + offset) * delta) - center; };
    // Clipped bins (q < 0, q > n), exactly as the reference classifies them. "q > n" is
    // "q >= the next float32 after n": n + 1 would round back to n from 2^24 on.
    const int64_t lo = boundary(0.0f, delta, offset, 0, bins);
    const int64_t hi = boundary(std::nextafter(n, kSqnrInf), delta, offset, lo, bins);
    double clipped = 0;
    if (lo > 0) clipped += segment(level_value(0.0f), 0, lo);
    if (hi < bins) clipped += segment(level_value(n), hi, bins);
    if (lo == hi) return gamma * clipped;
    const float q_lo = sqnr_level(mid[lo], delta, offset);
    const float q_hi = sqnr_level(mid[hi - 1], delta, offset);
    // More levels than bins (wide grids: 16 bits and up with the default 2048 bins), or levels
    // beyond float32's exact integers: per bin, O(bins), so that the cost never grows with the
    // bitwidth (docs/quantization.md §8.5).
    if (q_hi - q_lo > static_cast<float>(hi - lo) || !(q_hi < kSqnrExactLevels)) {
      return gamma * clipped + interior_per_bin(delta, offset, lo, hi);
    }
    return gamma * clipped + interior_per_level(delta, offset, lo, hi, q_lo, q_hi);
  }

  // Interior noise of bins [lo, hi) bin by bin: sum_j count_j ((q_j + o) delta - mid_j)^2 with
  // the reference's float32 level q_j and dequantized value, the difference and the sum in
  // float64 (eight partial sums in a fixed order: deterministic, and vectorisable).
  __attribute__((always_inline)) double interior_per_bin(float delta, float offset, int64_t lo,
                                                         int64_t hi) const {
    constexpr int kLanes = 8;
    double partial[kLanes] = {};
    const float* m = mid.data();
    const float* h = weight.data();
    int64_t j = lo;
    for (; j + kLanes <= hi; j += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const float value = (sqnr_level(m[j + l], delta, offset) + offset) * delta;
        const double d = static_cast<double>(value) - static_cast<double>(m[j + l]);
        partial[l] += static_cast<double>(h[j + l]) * (d * d);
      }
    }
    for (int l = 0; j < hi; ++j, ++l) {
      const float value = (sqnr_level(m[j], delta, offset) + offset) * delta;
      const double d = static_cast<double>(value) - static_cast<double>(m[j]);
      partial[l] += static_cast<double>(h[j]) * (d * d);
    }
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
           ((partial[4] + partial[5]) + (partial[6] + partial[7]));
  }

  // Interior noise of bins [lo, hi) level by level, O(levels): the closed-form segments.
  __attribute__((always_inline)) double interior_per_level(float delta, float offset, int64_t lo,
                                                           int64_t hi, float q_lo,
                                                           float q_hi) const {
    auto level_value = [&](float q) { return static_cast<double>((q + offset) * delta) - center; };
    // Interior bins, one segment per level k in [q_lo, q_hi]. With F(a, j) = a^2 H[j] - 2 a S1[j]
    // the sum of the segments telescopes to F(a_hi, hi) - F(a_lo, lo) + (S2[hi] - S2[lo]) plus,
    // at each inner boundary b_k, F(a_{k-1}, b_k) - F(a_k, b_k).
    const double a_lo = level_value(q_lo), a_hi = level_value(q_hi);
    double interior = a_hi * a_hi * count[hi] - 2 * a_hi * first[hi] -
                      (a_lo * a_lo * count[lo] - 2 * a_lo * first[lo]) + (second[hi] - second[lo]);
    // The boundary positions are linear in k: no division in the loop.
    const int64_t levels = static_cast<int64_t>(q_hi - q_lo);
    const double start = position(q_lo, delta, offset), step = delta / width;
    // Four partial sums: no loop-carried addition chain (a fixed order, so still deterministic).
    auto term = [&](int64_t i) {
      const float k = q_lo + static_cast<float>(i);
      const int64_t b = clamp_ceil(start + step * static_cast<double>(i), lo, hi);
      const double a_prev = level_value(k - 1.0f), a = level_value(k);
      return (a_prev * a_prev - a * a) * count[b] - 2 * (a_prev - a) * first[b];
    };
    double partial[4] = {0, 0, 0, 0};
    int64_t i = 1;
    for (; i + 3 <= levels; i += 4) {
      for (int l = 0; l < 4; ++l) partial[l] += term(i + l);
    }
    for (; i <= levels; ++i) partial[0] += term(i);
    interior += (partial[0] + partial[1]) + (partial[2] + partial[3]);
    return interior > 0 ? interior : 0.0;
  }
};

// Noise of `count` candidates of one prepared histogram (target-cloned: ceil and nearbyint are
// single instructions with SSE4.1).
QS_VECTORIZE void sqnr_row_noise(const SqnrHistogram& row, const float* deltas,
                                 const float* offsets, bool shared, int64_t count,
                                 int64_t num_steps, double gamma, double* out) {
  for (int64_t c = 0; c < count; ++c) {
    out[c] = row.noise(deltas[c], shared ? offsets[0] : offsets[c], num_steps, gamma);
  }
}

at::Tensor dense(const at::Tensor& x) {
  return x.is_non_overlapping_and_dense() ? x : x.contiguous();
}

// Reduced-precision inputs are widened once: their min/max and bins are the same in float32.
at::Tensor computable(const at::Tensor& x) {
  const auto t = x.scalar_type();
  return t == at::kHalf || t == at::kBFloat16 ? x.to(at::kFloat) : dense(x);
}

}  // namespace

MinMaxStats min_max_fused(const at::Tensor& input, at::IntArrayRef param_sizes) {
  check_statistics_shape(input, param_sizes);
  const auto x = computable(input);
  const BroadcastLayout layout(x, param_sizes);
  int64_t num_params = 1;
  for (int64_t s : param_sizes) num_params *= s;
  MinMaxStats out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "min_max_fused", [&] {
    using T = scalar_t;
    const ReductionPlan plan = plan_reduction(layout, num_params);
    std::vector<Extremes<T>> acc;
    std::vector<int64_t> nans;
    const T* xp = x.data_ptr<T>();
    auto run = [&](auto finite) {
      acc.assign(plan.rows * num_params, Extremes<T>{});
      nans.assign(plan.rows, 0);
      if (layout.numel() == 0) return;
      run_reduction(layout, plan, [&](int64_t begin, int64_t end, int64_t row) {
        int64_t local = 0;
        min_max_range<T, decltype(finite)::value>(layout, xp, acc.data() + row * num_params, &local,
                                                  begin, end);
        // Shared-row plans run several tasks on row 0: add their counts atomically.
        __atomic_fetch_add(&nans[row], local, __ATOMIC_RELAXED);
      });
    };
    // One cheap pass for min, max and NaN; a second, tracking the finite extremes too, only when
    // the data holds an infinity (then min or max is one).
    run(std::false_type{});
    for (int64_t r = 1; r < plan.rows; ++r) {
      for (int64_t p = 0; p < num_params; ++p) acc[p].merge(acc[r * num_params + p]);
    }
    bool infinite = false;
    for (int64_t p = 0; p < num_params && !infinite; ++p) {
      infinite = std::isinf(static_cast<double>(acc[p].min)) && acc[p].min < 0;
      infinite = infinite || (std::isinf(static_cast<double>(acc[p].max)) && acc[p].max > 0);
    }
    if (infinite) {
      run(std::true_type{});
      for (int64_t r = 1; r < plan.rows; ++r) {
        for (int64_t p = 0; p < num_params; ++p) acc[p].merge(acc[r * num_params + p]);
      }
    } else {
      for (int64_t p = 0; p < num_params; ++p) {
        acc[p].finite_min = acc[p].min;
        acc[p].finite_max = acc[p].max;
      }
    }
    auto opts = at::TensorOptions().dtype(x.scalar_type());
    out.min = at::empty(param_sizes, opts);
    out.max = at::empty(param_sizes, opts);
    out.finite_min = at::empty(param_sizes, opts);
    out.finite_max = at::empty(param_sizes, opts);
    T* mn = out.min.data_ptr<T>();
    T* mx = out.max.data_ptr<T>();
    T* fmn = out.finite_min.data_ptr<T>();
    T* fmx = out.finite_max.data_ptr<T>();
    for (int64_t p = 0; p < num_params; ++p) {
      mn[p] = acc[p].min;
      mx[p] = acc[p].max;
      fmn[p] = acc[p].finite_min;
      fmx[p] = acc[p].finite_max;
    }
    for (int64_t n : nans) out.nan_count += n;
  });
  const auto dtype = input.scalar_type();
  if (out.min.scalar_type() != dtype) {
    out.min = out.min.to(dtype);
    out.max = out.max.to(dtype);
    out.finite_min = out.finite_min.to(dtype);
    out.finite_max = out.finite_max.to(dtype);
  }
  return out;
}

namespace {

// histogram_fused, with optionally the parameters to count (`active`, undefined: all) and the
// extremes of min_max_fused gathered in the same pass (`extremes` non-null).
at::Tensor histogram_impl(const at::Tensor& input, at::IntArrayRef param_sizes,
                          const at::Tensor& lo, const at::Tensor& hi, int64_t num_bins,
                          const at::Tensor& active_in, MinMaxStats* extremes) {
  TORCH_CHECK(num_bins >= 1, "`num_bins` must be >= 1, got ", num_bins);
  check_statistics_shape(input, param_sizes);
  const auto x = computable(input);
  const BroadcastLayout layout(x, param_sizes);
  int64_t num_params = 1;
  for (int64_t s : param_sizes) num_params *= s;
  TORCH_CHECK(lo.numel() == num_params && hi.numel() == num_params, "histogram: lo/hi must have ",
              num_params, " elements (shape ", param_sizes, "), got ", lo.numel(), " and ",
              hi.numel());
  at::Tensor active;
  if (active_in.defined()) {
    TORCH_CHECK(active_in.numel() == num_params, "histogram: `active` must have ", num_params,
                " elements, got ", active_in.numel());
    active = active_in.reshape({-1}).to(at::kByte).contiguous();
  }
  at::Tensor out = at::zeros({num_params, num_bins}, at::kDouble);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "histogram_fused", [&] {
    using T = scalar_t;
    const auto lo_t = lo.to(x.scalar_type()).contiguous(),
               hi_t = hi.to(x.scalar_type()).contiguous();
    const int64_t row_size = num_params * num_bins;
    const ReductionPlan plan = plan_reduction(layout, row_size);
    std::vector<int64_t> counts(plan.rows * row_size, 0);
    std::vector<Extremes<T>> acc(extremes != nullptr ? plan.rows * num_params : 0);
    std::vector<int64_t> nans(plan.rows, 0);
    const uint8_t* mask = active.defined() ? active.data_ptr<uint8_t>() : nullptr;
    if (layout.numel() > 0) {
      run_reduction(layout, plan, [&](int64_t begin, int64_t end, int64_t row) {
        if (extremes == nullptr) {
          histogram_range<T, false>(layout, x.data_ptr<T>(), lo_t.data_ptr<T>(), hi_t.data_ptr<T>(),
                                    mask, num_bins, counts.data() + row * row_size, nullptr,
                                    nullptr, begin, end);
          return;
        }
        int64_t local = 0;
        histogram_range<T, true>(layout, x.data_ptr<T>(), lo_t.data_ptr<T>(), hi_t.data_ptr<T>(),
                                 mask, num_bins, counts.data() + row * row_size,
                                 acc.data() + row * num_params, &local, begin, end);
        // Shared-row plans run several tasks on row 0: add their counts atomically.
        __atomic_fetch_add(&nans[row], local, __ATOMIC_RELAXED);
      });
    }
    double* o = out.data_ptr<double>();
    for (int64_t r = 0; r < plan.rows; ++r) {
      for (int64_t k = 0; k < row_size; ++k) o[k] += static_cast<double>(counts[r * row_size + k]);
    }
    if (extremes == nullptr) return;
    for (int64_t r = 1; r < plan.rows; ++r) {
      for (int64_t p = 0; p < num_params; ++p) acc[p].merge(acc[r * num_params + p]);
    }
    auto opts = at::TensorOptions().dtype(x.scalar_type());
    MinMaxStats& st = *extremes;
    st.min = at::empty(param_sizes, opts);
    st.max = at::empty(param_sizes, opts);
    st.finite_min = at::empty(param_sizes, opts);
    st.finite_max = at::empty(param_sizes, opts);
    T* mn = st.min.data_ptr<T>();
    T* mx = st.max.data_ptr<T>();
    T* fmn = st.finite_min.data_ptr<T>();
    T* fmx = st.finite_max.data_ptr<T>();
    for (int64_t p = 0; p < num_params; ++p) {
      mn[p] = acc[p].min;
      mx[p] = acc[p].max;
      fmn[p] = acc[p].finite_min;
      fmx[p] = acc[p].finite_max;
    }
    st.nan_count = 0;
    for (int64_t n : nans) st.nan_count += n;
  });
  if (extremes != nullptr && extremes->min.scalar_type() != input.scalar_type()) {
    const auto dtype = input.scalar_type();
    extremes->min = extremes->min.to(dtype);
    extremes->max = extremes->max.to(dtype);
    extremes->finite_min = extremes->finite_min.to(dtype);
    extremes->finite_max = extremes->finite_max.to(dtype);
  }
  return out;
}

}  // namespace

at::Tensor histogram_fused(const at::Tensor& input, at::IntArrayRef param_sizes,
                           const at::Tensor& lo, const at::Tensor& hi, int64_t num_bins,
                           const at::Tensor& active) {
  return histogram_impl(input, param_sizes, lo, hi, num_bins, active, nullptr);
}

MinMaxHistogram min_max_histogram_fused(const at::Tensor& input, at::IntArrayRef param_sizes,
                                        const at::Tensor& lo, const at::Tensor& hi,
                                        int64_t num_bins) {
  MinMaxHistogram out;
  out.histogram = histogram_impl(input, param_sizes, lo, hi, num_bins, {}, &out.stats);
  return out;
}

at::Tensor merge_histograms_fused(at::Tensor add, const at::Tensor& hist_in,
                                  const at::Tensor& cmin_in, const at::Tensor& cmax_in,
                                  const at::Tensor& umin_in, const at::Tensor& umax_in) {
  TORCH_CHECK(hist_in.dim() == 2 && add.sizes() == hist_in.sizes(), "merge_histograms: add ",
              add.sizes(), " and hist ", hist_in.sizes(), " must be the same (H, B)");
  TORCH_CHECK(add.scalar_type() == at::kDouble && add.is_contiguous(),
              "merge_histograms: `add` must be a contiguous float64 tensor");
  const int64_t h = hist_in.size(0), bins = hist_in.size(1);
  const auto dtype = cmin_in.scalar_type();
  if (dtype != at::kFloat && dtype != at::kDouble) {
    // Reduced-precision ranges round every step in their own type: the reference does that.
    add.copy_(merge_histograms_reference(add, hist_in, cmin_in, cmax_in, umin_in, umax_in));
    return add;
  }
  const auto hist = hist_in.to(at::kDouble).contiguous();
  const auto flat = [&](const at::Tensor& t) { return t.reshape({-1}).to(dtype).contiguous(); };
  const auto cmin = flat(cmin_in), cmax = flat(cmax_in), umin = flat(umin_in), umax = flat(umax_in);
  TORCH_CHECK(cmin.numel() == h && cmax.numel() == h && umin.numel() == h && umax.numel() == h,
              "merge_histograms: ranges must have ", h, " elements");
  AT_DISPATCH_FLOATING_TYPES(dtype, "merge_histograms_fused", [&] {
    using T = scalar_t;
    at::parallel_for(0, h, 16, [&](int64_t begin, int64_t end) {
      merge_rows<T>(add.data_ptr<double>(), hist.data_ptr<double>(), cmin.data_ptr<T>(),
                    cmax.data_ptr<T>(), umin.data_ptr<T>(), umax.data_ptr<T>(), bins, begin, end);
    });
  });
  return add;
}

at::Tensor sqnr_noise_fused(const at::Tensor& hist_in, const at::Tensor& edges_in,
                            const at::Tensor& deltas_in, const at::Tensor& offsets_in,
                            int64_t num_steps, double gamma) {
  TORCH_CHECK(
      hist_in.dim() == 2 && edges_in.dim() == 2 && deltas_in.dim() == 2 && offsets_in.dim() == 2,
      "sqnr_noise: 2-d hist, edges, deltas and offsets expected");
  const int64_t h = hist_in.size(0), bins = hist_in.size(1), count = deltas_in.size(1);
  TORCH_CHECK(edges_in.size(0) == h && edges_in.size(1) == bins + 1 && deltas_in.size(0) == h,
              "sqnr_noise: edges ", edges_in.sizes(), " and deltas ", deltas_in.sizes(),
              " do not match histograms ", hist_in.sizes());
  const bool shared = offsets_in.size(0) == 1 && offsets_in.size(1) == 1;
  TORCH_CHECK(shared || offsets_in.sizes() == deltas_in.sizes(), "sqnr_noise: offsets ",
              offsets_in.sizes(), " must be (1, 1) or match deltas ", deltas_in.sizes());
  const auto hist = hist_in.to(at::kFloat).contiguous();
  const auto edges = edges_in.to(at::kFloat).contiguous();
  const auto deltas = deltas_in.to(at::kFloat).contiguous();
  const auto offsets = offsets_in.to(at::kFloat).contiguous();
  auto out = at::empty({h, count}, at::kDouble);
  const float* hp = hist.data_ptr<float>();
  const float* ep = edges.data_ptr<float>();
  const float* dp = deltas.data_ptr<float>();
  const float* op = offsets.data_ptr<float>();
  double* out_p = out.data_ptr<double>();
  at::parallel_for(0, h, 1, [&](int64_t begin, int64_t end) {
    SqnrHistogram row;
    for (int64_t r = begin; r < end; ++r) {
      row.prepare(hp + r * bins, ep + r * (bins + 1), bins);
      sqnr_row_noise(row, dp + r * count, shared ? op : op + r * count, shared, count, num_steps,
                     gamma, out_p + r * count);
    }
  });
  return out;
}

}  // namespace quantsim::kernels
