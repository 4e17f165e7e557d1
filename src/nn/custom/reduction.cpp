#include <quantsim/nn/custom/reduction.h>

#include "nn/custom/printing.h"

#include <ATen/ATen.h>

namespace quantsim::nn::custom {
namespace {

void print_reduce(std::ostream& stream, const char* name, const ReduceOptions& options) {
  stream << std::boolalpha << "quantsim::nn::custom::" << name << "(dim=";
  detail::print_dims(stream, options.dim());
  stream << ", keepdim=" << options.keepdim() << ")";
}

void print_reduce(std::ostream& stream, const char* name, const ReduceDimOptions& options) {
  stream << std::boolalpha << "quantsim::nn::custom::" << name << "(dim=";
  detail::print_dim(stream, options.dim());
  stream << ", keepdim=" << options.keepdim() << ")";
}

}  // namespace

MeanImpl::MeanImpl(MeanOptions options) : options(std::move(options)) {}
void MeanImpl::pretty_print(std::ostream& stream) const { print_reduce(stream, "Mean", options); }
at::Tensor MeanImpl::forward(const at::Tensor& x) {
  return options.dim() ? at::mean(x, *options.dim(), options.keepdim()) : at::mean(x);
}

SumImpl::SumImpl(SumOptions options) : options(std::move(options)) {}
void SumImpl::pretty_print(std::ostream& stream) const { print_reduce(stream, "Sum", options); }
at::Tensor SumImpl::forward(const at::Tensor& x) {
  return options.dim() ? at::sum(x, *options.dim(), options.keepdim()) : at::sum(x);
}

ProdImpl::ProdImpl(ProdOptions options) : options(options) {}
void ProdImpl::pretty_print(std::ostream& stream) const { print_reduce(stream, "Prod", options); }
at::Tensor ProdImpl::forward(const at::Tensor& x) {
  return options.dim() ? at::prod(x, *options.dim(), options.keepdim()) : at::prod(x);
}

ArgminImpl::ArgminImpl(ArgminOptions options) : options(options) {}
void ArgminImpl::pretty_print(std::ostream& stream) const {
  print_reduce(stream, "Argmin", options);
}
at::Tensor ArgminImpl::forward(const at::Tensor& x) {
  return at::argmin(x, options.dim(), options.keepdim());
}

ArgmaxImpl::ArgmaxImpl(ArgmaxOptions options) : options(options) {}
void ArgmaxImpl::pretty_print(std::ostream& stream) const {
  print_reduce(stream, "Argmax", options);
}
at::Tensor ArgmaxImpl::forward(const at::Tensor& x) {
  return at::argmax(x, options.dim(), options.keepdim());
}

NormImpl::NormImpl(NormOptions options) : options(std::move(options)) {}
void NormImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::custom::Norm(p=" << options.p() << ", dim=";
  detail::print_dims(stream, options.dim());
  stream << ", keepdim=" << options.keepdim() << ")";
}
at::Tensor NormImpl::forward(const at::Tensor& x) {
  const at::OptionalIntArrayRef dim =
      options.dim() ? at::OptionalIntArrayRef(*options.dim()) : c10::nullopt;
  return at::linalg_vector_norm(x, options.p(), dim, options.keepdim(), c10::nullopt);
}

CumSumImpl::CumSumImpl(CumSumOptions options) : options(options) {}
void CumSumImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::CumSum(dim=" << options.dim() << ")";
}
at::Tensor CumSumImpl::forward(const at::Tensor& x) { return at::cumsum(x, options.dim()); }

TopKImpl::TopKImpl(TopKOptions options) : options(options) {}
void TopKImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::custom::TopK(k=" << options.k()
         << ", dim=" << options.dim() << ", largest=" << options.largest()
         << ", sorted=" << options.sorted() << ")";
}
std::tuple<at::Tensor, at::Tensor> TopKImpl::forward(const at::Tensor& x) {
  return at::topk(x, options.k(), options.dim(), options.largest(), options.sorted());
}

}  // namespace quantsim::nn::custom
