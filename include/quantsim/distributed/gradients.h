#pragma once

/// Data-parallel quantization-aware training: gradients averaged across ranks after backward
/// (docs/distributed.md §4).

#include <quantsim/distributed/process_group.h>

#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

namespace quantsim::distributed {

/// Bucket size of average_gradients: the one torch's DistributedDataParallel uses.
constexpr int64_t kDefaultBucketBytes = 25 * 1024 * 1024;

/// Replaces the gradient of every parameter in `parameters` (the same list, of the same shapes,
/// in the same order on every rank) by its mean over the ranks of `group`: gradients of one
/// dtype are packed into buckets of at most `bucket_bytes` (a larger tensor is a bucket alone),
/// one SUM all-reduce per bucket, then divided by the world size. A parameter without a gradient
/// on this rank contributes zeros and receives the mean like the others, so that every rank
/// steps the same. Parameters that do not require grad are skipped. Call after backward and
/// before the optimizer's step; with identical initial parameters every rank stays identical.
void average_gradients(const std::vector<at::Tensor>& parameters,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                       int64_t bucket_bytes = kDefaultBucketBytes);

/// average_gradients over module.parameters(): the quantizers' ranges (min/max) included.
void average_gradients(torch::nn::Module& module,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                       int64_t bucket_bytes = kDefaultBucketBytes);

/// Copies rank `root`'s parameters and buffers of `module` to every rank (one broadcast per
/// tensor): a common starting point before training.
void broadcast_state(torch::nn::Module& module, const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                     int root = 0);

}  // namespace quantsim::distributed
