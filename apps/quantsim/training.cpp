#include "training.h"

#include "progress.h"

#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace quantsim::apps {

nlohmann::json TrainSchedule::to_json() const {
  return {{"epochs", epochs},
          {"batch_size", batch_size},
          {"learning_rate", learning_rate},
          {"weight_decay", weight_decay},
          {"seed", seed}};
}

TrainResult train(NetImpl& model, std::vector<at::Tensor> parameters, const Dataset& data,
                  const TrainSchedule& schedule, std::ostream& out, const std::string& label,
                  const std::function<void()>& after_backward) {
  TORCH_CHECK(schedule.batch_size > 0, "`batch_size` must be positive, got ", schedule.batch_size);
  torch::optim::AdamW optimizer(
      std::move(parameters),
      torch::optim::AdamWOptions(schedule.learning_rate).weight_decay(schedule.weight_decay));
  TORCH_CHECK(schedule.world_size > 0 && schedule.rank >= 0 && schedule.rank < schedule.world_size,
              "rank ", schedule.rank, " is not in a world of ", schedule.world_size);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(schedule.seed);
  const int64_t n = data.size() / schedule.world_size;  // this rank's examples per epoch
  const int64_t steps_per_epoch = (n + schedule.batch_size - 1) / schedule.batch_size;
  const int64_t total_steps = steps_per_epoch * schedule.epochs;
  TrainResult result;
  const double start = Progress::steady_seconds();
  model.train();
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < schedule.epochs; ++epoch) {
    at::Tensor order = at::randperm(data.size(), generator);
    if (schedule.world_size > 1) {
      order = order.slice(0, schedule.rank, n * schedule.world_size, schedule.world_size);
    }
    Progress progress(
        out, label + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(schedule.epochs),
        steps_per_epoch);
    double loss_sum = 0.0;
    for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
      const double lr = 0.5 * schedule.learning_rate *
                        (1.0 + std::cos(M_PI * static_cast<double>(step) / total_steps));
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
      at::Tensor index = order.narrow(0, b * schedule.batch_size,
                                      std::min(schedule.batch_size, n - b * schedule.batch_size));
      at::Tensor x = normalize_images(data.images.index_select(0, index));
      at::Tensor y = data.labels.index_select(0, index);
      optimizer.zero_grad();
      at::Tensor loss = torch::nn::functional::cross_entropy(model.forward(x), y);
      loss.backward();
      if (after_backward) after_backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      progress.advance(1, "loss " + format_fixed(loss_sum / (b + 1), 3));
    }
    progress.finish();
    result.final_loss = loss_sum / steps_per_epoch;
  }
  model.eval();
  result.seconds = Progress::steady_seconds() - start;
  return result;
}

double evaluate(NetImpl& model, const Dataset& data, std::ostream& out, const std::string& label,
                int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model.eval();
  const int64_t n = data.size();
  const int64_t batches = (n + batch_size - 1) / batch_size;
  Progress progress(out, label, batches);
  int64_t correct = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * batch_size;
    const int64_t count = std::min(batch_size, n - begin);
    at::Tensor logits = model.forward(normalize_images(data.images.narrow(0, begin, count)));
    correct += logits.argmax(1).eq(data.labels.narrow(0, begin, count)).sum().item<int64_t>();
    progress.advance(1, "accuracy " + format_fixed(100.0 * correct / (begin + count), 2) + "%");
  }
  progress.finish();
  return n > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

void forward_batches(NetImpl& model, const Dataset& data, int64_t count, std::ostream& out,
                     const std::string& label, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model.eval();
  const int64_t n = std::min(count, data.size());
  const int64_t batches = (n + batch_size - 1) / batch_size;
  Progress progress(out, label, batches);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * batch_size;
    model.forward(normalize_images(data.images.narrow(0, begin, std::min(batch_size, n - begin))));
    progress.advance();
  }
  progress.finish();
}

}  // namespace quantsim::apps
