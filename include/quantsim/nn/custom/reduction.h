#pragma once

/// Reduction custom float modules (docs/modules.md §6): Mean, Sum, Prod, Argmin, Argmax, Norm,
/// CumSum, TopK. The reference passes dims as forward arguments; here they are construction
/// options.
///
///     quantsim::nn::custom::Mean mean(quantsim::nn::custom::ReduceOptions().dim({1, 2}));
///     auto m = mean(x);   // torch::mean(x, {1, 2})

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <ostream>
#include <tuple>
#include <vector>

namespace quantsim::nn::custom {

/// Options of reductions over any set of dims (Mean, Sum).
struct ReduceOptions {
  /// Dims to reduce. Default: nullopt (all dims)
  TORCH_ARG(c10::optional<std::vector<int64_t>>, dim) = c10::nullopt;
  /// Keep the reduced dims with size 1. Default: false
  TORCH_ARG(bool, keepdim) = false;
};
using MeanOptions = ReduceOptions;
using SumOptions = ReduceOptions;

/// Options of reductions over one dim (Prod, Argmin, Argmax).
struct ReduceDimOptions {
  /// Dim to reduce. Default: nullopt (the flattened input)
  TORCH_ARG(c10::optional<int64_t>, dim) = c10::nullopt;
  /// Keep the reduced dim with size 1. Default: false
  TORCH_ARG(bool, keepdim) = false;
};
using ProdOptions = ReduceDimOptions;
using ArgminOptions = ReduceDimOptions;
using ArgmaxOptions = ReduceDimOptions;

/// Mean over `dim` (torch.mean).
class MeanImpl : public torch::nn::Cloneable<MeanImpl> {
 public:
  explicit MeanImpl(MeanOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  MeanOptions options;
};
TORCH_MODULE(Mean);

/// Sum over `dim` (torch.sum).
class SumImpl : public torch::nn::Cloneable<SumImpl> {
 public:
  explicit SumImpl(SumOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  SumOptions options;
};
TORCH_MODULE(Sum);

/// Product over `dim`, or of all elements (torch.prod).
class ProdImpl : public torch::nn::Cloneable<ProdImpl> {
 public:
  explicit ProdImpl(ProdOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  ProdOptions options;
};
TORCH_MODULE(Prod);

/// Index (int64) of the first minimum along `dim`, or in the flattened input (torch.argmin).
class ArgminImpl : public torch::nn::Cloneable<ArgminImpl> {
 public:
  explicit ArgminImpl(ArgminOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  ArgminOptions options;
};
TORCH_MODULE(Argmin);

/// Index (int64) of the first maximum along `dim`, or in the flattened input (torch.argmax).
class ArgmaxImpl : public torch::nn::Cloneable<ArgmaxImpl> {
 public:
  explicit ArgmaxImpl(ArgmaxOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  ArgmaxOptions options;
};
TORCH_MODULE(Argmax);

/// Options of `Norm`.
struct NormOptions {
  /// Order of the vector norm; infinity for max |x|. Default: 2 (torch.norm's "fro")
  TORCH_ARG(double, p) = 2.0;
  /// Dims to reduce. Default: nullopt (all dims)
  TORCH_ARG(c10::optional<std::vector<int64_t>>, dim) = c10::nullopt;
  /// Default: false
  TORCH_ARG(bool, keepdim) = false;
};

/// Vector p-norm `(sum |x|^p)^(1/p)` over `dim` (torch.norm with a numeric `p` or "fro", which
/// PyTorch computes as torch.linalg.vector_norm).
class NormImpl : public torch::nn::Cloneable<NormImpl> {
 public:
  explicit NormImpl(NormOptions options = {});
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  NormOptions options;
};
TORCH_MODULE(Norm);

/// Options of the modules whose only option is one dim (CumSum, Gather, IndexSelect).
struct DimOptions {
  /* implicit */ DimOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
};
using CumSumOptions = DimOptions;

/// Inclusive cumulative sum along `dim` (torch.cumsum).
class CumSumImpl : public torch::nn::Cloneable<CumSumImpl> {
 public:
  explicit CumSumImpl(CumSumOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  CumSumOptions options;
};
TORCH_MODULE(CumSum);

/// Options of `TopK`.
struct TopKOptions {
  /* implicit */ TopKOptions(int64_t k) : k_(k) {}
  /// Number of elements to select.
  TORCH_ARG(int64_t, k);
  /// Default: -1
  TORCH_ARG(int64_t, dim) = -1;
  /// Largest (true) or smallest (false) elements. Default: true
  TORCH_ARG(bool, largest) = true;
  /// Return them in sorted order. Default: true
  TORCH_ARG(bool, sorted) = true;
};

/// The `k` largest (or smallest) elements along `dim` and their int64 indices (torch.topk).
class TopKImpl : public torch::nn::Cloneable<TopKImpl> {
 public:
  explicit TopKImpl(TopKOptions options);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  /// (values, indices)
  std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x);

  TopKOptions options;
};
TORCH_MODULE(TopK);

}  // namespace quantsim::nn::custom
