// Fused CPU kernels of the affine ops: one pass over memory per direction, vectorised by the
// compiler (AVX2 clone chosen at load time, see QS_VECTORIZE), multi-threaded with
// at::parallel_for. Normative reference: kernels/affine_reference.cpp.
//
// Arithmetic is done in the internal dtype T with the op order of docs/quantization.md §2 and §6;
// c10::Half and c10::BFloat16 operators compute in float32 and round each result, as torch's CPU
// ops do. This file is compiled with -ffp-contract=off: a fused multiply-add would change float32
// results.

#include "kernels/affine.h"
#include "kernels/iteration.h"
#include "kernels/vectorize.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

namespace quantsim::kernels {
namespace {

inline float round_even(float v) { return std::nearbyint(v); }
inline double round_even(double v) { return std::nearbyint(v); }
template <typename T>
inline T round_even(T v) {
  return static_cast<T>(std::nearbyint(static_cast<float>(v)));
}

// clamp(v, lo, hi) exactly as torch's CPU clamp computes it, min(max(v, lo), hi) with NaN
// propagating and v kept on ties (so -0.0 stays -0.0). Written so that each step is one
// vmaxps/vminps: `a > b ? a : b` returns b when unordered, as those instructions do.
template <typename T>
inline T clamp(T v, T lo, T hi) {
  const T t = lo > v ? lo : v;
  return hi < t ? hi : t;
}

// ---- element-wise forward functions -------------------------------------------------------

struct QuantizeOp {  // clamp(round(x/s) - o, qmin, qmax)
  template <typename T>
  static T apply(T x, T s, T o, T qmin, T qmax) {
    const T x_rounded = static_cast<T>(round_even(static_cast<T>(x / s)) - o);
    return clamp(x_rounded, qmin, qmax);
  }
};

struct DequantizeOp {  // (q + o) * s
  template <typename T>
  static T apply(T q, T s, T o, T, T) {
    return static_cast<T>(static_cast<T>(q + o) * s);
  }
};

struct QuantizeDequantizeOp {
  template <typename T>
  static T apply(T x, T s, T o, T qmin, T qmax) {
    return DequantizeOp::apply(QuantizeOp::apply(x, s, o, qmin, qmax), s, o, qmin, qmax);
  }
};

// ---- element-wise backward functions, eq. (8)-(10): d(input), d(scale), d(offset) per element --

struct QuantizeGrad {
  template <typename T>
  static void apply(T g, T x, T s, T o, T qmin, T qmax, T& dx, T& ds, T& doff) {
    const T x_s = x / s;
    const T x_rounded = static_cast<T>(round_even(x_s) - o);
    const T m = ((x_rounded >= qmin) & (x_rounded <= qmax)) ? T(1) : T(0);
    const T gm = g * m;
    const T gm_s = gm / s;
    dx = gm_s;                         // g*m/s
    ds = static_cast<T>(-gm_s) * x_s;  // -(g*m/s)*(x/s)
    doff = -gm;                        // -g*m
  }
};

struct DequantizeGrad {
  template <typename T>
  static void apply(T g, T q, T s, T o, T, T, T& dq, T& ds, T& doff) {
    dq = g * s;                      // g*s
    ds = g * static_cast<T>(q + o);  // g*(q+o)
    doff = dq;                       // g*s
  }
};

struct QuantizeDequantizeGrad {
  template <typename T>
  static void apply(T g, T x, T s, T o, T qmin, T qmax, T& dx, T& ds, T& doff) {
    const T x_s = x / s;
    const T r = round_even(x_s);
    const T x_rounded = static_cast<T>(r - o);
    const T m = ((x_rounded >= qmin) & (x_rounded <= qmax)) ? T(1) : T(0);
    dx = g * m;  // STE
    const T lo = static_cast<T>(o + qmin), hi = static_cast<T>(o + qmax);
    ds = g * static_cast<T>(clamp(r, lo, hi) - static_cast<T>(x_s * m));  // LSQ-style
    doff = static_cast<T>(g * static_cast<T>(T(1) - m)) * s;              // g*(1-m)*s
  }
};

// ---- row loops -----------------------------------------------------------------------------

template <typename T, typename Op>
QS_VECTORIZE void forward_range(const BroadcastLayout& layout, const T* x, T* out, const T* s,
                                const T* o, T qmin, T qmax, int64_t begin, int64_t end) {
  for (RowCursor row(layout, begin, end); !row.done(); row.next()) {
    const int64_t len = row.length(), poff = row.param_offset(), ps = row.param_stride();
    const T* __restrict__ xr = x + row.offset();
    T* __restrict__ yr = out + row.offset();
    const T* sr = s + poff;
    const T* orow = o + poff;
    if (ps == 0) {
      const T sv = *sr, ov = *orow;
      for (int64_t i = 0; i < len; ++i) yr[i] = Op::apply(xr[i], sv, ov, qmin, qmax);
    } else if (ps == 1) {
      for (int64_t i = 0; i < len; ++i) yr[i] = Op::apply(xr[i], sr[i], orow[i], qmin, qmax);
    } else {
      for (int64_t i = 0; i < len; ++i) {
        yr[i] = Op::apply(xr[i], sr[i * ps], orow[i * ps], qmin, qmax);
      }
    }
  }
}

// Sum of n values in double, in a fixed order: eight interleaved partial sums (so that the compiler
// can keep them in vector registers), then added lane by lane.
template <typename T>
__attribute__((always_inline)) inline double sum_in_lanes(const T* v, int64_t n) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += static_cast<double>(v[i + l]);
  }
  for (; i < n; ++i) lanes[0] += static_cast<double>(v[i]);
  double total = 0;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total;
}

