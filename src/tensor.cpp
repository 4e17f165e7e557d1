#include <quantsim/errors.h>
#include <quantsim/tensor.h>

#include <ATen/ATen.h>

namespace quantsim {

// ---- QuantizedTensorBase ---------------------------------------------------------------------

QuantizedTensorBase::QuantizedTensorBase(at::Tensor data, std::shared_ptr<EncodingBase> encoding)
    : data_(std::move(data)), encoding_(std::move(encoding)) {
  TORCH_CHECK(data_.defined(), "a quantized tensor needs defined values, got an undefined tensor");
  check_floating(data_, "the constructor");
}

void QuantizedTensorBase::check_floating(const at::Tensor& t, const char* op) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()),
              "QuantizedTensor/DequantizedTensor values must be floating, got dtype ",
              t.scalar_type(), " (from ", op,
              "); to get the integers of a quantized tensor, use quantized_repr()");
}

std::shared_ptr<EncodingBase> QuantizedTensorBase::propagated_encoding() const {
  if (!encoding_ || encoding_->granularity() != "pertensor") return nullptr;
  return encoding_->copy();
}

std::shared_ptr<EncodingBase> QuantizedTensorBase::copied_encoding() const {
  return encoding_ ? encoding_->copy() : nullptr;
}

const EncodingBase& QuantizedTensorBase::require_encoding(const char* what) const {
  if (!encoding_) {
    QS_THROW(EncodingError, "cannot ", what,
             ": the tensor has no encoding (it was dropped by an in-place op or by a view of a "
             "tensor whose encoding is not per-tensor)");
  }
  return *encoding_;
}

// ---- QuantizedTensorOps: casts -----------------------------------------------------------------

