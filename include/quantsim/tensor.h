#pragma once

/// `QuantizedTensor` and `DequantizedTensor`: a floating tensor together with the encoding that
/// produced it (docs/quantization.md §10.3).
///
/// libtorch has no tensor subclassing, so these are value types `{at::Tensor, encoding}` and the
/// reference's `__torch_function__` propagation rules become methods:
///  - cast ops (`to`, `type_as`, `cpu`, `cuda`, `half`, `float`, `double`, `int`, ...) are
///    `to(...)`, `type_as`, `cpu`, `cuda` (spell `x.half()` as `x.to(at::kHalf)`, as libtorch
///    does); a non-floating target throws c10::Error pointing to `quantized_repr()`;
///  - pass-through ops (`contiguous`, `requires_grad_`) keep the encoding;
///  - per-tensor pass-through (view-like) ops are the methods listed at `QuantizedTensorOps`, and
///    any other such op runs through `map_view(op)`;
///  - in-place ops (`add_`, `relu_`, `copy_`, ...), after which the reference sets
///    `encoding = None`, run through `apply_(op)`: it runs `op` on the stored tensor, clears the
///    encoding and returns `*this`;
///  - `clone()` / `detach()` act on the values and on the encoding's tensors;
///  - every other op is run by the caller on `tensor()` and gives a plain `at::Tensor` holding
///    the result on the stored values (there is no implicit conversion, hence no implicit
///    dequantization).
///
/// Not translated: in-place view ops (`squeeze_`, `t_`, `resize_`, ...; write `x = x.squeeze()`),
/// `share_memory_` (no C++ counterpart), `kthvalue`/`msort` (sorting ops whose index output the
/// reference wraps too; run them on `tensor()`). `tensor()` exposes the storage: an in-place op run
/// on it directly does NOT clear the encoding; use `apply_` for that.
///
/// Example:
///     qs::QuantizedTensor q = quantizer(x);                  // a Quantize module's output
///     qs::DequantizedTensor x_hat = q.dequantize();          // real values, same encoding
///     at::Tensor codes = q.quantized_repr();                 // int8 / uint8 / ... integers
///     auto rows = q.reshape({-1, 4}).chunk(2);               // per-tensor: encodings follow
///     at::Tensor y = at::matmul(x_hat.tensor(), w);          // other ops: plain tensors

#include <quantsim/encoding.h>

#include <ATen/TensorIndexing.h>
#include <ATen/core/Tensor.h>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace quantsim {

class QuantizedTensor;
class DequantizedTensor;

/// What the two kinds share: a floating tensor, an encoding (possibly null), and conversion
/// between the quantized and dequantized representation.
///
/// The encoding is null when it was dropped: by a view-like op of a non-per-tensor tensor, or by
/// an in-place op (`apply_`). Without one, quantize/dequantize/quantized_repr throw EncodingError
/// (except the identity conversions `QuantizedTensor::quantize`, `DequantizedTensor::dequantize`).
///
/// Example:
///     void show(const qs::QuantizedTensorBase& t) { std::cout << t.dequantize().tensor(); }
class QuantizedTensorBase {
 public:
  /// c10::Error when `data` is undefined or not floating (use `quantized_repr()` to get integer
  /// tensors). `encoding` may be null.
  QuantizedTensorBase(at::Tensor data, std::shared_ptr<EncodingBase> encoding);
  virtual ~QuantizedTensorBase() = default;
  QuantizedTensorBase(const QuantizedTensorBase&) = default;
  QuantizedTensorBase(QuantizedTensorBase&&) = default;
  QuantizedTensorBase& operator=(const QuantizedTensorBase&) = default;
  QuantizedTensorBase& operator=(QuantizedTensorBase&&) = default;

