#include <quantsim/nn/custom/normalization.h>

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <c10/core/WrapDimMinimal.h>
#include <torch/nn/functional/normalization.h>

namespace quantsim::nn::custom {
namespace {

/// F.batch_norm's _verify_batch_size: batch statistics need more than one value per channel.
void verify_batch_size(at::IntArrayRef sizes) {
  int64_t values_per_channel = sizes[0];
  for (size_t d = 2; d < sizes.size(); ++d) values_per_channel *= sizes[d];
  TORCH_CHECK_VALUE(values_per_channel != 1,
                    "Expected more than 1 value per channel when training, got input size ", sizes);
}

}  // namespace

BatchNormImpl::BatchNormImpl(BatchNormOptions options) : options(options) {}

void BatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::custom::BatchNorm(training=" << options.training()
         << ", momentum=" << options.momentum() << ", eps=" << options.eps() << ")";
}

at::Tensor BatchNormImpl::forward(const at::Tensor& input, const at::Tensor& running_mean,
                                  const at::Tensor& running_var, const at::Tensor& weight,
                                  const at::Tensor& bias) {
  TORCH_CHECK(input.dim() >= 2, "BatchNorm expects an input of rank >= 2, got shape ",
              input.sizes());
  if (options.training()) verify_batch_size(input.sizes());
  // native_batch_norm rejects running statistics that require grad, which quantize-dequantized
  // ones do (the quantizer's range is trainable): they take no gradient. detach() aliases the
  // storage, so the in-place update of training mode still reaches the caller's tensors.
  auto statistic = [](const at::Tensor& t) { return t.defined() ? t.detach() : t; };
  return at::batch_norm(input, weight, bias, statistic(running_mean), statistic(running_var),
                        options.training(), options.momentum(), options.eps(),
                        at::globalContext().userEnabledCuDNN());
}

GroupNormImpl::GroupNormImpl(GroupNormOptions options) : options(options) {}

void GroupNormImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::GroupNorm(num_groups=" << options.num_groups()
         << ", eps=" << options.eps() << ")";
}

at::Tensor GroupNormImpl::forward(const at::Tensor& input, const at::Tensor& weight,
                                  const at::Tensor& bias) {
  TORCH_CHECK(input.dim() >= 2, "Expected at least 2 dimensions for input tensor but received ",
              input.dim());
  std::vector<int64_t> sizes{input.size(0) * input.size(1) / options.num_groups(),
                             options.num_groups()};
  sizes.insert(sizes.end(), input.sizes().begin() + 2, input.sizes().end());
  verify_batch_size(sizes);
  return at::group_norm(input, options.num_groups(), weight, bias, options.eps(),
                        at::globalContext().userEnabledCuDNN());
}

NormalizeImpl::NormalizeImpl(NormalizeOptions options) : options(std::move(options)) {}

void NormalizeImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Normalize(p=" << options.p() << ", dim=" << options.dim()
         << ", eps=" << options.eps() << ")";
}

at::Tensor NormalizeImpl::forward(const at::Tensor& x) {
  return torch::nn::functional::normalize(x, options);
}

RmsNormImpl::RmsNormImpl(RmsNormOptions options) : options(std::move(options)) { reset(); }

void RmsNormImpl::reset() {
  const auto& input_shape = options.input_shape();
  std::vector<int64_t> shape;
  for (int64_t axis : options.axes()) {
    // Python indexing of input_shape: negative axes count from the end.
    shape.push_back(
        input_shape.at(c10::maybe_wrap_dim(axis, static_cast<int64_t>(input_shape.size()))));
  }
  weight = register_parameter("weight", at::ones(shape));
  bias = register_parameter("bias", at::zeros(shape));
}

void RmsNormImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::RmsNorm(input_shape=" << at::IntArrayRef(options.input_shape())
         << ", axes=" << at::IntArrayRef(options.axes()) << ", eps=" << options.eps() << ")";
}

at::Tensor RmsNormImpl::forward(const at::Tensor& x) {
  const at::Tensor x32 = x.to(at::kFloat);
  const at::Tensor rms =
      at::sqrt(at::mean(x32 * x32, options.axes(), /*keepdim=*/true) + options.eps());
  return (at::div(x32, rms) * weight + bias).to(x.scalar_type());
}

}  // namespace quantsim::nn::custom