// Writes d(input) over [begin, end) when kWantInput, and adds the per-parameter sums of
// d(scale), d(offset) into acc_s/acc_o (double, indexed by parameter) when kWantParams.
// Rows are processed in tiles: the element-wise gradients of a tile go to small buffers in one
// vectorisable loop, then the buffers are summed.
template <typename T, typename Grad, bool kWantInput, bool kWantParams>
QS_VECTORIZE void backward_range(const BroadcastLayout& layout, const T* g, const T* x, const T* s,
                                 const T* o, T qmin, T qmax, T* dx, double* acc_s, double* acc_o,
                                 int64_t begin, int64_t end) {
  constexpr int64_t kTile = 512;
  alignas(64) T ds_tile[kTile];
  alignas(64) T do_tile[kTile];
  for (RowCursor row(layout, begin, end); !row.done(); row.next()) {
    const int64_t len = row.length(), poff = row.param_offset(), ps = row.param_stride();
    for (int64_t t0 = 0; t0 < len; t0 += kTile) {
      const int64_t n = std::min(kTile, len - t0);
      const T* __restrict__ gr = g + row.offset() + t0;
      const T* __restrict__ xr = x + row.offset() + t0;
      T* __restrict__ dxr = kWantInput ? dx + row.offset() + t0 : nullptr;
      if (ps == 0) {
        const T sv = s[poff], ov = o[poff];
        for (int64_t i = 0; i < n; ++i) {
          T dxe;
          Grad::apply(gr[i], xr[i], sv, ov, qmin, qmax, dxe, ds_tile[i], do_tile[i]);
          if (kWantInput) dxr[i] = dxe;
        }
        if (kWantParams) {
          acc_s[poff] += sum_in_lanes(ds_tile, n);
          acc_o[poff] += sum_in_lanes(do_tile, n);
        }
      } else {
        const int64_t p0 = poff + t0 * ps;
        for (int64_t i = 0; i < n; ++i) {
          T dxe;
          Grad::apply(gr[i], xr[i], s[p0 + i * ps], o[p0 + i * ps], qmin, qmax, dxe, ds_tile[i],
                      do_tile[i]);
          if (kWantInput) dxr[i] = dxe;
        }
        if (kWantParams) {
          for (int64_t i = 0; i < n; ++i) {
            acc_s[p0 + i * ps] += static_cast<double>(ds_tile[i]);
            acc_o[p0 + i * ps] += static_cast<double>(do_tile[i]);
          }
        }
      }
    }
  }
}

// ---- drivers -------------------------------------------------------------------------------

template <typename T>
T grid_value(int64_t v) {
  return static_cast<T>(static_cast<float>(v));  // torch casts a clamp bound to the op's dtype
}
template <>
double grid_value<double>(int64_t v) {
  return static_cast<double>(v);
}

