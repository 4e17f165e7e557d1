#include "affine/learned_range.h"

#include "kernels/affine.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

namespace quantsim::affine::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t : t.contiguous();
}

struct LearnedRangeQuantizeDequantize : torch::autograd::Function<LearnedRangeQuantizeDequantize> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& min,
                            const at::Tensor& max, const at::Tensor& scale,
                            const at::Tensor& offset, int64_t qmin, int64_t qmax, bool symmetric) {
    const auto xd = dense(x);
    // min as the composed graph saves it (its division min / scale): modifying it in place
    // before backward is the same error.
    ctx->save_for_backward({xd, min, scale, offset});
    ctx->saved_data["qmin"] = qmin;
    ctx->saved_data["qmax"] = qmax;
    ctx->saved_data["symmetric"] = symmetric;
    (void)max;
    return kernels::quantize_dequantize_fused(xd, scale, offset, Grid{qmin, qmax});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Grid grid{ctx->saved_data["qmin"].toInt(), ctx->saved_data["qmax"].toInt()};
    const bool symmetric = ctx->saved_data["symmetric"].toBool();
    const bool want_min = ctx->needs_input_grad(1), want_max = ctx->needs_input_grad(2);
    const bool want_range = want_min || want_max;
    const auto g = kernels::quantize_dequantize_backward_fused(
        grads[0], saved[0], saved[2], saved[3], grid,
        {ctx->needs_input_grad(0), want_range, want_range && !symmetric});
    variable_list out(8);
    out[0] = g.input;
    if (want_range) {
      auto range =
          kernels::range_backward_fused(g.scale, g.offset, saved[1], saved[2], grid.num_steps());
      if (want_min) out[1] = std::move(range.min);
      if (want_max) out[2] = std::move(range.max);
    }
    return out;
  }
};

}  // namespace

at::Tensor learned_range_quantize_dequantize(const at::Tensor& x, const at::Tensor& min,
                                             const at::Tensor& max, const at::Tensor& scale,
                                             const at::Tensor& offset, Grid grid, bool symmetric) {
  const bool gradients = at::GradMode::is_enabled() &&
                         (x.requires_grad() || min.requires_grad() || max.requires_grad());
  if (!gradients) return kernels::quantize_dequantize_fused(dense(x), scale, offset, grid);
  return LearnedRangeQuantizeDequantize::apply(x, min, max, scale, offset, grid.qmin, grid.qmax,
                                               symmetric);
}

}  // namespace quantsim::affine::detail
