#pragma once

/// Training and evaluation loops of the demo: shuffled mini-batches, Adam with a cosine learning
/// rate, top-1 accuracy.

#include "fashion_mnist.h"
#include "net.h"

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace quantsim::apps {

/// A schedule of training steps.
struct TrainSchedule {
  /// Passes over the training data. Default: 4.
  int64_t epochs = 4;
  /// Examples per step. Default: 128.
  int64_t batch_size = 128;
  /// Peak Adam learning rate; it decays to zero along a half cosine over all steps. Default: 2e-3.
  double learning_rate = 2e-3;
  /// Decoupled weight decay of AdamW. Default: 1e-4.
  double weight_decay = 1e-4;
  /// Seeds the shuffling (and nothing else). Default: 1.
  uint64_t seed = 1;
  /// Data-parallel training: this rank among `world_size`. Every rank draws the same shuffled
  /// order of the data each epoch and takes every world_size-th example of it from `rank`, as
  /// torch's DistributedSampler does (the remainder left out, so that every rank takes as many
  /// steps); with `batch_size` the global batch / world_size, the ranks' batches of a step make up
  /// the single-process batch of that step. Not part of to_json(). Default: 0 of 1.
  int64_t rank = 0;
  int64_t world_size = 1;

  nlohmann::json to_json() const;
};

/// What one training run measured.
struct TrainResult {
  double final_loss = 0.0;  ///< mean loss of the last epoch
  double seconds = 0.0;
};

/// Trains `model` with AdamW over `parameters` (its weights, and the quantizer ranges when they
/// are trainable) on `data` in `model->train()` mode; `label` prefixes each epoch's progress
/// ("train", "QAT W4A8"). Leaves the model in eval mode.
/// `after_backward`, when set, runs between each step's backward and the optimizer's step
/// (data-parallel training averages the gradients there).
TrainResult train(NetImpl& model, std::vector<at::Tensor> parameters, const Dataset& data,
                  const TrainSchedule& schedule, std::ostream& out, const std::string& label,
                  const std::function<void()>& after_backward = {});

/// Top-1 accuracy (in percent) of `model` in eval mode on `data`, without gradients.
double evaluate(NetImpl& model, const Dataset& data, std::ostream& out, const std::string& label,
                int64_t batch_size = 500);

/// Runs `model` in eval mode, without gradients, over the first `count` examples of `data` in
/// batches (what calibration feeds through a simulation model).
void forward_batches(NetImpl& model, const Dataset& data, int64_t count, std::ostream& out,
                     const std::string& label, int64_t batch_size = 250);

}  // namespace quantsim::apps