template <typename Derived>
Derived QuantizedTensorOps<Derived>::cast_result(at::Tensor cast, const char* op) const {
  check_floating(cast, op);
  // at::Tensor's casts return the tensor itself when nothing changes: so does this one.
  if (cast.unsafeGetTensorImpl() == data_.unsafeGetTensorImpl()) {
    return static_cast<const Derived&>(*this);
  }
  // The encoding's dtype is kept: scale/offset are cast to the values' dtype only when used.
  std::shared_ptr<EncodingBase> enc;
  if (encoding_) {
    enc = encoding_->to(cast.device(), c10::nullopt);
    if (enc == encoding_) enc = encoding_->copy();  // same device: a distinct shallow copy
  }
  return Derived(std::move(cast), std::move(enc));
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::to(at::TensorOptions options) const {
  return cast_result(data_.to(options), "`to`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::to(at::Device device, at::ScalarType dtype) const {
  return cast_result(data_.to(device, dtype), "`to`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::to(at::ScalarType dtype) const {
  return cast_result(data_.to(dtype), "`to`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::to(const at::Tensor& other) const {
  return cast_result(data_.to(other), "`to`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::type_as(const at::Tensor& other) const {
  return cast_result(data_.type_as(other), "`type_as`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::cpu() const {
  return cast_result(data_.cpu(), "`cpu`");
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::cuda() const {
  return cast_result(data_.cuda(), "`cuda`");
}

// ---- QuantizedTensorOps: pass-through, clone, detach -------------------------------------------

template <typename Derived>
Derived QuantizedTensorOps<Derived>::contiguous(at::MemoryFormat memory_format) const {
  return Derived(data_.contiguous(memory_format), copied_encoding());
}

template <typename Derived>
Derived& QuantizedTensorOps<Derived>::requires_grad_(bool requires_grad) {
  data_.requires_grad_(requires_grad);
  return static_cast<Derived&>(*this);
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::clone(c10::optional<at::MemoryFormat> memory_format) const {
  return Derived(data_.clone(memory_format), encoding_ ? encoding_->clone() : nullptr);
}

template <typename Derived>
Derived QuantizedTensorOps<Derived>::detach() const {
  return Derived(data_.detach(), encoding_ ? encoding_->detach() : nullptr);
}

// ---- QuantizedTensorOps: per-tensor pass-through ops -------------------------------------------
// Each is at::Tensor's method of the same name under map_view's propagation rule.

#define QUANTSIM_VIEW_OP(Result, name, params, call)                    \
  template <typename Derived>                                           \
  Result QuantizedTensorOps<Derived>::name params const {               \
    return map_view([&](const at::Tensor& self) { return self.call; }); \
  }

QUANTSIM_VIEW_OP(Derived, view, (at::IntArrayRef size), view(size))
QUANTSIM_VIEW_OP(Derived, view_as, (const at::Tensor& other), view_as(other))
QUANTSIM_VIEW_OP(Derived, reshape, (at::IntArrayRef shape), reshape(shape))
QUANTSIM_VIEW_OP(Derived, reshape_as, (const at::Tensor& other), reshape_as(other))
QUANTSIM_VIEW_OP(Derived, permute, (at::IntArrayRef dims), permute(dims))
QUANTSIM_VIEW_OP(Derived, transpose, (int64_t dim0, int64_t dim1), transpose(dim0, dim1))
QUANTSIM_VIEW_OP(Derived, swapaxes, (int64_t axis0, int64_t axis1), swapaxes(axis0, axis1))
QUANTSIM_VIEW_OP(Derived, t, (), t())
QUANTSIM_VIEW_OP(Derived, movedim, (int64_t source, int64_t destination),
                 movedim(source, destination))
QUANTSIM_VIEW_OP(Derived, movedim, (at::IntArrayRef source, at::IntArrayRef destination),
                 movedim(source, destination))
QUANTSIM_VIEW_OP(Derived, squeeze, (), squeeze())
QUANTSIM_VIEW_OP(Derived, squeeze, (int64_t dim), squeeze(dim))
QUANTSIM_VIEW_OP(Derived, unsqueeze, (int64_t dim), unsqueeze(dim))
QUANTSIM_VIEW_OP(Derived, flatten, (int64_t start_dim, int64_t end_dim),
                 flatten(start_dim, end_dim))
QUANTSIM_VIEW_OP(Derived, unflatten, (int64_t dim, at::IntArrayRef sizes), unflatten(dim, sizes))
QUANTSIM_VIEW_OP(Derived, expand, (at::IntArrayRef size), expand(size))
QUANTSIM_VIEW_OP(Derived, expand_as, (const at::Tensor& other), expand_as(other))
QUANTSIM_VIEW_OP(Derived, broadcast_to, (at::IntArrayRef size), broadcast_to(size))
QUANTSIM_VIEW_OP(Derived, repeat, (at::IntArrayRef repeats), repeat(repeats))
QUANTSIM_VIEW_OP(Derived, tile, (at::IntArrayRef dims), tile(dims))
QUANTSIM_VIEW_OP(Derived, select, (int64_t dim, int64_t index), select(dim, index))
QUANTSIM_VIEW_OP(Derived, operator[], (int64_t index), operator[](index))
QUANTSIM_VIEW_OP(Derived, index, (at::ArrayRef<at::indexing::TensorIndex> indices), index(indices))
QUANTSIM_VIEW_OP(Derived, index, (std::initializer_list<at::indexing::TensorIndex> indices),
                 index(at::ArrayRef<at::indexing::TensorIndex>(indices)))
QUANTSIM_VIEW_OP(Derived, narrow, (int64_t dim, int64_t start, int64_t length),
                 narrow(dim, start, length))
QUANTSIM_VIEW_OP(Derived, as_strided,
                 (at::IntArrayRef size, at::IntArrayRef stride,
                  c10::optional<int64_t> storage_offset),
                 as_strided(size, stride, storage_offset))
QUANTSIM_VIEW_OP(Derived, flip, (at::IntArrayRef dims), flip(dims))
QUANTSIM_VIEW_OP(Derived, fliplr, (), fliplr())
QUANTSIM_VIEW_OP(Derived, flipud, (), flipud())
QUANTSIM_VIEW_OP(Derived, gather, (int64_t dim, const at::Tensor& index), gather(dim, index))
QUANTSIM_VIEW_OP(Derived, index_select, (int64_t dim, const at::Tensor& index),
                 index_select(dim, index))
QUANTSIM_VIEW_OP(Derived, masked_select, (const at::Tensor& mask), masked_select(mask))
QUANTSIM_VIEW_OP(Derived, take, (const at::Tensor& index), take(index))
QUANTSIM_VIEW_OP(Derived, take_along_dim, (const at::Tensor& indices, c10::optional<int64_t> dim),
                 take_along_dim(indices, dim))
QUANTSIM_VIEW_OP(std::vector<Derived>, chunk, (int64_t chunks, int64_t dim), chunk(chunks, dim))
QUANTSIM_VIEW_OP(std::vector<Derived>, split, (int64_t split_size, int64_t dim),
                 split(split_size, dim))
QUANTSIM_VIEW_OP(std::vector<Derived>, split_with_sizes, (at::IntArrayRef split_sizes, int64_t dim),
                 split_with_sizes(split_sizes, dim))
QUANTSIM_VIEW_OP(std::vector<Derived>, tensor_split, (int64_t sections, int64_t dim),
                 tensor_split(sections, dim))
QUANTSIM_VIEW_OP(std::vector<Derived>, unbind, (int64_t dim), unbind(dim))

#undef QUANTSIM_VIEW_OP

template class QuantizedTensorOps<QuantizedTensor>;
template class QuantizedTensorOps<DequantizedTensor>;

// ---- the two kinds -----------------------------------------------------------------------------

DequantizedTensor QuantizedTensor::dequantize() const {
  const auto& enc = require_encoding("dequantize");
  return DequantizedTensor(enc.dequantize(data_), enc.copy());
}

at::Tensor QuantizedTensor::quantized_repr() const {
  const auto& enc = require_encoding("compute quantized_repr");
  return data_.to(enc.dtype());
}

QuantizedTensor DequantizedTensor::quantize() const {
  const auto& enc = require_encoding("quantize");
  return QuantizedTensor(enc.quantize(data_), enc.copy());
}

at::Tensor DequantizedTensor::quantized_repr() const {
  require_encoding("compute quantized_repr");
  return quantize().quantized_repr();
}

}  // namespace quantsim
