#pragma once

// The calibration benchmarks' data: 8 batches of 4M random floats, (256, 16384) each, so that
// per-channel statistics have 256 channels on axis 0. Created once; call it before timing so that
// the pages are touched outside the timed loops. And the analyzers both benchmarks compare.

#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace quantsim::bench {

constexpr int64_t kBatches = 8, kChannels = 256, kPerChannel = 4 * 1024 * 1024 / kChannels;

inline const std::vector<at::Tensor>& calibration_batches() {
  static const std::vector<at::Tensor> data = [] {
    std::vector<at::Tensor> b;
    for (int64_t i = 0; i < kBatches; ++i) b.push_back(torch::randn({kChannels, kPerChannel}));
    return b;
  }();
  return data;
}

/// "MinMax", "Percentile" (2048 bins, 99.9) or otherwise SQNR with its defaults, of `shape`.
inline std::shared_ptr<EncodingAnalyzer> make_analyzer(const std::string& kind,
                                                       std::vector<int64_t> shape) {
  if (kind == "MinMax") return std::make_shared<MinMaxEncodingAnalyzer>(shape);
  if (kind == "Percentile") return std::make_shared<PercentileEncodingAnalyzer>(shape, 2048, 99.9);
  return std::make_shared<SqnrEncodingAnalyzer>(shape);
}

}  // namespace quantsim::bench
