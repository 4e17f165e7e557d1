#include <quantsim/nn/float_modules.h>

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/options/upsampling.h>
#include <torch/utils.h>

#include <cmath>

namespace quantsim::nn {
namespace {

namespace F = torch::nn::functional;

/// PyTorch's names of the reduction modes, as its modules print them.
const char* reduction_name(at::Reduction::Reduction reduction) {
  switch (reduction) {
    case at::Reduction::None:
      return "none";
    case at::Reduction::Sum:
      return "sum";
    default:
      return "mean";
  }
}

at::Reduction::Reduction reduction_of(const GaussianNLLLossOptions::reduction_t& reduction) {
  if (std::holds_alternative<torch::enumtype::kNone>(reduction)) return at::Reduction::None;
  if (std::holds_alternative<torch::enumtype::kSum>(reduction)) return at::Reduction::Sum;
  return at::Reduction::Mean;
}

/// F.interpolate accepts one size or scale for every spatial dimension; libtorch wants one each.
template <typename T>
c10::optional<std::vector<T>> per_spatial_dim(const c10::optional<std::vector<T>>& values) {
  if (values && values->size() == 1) return std::vector<T>{(*values)[0], (*values)[0]};
  return values;
}

at::Tensor upsample(const at::Tensor& input, const UpsamplingOptions& options,
                    F::InterpolateFuncOptions::mode_t mode, c10::optional<bool> align_corners) {
  return F::interpolate(input, F::InterpolateFuncOptions()
                                   .size(per_spatial_dim(options.size()))
                                   .scale_factor(per_spatial_dim(options.scale_factor()))
                                   .mode(mode)
                                   .align_corners(align_corners));
}

void print_upsampling(std::ostream& stream, const char* name, const UpsamplingOptions& options) {
  stream << "quantsim::nn::" << name << "(";
  if (options.size()) stream << "size=" << at::IntArrayRef(*options.size());
  if (options.size() && options.scale_factor()) stream << ", ";
  if (options.scale_factor()) {
    stream << "scale_factor=" << at::ArrayRef<double>(*options.scale_factor());
  }
  stream << ")";
}

}  // namespace

// ---- ChannelShuffle ----------------------------------------------------------------------------

ChannelShuffleImpl::ChannelShuffleImpl(ChannelShuffleOptions options)
    : options(std::move(options)) {}

void ChannelShuffleImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::ChannelShuffle(groups=" << options.groups() << ")";
}

at::Tensor ChannelShuffleImpl::forward(const at::Tensor& input) {
  // The reshapes rather than at::channel_shuffle (same values): libtorch 1.13 has no derivative
  // for at::channel_shuffle, so a quantizer's range in front of it could not be trained.
  const int64_t groups = options.groups();
  TORCH_CHECK(input.dim() > 2, "ChannelShuffle: `input` must have at least 3 dims, got ",
              input.dim());
  TORCH_CHECK(groups > 0, "ChannelShuffle: `groups` must be positive, got ", groups);
  const int64_t channels = input.size(1);
  TORCH_CHECK(channels % groups == 0, "ChannelShuffle: the ", channels,
              " channels of `input` are not divisible by `groups` = ", groups);
  std::vector<int64_t> grouped{input.size(0), groups, channels / groups};
  for (int64_t d = 2; d < input.dim(); ++d) grouped.push_back(input.size(d));
  return input.reshape(grouped).transpose(1, 2).reshape(input.sizes());
}

// ---- Hardsigmoid / Hardswish -------------------------------------------------------------------

HardsigmoidImpl::HardsigmoidImpl(HardsigmoidOptions options) : options(options) {}

void HardsigmoidImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::Hardsigmoid(" << (options.inplace() ? "inplace=true" : "") << ")";
}

at::Tensor HardsigmoidImpl::forward(at::Tensor input) {
  return options.inplace() ? at::hardsigmoid_(input) : at::hardsigmoid(input);
}

HardswishImpl::HardswishImpl(HardswishOptions options) : options(options) {}

void HardswishImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::Hardswish(" << (options.inplace() ? "inplace=true" : "") << ")";
}

at::Tensor HardswishImpl::forward(at::Tensor input) {
  return options.inplace() ? at::hardswish_(input) : at::hardswish(input);
}

// ---- SyncBatchNorm -----------------------------------------------------------------------------

SyncBatchNormImpl::SyncBatchNormImpl(SyncBatchNormOptions options) : options(std::move(options)) {
  reset();
}

