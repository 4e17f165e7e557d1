#pragma once

/// Shape, layout and type custom float modules (docs/modules.md §6): Reshape, Permute, Tile,
/// Expand, StridedSlice, Split, Concat, Cast, OneHot (Shape and NonZero, one torch call each, are
/// generated in stateless_ops.h). Sizes, dims and dtypes are construction options (the reference
/// passes them to forward).
///
///     quantsim::nn::custom::Concat cat(/*axis=*/1);
///     auto y = cat->forward({a, b, c});   // torch::cat({a, b, c}, 1)

#include <quantsim/nn/custom/stateless_ops.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/core/Scalar.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <ostream>
#include <variant>
#include <vector>

namespace quantsim::nn::custom {

/// Options holding one list of sizes or dims (Reshape, Permute, Tile, Expand).
struct SizesOptions {
  /* implicit */ SizesOptions(std::vector<int64_t> sizes) : sizes_(std::move(sizes)) {}
  TORCH_ARG(std::vector<int64_t>, sizes);
};
using ReshapeOptions = SizesOptions;
using PermuteOptions = SizesOptions;
using TileOptions = SizesOptions;
using ExpandOptions = SizesOptions;

/// `x.reshape(sizes)`; one size may be -1 (torch.reshape).
class ReshapeImpl : public torch::nn::Cloneable<ReshapeImpl> {
 public:
  explicit ReshapeImpl(ReshapeOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  ReshapeOptions options;
};
TORCH_MODULE(Reshape);

/// `x.permute(dims)`, dims given in `sizes` (torch.permute).
class PermuteImpl : public torch::nn::Cloneable<PermuteImpl> {
 public:
  explicit PermuteImpl(PermuteOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  PermuteOptions options;
};
TORCH_MODULE(Permute);

/// `x` repeated `sizes[i]` times along each dim (torch.tile).
class TileImpl : public torch::nn::Cloneable<TileImpl> {
 public:
  explicit TileImpl(TileOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  TileOptions options;
};
TORCH_MODULE(Tile);

/// `x.expand(sizes)`: a broadcast view; -1 keeps a dim (Tensor.expand).
class ExpandImpl : public torch::nn::Cloneable<ExpandImpl> {
 public:
  explicit ExpandImpl(ExpandOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  ExpandOptions options;
};
TORCH_MODULE(Expand);

/// Options of `StridedSlice`.
struct StridedSliceOptions {
  /* implicit */ StridedSliceOptions(std::vector<std::vector<int64_t>> ranges)
      : ranges_(std::move(ranges)) {}
  /// One Python `slice(*r)` per leading dim: {stop}, {start, stop} or {start, stop, step}.
  TORCH_ARG(std::vector<std::vector<int64_t>>, ranges);
};

/// `x[slice(*ranges[0]), slice(*ranges[1]), ...]`: basic slicing of the leading dims with
/// Python's clamping of out-of-range bounds and negative indices counted from the end.
///
///     StridedSlice slice(StridedSliceOptions({{0, 2}, {1, 5, 2}}));   // x[0:2, 1:5:2]
///     StridedSlice head(StridedSliceOptions(std::vector<std::vector<int64_t>>{{2}}));  // x[:2]
class StridedSliceImpl : public torch::nn::Cloneable<StridedSliceImpl> {
 public:
  explicit StridedSliceImpl(StridedSliceOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  StridedSliceOptions options;
};
TORCH_MODULE(StridedSlice);

/// Options of `Split`.
struct SplitOptions {
  typedef std::variant<int64_t, std::vector<int64_t>> split_size_t;

  /// Chunks of `split_size` elements (the last may be smaller).
  /* implicit */ SplitOptions(int64_t split_size) : split_size_or_sections_(split_size) {}
  /// Chunks of the given sizes, which must add up to the size of `dim`.
  /* implicit */ SplitOptions(std::vector<int64_t> sections)
      : split_size_or_sections_(std::move(sections)) {}

  TORCH_ARG(split_size_t, split_size_or_sections);
  /// Default: 0
  TORCH_ARG(int64_t, dim) = 0;
};

/// `x` split along `dim` into views (torch.split).
class SplitImpl : public torch::nn::Cloneable<SplitImpl> {
 public:
  explicit SplitImpl(SplitOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  std::vector<at::Tensor> forward(const at::Tensor& x);

  SplitOptions options;
};
TORCH_MODULE(Split);

/// Options of `Concat`.
struct ConcatOptions {
  /* implicit */ ConcatOptions(int64_t axis = 0) : axis_(axis) {}
  /// Default: 0
  TORCH_ARG(int64_t, axis);
};

/// `cat(xs, axis)`. Its quantized version shares one input quantizer among all inputs
/// (docs/modules.md §5.3).
class ConcatImpl : public torch::nn::Cloneable<ConcatImpl> {
 public:
  explicit ConcatImpl(ConcatOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const std::vector<at::Tensor>& xs);

  ConcatOptions options;
};
TORCH_MODULE(Concat);

/// Options of `Cast`.
struct CastOptions {
  /* implicit */ CastOptions(at::ScalarType dtype) : dtype_(dtype) {}
  TORCH_ARG(at::ScalarType, dtype);
};

/// `x` converted to `dtype`; `x` itself when it already has it (Tensor.type(dtype)).
class CastImpl : public torch::nn::Cloneable<CastImpl> {
 public:
  explicit CastImpl(CastOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  CastOptions options;
};
TORCH_MODULE(Cast);

/// Options of `OneHot`.
struct OneHotOptions {
  /* implicit */ OneHotOptions(int64_t num_classes) : num_classes_(num_classes) {}
  /// Number of classes; -1 for max(x) + 1.
  TORCH_ARG(int64_t, num_classes);
  /// Value of the other classes. Default: 0
  TORCH_ARG(c10::Scalar, off_value) = 0;
  /// Value of the class of each element. Default: 1
  TORCH_ARG(c10::Scalar, on_value) = 1;
};

/// ONNX OneHot: `one_hot(x, num_classes)` (int64, a new last dim), mapped to
/// `one_hot * (on_value - off_value) + off_value` unless (off, on) = (0, 1). Integral off/on
/// values keep the result int64; a floating one makes it float32, as Python's arithmetic does.
///
///     OneHot(OneHotOptions(3).off_value(-1).on_value(2))({2, 0}) == {{-1, -1, 2}, {2, -1, -1}}
class OneHotImpl : public torch::nn::Cloneable<OneHotImpl> {
 public:
  explicit OneHotImpl(OneHotOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  OneHotOptions options;
};
TORCH_MODULE(OneHot);

}  // namespace quantsim::nn::custom
