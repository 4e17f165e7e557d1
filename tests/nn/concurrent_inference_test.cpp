// Concurrent inference (docs/simulation.md, "Threads"): a calibrated quantized module, or a whole
// simulation model, called from several threads at once under torch::NoGradGuard gives every
// thread the single-thread output bit for bit, and the cached quantized parameters still follow a
// range or a parameter changed between calls. What is not thread-safe (calibration of one module
// or quantizer from two threads, calibration while inference runs) is a c10::Error naming it.
//
// Call counts: kCalls forward calls per thread on the single module (20,000, the harness that
// crashed), a twentieth of that on the models. Under ThreadSanitizer (which runs this ~10-50x
// slower) they default to 1/20 of that (~3 s); the environment variable QUANTSIM_STRESS_CALLS
// overrides the per-thread count on the single module in any build (the others scale with it).

#include <quantsim/nn/convert.h>
#include <quantsim/nn/drop_in.h>
#include <quantsim/nn/forward_recorder.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/quantsim_model.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qs = quantsim;

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr int kDefaultCalls = 1000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kDefaultCalls = 1000;
#else
constexpr int kDefaultCalls = 20000;
#endif
#else
constexpr int kDefaultCalls = 20000;
#endif

constexpr int kThreads = 4;

/// Forward calls per thread on a single module.
int stress_calls() {
  const char* value = std::getenv("QUANTSIM_STRESS_CALLS");
  if (value != nullptr && *value != '\0') return std::max(1, std::atoi(value));
  return kDefaultCalls;
}

/// Calls `forward` `calls` times on each of kThreads threads at once, each under its own
/// torch::NoGradGuard (grad mode is per thread), and counts the outputs that differ from
/// `expected` in any bit. An exception on any thread is rethrown here.
int64_t mismatches_on_threads(int calls, const std::function<at::Tensor()>& forward,
                              const at::Tensor& expected) {
  std::atomic<int64_t> mismatches{0};
  std::atomic<int> ready{0};
  std::vector<std::exception_ptr> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        torch::NoGradGuard no_grad;
        // Start together, so that the calls overlap from the first one.
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < calls; ++i) {
          if (!forward().equal(expected)) mismatches.fetch_add(1);
        }
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  return mismatches.load();
}

/// A 64 -> 64 QuantizedLinear with W8 per-channel weights and A8 input and output, calibrated
/// and in eval mode.
qs::nn::QuantizedLinear calibrated_linear(const at::Tensor& x) {
  qs::nn::QuantizedLinear q(torch::nn::LinearOptions(64, 64));
  q->param_quantizers["weight"] = qs::affine::QuantizeDequantize({64, 1}, 8, true);
  q->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  q->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  {
    torch::NoGradGuard no_grad;
    auto calibrating = q->compute_encodings();
    q(x);
  }
  q->eval();
  return q;
}

/// What the module must compute, assembled from its quantizers: oq(linear(iq(x), wq(W), b)).
at::Tensor composed(qs::nn::QuantizedLinear& q, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  auto input = q->input_quantizers[0].get();
  auto weight = q->param_quantizers["weight"].get();
  auto output = q->output_quantizers[0].get();
  return output->fake_quantize(torch::nn::functional::linear(
      input->fake_quantize(x), weight->fake_quantize(q->weight), q->bias));
}

std::string message_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const c10::Error& error) {
    return error.what_without_backtrace();
  }
  return "(no error)";
}

/// A recorder that stops the forward of the thread that installed it at the module's first input
/// slot until release(): a forward that is certainly running while another thread acts.
class PausingRecorder : public qs::nn::ForwardRecorder {
 public:
  void on_input(const qs::nn::BaseQuantizationMixin&, size_t, const at::Tensor&) override {
    std::unique_lock<std::mutex> lock(mutex_);
    inside_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_; });
  }
  void on_output(const qs::nn::BaseQuantizationMixin&, size_t, const at::Tensor&) override {}

  void wait_until_inside() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return inside_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool inside_ = false;
  bool released_ = false;
};

/// Runs `q(x)` on another thread, paused inside the module until the returned function is
/// called (which resumes and joins it).
std::function<void()> forward_paused_inside(qs::nn::QuantizedLinear q, at::Tensor x,
                                            PausingRecorder& recorder) {
  auto thread = std::make_shared<std::thread>([q, x, &recorder]() mutable {
    torch::NoGradGuard no_grad;
    qs::nn::RecordingScope recording(recorder);
    q(x);
  });
  recorder.wait_until_inside();
  return [thread, &recorder] {
    recorder.release();
    thread->join();
  };
}

}  // namespace

// The harness of the report: 4 threads x 20,000 calls of one calibrated QuantizedLinear crashed
// (the per-module cache of quantized parameters and the parameter members patched during the call
// were written by every thread).
TEST(ConcurrentInference, QuantizedLinearFromFourThreadsGivesTheSingleThreadOutput) {
  torch::manual_seed(0);
  const auto x = torch::randn({1, 64});
  auto q = calibrated_linear(x);
  torch::NoGradGuard no_grad;
  const auto expected = q(x);
  ASSERT_TRUE(expected.equal(composed(q, x)));

  EXPECT_EQ(mismatches_on_threads(
                stress_calls(), [&] { return q(x); }, expected),
            0);
  // The module still computes the same afterwards.
  EXPECT_TRUE(q(x).equal(expected));
}

