#pragma once

// Iteration over a dense tensor whose elements each use one entry of a small broadcast
// parameter tensor (a scale, an offset): the shared walk of every affine kernel.

#include <ATen/Parallel.h>
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

/// Elements per parallel task: large enough to amortise scheduling.
constexpr int64_t kGrain = 32768;

/// How a reduction into per-parameter accumulators is split into parallel work, so that its result
/// does not depend on the thread count: either each outer index owns its parameters (one shared
/// accumulator row, work split on outer indices), or the elements are cut into a fixed number of
/// chunks, each with its own accumulator row, folded in chunk order by the caller.
struct ReductionPlan {
  int64_t rows = 1;   ///< accumulator rows to allocate
  int64_t chunk = 0;  ///< elements per chunk (chunked plan)
  int64_t slice = 0;  ///< elements per outer index (shared-row plan), 0 if chunked
};

/// `row_size`: accumulator entries per row (parameters x values per parameter). The chunk count
/// shrinks when rows would outweigh the data.
inline ReductionPlan plan_reduction(const BroadcastLayout& layout, int64_t row_size) {
  ReductionPlan plan;
  plan.slice = layout.independent_slice();
  if (plan.slice > 0) return plan;
  const int64_t numel = layout.numel();
  int64_t count = std::max<int64_t>(1, std::min<int64_t>(64, numel / kGrain));
  while (count > 1 && count * row_size > numel + (int64_t{1} << 16)) count /= 2;
  plan.rows = count;
  plan.chunk = (numel + count - 1) / count;
  return plan;
}

/// Runs `body(begin, end, row)` over the plan's pieces of [0, numel) in parallel; `row` is the
/// accumulator row the piece writes to.
template <typename F>
void run_reduction(const BroadcastLayout& layout, const ReductionPlan& plan, const F& body) {
  if (plan.slice > 0) {
    const int64_t outer = layout.numel() / plan.slice;
    const int64_t grain = std::max<int64_t>(1, kGrain / plan.slice);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      body(b * plan.slice, e * plan.slice, int64_t{0});
    });
    return;
  }
  at::parallel_for(0, plan.rows, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      body(c * plan.chunk, std::min(layout.numel(), (c + 1) * plan.chunk), c);
    }
  });
}

}  // namespace quantsim::kernels
