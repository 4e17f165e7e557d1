// Reference implementations of the affine kernels: composed torch ops in the exact order of
// docs/quantization.md §2 and §6. They are normative; the fused kernels are tested against them.
//
// float16/bfloat16 internal dtypes are computed as torch computes them on CPU: each op in float32,
// its result rounded to the reduced type (emulated here with explicit casts, because torch 1.13
// lacks some half-precision CPU kernels such as clamp).

#include "kernels/affine.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>

namespace quantsim::kernels {
namespace {

/// Applies the rounding of the internal dtype to a result computed in float32 or wider.
struct Precision {
  at::ScalarType dtype;
  bool reduced() const { return dtype == at::kHalf || dtype == at::kBFloat16; }
  at::Tensor in(const at::Tensor& t) const { return reduced() ? t.to(at::kFloat) : t; }
  at::Tensor out(const at::Tensor& t) const { return reduced() ? t.to(dtype) : t; }
};

at::Tensor mask_of(const at::Tensor& x_rounded, affine::Grid grid, const Precision& p) {
  // m = [qmin <= round(x/s) - o <= qmax], evaluated before clamping (eq. (8)-(10))
  return p.in(((x_rounded >= grid.qmin) & (x_rounded <= grid.qmax)).to(p.dtype));
}

at::Tensor reduce_to(const at::Tensor& elementwise, const at::Tensor& like) {
  // Sum over broadcast dims in double, so that the result does not depend on summation order
  // beyond double rounding.
  return at::sum_to(elementwise.to(at::kDouble), like.sizes()).to(like.scalar_type());
}

}  // namespace

at::Tensor quantize_reference(const at::Tensor& x, const at::Tensor& scale,
                              const at::Tensor& offset, affine::Grid grid) {
  const Precision p{x.scalar_type()};
  const auto s = p.in(scale), o = p.in(offset);
  const auto x_rounded = p.in(p.out(at::round(p.in(p.out(p.in(x) / s))) - o));
  return p.out(at::clamp(x_rounded, grid.qmin, grid.qmax));
}

at::Tensor dequantize_reference(const at::Tensor& q, const at::Tensor& scale,
                                const at::Tensor& offset) {
  const Precision p{q.scalar_type()};
  return p.out(p.in(p.out(p.in(q) + p.in(offset))) * p.in(scale));
}

at::Tensor quantize_dequantize_reference(const at::Tensor& x, const at::Tensor& scale,
                                         const at::Tensor& offset, affine::Grid grid) {
  return dequantize_reference(quantize_reference(x, scale, offset, grid), scale, offset);
}

AffineGrads quantize_backward_reference(const at::Tensor& grad, const at::Tensor& x,
                                        const at::Tensor& scale, const at::Tensor& offset,
                                        affine::Grid grid, GradMask needs) {
  const Precision p{x.scalar_type()};
  const auto s = p.in(scale), o = p.in(offset), g = p.in(grad);
  const auto x_s = p.in(p.out(p.in(x) / s));
  const auto m = mask_of(p.in(p.out(at::round(x_s) - o)), grid, p);
  const auto gm = p.in(p.out(g * m));
  const auto gm_s = p.in(p.out(gm / s));  // dx = g*m/s
  AffineGrads out;
  if (needs[0]) out.input = p.out(gm_s);
  if (needs[1]) out.scale = reduce_to(p.out(-gm_s * x_s), scale);  // ds = -(g*m/s)*(x/s)
  if (needs[2]) out.offset = reduce_to(p.out(-gm), offset);        // do = -g*m
  return out;
}

AffineGrads dequantize_backward_reference(const at::Tensor& grad, const at::Tensor& q,
                                          const at::Tensor& scale, const at::Tensor& offset,
                                          GradMask needs) {
  const Precision p{q.scalar_type()};
  const auto s = p.in(scale), o = p.in(offset), g = p.in(grad);
  AffineGrads out;
  const bool need_gs = needs[0] || needs[2];
  const auto gs = need_gs ? p.out(g * s) : at::Tensor();  // dq = do = g*s
  if (needs[0]) out.input = gs;
  if (needs[1]) out.scale = reduce_to(p.out(g * p.in(p.out(p.in(q) + o))), scale);  // ds = g*(q+o)
  if (needs[2]) out.offset = reduce_to(gs, offset);
  return out;
}

AffineGrads quantize_dequantize_backward_reference(const at::Tensor& grad, const at::Tensor& x,
                                                   const at::Tensor& scale,
                                                   const at::Tensor& offset, affine::Grid grid,
                                                   GradMask needs) {
  const Precision p{x.scalar_type()};
  const auto s = p.in(scale), o = p.in(offset), g = p.in(grad);
  const auto x_s = p.in(p.out(p.in(x) / s));
  const auto r = at::round(x_s);
  const auto m = mask_of(p.in(p.out(r - o)), grid, p);
  AffineGrads out;
  if (needs[0]) out.input = p.out(g * m);  // dx = g*m (STE)
  if (needs[1]) {
    // ds = g * (clamp(round(x/s), o+qmin, o+qmax) - (x/s)*m)   (LSQ-style)
    const auto lo = p.in(p.out(o + static_cast<double>(grid.qmin)));
    const auto hi = p.in(p.out(o + static_cast<double>(grid.qmax)));
    const auto inner = p.in(p.out(at::clamp(r, lo, hi) - p.in(p.out(x_s * m))));
    out.scale = reduce_to(p.out(g * inner), scale);
  }
  if (needs[2]) {
    // do = g*(1-m)*s
    out.offset = reduce_to(p.out(p.in(p.out(g * (1 - m))) * s), offset);
  }
  return out;
}

}  // namespace quantsim::kernels
