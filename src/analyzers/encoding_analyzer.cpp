#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>

namespace quantsim {

EncodingAnalyzer::EncodingAnalyzer(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  for (int64_t s : shape_) {
    TORCH_CHECK_VALUE(s >= 0, "analyzer shape must be non-negative, got ", s);
  }
}

void EncodingAnalyzer::check_num_steps(int64_t num_steps, bool symmetric) {
  TORCH_CHECK_VALUE(num_steps >= 1, "`num_steps` must be >= 1, got ", num_steps);
  TORCH_CHECK_VALUE(!symmetric || num_steps >= 2,
                    "a symmetric range needs `num_steps` >= 2 (at least one step on each side "
                    "of zero), got ",
                    num_steps, ": the 1-bit signed grid [-1, 0] holds no positive value");
}

at::Tensor EncodingAnalyzer::widened(const at::Tensor& stats) {
  const auto dtype = stats.scalar_type();
  return dtype == at::kHalf || dtype == at::kBFloat16 ? stats.to(at::kFloat) : stats;
}

std::pair<at::Tensor, at::Tensor> EncodingAnalyzer::compute_encodings(int64_t num_steps,
                                                                      bool symmetric) const {
  check_num_steps(num_steps, symmetric);
  const auto stats = accumulated_stats();
  if (!stats) {
    QS_THROW(StatisticsNotFoundError,
             "no statistics to compute encodings from: run update_stats on at least one batch");
  }
  return compute_encodings_from_stats(*stats, num_steps, symmetric);
}

std::pair<at::Tensor, at::Tensor> EncodingAnalyzer::compute_dynamic_encodings(
    const at::Tensor& x, int64_t num_steps, bool symmetric) const {
  check_num_steps(num_steps, symmetric);
  return compute_encodings_from_stats(*collect_stats(x), num_steps, symmetric);
}

std::vector<int64_t> EncodingAnalyzer::reduction_dims(const at::Tensor& x) const {
  const auto n = static_cast<int64_t>(shape_.size());
  TORCH_CHECK(at::is_expandable_to(shape_, x.sizes()), "encoding analyzer of shape ",
              at::IntArrayRef(shape_), " cannot reduce an input of shape ", x.sizes(),
              " (the shape must be expandable to the input)");
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t i = d - (x.dim() - n);  // index into shape_, negative = padded
    if (i < 0 || shape_[i] == 1) dims.push_back(d);
  }
  return dims;
}

}  // namespace quantsim
