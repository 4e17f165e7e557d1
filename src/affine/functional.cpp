#include <quantsim/affine/functional.h>
#include <quantsim/affine/grid.h>

#include "affine/internal_dtype.h"
#include "kernels/affine.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>

namespace quantsim::affine {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---- internal dtype (docs/quantization.md §5) ---------------------------------------------------

template <typename T>
bool round_trips(int64_t v) {
  const float f = static_cast<float>(static_cast<T>(static_cast<float>(v)));
  if (!std::isfinite(f) || std::fabs(f) >= 9.2233720368547758e18f) return false;
  return static_cast<int64_t>(f) == v;
}
bool round_trips_double(int64_t v) {
  const double d = static_cast<double>(v);
  if (!std::isfinite(d) || std::fabs(d) >= 9.2233720368547758e18) return false;
  return static_cast<int64_t>(d) == v;
}

bool representable(at::ScalarType dtype, int64_t qmin, int64_t qmax) {
  // Beyond +-2^53 no dtype holds the grid's neighbours exactly; testing that first also keeps
  // qmax - 1 and qmin + 1 from overflowing.
  if (qmin < -Grid::kMaxMagnitude || qmax > Grid::kMaxMagnitude) return false;
  if (qmax < -Grid::kMaxMagnitude || qmin > Grid::kMaxMagnitude) return false;
  for (int64_t v : {qmax, qmax - 1, qmin + 1, qmin}) {
    bool ok = false;
    switch (dtype) {
      case at::kHalf:
        ok = round_trips<c10::Half>(v);
        break;
      case at::kBFloat16:
        ok = round_trips<c10::BFloat16>(v);
        break;
      case at::kFloat:
        ok = round_trips<float>(v);
        break;
      case at::kDouble:
        ok = round_trips_double(v);
        break;
      default:
        return false;
    }
    if (!ok) return false;
  }
  return true;
}

double epsilon(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf:
      return std::ldexp(1.0, -10);
    case at::kBFloat16:
      return std::ldexp(1.0, -7);
    case at::kFloat:
      return std::ldexp(1.0, -23);
    default:
      return std::ldexp(1.0, -52);
  }
}

bool stable(at::ScalarType dtype, int64_t qmin, int64_t qmax) {
  return representable(dtype, qmin, qmax) &&
         (qmin == qmax ||
          epsilon(dtype) <= 0.1 / (static_cast<double>(qmax) - static_cast<double>(qmin)));
}

void check_representable(at::ScalarType dtype, int64_t qmin, int64_t qmax, const char* op) {
  TORCH_CHECK(representable(dtype, qmin, qmax), op, ": the grid [", qmin, ", ", qmax,
              "] is not exactly representable in ", dtype,
              "; use a smaller bitwidth or a wider input dtype");
}

// ---- argument validation (docs/quantization.md §3) ----------------------------------------------

void check_floating(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK(t.defined(), op, ": `", name, "` is undefined");
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), op, ": `", name,
              "` must be a floating-point tensor, got ", t.scalar_type());
}

void check_expandable(at::IntArrayRef param, at::IntArrayRef input, const char* name,
                      const char* op) {
  TORCH_CHECK(at::is_expandable_to(param, input), op, ": `", name, "` of shape ", param,
              " is not expandable to the input shape ", input,
              " (each dim, right-aligned, must be 1 or equal)");
}

/// The common shape of scale and offset, checked against the input (blockwise: the block view).
struct Prepared {
  at::Tensor x, scale, offset;
  bool blockwise = false;
};

Prepared prepare(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                 const std::vector<int64_t>& block_size, const char* op) {
  check_floating(x, "input", op);
  check_floating(scale, "scale", op);
  check_floating(offset, "offset", op);
  TORCH_CHECK(scale.device() == x.device() && offset.device() == x.device(), op,
              ": input, scale and offset must be on one device, got ", x.device(), ", ",
              scale.device(), ", ", offset.device());
  const auto common = at::infer_size(scale.sizes(), offset.sizes());
  Prepared p;
  p.scale = scale.expand(common);
  p.offset = offset.expand(common);
  if (block_size.empty()) {
    check_expandable(scale.sizes(), x.sizes(), "scale", op);
    check_expandable(offset.sizes(), x.sizes(), "offset", op);
    p.x = x;
    return p;
  }
  const auto shapes = block_shapes(x.sizes(), common, block_size);
  p.x = x.reshape(shapes.input);
  p.scale = p.scale.reshape(shapes.scale);
  p.offset = p.offset.reshape(shapes.scale);
  p.blockwise = true;
  return p;
}

at::Tensor dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t : t.contiguous();
}

// ---- autograd functions (docs/quantization.md §6) -----------------------------------------------

kernels::GradMask needs_of(AutogradContext* ctx) {
  return {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2)};
}

variable_list to_list(kernels::AffineGrads g, size_t extra) {
  variable_list out{std::move(g.input), std::move(g.scale), std::move(g.offset)};
  out.resize(3 + extra);
  return out;
}

// quantize and quantize_dequantize: an op on the grid [qmin, qmax] given by its fused forward
// and backward kernels. Saves only its inputs; the backward recomputes the mask from them.
using GridForward = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, Grid);
using GridBackward = kernels::AffineGrads (*)(const at::Tensor&, const at::Tensor&,
                                              const at::Tensor&, const at::Tensor&, Grid,
                                              kernels::GradMask);

