#include <quantsim/nn/custom/elementwise.h>

#include <ATen/ATen.h>

namespace quantsim::nn::custom {

at::Tensor ExponentialImpl::forward(const at::Tensor& x) { return at::exp(x); }
at::Tensor ErfImpl::forward(const at::Tensor& x) { return at::erf(x); }
at::Tensor SqrtImpl::forward(const at::Tensor& x) { return at::sqrt(x); }
at::Tensor LogImpl::forward(const at::Tensor& x) { return at::log(x); }
at::Tensor AbsImpl::forward(const at::Tensor& x) { return at::abs(x); }
at::Tensor NegImpl::forward(const at::Tensor& x) { return at::neg(x); }
at::Tensor ElementwiseCeilImpl::forward(const at::Tensor& x) { return at::ceil(x); }
at::Tensor ElementwiseFloorImpl::forward(const at::Tensor& x) { return at::floor(x); }
at::Tensor SinImpl::forward(const at::Tensor& x) { return at::sin(x); }
at::Tensor CosImpl::forward(const at::Tensor& x) { return at::cos(x); }
at::Tensor AsinImpl::forward(const at::Tensor& x) { return at::asin(x); }
at::Tensor AtanImpl::forward(const at::Tensor& x) { return at::atan(x); }
at::Tensor RoundImpl::forward(const at::Tensor& x) { return at::round(x); }
at::Tensor LogicalNotImpl::forward(const at::Tensor& x) { return at::logical_not(x); }
at::Tensor ElementwiseUnarySignImpl::forward(const at::Tensor& x) { return at::sign(x); }
at::Tensor RSqrtImpl::forward(const at::Tensor& x) { return at::rsqrt(x); }
at::Tensor SquareImpl::forward(const at::Tensor& x) { return at::square(x); }

at::Tensor AddImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::add(x, y); }
at::Tensor MultiplyImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::mul(x, y); }
at::Tensor SubtractImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::sub(x, y); }
at::Tensor DivideImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::div(x, y); }
at::Tensor FloorDivideImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::floor_divide(x, y);
}
at::Tensor GreaterImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::gt(x, y); }
at::Tensor LessImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::lt(x, y); }
at::Tensor GreaterEqualImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::ge(x, y);
}
at::Tensor LessEqualImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::le(x, y); }
at::Tensor NotEqualImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::ne(x, y); }
at::Tensor EqualImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::eq(x, y); }
at::Tensor RemainderImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::remainder(x, y);
}
at::Tensor FmodImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::fmod(x, y); }
at::Tensor PowImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::pow(x, y); }
at::Tensor MaximumImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::maximum(x, y);
}
at::Tensor MaxImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::max(x, y); }
at::Tensor MinimumImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::minimum(x, y);
}
at::Tensor MinImpl::forward(const at::Tensor& x, const at::Tensor& y) { return at::min(x, y); }
at::Tensor LogicalOrImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::logical_or(x, y);
}
at::Tensor LogicalAndImpl::forward(const at::Tensor& x, const at::Tensor& y) {
  return at::logical_and(x, y);
}

CustomSiLUImpl::CustomSiLUImpl() { reset(); }

void CustomSiLUImpl::reset() {
  sigmoid = register_module("sigmoid", torch::nn::Sigmoid());
  mul = register_module("mul", Multiply());
}

void CustomSiLUImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::CustomSiLU";
}

at::Tensor CustomSiLUImpl::forward(const at::Tensor& x) { return mul(x, sigmoid(x)); }

at::Tensor WhereImpl::forward(const at::Tensor& condition, const at::Tensor& x,
                              const at::Tensor& y) {
  return at::where(condition, x, y);
}

at::Tensor MaskedFillImpl::forward(const at::Tensor& x, const at::Tensor& mask,
                                   const at::Tensor& value) {
  return x.masked_fill_(mask, value);
}

}  // namespace quantsim::nn::custom
