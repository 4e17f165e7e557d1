#pragma once

// Fluent tester of the affine kernels (in the manner of XNNPACK's testers): one object describes
// an input layout, parameter shape, dtype and grid; `test_*` runs the fused kernel and its
// normative reference on the same random data and compares them.
//
//   AffineKernelTester().shape({7, 33, 5}).param_shape({1, 33, 1}).bitwidth(4).test_all();

#include "kernels/affine.h"
#include "testing/tolerance.h"

#include <ATen/ATen.h>

#include <vector>

namespace quantsim::testing {

class AffineKernelTester {
 public:
  AffineKernelTester& shape(std::vector<int64_t> v) {
    shape_ = std::move(v);
    return *this;
  }
  /// Shape of scale/offset, expandable to `shape` (right-aligned).
  AffineKernelTester& param_shape(std::vector<int64_t> v) {
    param_shape_ = std::move(v);
    return *this;
  }
  /// Memory order of the input: a permutation of its dims, outermost first (default: identity).
  AffineKernelTester& memory_order(std::vector<int64_t> v) {
    order_ = std::move(v);
    return *this;
  }
  AffineKernelTester& dtype(at::ScalarType v) {
    dtype_ = v;
    return *this;
  }
  AffineKernelTester& grid(affine::Grid v) {
    grid_ = v;
    return *this;
  }
  AffineKernelTester& bitwidth(int64_t b) {
    grid_ = affine::Grid::from_bitwidth(b, grid_.qmin < 0);
    return *this;
  }
  AffineKernelTester& symmetric(bool s) {
    grid_ = affine::Grid::from_num_steps(grid_.num_steps(), s);
    symmetric_ = s;
    return *this;
  }
  AffineKernelTester& seed(uint64_t s) {
    seed_ = s;
    return *this;
  }

  /// Q, DQ and QDQ forward and backward, every gradient subset.
  void test_all() const {
    const auto d = data();
    SCOPED_TRACE(describe());
    EXPECT_TRUE(bitwise_equal(kernels::quantize_fused(d.x, d.s, d.o, grid_),
                              kernels::quantize_reference(d.x, d.s, d.o, grid_)));
    EXPECT_TRUE(bitwise_equal(kernels::quantize_dequantize_fused(d.x, d.s, d.o, grid_),
                              kernels::quantize_dequantize_reference(d.x, d.s, d.o, grid_)));
    const auto q = kernels::quantize_reference(d.x, d.s, d.o, grid_);
    EXPECT_TRUE(bitwise_equal(kernels::dequantize_fused(q, d.s, d.o),
                              kernels::dequantize_reference(q, d.s, d.o)));
    for (int mask = 1; mask < 8; ++mask) {
      const kernels::GradMask needs{(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0};
      SCOPED_TRACE(::testing::Message() << "grad mask " << mask);
      compare(kernels::quantize_backward_fused(d.g, d.x, d.s, d.o, grid_, needs),
              kernels::quantize_backward_reference(d.g, d.x, d.s, d.o, grid_, needs), needs);
      compare(kernels::quantize_dequantize_backward_fused(d.g, d.x, d.s, d.o, grid_, needs),
              kernels::quantize_dequantize_backward_reference(d.g, d.x, d.s, d.o, grid_, needs),
              needs);
      compare(kernels::dequantize_backward_fused(d.g, q, d.s, d.o, needs),
              kernels::dequantize_backward_reference(d.g, q, d.s, d.o, needs), needs);
    }
  }

 private:
  struct Data {
    at::Tensor x, s, o, g;
  };

  Data data() const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    // Scale chosen so that the data spans a bit more than the grid: some values clip.
    const double steps = static_cast<double>(grid_.num_steps());
    auto s = (at::rand(param_shape_, gen, f32) + 0.5) * (4.0 / steps);
    auto o = symmetric_ ? at::zeros(param_shape_, f32)
                        : at::round(at::rand(param_shape_, gen, f32) * -steps * 0.5) -
                              static_cast<double>(grid_.qmin);
    auto x = at::randn(physical_shape(), gen, f32).permute(inverse_order()) * 1.5;
    // A sprinkling of exact rounding ties (x/s = k + 0.5) to exercise round-half-to-even.
    auto ties = (at::round(x / s) + 0.5) * s;
    auto tie_mask = at::rand(x.sizes(), gen, f32) < 0.1;
    x = at::where(tie_mask, ties, x);
    auto g = at::randn(shape_, gen, f32);
    Data d;
    d.s = s.to(dtype_).contiguous();
    d.o = o.to(dtype_).contiguous();
    // Materialise x in the requested memory order (dense, not necessarily contiguous).
    d.x = at::empty(physical_shape(), at::TensorOptions().dtype(dtype_)).permute(inverse_order());
    d.x.copy_(x);
    d.g = g.to(dtype_);
    return d;
  }

  std::vector<int64_t> order() const {
    if (!order_.empty()) return order_;
    std::vector<int64_t> identity(shape_.size());
    for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int64_t>(i);
    return identity;
  }
  std::vector<int64_t> physical_shape() const {
    std::vector<int64_t> p;
    for (int64_t d : order()) p.push_back(shape_[d]);
    return p;
  }
  std::vector<int64_t> inverse_order() const {
    const auto o = order();
    std::vector<int64_t> inv(o.size());
    for (size_t i = 0; i < o.size(); ++i) inv[o[i]] = static_cast<int64_t>(i);
    return inv;
  }

  void compare(const kernels::AffineGrads& fused, const kernels::AffineGrads& ref,
               const kernels::GradMask& needs) const {
    EXPECT_EQ(fused.input.defined(), needs[0]);
    EXPECT_EQ(fused.scale.defined(), needs[1]);
    EXPECT_EQ(fused.offset.defined(), needs[2]);
    if (needs[0]) EXPECT_TRUE(bitwise_equal(fused.input.contiguous(), ref.input.contiguous()));
    if (needs[1]) EXPECT_TRUE(reduction_close(fused.scale, ref.scale));
    if (needs[2]) EXPECT_TRUE(reduction_close(fused.offset, ref.offset));
  }

  std::string describe() const {
    std::ostringstream os;
    os << "shape " << at::IntArrayRef(shape_) << " params " << at::IntArrayRef(param_shape_)
       << " order " << at::IntArrayRef(order()) << " dtype " << dtype_ << " grid [" << grid_.qmin
       << ", " << grid_.qmax << "] seed " << seed_;
    return os.str();
  }

  std::vector<int64_t> shape_{16};
  std::vector<int64_t> param_shape_{};
  std::vector<int64_t> order_;
  at::ScalarType dtype_ = at::kFloat;
  affine::Grid grid_{0, 255};
  bool symmetric_ = false;
  uint64_t seed_ = 0;
};

}  // namespace quantsim::testing