  /// The stored values (grid integers for QuantizedTensor, real values for DequantizedTensor), as
  /// a plain tensor that shares storage and autograd history with this object.
  const at::Tensor& tensor() const { return data_; }
  /// The encoding, or null.
  const std::shared_ptr<EncodingBase>& encoding() const { return encoding_; }
  /// Replaces the encoding (null clears it).
  void set_encoding(std::shared_ptr<EncodingBase> encoding) { encoding_ = std::move(encoding); }

  /// Grid integers as a QuantizedTensor with a copy of the encoding (identity for a
  /// QuantizedTensor). EncodingError without an encoding.
  virtual QuantizedTensor quantize() const = 0;
  /// Real values as a DequantizedTensor with a copy of the encoding (identity for a
  /// DequantizedTensor). EncodingError without an encoding.
  virtual DequantizedTensor dequantize() const = 0;
  /// The grid integers cast to `encoding()->dtype()` (uint8/int8/int16/int32): the values an
  /// integer kernel consumes. Carries no gradient. EncodingError without an encoding.
  virtual at::Tensor quantized_repr() const = 0;

  /// Metadata of the stored tensor.
  at::IntArrayRef sizes() const { return data_.sizes(); }
  int64_t size(int64_t dim) const { return data_.size(dim); }
  int64_t dim() const { return data_.dim(); }
  int64_t numel() const { return data_.numel(); }
  at::ScalarType scalar_type() const { return data_.scalar_type(); }
  at::Device device() const { return data_.device(); }
  bool requires_grad() const { return data_.requires_grad(); }

 protected:
  /// The encoding a per-tensor pass-through op keeps: a copy if per-tensor, else null.
  std::shared_ptr<EncodingBase> propagated_encoding() const;
  /// A copy of the encoding (null stays null).
  std::shared_ptr<EncodingBase> copied_encoding() const;
  /// The encoding, or EncodingError naming `what`.
  const EncodingBase& require_encoding(const char* what) const;
  /// c10::Error unless `t` is floating; `op` names the operation in the message.
  static void check_floating(const at::Tensor& t, const char* op);

  at::Tensor data_;
  std::shared_ptr<EncodingBase> encoding_;
};

/// The propagation rules of docs/quantization.md §10.3, written once for both kinds (CRTP:
/// `Derived` is QuantizedTensor or DequantizedTensor, and every method returns that kind).
///
/// Per-tensor pass-through (view-like) ops keep the kind; the result holds a COPY of the encoding
/// (an equal, distinct object sharing its tensors) when `granularity() == "pertensor"`, else a
/// null encoding, because a per-channel or blockwise scale no longer lines up with the reshaped
/// values. The set (same signatures as at::Tensor's methods): view, view_as, reshape, reshape_as,
/// permute, transpose, swapaxes, t, movedim, squeeze, unsqueeze, flatten, unflatten, expand,
/// expand_as, broadcast_to, repeat, tile, select, operator[], index, narrow, as_strided, flip,
/// fliplr, flipud, gather, index_select, masked_select, take, take_along_dim, and the
/// vector-valued chunk, split, split_with_sizes, tensor_split, unbind. Any other op goes through
/// `map_view`.
///
/// Example:
///     qs::DequantizedTensor y = x_qdq.permute({1, 0}).reshape({-1});   // encoding copied
///     std::vector<qs::DequantizedTensor> parts = x_qdq.chunk(2, /*dim=*/1);
///     auto d = x_qdq.map_view([](const at::Tensor& t) { return t.diagonal(); });
template <typename Derived>
class QuantizedTensorOps : public QuantizedTensorBase {
 public:
  using QuantizedTensorBase::QuantizedTensorBase;

