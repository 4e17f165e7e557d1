#pragma once

/// Recording which tensors quantized modules read and write, so that a whole-model simulation can
/// learn which module's output feeds which module without a graph tracer.

#include <ATen/core/Tensor.h>

#include <cstddef>

namespace quantsim::nn {

class BaseQuantizationMixin;

/// Receives every tensor a quantized module hands to one of its input or output slots (filled
/// or empty) while a RecordingScope is active on the calling thread. Only the fake-quantization
/// path reports: a module running a kernel is not recorded.
class ForwardRecorder {
 public:
  virtual ~ForwardRecorder() = default;
  /// `x` is about to go through input slot `index` of `module`.
  virtual void on_input(const BaseQuantizationMixin& module, size_t index, const at::Tensor& x) = 0;
  /// `y` is about to go through output slot `index` of `module`.
  virtual void on_output(const BaseQuantizationMixin& module, size_t index,
                         const at::Tensor& y) = 0;
};

/// Makes `recorder` receive this thread's quantized-module tensors while it lives (scopes nest;
/// the innermost receives).
///
///     MyRecorder recorder;
///     { qs::nn::RecordingScope recording(recorder); model->forward(sample); }
class RecordingScope {
 public:
  explicit RecordingScope(ForwardRecorder& recorder);
  ~RecordingScope();
  RecordingScope(const RecordingScope&) = delete;
  RecordingScope& operator=(const RecordingScope&) = delete;

  /// The recorder of the innermost active scope on this thread, or null.
  static ForwardRecorder* active();

 private:
  ForwardRecorder* previous_;
};

}  // namespace quantsim::nn
