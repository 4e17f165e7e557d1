#pragma once

// Float32 tensors from literals, built as Python's torch.tensor([...]) builds them from the
// reference's numbers: each double literal rounded once to float32.

#include <ATen/ATen.h>

#include <initializer_list>
#include <vector>

namespace quantsim::testing {

inline at::Tensor f32(std::initializer_list<double> values) {
  return at::tensor(std::vector<double>(values), at::kDouble).to(at::kFloat);
}

inline at::Tensor f32_2d(std::initializer_list<std::initializer_list<double>> rows) {
  std::vector<at::Tensor> stacked;
  for (const auto& row : rows) stacked.push_back(f32(row));
  return at::stack(stacked);
}

inline at::Tensor scalar(double v) { return at::scalar_tensor(v, at::kFloat); }

}  // namespace quantsim::testing