  /// Applies the view-like `op` (at::Tensor -> at::Tensor, or -> std::vector<at::Tensor>) to the
  /// stored tensor with the per-tensor pass-through rule: same kind, each result with its own
  /// copy of the encoding if per-tensor, else with none.
  ///     auto d = q.map_view([](const at::Tensor& t) { return t.diagonal(); });
  template <typename Op>
  auto map_view(Op&& op) const {
    using Result = std::decay_t<decltype(op(data_))>;
    if constexpr (std::is_same_v<Result, std::vector<at::Tensor>>) {
      std::vector<Derived> out;
      for (auto& t : op(data_)) out.emplace_back(std::move(t), propagated_encoding());
      return out;
    } else {
      static_assert(std::is_same_v<Result, at::Tensor>,
                    "map_view: op must return at::Tensor or std::vector<at::Tensor>");
      return Derived(op(data_), propagated_encoding());
    }
  }

  /// Runs the in-place `op` on the stored tensor and clears the encoding, which no longer
  /// describes the modified values (the reference sets `encoding = None` after any in-place op).
  /// Returns this object. c10::Error if `op` left a non-floating tensor.
  ///     q.apply_([](const at::Tensor& t) { t.add_(1); });   // q.encoding() == nullptr
  template <typename Op>
  Derived& apply_(Op&& op) {
    op(data_);
    check_floating(data_, "`apply_`");
    encoding_.reset();
    return static_cast<Derived&>(*this);
  }

  /// @name Cast ops
  /// The result must be floating, else c10::Error (use `quantized_repr()` for integers). It keeps
  /// the kind and a copy of the encoding moved to the result's device (the encoding's dtype is
  /// unchanged: scale/offset are dtype-sensitive). A cast that changes nothing returns an object
  /// equal to this one that shares its encoding.
  ///     auto h = q.to(at::kHalf);         // QuantizedTensor of float16 values, float32 encoding
  ///     q.to(at::kInt);                   // throws c10::Error
  ///@{
  Derived to(at::TensorOptions options) const;
  Derived to(at::Device device, at::ScalarType dtype) const;
  Derived to(at::ScalarType dtype) const;
  Derived to(const at::Tensor& other) const;
  Derived type_as(const at::Tensor& other) const;
  Derived cpu() const;
  Derived cuda() const;
  ///@}

  /// @name Pass-through ops: the encoding always follows (copied by `contiguous`, the same object
  /// for the in-place `requires_grad_`).
  ///     auto c = q.transpose(0, 1).contiguous();
  ///@{
  Derived contiguous(at::MemoryFormat memory_format = at::MemoryFormat::Contiguous) const;
  Derived& requires_grad_(bool requires_grad = true);
  ///@}

  /// Clones the values and the encoding's tensors; both stay connected to the autograd graph.
  ///     auto c = q.clone();  // c.tensor() and c's scale have grad_fn CloneBackward
  Derived clone(c10::optional<at::MemoryFormat> memory_format = c10::nullopt) const;
  /// Detaches the values and the encoding's tensors from the autograd graph.
  Derived detach() const;

  /// @name Per-tensor pass-through ops (see the class comment), as at::Tensor's methods.
  ///@{
  Derived view(at::IntArrayRef size) const;
  Derived view_as(const at::Tensor& other) const;
  Derived reshape(at::IntArrayRef shape) const;
  Derived reshape_as(const at::Tensor& other) const;
  Derived permute(at::IntArrayRef dims) const;
  Derived transpose(int64_t dim0, int64_t dim1) const;
  Derived swapaxes(int64_t axis0, int64_t axis1) const;
  Derived t() const;
  Derived movedim(int64_t source, int64_t destination) const;
  Derived movedim(at::IntArrayRef source, at::IntArrayRef destination) const;
  Derived squeeze() const;
  Derived squeeze(int64_t dim) const;
  Derived unsqueeze(int64_t dim) const;
  Derived flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Derived unflatten(int64_t dim, at::IntArrayRef sizes) const;
  Derived expand(at::IntArrayRef size) const;
  Derived expand_as(const at::Tensor& other) const;
  Derived broadcast_to(at::IntArrayRef size) const;
  Derived repeat(at::IntArrayRef repeats) const;
  Derived tile(at::IntArrayRef dims) const;
  Derived select(int64_t dim, int64_t index) const;
  Derived operator[](int64_t index) const;
  Derived index(at::ArrayRef<at::indexing::TensorIndex> indices) const;
  Derived index(std::initializer_list<at::indexing::TensorIndex> indices) const;
  Derived narrow(int64_t dim, int64_t start, int64_t length) const;
  Derived as_strided(at::IntArrayRef size, at::IntArrayRef stride,
                     c10::optional<int64_t> storage_offset = c10::nullopt) const;
  Derived flip(at::IntArrayRef dims) const;
  Derived fliplr() const;
  Derived flipud() const;
  Derived gather(int64_t dim, const at::Tensor& index) const;
  Derived index_select(int64_t dim, const at::Tensor& index) const;
  Derived masked_select(const at::Tensor& mask) const;
  Derived take(const at::Tensor& index) const;
  Derived take_along_dim(const at::Tensor& indices,
                         c10::optional<int64_t> dim = c10::nullopt) const;
  std::vector<Derived> chunk(int64_t chunks, int64_t dim = 0) const;
  std::vector<Derived> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Derived> split_with_sizes(at::IntArrayRef split_sizes, int64_t dim = 0) const;
  std::vector<Derived> tensor_split(int64_t sections, int64_t dim = 0) const;
  std::vector<Derived> unbind(int64_t dim = 0) const;
  ///@}