void SyncBatchNormImpl::reset() {
  const int64_t c = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", at::empty({c}));
    bias = register_parameter("bias", at::empty({c}));
  } else {
    weight = register_parameter("weight", at::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", at::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", at::zeros({c}));
    running_var = register_buffer("running_var", at::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
  } else {
    running_mean = register_buffer("running_mean", at::Tensor());
    running_var = register_buffer("running_var", at::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", at::Tensor());
  }
  reset_parameters();
}

void SyncBatchNormImpl::reset_running_stats() {
  if (!options.track_running_stats()) return;
  torch::NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void SyncBatchNormImpl::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  torch::NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

void SyncBatchNormImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::SyncBatchNorm(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum()) {
    stream << *options.momentum();
  } else {
    stream << "None";
  }
  stream << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}

at::Tensor SyncBatchNormImpl::forward(const at::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 2, "SyncBatchNorm expected at least 2D input (got ", input.dim(),
                    "D input)");
  TORCH_CHECK_VALUE(input.size(1) > 0, "SyncBatchNorm number of input channels should be non-zero");
  double average_factor = options.momentum().value_or(0.0);
  if (is_training() && options.track_running_stats()) {
    num_batches_tracked.add_(1);
    if (!options.momentum()) {
      // Cumulative moving average when momentum is None.
      average_factor = 1.0 / num_batches_tracked.item<double>();
    }
  }
  const bool batch_statistics = is_training() || !options.track_running_stats();
  if (batch_statistics) {
    // F.batch_norm's _verify_batch_size.
    int64_t values_per_channel = input.size(0);
    for (int64_t d = 2; d < input.dim(); ++d) values_per_channel *= input.size(d);
    TORCH_CHECK_VALUE(values_per_channel != 1,
                      "Expected more than 1 value per channel when training, got input size ",
                      input.sizes());
  }
  return at::batch_norm(input, weight, bias, running_mean, running_var, batch_statistics,
                        average_factor, options.eps(), at::globalContext().userEnabledCuDNN());
}

// ---- UpsamplingBilinear2d / UpsamplingNearest2d ------------------------------------------------

UpsamplingBilinear2dImpl::UpsamplingBilinear2dImpl(UpsamplingOptions options)
    : options(std::move(options)) {}

void UpsamplingBilinear2dImpl::pretty_print(std::ostream& stream) const {
  print_upsampling(stream, "UpsamplingBilinear2d", options);
}

at::Tensor UpsamplingBilinear2dImpl::forward(const at::Tensor& input) {
  return upsample(input, options, torch::kBilinear, /*align_corners=*/true);
}

UpsamplingNearest2dImpl::UpsamplingNearest2dImpl(UpsamplingOptions options)
    : options(std::move(options)) {}

void UpsamplingNearest2dImpl::pretty_print(std::ostream& stream) const {
  print_upsampling(stream, "UpsamplingNearest2d", options);
}

at::Tensor UpsamplingNearest2dImpl::forward(const at::Tensor& input) {
  return upsample(input, options, torch::kNearest, /*align_corners=*/c10::nullopt);
}

// ---- NLLLoss2d ---------------------------------------------------------------------------------

NLLLoss2dImpl::NLLLoss2dImpl(NLLLoss2dOptions options) : options(std::move(options)) { reset(); }

void NLLLoss2dImpl::reset() { weight = register_buffer("weight", options.weight()); }

void NLLLoss2dImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::NLLLoss2d(ignore_index=" << options.ignore_index() << ", reduction="
         << reduction_name(torch::enumtype::reduction_get_enum(options.reduction())) << ")";
}

at::Tensor NLLLoss2dImpl::forward(const at::Tensor& input, const at::Tensor& target) {
  return F::nll_loss(input, target,
                     F::NLLLossFuncOptions()
                         .weight(weight)
                         .ignore_index(options.ignore_index())
                         .reduction(options.reduction()));
}

// ---- GaussianNLLLoss ---------------------------------------------------------------------------

GaussianNLLLossImpl::GaussianNLLLossImpl(GaussianNLLLossOptions options)
    : options(std::move(options)) {}

void GaussianNLLLossImpl::pretty_print(std::ostream& stream) const {
  stream << std::boolalpha << "quantsim::nn::GaussianNLLLoss(full=" << options.full()
         << ", eps=" << options.eps()
         << ", reduction=" << reduction_name(reduction_of(options.reduction())) << ")";
}

at::Tensor GaussianNLLLossImpl::forward(const at::Tensor& input, const at::Tensor& target,
                                        const at::Tensor& var) {
  at::Tensor v = var;
  if (var.sizes() != input.sizes()) {
    const auto leading = input.dim() > 0 ? input.sizes().slice(0, input.dim() - 1) : input.sizes();
    if (input.dim() > 0 && var.sizes() == leading) {
      // Homoscedastic: one variance per row, broadcast over the last dimension.
      v = var.unsqueeze(-1);
    } else {
      TORCH_CHECK_VALUE(input.dim() > 0 && var.dim() == input.dim() &&
                            var.sizes().slice(0, var.dim() - 1) == leading && var.size(-1) == 1,
                        "var is of incorrect size: ", var.sizes(), " for input of size ",
                        input.sizes());
    }
  }
  TORCH_CHECK_VALUE(!(v < 0).any().item<bool>(), "var has negative entry/entries");
  v = v.clone();
  {
    // Clamped outside autograd, as PyTorch does: the gradient reaches var as if unclamped.
    torch::NoGradGuard no_grad;
    v.clamp_min_(options.eps());
  }
  at::Tensor loss = 0.5 * (at::log(v) + at::pow(input - target, 2) / v);
  if (options.full()) loss = loss + 0.5 * std::log(2 * M_PI);
  switch (reduction_of(options.reduction())) {
    case at::Reduction::Mean:
      return loss.mean();
    case at::Reduction::Sum:
      return loss.sum();
    default:
      return loss;
  }
}

}  // namespace quantsim::nn