template <GridForward kForward, GridBackward kBackward>
struct GridOpFunction : torch::autograd::Function<GridOpFunction<kForward, kBackward>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scale,
                            const at::Tensor& offset, int64_t qmin, int64_t qmax) {
    const auto xd = dense(x), s = scale.contiguous(), o = offset.contiguous();
    ctx->save_for_backward({xd, s, o});
    ctx->saved_data["qmin"] = qmin;
    ctx->saved_data["qmax"] = qmax;
    return kForward(xd, s, o, Grid{qmin, qmax});
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Grid grid{ctx->saved_data["qmin"].toInt(), ctx->saved_data["qmax"].toInt()};
    return to_list(kBackward(grads[0], saved[0], saved[1], saved[2], grid, needs_of(ctx)), 2);
  }
};

using QuantizeFunction = GridOpFunction<kernels::quantize_fused, kernels::quantize_backward_fused>;
using QuantizeDequantizeFunction =
    GridOpFunction<kernels::quantize_dequantize_fused, kernels::quantize_dequantize_backward_fused>;

struct DequantizeFunction : torch::autograd::Function<DequantizeFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& scale,
                            const at::Tensor& offset) {
    const auto qd = dense(q), s = scale.contiguous(), o = offset.contiguous();
    ctx->save_for_backward({qd, s, o});
    return kernels::dequantize_fused(qd, s, o);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return to_list(
        kernels::dequantize_backward_fused(grads[0], saved[0], saved[1], saved[2], needs_of(ctx)),
        0);
  }
};

struct SteRoundFunction : torch::autograd::Function<SteRoundFunction> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x) { return at::round(x); }
  static variable_list backward(AutogradContext*, variable_list grads) { return {grads[0]}; }
};

at::Tensor restore(const at::Tensor& out, const at::Tensor& x, const Prepared& p) {
  auto y = p.blockwise ? out.reshape(x.sizes()) : out;
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

}  // namespace

BlockShapes block_shapes(at::IntArrayRef input_sizes, at::IntArrayRef scale_sizes,
                         const std::vector<int64_t>& block_size) {
  const auto d = static_cast<int64_t>(scale_sizes.size());
  const auto n = static_cast<int64_t>(input_sizes.size());
  TORCH_CHECK(static_cast<int64_t>(block_size.size()) == d, "`block_size` ",
              at::IntArrayRef(block_size), " must have one entry per scale dim (scale shape ",
              scale_sizes, ")");
  TORCH_CHECK(d <= n, "`block_size` ", at::IntArrayRef(block_size),
              " has more dims than the input ", input_sizes);
  BlockShapes shapes;
  shapes.input.assign(input_sizes.begin(), input_sizes.begin() + (n - d));
  for (int64_t i = 0; i < d; ++i) {
    const int64_t in = input_sizes[n - d + i];
    const int64_t s = scale_sizes[i];
    int64_t b = block_size[i];
    if (b == -1) {
      TORCH_CHECK(s > 0 && in % s == 0, "block_size[", i, "] = -1 needs input dim ", in,
                  " to be divisible by scale dim ", s);
      b = in / s;
    }
    TORCH_CHECK(b >= 0 && b * s == in, "block_size[", i, "] = ", block_size[i], " times scale dim ",
                s, " must equal input dim ", in, " (input shape ", input_sizes, ", scale shape ",
                scale_sizes, ")");
    shapes.input.push_back(s);
    shapes.input.push_back(b);
    shapes.scale.push_back(s);
    shapes.scale.push_back(1);
  }
  return shapes;
}

at::Tensor quantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset,
                    int64_t qmin, int64_t qmax, const std::vector<int64_t>& block_size) {
  TORCH_CHECK(qmin <= qmax, "quantize: `qmin` (", qmin, ") must not exceed `qmax` (", qmax, ")");
  const auto p = prepare(x, scale, offset, block_size, "quantize");
  const auto dtype = x.scalar_type();
  check_representable(dtype, qmin, qmax, "quantize");
  const auto out = QuantizeFunction::apply(p.x, p.scale.to(dtype), p.offset.to(dtype), qmin, qmax);
  return restore(out, x, p);
}

at::Tensor dequantize(const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
                      const std::vector<int64_t>& block_size) {
  const auto p = prepare(q, scale, offset, block_size, "dequantize");
  const auto dtype = q.scalar_type();
  const auto out = DequantizeFunction::apply(p.x, p.scale.to(dtype), p.offset.to(dtype));
  return restore(out, q, p);
}

at::Tensor quantize_dequantize(const at::Tensor& x, const at::Tensor& scale,
                               const at::Tensor& offset, int64_t qmin, int64_t qmax,
                               const std::vector<int64_t>& block_size) {
  TORCH_CHECK(qmin <= qmax, "quantize_dequantize: `qmin` (", qmin, ") must not exceed `qmax` (",
              qmax, ")");
  const auto p = prepare(x, scale, offset, block_size, "quantize_dequantize");
  const auto internal = detail::quantize_dequantize_internal_dtype(x.scalar_type(), qmin, qmax);
  check_representable(internal, qmin, qmax, "quantize_dequantize");
  const auto out = QuantizeDequantizeFunction::apply(p.x.to(internal), p.scale.to(internal),
                                                     p.offset.to(internal), qmin, qmax);
  return restore(out, x, p);
}

at::Tensor ste_round(const at::Tensor& x) { return SteRoundFunction::apply(x); }

namespace detail {

at::ScalarType quantize_dequantize_internal_dtype(at::ScalarType input, int64_t qmin,
                                                  int64_t qmax) {
  auto internal = input;
  if (!stable(internal, qmin, qmax)) internal = at::kFloat;
  if (!stable(internal, qmin, qmax)) internal = at::kDouble;
  return internal;
}

}  // namespace detail

}  // namespace quantsim::affine
