// libtorch 1.13 defines BatchNormImplBase<D, Derived>::pretty_print and
// InstanceNormImpl<D, Derived>::pretty_print in its own translation units without exporting
// them. A class deriving from BatchNorm1dImpl (a quantized module) needs them in its
// construction vtables, so quantsim instantiates them here, printing as libtorch does
// (`torch::nn::BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)`).

#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>

#include <ostream>

namespace {

void print_momentum(std::ostream& stream, double momentum) { stream << momentum; }
void print_momentum(std::ostream& stream, const c10::optional<double>& momentum) {
  if (momentum.has_value()) {
    stream << *momentum;
  } else {
    stream << "None";
  }
}

template <typename Options>
void print_norm(std::ostream& stream, const char* kind, size_t dims, const Options& options) {
  stream << std::boolalpha << "torch::nn::" << kind << dims << "d(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=";
  print_momentum(stream, options.momentum());
  stream << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}

}  // namespace

namespace torch::nn {

template <size_t D, typename Derived>
void BatchNormImplBase<D, Derived>::pretty_print(std::ostream& stream) const {
  print_norm(stream, "BatchNorm", D, this->options);
}

template <size_t D, typename Derived>
void InstanceNormImpl<D, Derived>::pretty_print(std::ostream& stream) const {
  print_norm(stream, "InstanceNorm", D, this->options);
}

template void BatchNormImplBase<1, BatchNorm1dImpl>::pretty_print(std::ostream&) const;
template void BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print(std::ostream&) const;
template void BatchNormImplBase<3, BatchNorm3dImpl>::pretty_print(std::ostream&) const;
template void InstanceNormImpl<1, InstanceNorm1dImpl>::pretty_print(std::ostream&) const;
template void InstanceNormImpl<2, InstanceNorm2dImpl>::pretty_print(std::ostream&) const;
template void InstanceNormImpl<3, InstanceNorm3dImpl>::pretty_print(std::ostream&) const;

}  // namespace torch::nn
