#include <quantsim/floating/functional.h>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>

namespace quantsim::floating {

namespace {

/// Eq. (F2) with a scalar maxval: every constant is a double Scalar, which the float32 kernels
/// round once, as torch does with the reference's NumPy float64 bias.
at::Tensor fake_cast_scalar(const at::Tensor& x, const FloatFormat& f) {
  const double m = f.maxval;
  const double mantissa = static_cast<double>(f.mantissa_bits);
  // (F3) evaluated left to right in double, as the reference's NumPy expression is.
  const double bias =
      f.bias ? static_cast<double>(*f.bias)
             : std::ldexp(1.0, static_cast<int>(f.exponent_bits)) - std::log2(m) +
                   std::log2(2.0 - std::ldexp(1.0, static_cast<int>(-f.mantissa_bits))) - 1.0;
  const auto xc = x.clamp(-m, m);
  // log2(0) = -inf: zero takes the subnormal step, e = 1.
  const auto log_scales = at::floor(at::log2(xc.abs()) + bias).clamp_min(1.0);
  const auto scales = at::pow(2.0, log_scales - mantissa - bias);
  return at::round(xc / scales) * scales;  // round half to even (torch.round)
}

/// Eq. (F2) with a maxval tensor, op by op as the reference evaluates it on its buffer.
at::Tensor fake_cast_tensor(const at::Tensor& x, const FloatFormat& f, const at::Tensor& maxval) {
  const double mantissa = static_cast<double>(f.mantissa_bits);
  const auto log2_max = at::log2(maxval);
  at::Tensor bias;
  if (f.bias) {
    // B = bias - (log2 m - log2 maxval_format): exactly the integer bias at m = maxval_format,
    // because both logarithms come from the same float32 kernel.
    const auto log2_format_max = at::log2(at::scalar_tensor(f.maxval, maxval.options()));
    bias = static_cast<double>(*f.bias) - (log2_max - log2_format_max);
  } else {
    // (F3): 2**E - log2(maxval) + log2(2 - 2**-M) - 1, each step a float32 tensor op.
    const double log2_top = std::log2(2.0 - std::ldexp(1.0, static_cast<int>(-f.mantissa_bits)));
    bias = (std::ldexp(1.0, static_cast<int>(f.exponent_bits)) - log2_max) + log2_top - 1.0;
  }
  const auto xc = at::clamp(x, -maxval, maxval);
  const auto log_scales = at::floor(at::log2(xc.abs()) + bias).clamp_min(1.0);
  const auto scales = at::pow(2.0, log_scales - mantissa - bias);
  return at::round(xc / scales) * scales;
}

at::Tensor fake_cast(const at::Tensor& x, const FloatFormat& f, const at::Tensor& maxval) {
  if (!maxval.defined() && (f.is_float16() || f.is_bfloat16())) {
    return x.to(f.is_float16() ? at::kHalf : at::kBFloat16).to(x.scalar_type());
  }
  // torch 1.13 has no CPU Half kernels for clamp/log2; float32 holds every half/bfloat16 value
  // and computes the grid at least as accurately.
  const bool narrow = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
  const auto xw = narrow ? x.to(at::kFloat) : x;
  auto y = maxval.defined() ? fake_cast_tensor(xw, f, maxval) : fake_cast_scalar(xw, f);
  return narrow ? y.to(x.scalar_type()) : y;
}

struct Arguments {
  FloatFormat format;
  at::Tensor maxval;  // undefined: format.maxval; never differentiated (a buffer)
};

/// Forward: fake_cast. Backward: straight-through inside [-maxval, maxval], zero outside.
struct FloatQdqFunction : torch::autograd::Function<FloatQdqFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const Arguments& args) {
    auto y = fake_cast(x, args.format, args.maxval);
    if (x.requires_grad()) {
      // Comparisons in x's own dtype (or promoted with maxval): NaN compares false, so its
      // gradient is zero, and so is that of +-inf.
      const auto inside = args.maxval.defined()
                              ? at::logical_and(x >= -args.maxval, x <= args.maxval)
                              : at::logical_and(x >= -args.format.maxval, x <= args.format.maxval);
      ctx->save_for_backward({inside});
      ctx->saved_data["sizes"] = x.sizes().vec();
    }
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto inside = ctx->get_saved_variables()[0];
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    // A per-channel maxval can broadcast x to a larger output: reduce back to x's shape.
    auto dx = (grads[0] * inside).sum_to_size(sizes);
    return {dx, at::Tensor()};
  }
};

}  // namespace

at::Tensor quantize_dequantize(const at::Tensor& x, const FloatFormat& format,
                               const at::Tensor& maxval) {
  TORCH_CHECK(x.defined() && at::isFloatingType(x.scalar_type()),
              "float quantize_dequantize: input must be a floating tensor, got ",
              x.defined() ? c10::toString(x.scalar_type()) : "an undefined tensor");
  if (!maxval.defined() && (format.is_float16() || format.is_bfloat16())) {
    return fake_cast(x, format, maxval);  // the cast's own gradient is the identity
  }
  return FloatQdqFunction::apply(x, Arguments{format, maxval.defined() ? maxval.detach() : maxval});
}

}  // namespace quantsim::floating
