#include <quantsim/nn/custom/scatter_gather.h>

#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>
#include <c10/core/WrapDimMinimal.h>

#include <vector>

namespace quantsim::nn::custom {

GatherImpl::GatherImpl(GatherOptions options) : options(options) {}
void GatherImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::Gather(dim=" << options.dim() << ")";
}
at::Tensor GatherImpl::forward(const at::Tensor& x, const at::Tensor& index) {
  return at::gather(x, options.dim(), index);
}

IndexSelectImpl::IndexSelectImpl(IndexSelectOptions options) : options(options) {}
void IndexSelectImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::IndexSelect(dim=" << options.dim() << ")";
}
at::Tensor IndexSelectImpl::forward(const at::Tensor& x, const at::Tensor& index) {
  return at::index_select(x, options.dim(), index);
}

CustomGatherImpl::CustomGatherImpl(CustomGatherOptions options) : options(options) {}
void CustomGatherImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::CustomGather(axis=" << options.axis() << ")";
}
at::Tensor CustomGatherImpl::forward(const at::Tensor& data, const at::Tensor& indices) {
  // The reference slices data.shape with the raw axis, which is only right for axis >= 0; a
  // negative axis counts from the end here, as in ONNX.
  const int64_t axis = c10::maybe_wrap_dim(options.axis(), data.dim());
  std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + axis);
  shape.insert(shape.end(), indices.sizes().begin(), indices.sizes().end());
  shape.insert(shape.end(), data.sizes().begin() + axis + 1, data.sizes().end());
  const at::Tensor wrapped = (indices < 0).to(indices.scalar_type()) * data.size(axis) + indices;
  return at::index_select(data, axis, wrapped.flatten()).reshape(shape);
}

GatherNdImpl::GatherNdImpl(GatherNdOptions options) : options(options) {}
void GatherNdImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::GatherNd(batch_dims=" << options.batch_dims() << ")";
}

at::Tensor GatherNdImpl::forward(const at::Tensor& data, const at::Tensor& indices) {
  const int64_t b = options.batch_dims();
  TORCH_CHECK_VALUE(b >= 0 && b < indices.dim() && b <= data.dim(),
                    "GatherNd: batch_dims must be in [0, min(indices.dim() - 1, data.dim())], got ",
                    b, " for data of shape ", data.sizes(), " and indices of shape ",
                    indices.sizes());
  const int64_t m = indices.size(-1);
  TORCH_CHECK_VALUE(m >= 1 && m <= data.dim() - b,
                    "GatherNd: indices.shape[-1] must be in [1, data.dim() - batch_dims], got ", m,
                    " for data of shape ", data.sizes(), " and batch_dims ", b);
  TORCH_CHECK(indices.sizes().slice(0, b) == data.sizes().slice(0, b),
              "GatherNd: the batch dims of data ", data.sizes(), " and indices ", indices.sizes(),
              " differ");
  std::vector<int64_t> out_shape(indices.sizes().begin(), indices.sizes().end() - 1);
  out_shape.insert(out_shape.end(), data.sizes().begin() + b + m, data.sizes().end());

  // One flattened batch dim B and one flattened query dim Q: data (B, ...), indices (B, Q, m);
  // the batch index (B, 1) broadcasts against the m index columns (B, Q).
  int64_t batch = 1;
  for (int64_t d = 0; d < b; ++d) batch *= data.size(d);
  std::vector<int64_t> data_shape{batch};
  data_shape.insert(data_shape.end(), data.sizes().begin() + b, data.sizes().end());
  const at::Tensor flat_data = data.reshape(data_shape);
  const at::Tensor flat_indices = indices.to(at::kLong).reshape({batch, -1, m});
  std::vector<at::indexing::TensorIndex> index{
      at::arange(batch, flat_indices.options()).unsqueeze(1)};
  for (int64_t k = 0; k < m; ++k) index.emplace_back(flat_indices.select(2, k));
  return flat_data.index(index).reshape(out_shape);
}

ScatterNDImpl::ScatterNDImpl(ScatterNDOptions options) : options(options) {}
void ScatterNDImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::ScatterND(reduction=" << options.reduction() << ")";
}

at::Tensor ScatterNDImpl::forward(const at::Tensor& data, const at::Tensor& indices,
                                  const at::Tensor& updates) {
  at::Tensor out = data.clone();
  std::vector<at::indexing::TensorIndex> index;
  for (const auto& column : indices.to(at::kLong).split(1, -1)) index.emplace_back(column);
  const at::Tensor selected = out.index(index);
  const at::Tensor values = updates.reshape(selected.sizes());
  if (options.reduction() == 1) {
    out.index_put_(index, selected + values);
  } else if (options.reduction() == 2) {
    out.index_put_(index, selected * values);
  } else {
    out.index_put_(index, values);
  }
  return out;
}

ScatterElementsImpl::ScatterElementsImpl(ScatterElementsOptions options)
    : options(std::move(options)) {}
void ScatterElementsImpl::pretty_print(std::ostream& stream) const {
  stream << "quantsim::nn::custom::ScatterElements(dim=" << options.dim() << ", reduce=";
  if (options.reduce()) {
    stream << *options.reduce();
  } else {
    stream << "None";
  }
  stream << ")";
}
at::Tensor ScatterElementsImpl::forward(const at::Tensor& x, const at::Tensor& index,
                                        const at::Tensor& src) {
  if (options.reduce()) return x.scatter_reduce_(options.dim(), index, src, *options.reduce());
  return x.scatter_(options.dim(), index, src);
}

}  // namespace quantsim::nn::custom
