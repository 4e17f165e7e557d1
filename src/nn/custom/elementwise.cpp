#include <quantsim/nn/custom/elementwise.h>

#include <ATen/ATen.h>

namespace quantsim::nn::custom {

CustomSiLUImpl::CustomSiLUImpl() { reset(); }

void CustomSiLUImpl::reset() {
  sigmoid = register_module("sigmoid", torch::nn::Sigmoid());
  mul = register_module("mul", Multiply());
}

void CustomSiLUImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::CustomSiLU";
}

at::Tensor CustomSiLUImpl::forward(const at::Tensor& x) { return mul(x, sigmoid(x)); }

}  // namespace quantsim::nn::custom
