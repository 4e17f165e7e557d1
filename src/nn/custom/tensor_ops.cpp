#include <quantsim/nn/custom/tensor_ops.h>

#include "nn/custom/printing.h"

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>

namespace quantsim::nn::custom {
namespace {

void print_sizes(std::ostream& stream, const char* name, const char* field,
                 const SizesOptions& options) {
  stream << "quantsim::nn::custom::" << name << "(" << field << "="
         << c10::IntArrayRef(options.sizes()) << ")";
}

}  // namespace

ReshapeImpl::ReshapeImpl(ReshapeOptions options) : options(std::move(options)) {}
void ReshapeImpl::pretty_print(std::ostream& stream) const {
  print_sizes(stream, "Reshape", "shape", options);
}
at::Tensor ReshapeImpl::forward(const at::Tensor& x) { return at::reshape(x, options.sizes()); }

PermuteImpl::PermuteImpl(PermuteOptions options) : options(std::move(options)) {}
void PermuteImpl::pretty_print(std::ostream& stream) const {
  print_sizes(stream, "Permute", "dims", options);
}
at::Tensor PermuteImpl::forward(const at::Tensor& x) { return at::permute(x, options.sizes()); }

TileImpl::TileImpl(TileOptions options) : options(std::move(options)) {}
void TileImpl::pretty_print(std::ostream& stream) const {
  print_sizes(stream, "Tile", "dims", options);
}
at::Tensor TileImpl::forward(const at::Tensor& x) { return at::tile(x, options.sizes()); }

ExpandImpl::ExpandImpl(ExpandOptions options) : options(std::move(options)) {}
void ExpandImpl::pretty_print(std::ostream& stream) const {
  print_sizes(stream, "Expand", "sizes", options);
}
at::Tensor ExpandImpl::forward(const at::Tensor& x) { return x.expand(options.sizes()); }

StridedSliceImpl::StridedSliceImpl(StridedSliceOptions options) : options(std::move(options)) {
  for (const auto& range : this->options.ranges()) {
    TORCH_CHECK_VALUE(
        !range.empty() && range.size() <= 3,
        "StridedSlice: each range must be {stop}, {start, stop} or {start, stop, step}, "
        "got ",
        c10::IntArrayRef(range));
  }
}

void StridedSliceImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::StridedSlice(ranges=[";
  for (size_t i = 0; i < options.ranges().size(); ++i) {
    stream << (i ? ", " : "") << c10::IntArrayRef(options.ranges()[i]);
  }
  stream << "])";
}

at::Tensor StridedSliceImpl::forward(const at::Tensor& x) {
  using at::indexing::Slice;
  std::vector<at::indexing::TensorIndex> index;
  index.reserve(options.ranges().size());
  for (const auto& r : options.ranges()) {
    // Python's slice(*r).
    if (r.size() == 1) {
      index.emplace_back(Slice(c10::nullopt, r[0]));
    } else if (r.size() == 2) {
      index.emplace_back(Slice(r[0], r[1]));
    } else {
      index.emplace_back(Slice(r[0], r[1], r[2]));
    }
  }
  return x.index(index);
}

SplitImpl::SplitImpl(SplitOptions options) : options(std::move(options)) {}

void SplitImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Split(split_size_or_sections=";
  if (const auto* size = std::get_if<int64_t>(&options.split_size_or_sections())) {
    stream << *size;
  } else {
    stream << c10::IntArrayRef(std::get<std::vector<int64_t>>(options.split_size_or_sections()));
  }
  stream << ", dim=" << options.dim() << ")";
}

std::vector<at::Tensor> SplitImpl::forward(const at::Tensor& x) {
  if (const auto* size = std::get_if<int64_t>(&options.split_size_or_sections())) {
    return at::split(x, *size, options.dim());
  }
  return at::split_with_sizes(x, std::get<std::vector<int64_t>>(options.split_size_or_sections()),
                              options.dim());
}

ConcatImpl::ConcatImpl(ConcatOptions options) : options(options) {}
void ConcatImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Concat(axis=" << options.axis() << ")";
}
at::Tensor ConcatImpl::forward(const std::vector<at::Tensor>& xs) {
  return at::cat(xs, options.axis());
}

CastImpl::CastImpl(CastOptions options) : options(options) {}
void CastImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Cast(dtype=" << options.dtype() << ")";
}
at::Tensor CastImpl::forward(const at::Tensor& x) { return x.to(options.dtype()); }

OneHotImpl::OneHotImpl(OneHotOptions options) : options(std::move(options)) {}

void OneHotImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::OneHot(num_classes=" << options.num_classes() << ", off_value=";
  detail::print_scalar(stream, options.off_value());
  stream << ", on_value=";
  detail::print_scalar(stream, options.on_value());
  stream << ")";
}

at::Tensor OneHotImpl::forward(const at::Tensor& x) {
  at::Tensor out = at::one_hot(x, options.num_classes());
  const c10::Scalar& off = options.off_value();
  const c10::Scalar& on = options.on_value();
  const bool integral = off.isIntegral(/*includeBool=*/true) && on.isIntegral(true);
  if (integral) {
    if (off.toLong() == 0 && on.toLong() == 1) return out;
    return out * (on.toLong() - off.toLong()) + off.toLong();
  }
  if (off.toDouble() == 0 && on.toDouble() == 1) return out;
  return out * (on.toDouble() - off.toDouble()) + off.toDouble();
}

}  // namespace quantsim::nn::custom
