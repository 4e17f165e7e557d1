#pragma once

/// Indexing custom float modules (docs/modules.md §6): Gather, IndexSelect, CustomGather (ONNX
/// Gather), GatherNd (ONNX GatherND), ScatterND (ONNX ScatterND), ScatterElements (ONNX
/// ScatterElements). The data tensor comes first, the integer indices after it.
///
///     quantsim::nn::custom::GatherNd gather_nd;
///     auto y = gather_nd(data, indices);

#include <quantsim/nn/custom/reduction.h>  // DimOptions

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <ostream>
#include <string>

namespace quantsim::nn::custom {

using GatherOptions = DimOptions;
using IndexSelectOptions = DimOptions;

/// `out[i][j][k] = x[index[i][j][k]][j][k]` for dim 0, and so on (torch.gather).
class GatherImpl : public torch::nn::Cloneable<GatherImpl> {
 public:
  explicit GatherImpl(GatherOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& index);

  GatherOptions options;
};
TORCH_MODULE(Gather);

/// The entries of the 1-D `index` along `dim` (torch.index_select).
class IndexSelectImpl : public torch::nn::Cloneable<IndexSelectImpl> {
 public:
  explicit IndexSelectImpl(IndexSelectOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& index);

  IndexSelectOptions options;
};
TORCH_MODULE(IndexSelect);

/// Options of `CustomGather`.
struct CustomGatherOptions {
  /* implicit */ CustomGatherOptions(int64_t axis = 0) : axis_(axis) {}
  /// Default: 0
  TORCH_ARG(int64_t, axis);
};

/// ONNX Gather: negative indices count from the end of `axis`;
/// `index_select(data, axis, idx.flatten())` reshaped to
/// `data.shape[:axis] + indices.shape + data.shape[axis+1:]`.
class CustomGatherImpl : public torch::nn::Cloneable<CustomGatherImpl> {
 public:
  explicit CustomGatherImpl(CustomGatherOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& data, const at::Tensor& indices);

  CustomGatherOptions options;
};
TORCH_MODULE(CustomGather);

/// Options of `GatherNd`.
struct GatherNdOptions {
  /* implicit */ GatherNdOptions(int64_t batch_dims = 0) : batch_dims_(batch_dims) {}
  /// Number of leading dims shared by data and indices. Default: 0
  TORCH_ARG(int64_t, batch_dims);
};

/// ONNX GatherND: with m = indices.shape[-1] and b = batch_dims, each index row of length m
/// selects `data[batch..., i_0, ..., i_{m-1}]`; the result has shape
/// `indices.shape[:-1] + data.shape[b+m:]`.
///
///     data = [[0, 1], [2, 3]], indices = [[1, 0], [0, 1]]  ->  [2, 1]
class GatherNdImpl : public torch::nn::Cloneable<GatherNdImpl> {
 public:
  explicit GatherNdImpl(GatherNdOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& data, const at::Tensor& indices);

  GatherNdOptions options;
};
TORCH_MODULE(GatherNd);

/// Options of `ScatterND`.
struct ScatterNDOptions {
  /* implicit */ ScatterNDOptions(int64_t reduction = 0) : reduction_(reduction) {}
  /// 0: replace, 1: add, 2: multiply. Default: 0
  TORCH_ARG(int64_t, reduction);
};

/// ONNX ScatterND: `out = clone(data)`; with `idx = indices.long().split(1, -1)`,
/// `out[idx] = f(out[idx], updates.reshape(out[idx].shape))` where f replaces, adds or multiplies.
/// Repeated index rows are not accumulated (the last write wins), as in the reference.
class ScatterNDImpl : public torch::nn::Cloneable<ScatterNDImpl> {
 public:
  explicit ScatterNDImpl(ScatterNDOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& data, const at::Tensor& indices, const at::Tensor& updates);

  ScatterNDOptions options;
};
TORCH_MODULE(ScatterND);

/// Options of `ScatterElements`.
struct ScatterElementsOptions {
  /* implicit */ ScatterElementsOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  /// "sum", "prod", "mean", "amax" or "amin" (Tensor.scatter_reduce_ with include_self), or
  /// nullopt to replace. Default: nullopt
  TORCH_ARG(c10::optional<std::string>, reduce) = c10::nullopt;
};

/// ONNX ScatterElements, IN PLACE on `x` (as the reference), which is returned:
///
///     x.scatter_(dim, index, src)                  without `reduce`
///     x.scatter_reduce_(dim, index, src, reduce)   with it
class ScatterElementsImpl : public torch::nn::Cloneable<ScatterElementsImpl> {
 public:
  explicit ScatterElementsImpl(ScatterElementsOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& index, const at::Tensor& src);

  ScatterElementsOptions options;
};
TORCH_MODULE(ScatterElements);

}  // namespace quantsim::nn::custom
