#pragma once

// Iteration over a dense tensor whose elements each use one entry of a small broadcast
// parameter tensor (a scale, an offset): the shared walk of every affine kernel.

#include <ATen/core/Tensor.h>
#include <c10/util/SmallVector.h>

#include <algorithm>
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

  const c10::SmallVector<int64_t, 8>& sizes() const { return sizes_; }
  /// Elements per index of the outermost dim when no parameter is used by two of its indices
  /// (per-channel on the outer axis, blockwise, element-wise), else 0. Work split on multiples
  /// of it can accumulate per-parameter sums without sharing.
  int64_t independent_slice() const;
  const c10::SmallVector<int64_t, 8>& param_strides() const { return param_strides_; }

 private:
  c10::SmallVector<int64_t, 8> sizes_;          // memory order, outermost first, coalesced
  c10::SmallVector<int64_t, 8> param_strides_;  // 0 where the parameter is broadcast
  int64_t numel_ = 0;
};

/// Walks the rows of a BroadcastLayout that intersect the element range [begin, end):
///
///     for (RowCursor row(layout, begin, end); !row.done(); row.next()) {
///       // elements [row.offset(), row.offset() + row.length()) use parameters
///       // row.param_offset() + i * row.param_stride()
///     }
///
/// A cursor rather than a callback, so that the loop body is compiled inside the (possibly
/// target-cloned) kernel function that owns it.
class RowCursor {
 public:
  RowCursor(const BroadcastLayout& layout, int64_t begin, int64_t end)
      : sizes_(layout.sizes()), param_strides_(layout.param_strides()), pos_(begin), end_(end) {
    const int64_t ndim = static_cast<int64_t>(sizes_.size());
    row_len_ = sizes_[ndim - 1];
    index_.assign(ndim, 0);
    if (pos_ >= end_) return;
    int64_t row = begin / row_len_;
    const int64_t col = begin % row_len_;
    // Decompose the row number into the outer multi-index and the parameter offset it implies.
    for (int64_t d = ndim - 2; d >= 0; --d) {
      index_[d] = row % sizes_[d];
      row /= sizes_[d];
      row_param_offset_ += index_[d] * param_strides_[d];
    }
    set_row(col);
  }

  bool done() const { return pos_ >= end_; }
  /// Memory offset of the row piece's first element from the tensor's data pointer.
  int64_t offset() const { return pos_; }
  int64_t length() const { return length_; }
  int64_t param_offset() const { return param_offset_; }
  /// 0 when one parameter covers the whole row.
  int64_t param_stride() const { return param_strides_.back(); }

  void next() {
    pos_ += length_;
    const int64_t ndim = static_cast<int64_t>(sizes_.size());
    for (int64_t d = ndim - 2; d >= 0; --d) {  // odometer step to the next row
      row_param_offset_ += param_strides_[d];
      if (++index_[d] < sizes_[d]) break;
      row_param_offset_ -= index_[d] * param_strides_[d];
      index_[d] = 0;
    }
    set_row(0);
  }

 private:
  void set_row(int64_t col) {
    length_ = std::min(row_len_ - col, end_ - pos_);
    param_offset_ = row_param_offset_ + col * param_strides_.back();
  }

  const c10::SmallVector<int64_t, 8>& sizes_;
  const c10::SmallVector<int64_t, 8>& param_strides_;
  c10::SmallVector<int64_t, 8> index_;
  int64_t row_len_ = 1;
  int64_t pos_, end_;
  int64_t length_ = 0;
  int64_t row_param_offset_ = 0;
  int64_t param_offset_ = 0;
};

}  // namespace quantsim::kernels
