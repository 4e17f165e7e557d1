#include <quantsim/nn/custom/spatial.h>

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <torch/enum.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>

#include <array>

namespace quantsim::nn::custom {
namespace {

namespace F = torch::nn::functional;

template <typename T>
void print_optional_list(std::ostream& stream, const c10::optional<std::vector<T>>& values) {
  if (values) {
    stream << c10::ArrayRef<T>(*values);
  } else {
    stream << "None";
  }
}

/// The (n, c, h, w) sizes of a 4-D input; c10::ValueError otherwise (the reference's
/// unpacking ValueError).
std::array<int64_t, 4> nchw(const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(x.dim() == 4, name, " expects a 4-D (N, C, H, W) input, got shape ", x.sizes());
  return {x.size(0), x.size(1), x.size(2), x.size(3)};
}

}  // namespace

MaxPool2dImpl::MaxPool2dImpl(MaxPool2dOptions options) : options(options) {}
void MaxPool2dImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha
         << "quantsim::nn::custom::MaxPool2d(kernel_size=" << options.kernel_size()
         << ", stride=" << options.stride() << ", padding=" << options.padding()
         << ", dilation=" << options.dilation() << ", ceil_mode=" << options.ceil_mode() << ")";
}
at::Tensor MaxPool2dImpl::forward(const at::Tensor& x) { return F::max_pool2d(x, options); }

AdaptiveAvgPool2dImpl::AdaptiveAvgPool2dImpl(AdaptiveAvgPool2dOptions options) : options(options) {}
void AdaptiveAvgPool2dImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::AdaptiveAvgPool2d(output_size=[";
  for (size_t i = 0; i < 2; ++i) {
    const auto& size = (*options.output_size())[i];
    stream << (i ? ", " : "");
    if (size) {
      stream << *size;
    } else {
      stream << "None";
    }
  }
  stream << "])";
}
at::Tensor AdaptiveAvgPool2dImpl::forward(const at::Tensor& x) {
  return F::adaptive_avg_pool2d(x, options);
}

AvgPool2dImpl::AvgPool2dImpl(AvgPool2dOptions options) : options(options) {}
void AvgPool2dImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha
         << "quantsim::nn::custom::AvgPool2d(kernel_size=" << options.kernel_size()
         << ", stride=" << options.stride() << ", padding=" << options.padding()
         << ", ceil_mode=" << options.ceil_mode()
         << ", count_include_pad=" << options.count_include_pad() << ")";
}
at::Tensor AvgPool2dImpl::forward(const at::Tensor& x) { return F::avg_pool2d(x, options); }

InterpolateImpl::InterpolateImpl(InterpolateOptions options) : options(std::move(options)) {}
void InterpolateImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Interpolate(size=";
  print_optional_list(stream, options.size());
  stream << ", scale_factor=";
  print_optional_list(stream, options.scale_factor());
  stream << ", mode=" << torch::enumtype::get_enum_name(options.mode()) << ")";
}
at::Tensor InterpolateImpl::forward(const at::Tensor& x) { return F::interpolate(x, options); }

PadImpl::PadImpl(PadOptions options) : options(std::move(options)) {}
void PadImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Pad(pad=" << c10::IntArrayRef(options.pad())
         << ", mode=" << torch::enumtype::get_enum_name(options.mode())
         << ", value=" << options.value() << ")";
}
at::Tensor PadImpl::forward(const at::Tensor& x) { return F::pad(x, options); }

DepthToSpaceDCRModeImpl::DepthToSpaceDCRModeImpl(DepthToSpaceDCRModeOptions options)
    : options(options) {}
void DepthToSpaceDCRModeImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::DepthToSpaceDCRMode(block_size=" << options.block_size() << ")";
}
at::Tensor DepthToSpaceDCRModeImpl::forward(const at::Tensor& x) {
  const auto [b, c, h, w] = nchw(x, "DepthToSpaceDCRMode");
  const int64_t s = options.block_size();
  return x.reshape({b, s, s, c / (s * s), h, w})
      .permute({0, 3, 4, 1, 5, 2})
      .reshape({b, c / (s * s), h * s, w * s});
}

DepthToSpaceCRDModeImpl::DepthToSpaceCRDModeImpl(DepthToSpaceCRDModeOptions options)
    : options(options) {}
void DepthToSpaceCRDModeImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::DepthToSpaceCRDMode(block_size=" << options.block_size() << ")";
}
at::Tensor DepthToSpaceCRDModeImpl::forward(const at::Tensor& x) {
  const auto [b, c, h, w] = nchw(x, "DepthToSpaceCRDMode");
  const int64_t bh = (*options.block_size())[0], bw = (*options.block_size())[1];
  return x.reshape({b, c / (bh * bw), bh, bw, h, w})
      .permute({0, 1, 4, 2, 5, 3})
      .reshape({b, c / (bh * bw), h * bh, w * bw});
}

}  // namespace quantsim::nn::custom
