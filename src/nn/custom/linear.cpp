#include <quantsim/nn/custom/linear.h>

#include "nn/custom/printing.h"

#include <ATen/ATen.h>

namespace quantsim::nn::custom {
namespace {

/// Python's None for an undefined tensor.
c10::optional<at::Tensor> optional_tensor(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

void print_add_product(std::ostream& stream, const char* name, const AddProductOptions& options) {
  stream << "quantsim::nn::custom::" << name << "(beta=";
  detail::print_scalar(stream, options.beta());
  stream << ", alpha=";
  detail::print_scalar(stream, options.alpha());
  stream << ")";
}

}  // namespace

BaddbmmImpl::BaddbmmImpl(BaddbmmOptions options) : options(std::move(options)) {}
void BaddbmmImpl::pretty_print(std::ostream& stream) const {
  print_add_product(stream, "Baddbmm", options);
}
at::Tensor BaddbmmImpl::forward(const at::Tensor& input, const at::Tensor& batch1,
                                const at::Tensor& batch2) {
  return at::baddbmm(input, batch1, batch2, options.beta(), options.alpha());
}

AddmmImpl::AddmmImpl(AddmmOptions options) : options(std::move(options)) {}
void AddmmImpl::pretty_print(std::ostream& stream) const {
  print_add_product(stream, "Addmm", options);
}
at::Tensor AddmmImpl::forward(const at::Tensor& input, const at::Tensor& mat1,
                              const at::Tensor& mat2) {
  return at::addmm(input, mat1, mat2, options.beta(), options.alpha());
}

at::Tensor DynamicLinearImpl::forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias) {
  return at::linear(x, weight, optional_tensor(bias));
}

DynamicConv2dImpl::DynamicConv2dImpl(DynamicConv2dOptions options) : options(options) {}
void DynamicConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::DynamicConv2d(stride=" << options.stride()
         << ", padding=" << options.padding() << ", dilation=" << options.dilation()
         << ", groups=" << options.groups() << ")";
}
at::Tensor DynamicConv2dImpl::forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias) {
  return at::conv2d(x, weight, optional_tensor(bias), options.stride(), options.padding(),
                    options.dilation(), options.groups());
}

}  // namespace quantsim::nn::custom