TEST(ConcurrentInference, ConvertedConvModelAfterSimulationSetUp) {
  torch::manual_seed(1);
  torch::nn::Sequential float_model(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
                                    torch::nn::BatchNorm2d(4), torch::nn::ReLU(),
                                    torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)),
                                    torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3)),
                                    torch::nn::Flatten(), torch::nn::Linear(4 * 2 * 2, 10));
  float_model->eval();
  auto model = qs::nn::convert(float_model);
  const auto sample = torch::randn({2, 1, 8, 8});
  qs::QuantizationSimModel sim(model.ptr(), [&] { model->forward(sample); });
  sim.compute_encodings([&] {
    torch::NoGradGuard no_grad;
    model->forward(torch::randn({8, 1, 8, 8}));
  });
  model->eval();

  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 1, 8, 8});
  const auto expected = model->forward(x);
  EXPECT_EQ(mismatches_on_threads(
                std::max(1, stress_calls() / 20), [&] { return model->forward(x); }, expected),
            0);
}

namespace {
namespace nn = quantsim::nn::drop_in;

struct ResidualNetImpl : nn::Module {
  ResidualNetImpl() {
    register_module("conv1", conv1);
    register_module("relu", relu);
    register_module("conv2", conv2);
    register_module("add", add);
    register_module("fc", fc);
  }
  at::Tensor forward(const at::Tensor& x) {
    auto h = relu(conv1(x));
    h = add(h, conv2(h));
    return fc(h.flatten(1));
  }
  nn::Conv2d conv1{nn::Conv2dOptions(1, 4, 3).padding(1)};
  nn::ReLU relu;
  nn::Conv2d conv2{nn::Conv2dOptions(4, 4, 3).padding(1)};
  nn::custom::Add add;
  nn::Linear fc{4 * 6 * 6, 10};
};
TORCH_MODULE(ResidualNet);

}  // namespace

TEST(ConcurrentInference, DropInModelAfterSimulationSetUpAndCalibration) {
  torch::manual_seed(2);
  ResidualNet net;
  const auto sample = torch::randn({2, 1, 6, 6});
  qs::QuantizationSimModel sim(
      net.ptr(), [&] { net(sample); }, qs::SimOptions().default_param_bw(4));
  sim.compute_encodings([&] {
    torch::NoGradGuard no_grad;
    net(torch::randn({8, 1, 6, 6}));
  });
  net->eval();

  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 1, 6, 6});
  const auto expected = net(x);
  EXPECT_EQ(mismatches_on_threads(
                std::max(1, stress_calls() / 20), [&] { return net(x); }, expected),
            0);
}

// The cache of quantized parameters is refreshed when the range or the parameter changes between
// calls, also after (and for) calls from several threads.
TEST(ConcurrentInference, CachedParametersFollowRangeAndParameterChanges) {
  torch::manual_seed(3);
  const auto x = torch::randn({2, 64});
  auto q = calibrated_linear(x);
  torch::NoGradGuard no_grad;
  const auto before = q(x);
  const int calls = std::max(1, stress_calls() / 100);
  ASSERT_EQ(mismatches_on_threads(
                calls, [&] { return q(x); }, before),
            0);

  q->param_quantizers["weight"]->set_range(-0.05, 0.05);
  const auto narrowed = composed(q, x);
  ASSERT_FALSE(narrowed.equal(before));
  EXPECT_TRUE(q(x).equal(narrowed));
  EXPECT_EQ(mismatches_on_threads(
                calls, [&] { return q(x); }, narrowed),
            0);

  q->weight.mul_(0.5);  // in place: same tensor, new version
  const auto halved = composed(q, x);
  ASSERT_FALSE(halved.equal(narrowed));
  EXPECT_EQ(mismatches_on_threads(
                calls, [&] { return q(x); }, halved),
            0);
  EXPECT_TRUE(q(x).equal(halved));
}

// The first calls initialize the weight quantizer lazily (docs/modules.md §2): four threads
// making their first call at once initialize it once, and all get the output of a copy
// initialized on one thread.
TEST(ConcurrentInference, LazyParameterInitializationOnFirstConcurrentCalls) {
  torch::manual_seed(5);
  qs::nn::QuantizedLinear q(torch::nn::LinearOptions(64, 64));
  q->param_quantizers["weight"] = qs::affine::QuantizeDequantize({64, 1}, 8, true);
  q->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  q->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  q->input_quantizers[0]->set_range(-3.0, 3.0);
  q->output_quantizers[0]->set_range(-2.0, 2.0);
  q->eval();
  auto copy = std::dynamic_pointer_cast<qs::nn::QuantizedLinearImpl>(q->clone());
  ASSERT_FALSE(q->param_quantizers["weight"]->is_initialized());
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 64});
  const auto expected = copy->forward(x);

  EXPECT_EQ(mismatches_on_threads(
                std::max(1, stress_calls() / 100), [&] { return q(x); }, expected),
            0);
  EXPECT_TRUE(q->param_quantizers["weight"]->is_initialized());
  EXPECT_TRUE(q->param_quantizers["weight"]->get_max()->equal(
      *copy->param_quantizers["weight"]->get_max()));
}

