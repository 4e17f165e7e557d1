#include <quantsim/nn/forward_recorder.h>

namespace quantsim::nn {
namespace {
thread_local ForwardRecorder* active_recorder = nullptr;
}  // namespace

RecordingScope::RecordingScope(ForwardRecorder& recorder) : previous_(active_recorder) {
  active_recorder = &recorder;
}

RecordingScope::~RecordingScope() { active_recorder = previous_; }

ForwardRecorder* RecordingScope::active() { return active_recorder; }

}  // namespace quantsim::nn