 private:
  /// The cast rule for the result `cast` of a cast op applied to the stored tensor.
  Derived cast_result(at::Tensor cast, const char* op) const;
};

/// Grid integers held in a floating tensor, with the encoding that maps them to real values.
///
/// Example:
///     auto q = qs::affine::Quantize({}, 8, /*symmetric=*/true);
///     q->set_range(-12.8, 12.7);
///     qs::QuantizedTensor xq = q(torch::tensor({{2.57f, -2.312f}, {0.153f, 0.205f}}));
///     xq.tensor();           // [[26, -23], [2, 2]] (float)
///     xq.quantized_repr();   // the same as int8
///     xq.dequantize();       // DequantizedTensor [[2.6, -2.3], [0.2, 0.2]]
class QuantizedTensor : public QuantizedTensorOps<QuantizedTensor> {
 public:
  using QuantizedTensorOps::QuantizedTensorOps;
  /// This tensor itself (sharing the encoding); never throws.
  QuantizedTensor quantize() const override { return *this; }
  /// `encoding()->dequantize(values)` with a copy of the encoding; EncodingError without one.
  DequantizedTensor dequantize() const override;
  /// The values cast to the encoding's integer dtype; EncodingError without an encoding.
  at::Tensor quantized_repr() const override;
};

/// Real values that lie on an encoding's grid (the output of quantize-dequantize), with the
/// encoding that recovers their grid integers without loss.
///
/// Example:
///     auto qdq = qs::affine::QuantizeDequantize({}, 8, /*symmetric=*/false);
///     qdq->set_range(-10, 41);
///     auto x = torch::tensor({{0.39f, 51.f}, {3.521f, 9.41f}});
///     qs::DequantizedTensor y(qdq(x), qdq->get_encoding());   // [[0.4, 41], [3.6, 9.4]]
///     y.quantized_repr();                                      // uint8 [[52, 255], [68, 97]]
class DequantizedTensor : public QuantizedTensorOps<DequantizedTensor> {
 public:
  using QuantizedTensorOps::QuantizedTensorOps;
  /// `encoding()->quantize(values)` with a copy of the encoding; EncodingError without one.
  QuantizedTensor quantize() const override;
  /// This tensor itself (sharing the encoding); never throws.
  DequantizedTensor dequantize() const override { return *this; }
  /// quantize() values cast to the encoding's integer dtype; EncodingError without an encoding.
  at::Tensor quantized_repr() const override;
};

// Both instantiations live in src/tensor.cpp.
extern template class QuantizedTensorOps<QuantizedTensor>;
extern template class QuantizedTensorOps<DequantizedTensor>;

}  // namespace quantsim
