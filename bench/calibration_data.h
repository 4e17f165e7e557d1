#pragma once

// The calibration benchmarks' data: 8 batches of 4M random floats, (256, 16384) each, so that
// per-channel statistics have 256 channels on axis 0. Created once; call it before timing so that
// the pages are touched outside the timed loops.

#include <torch/torch.h>

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

}  // namespace quantsim::bench