template <typename Op>
at::Tensor forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                   affine::Grid grid) {
  TORCH_INTERNAL_ASSERT(x.is_non_overlapping_and_dense(), "fused kernel needs a dense input");
  auto out = at::empty_like(x);
  if (x.numel() == 0) return out;
  const auto s = scale.contiguous(), o = offset.contiguous();
  const BroadcastLayout layout(x, s.sizes());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "affine_forward", [&] {
    const auto* xp = x.data_ptr<scalar_t>();
    auto* yp = out.data_ptr<scalar_t>();
    const auto* sp = s.data_ptr<scalar_t>();
    const auto* op = o.data_ptr<scalar_t>();
    const auto qmin = grid_value<scalar_t>(grid.qmin), qmax = grid_value<scalar_t>(grid.qmax);
    at::parallel_for(0, layout.numel(), kGrain, [&](int64_t begin, int64_t end) {
      forward_range<scalar_t, Op>(layout, xp, yp, sp, op, qmin, qmax, begin, end);
    });
  });
  return out;
}

template <typename T, typename Grad, bool kWantInput, bool kWantParams>
void run_backward(const BroadcastLayout& layout, const T* g, const T* x, const T* s, const T* o,
                  T qmin, T qmax, T* dx, std::vector<double>& acc_s, std::vector<double>& acc_o,
                  int64_t num_params) {
  const ReductionPlan plan = plan_reduction(layout, num_params);
  if (kWantParams) {
    acc_s.assign(plan.rows * num_params, 0.0);
    acc_o.assign(plan.rows * num_params, 0.0);
  }
  run_reduction(layout, plan, [&](int64_t begin, int64_t end, int64_t row) {
    backward_range<T, Grad, kWantInput, kWantParams>(
        layout, g, x, s, o, qmin, qmax, dx, kWantParams ? acc_s.data() + row * num_params : nullptr,
        kWantParams ? acc_o.data() + row * num_params : nullptr, begin, end);
  });
  if (kWantParams) {  // fold rows into row 0, in row order
    for (int64_t r = 1; r < plan.rows; ++r) {
      for (int64_t p = 0; p < num_params; ++p) {
        acc_s[p] += acc_s[r * num_params + p];
        acc_o[p] += acc_o[r * num_params + p];
      }
    }
  }
}

template <typename T>
at::Tensor param_grad_from(const std::vector<double>& acc, const at::Tensor& like) {
  auto out = at::empty(like.sizes(), like.options());
  auto* p = out.data_ptr<T>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    // double -> float -> T, the conversion torch's .to() performs for reduced types
    p[i] = static_cast<T>(static_cast<float>(acc[i]));
  }
  return out;
}
template <>
at::Tensor param_grad_from<double>(const std::vector<double>& acc, const at::Tensor& like) {
  auto out = at::empty(like.sizes(), like.options());
  std::copy(acc.begin(), acc.begin() + out.numel(), out.data_ptr<double>());
  return out;
}

template <typename Grad>
AffineGrads backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& scale,
                     const at::Tensor& offset, affine::Grid grid, GradMask needs) {
  TORCH_INTERNAL_ASSERT(x.is_non_overlapping_and_dense(), "fused kernel needs a dense input");
  TORCH_INTERNAL_ASSERT(scale.sizes() == offset.sizes(), "scale and offset shapes differ");
  AffineGrads result;
  const bool want_input = needs[0];
  const bool want_params = needs[1] || needs[2];
  if (!want_input && !want_params) return result;
  at::Tensor g = grad;
  if (g.strides() != x.strides()) {  // walk grad in x's memory order
    g = at::empty_like(x);
    g.copy_(grad);
  }
  const auto s = scale.contiguous(), o = offset.contiguous();
  if (want_input) result.input = at::empty_like(x);
  const BroadcastLayout layout(x, s.sizes());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "affine_backward", [&] {
        using T = scalar_t;
        const auto qmin = grid_value<T>(grid.qmin), qmax = grid_value<T>(grid.qmax);
        std::vector<double> acc_s, acc_o;
        const T* gp = g.data_ptr<T>();
        const T* xp = x.data_ptr<T>();
        const T* sp = s.data_ptr<T>();
        const T* op = o.data_ptr<T>();
        T* dxp = want_input ? result.input.data_ptr<T>() : nullptr;
        const int64_t np = s.numel();
        if (x.numel() > 0) {
          if (want_input && want_params) {
            run_backward<T, Grad, true, true>(layout, gp, xp, sp, op, qmin, qmax, dxp, acc_s, acc_o,
                                              np);
          } else if (want_input) {
            run_backward<T, Grad, true, false>(layout, gp, xp, sp, op, qmin, qmax, dxp, acc_s,
                                               acc_o, np);
          } else {
            run_backward<T, Grad, false, true>(layout, gp, xp, sp, op, qmin, qmax, dxp, acc_s,
                                               acc_o, np);
          }
        }
        if (want_params && acc_s.empty()) {  // empty input: zero gradients
          acc_s.assign(np, 0.0);
          acc_o.assign(np, 0.0);
        }
        if (needs[1]) result.scale = param_grad_from<T>(acc_s, s);
        if (needs[2]) result.offset = param_grad_from<T>(acc_o, o);
      });
  return result;
}

}  // namespace

