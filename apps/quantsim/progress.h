#pragma once

/// Progress of a long step (an epoch, a calibration, an evaluation): a bar redrawn in place on a
/// terminal, a few plain lines in a log.

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace quantsim::apps {

/// True when standard output is a terminal (bars are drawn only there).
bool stdout_is_terminal();

/// How a Progress shows itself.
enum class ProgressStyle {
  kBar,  ///< one line redrawn with '\r', at most ten times a second
  /// for logs and pipes: a line when done, and at 25%, 50% and 75% once the step has run 5 s
  kPlain,
};

/// A progress indicator over `total` steps.
///
/// Bar style draws `label [#######.............]  35% 164/469 0:07<0:13 loss 0.41` and redraws
/// it in place; plain style writes `label: 25% (118/469) 6.1 s loss 0.52` at each quarter
/// reached after the first 5 s (short steps only get the last line). Both
/// end with `label: done 469/469 in 12.3 s loss 0.38` from finish() (or the destructor).
///
///     Progress progress(std::cout, "epoch 1/3", batches.size());
///     for (...) { ...; progress.advance(1, "loss " + format_fixed(loss, 2)); }
///     progress.finish();
class Progress {
 public:
  /// Seconds since some fixed point; injectable so that tests see fixed times.
  using Clock = std::function<double()>;

  Progress(std::ostream& out, std::string label, int64_t total, ProgressStyle style,
           Clock clock = steady_seconds);
  /// Bar style when standard output is a terminal, plain otherwise.
  Progress(std::ostream& out, std::string label, int64_t total);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  /// Calls finish() if it was not called.
  ~Progress();

  /// Adds `steps` done steps; `status` (e.g. the running loss) is shown after the counts.
  void advance(int64_t steps = 1, const std::string& status = "");
  /// Writes the final line; `status` replaces the last status when not empty. Returns the
  /// seconds elapsed since construction.
  double finish(const std::string& status = "");

  int64_t done() const { return done_; }
  double elapsed() const { return clock_() - start_; }

  static double steady_seconds();

 private:
  void draw_bar(double now);

  std::ostream& out_;
  std::string label_;
  int64_t total_;
  ProgressStyle style_;
  Clock clock_;
  double start_;
  double last_draw_ = -1.0;
  int64_t done_ = 0;
  int next_quarter_ = 1;
  std::string status_;
  bool finished_ = false;
  size_t drawn_width_ = 0;
};

/// `value` with `digits` digits after the point ("0.41").
std::string format_fixed(double value, int digits);
/// A duration as "m:ss", whole seconds truncated ("0:07", "12:45").
std::string format_minutes(double seconds);

}  // namespace quantsim::apps
