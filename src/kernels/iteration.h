#pragma once

// Iteration over a dense tensor whose elements each use one entry of a small broadcast
// parameter tensor (a scale, an offset): the shared walk of every affine kernel.

#include <ATen/core/Tensor.h>
#include <c10/util/SmallVector.h>

#include <cstdint>

namespace quantsim::kernels {

/// The elements of `x`, in memory order, as rows of a coalesced iteration space; each row has one
/// parameter stride (0: one parameter for the whole row).
///
/// Requirements: `x` is non-overlapping and dense (contiguous in some dimension order, e.g.
/// channels-last) and `param_sizes` is expandable to `x.sizes()` (right-aligned, each dim 1 or
/// equal). The parameter tensor is assumed contiguous with `param_sizes`, so a parameter's
/// index in the iteration equals its flat index.
class BroadcastLayout {
 public:
  BroadcastLayout(const at::Tensor& x, at::IntArrayRef param_sizes);

  int64_t numel() const { return numel_; }

  /// Calls `f(offset, length, param_offset, param_stride)` for each row piece of the element
  /// range [begin, end), where `offset` is the memory offset from `x.data_ptr()`.
  template <typename F>
  void for_each_row(int64_t begin, int64_t end, F&& f) const {
    if (begin >= end) return;
    const int64_t ndim = static_cast<int64_t>(sizes_.size());
    const int64_t row_len = sizes_[ndim - 1];
    const int64_t inner_stride = param_strides_[ndim - 1];
    int64_t row = begin / row_len;
    int64_t col = begin % row_len;
    // Decompose the row number into the outer multi-index and the parameter offset it implies.
    c10::SmallVector<int64_t, 8> index(ndim, 0);
    int64_t param_offset = 0;
    for (int64_t d = ndim - 2, r = row; d >= 0; --d) {
      index[d] = r % sizes_[d];
      r /= sizes_[d];
      param_offset += index[d] * param_strides_[d];
    }
    int64_t pos = begin;
    while (pos < end) {
      const int64_t len = std::min(row_len - col, end - pos);
      f(pos, len, param_offset + col * inner_stride, inner_stride);
      pos += len;
      col = 0;
      for (int64_t d = ndim - 2; d >= 0; --d) {  // odometer step to the next row
        param_offset += param_strides_[d];
        if (++index[d] < sizes_[d]) break;
        param_offset -= index[d] * param_strides_[d];
        index[d] = 0;
      }
    }
  }

 private:
  c10::SmallVector<int64_t, 8> sizes_;          // memory order, outermost first, coalesced
  c10::SmallVector<int64_t, 8> param_strides_;  // 0 where the parameter is broadcast
  int64_t numel_ = 0;
};

}  // namespace quantsim::kernels