// Calibration from another thread is fine as long as it is not concurrent: a scope opened on
// this thread and a forward on a worker, one after the other.
TEST(ConcurrentInference, CalibrationFromAnotherThreadOneAtATime) {
  torch::manual_seed(4);
  qs::nn::QuantizedLinear q(torch::nn::LinearOptions(8, 8));
  q->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  const auto x = torch::randn({4, 8});
  std::string message = "(no error)";
  {
    auto calibrating = q->compute_encodings();
    std::thread worker([&] {
      torch::NoGradGuard no_grad;
      message = message_of([&] { q(x); });
    });
    worker.join();
  }
  EXPECT_EQ(message, "(no error)");
  EXPECT_TRUE(q->output_quantizers[0]->is_initialized());
}

TEST(ConcurrentInferenceMisuse, SecondCalibrationScopeOnAnotherThreadIsAnError) {
  const auto x = torch::randn({4, 8});
  qs::nn::QuantizedLinear q(torch::nn::LinearOptions(8, 8));
  q->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  std::mutex mutex;
  std::condition_variable changed;
  bool opened = false, done = false;
  std::thread first([&] {
    auto calibrating = q->compute_encodings();
    q(x);
    std::unique_lock<std::mutex> lock(mutex);
    opened = true;
    changed.notify_all();
    changed.wait(lock, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return opened; });
  }
  const auto message = message_of([&] { auto calibrating = q->compute_encodings(); });
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    changed.notify_all();
  }
  first.join();
  EXPECT_NE(message.find("compute_encodings() entered from a second thread while another thread "
                         "is inside it"),
            std::string::npos)
      << message;
  EXPECT_EQ(
      message.rfind("quantsim::nn::QuantizedLinear(in_features=8, out_features=8, bias=true): ", 0),
      0u)
      << message;
  // The first thread's calibration was not disturbed, and the module can be calibrated again.
  EXPECT_TRUE(q->output_quantizers[0]->is_initialized());
  EXPECT_EQ(message_of([&] { auto calibrating = q->compute_encodings(); }), "(no error)");
}

TEST(ConcurrentInferenceMisuse, CalibratingForwardWhileAnotherThreadIsInsideOneIsAnError) {
  const auto x = torch::randn({4, 8});
  qs::nn::QuantizedLinear q(torch::nn::LinearOptions(8, 8));
  q->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
  std::string message;
  {
    auto calibrating = q->compute_encodings();
    PausingRecorder recorder;
    auto resume = forward_paused_inside(q, x, recorder);
    message = message_of([&] { q(x); });
    resume();
  }
  EXPECT_NE(message.find("forward called inside compute_encodings() from a second thread while "
                         "another thread is calibrating the module"),
            std::string::npos)
      << message;
  // The calibration of the first thread's batch completed.
  ASSERT_TRUE(q->output_quantizers[0]->is_initialized());
}

TEST(ConcurrentInferenceMisuse, CalibrationWhileInferenceRunsIsAnError) {
  const auto x = torch::randn({4, 64});
  auto q = calibrated_linear(x);
  torch::NoGradGuard no_grad;
  const auto expected = q(x);
  PausingRecorder recorder;
  auto resume = forward_paused_inside(q, x, recorder);
  const auto message = message_of([&] { auto calibrating = q->compute_encodings(); });
  resume();
  EXPECT_NE(message.find("compute_encodings() entered while 1 forward call(s) of the module are "
                         "running"),
            std::string::npos)
      << message;
  // Nothing changed: same output, and calibration works once the call has returned.
  EXPECT_TRUE(q(x).equal(expected));
  EXPECT_EQ(message_of([&] { auto calibrating = q->compute_encodings(); }), "(no error)");
}

TEST(ConcurrentInferenceMisuse, QuantizerCalibratedFromTwoThreadsIsAnError) {
  auto quantizer = qs::affine::QuantizeDequantize({}, 8, false);
  std::mutex mutex;
  std::condition_variable changed;
  bool opened = false, done = false;
  std::thread first([&] {
    auto calibrating = quantizer->compute_encodings();
    quantizer(torch::arange(4.0));
    std::unique_lock<std::mutex> lock(mutex);
    opened = true;
    changed.notify_all();
    changed.wait(lock, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return opened; });
  }
  const auto message = message_of([&] { auto calibrating = quantizer->compute_encodings(); });
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    changed.notify_all();
  }
  first.join();
  EXPECT_EQ(message,
            "QuantizeDequantize(shape=[], qmin=0, qmax=255, symmetric=false): compute_encodings() "
            "entered from a second thread while another thread is inside it; calibration of one "
            "quantizer is not thread-safe");
  // The first thread's range stands: [0, 3].
  EXPECT_FLOAT_EQ(quantizer->get_max()->item<float>(), 3.0f);
}