at::Tensor quantize_fused(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                          affine::Grid grid) {
  return forward<QuantizeOp>(x, scale, offset, grid);
}

at::Tensor dequantize_fused(const at::Tensor& q, const at::Tensor& scale,
                            const at::Tensor& offset) {
  return forward<DequantizeOp>(q, scale, offset, affine::Grid{0, 0});
}

at::Tensor quantize_dequantize_fused(const at::Tensor& x, const at::Tensor& scale,
                                     const at::Tensor& offset, affine::Grid grid) {
  return forward<QuantizeDequantizeOp>(x, scale, offset, grid);
}

AffineGrads quantize_backward_fused(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& scale, const at::Tensor& offset,
                                    affine::Grid grid, GradMask needs) {
  return backward<QuantizeGrad>(grad, x, scale, offset, grid, needs);
}

AffineGrads dequantize_backward_fused(const at::Tensor& grad, const at::Tensor& q,
                                      const at::Tensor& scale, const at::Tensor& offset,
                                      GradMask needs) {
  return backward<DequantizeGrad>(grad, q, scale, offset, affine::Grid{0, 0}, needs);
}

AffineGrads quantize_dequantize_backward_fused(const at::Tensor& grad, const at::Tensor& x,
                                               const at::Tensor& scale, const at::Tensor& offset,
                                               affine::Grid grid, GradMask needs) {
  return backward<QuantizeDequantizeGrad>(grad, x, scale, offset, grid, needs);
}

RangeGrads range_backward_fused(const at::Tensor& grad_scale, const at::Tensor& grad_offset,
                                const at::Tensor& min, const at::Tensor& scale, int64_t num_steps) {
  TORCH_INTERNAL_ASSERT(grad_scale.scalar_type() == at::kFloat && min.scalar_type() == at::kFloat &&
                            scale.scalar_type() == at::kFloat,
                        "range_backward_fused: float32 tensors expected");
  const auto gs = grad_scale.contiguous(), mn = min.contiguous(), s = scale.contiguous();
  const auto go = grad_offset.defined() ? grad_offset.contiguous() : at::Tensor();
  const int64_t count = s.numel();
  TORCH_INTERNAL_ASSERT(
      gs.numel() == count && mn.numel() == count && (!go.defined() || go.numel() == count),
      "range_backward_fused: tensors of one shape expected");
  RangeGrads out{at::empty(s.sizes(), s.options()), at::empty(s.sizes(), s.options())};
  const float* gsp = gs.data_ptr<float>();
  const float* gop = go.defined() ? go.data_ptr<float>() : nullptr;
  const float* mp = mn.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  float* gmin = out.min.data_ptr<float>();
  float* gmax = out.max.data_ptr<float>();
  // torch divides a float32 tensor by an integer scalar in float32.
  const auto n = static_cast<float>(num_steps);
  for (int64_t i = 0; i < count; ++i) {
    float total = gsp[i];
    float through_offset = 0.0f;
    if (gop != nullptr) {
      const float gt = gop[i];
      total = total + (-gt) * ((mp[i] / sp[i]) / sp[i]);
      through_offset = gt / sp[i];
    }
    const float gd = total / n;
    gmax[i] = gd;
    gmin[i] = gop != nullptr ? through_offset + (-gd) : -gd;
  }
  return out;
}

}  // namespace quantsim::kernels
