#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace quantsim::apps {
namespace {
constexpr int kBarWidth = 30;
// Redrawing more often than this only costs time on slow terminals.
constexpr double kRedrawSeconds = 0.1;
// A log gets quarter lines only from steps that run this long; a short step's one line suffices.
constexpr double kPlainQuietSeconds = 5.0;
}  // namespace

bool stdout_is_terminal() { return isatty(fileno(stdout)) != 0; }

double Progress::steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::ostream& out, std::string label, int64_t total, ProgressStyle style,
                   Clock clock)
    : out_(out),
      label_(std::move(label)),
      total_(std::max<int64_t>(total, 0)),
      style_(style),
      clock_(std::move(clock)),
      start_(clock_()) {
  if (style_ == ProgressStyle::kBar) draw_bar(start_);
}

Progress::Progress(std::ostream& out, std::string label, int64_t total)
    : Progress(out, std::move(label), total,
               stdout_is_terminal() ? ProgressStyle::kBar : ProgressStyle::kPlain) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::advance(int64_t steps, const std::string& status) {
  done_ = std::min(total_, done_ + steps);
  if (!status.empty()) status_ = status;
  const double now = clock_();
  if (style_ == ProgressStyle::kBar) {
    if (now - last_draw_ >= kRedrawSeconds || done_ == total_) draw_bar(now);
    return;
  }
  // One line per quarter crossed; a jump over several quarters writes only the last.
  if (total_ == 0 || done_ == total_) return;
  int quarter = 0;
  while (next_quarter_ <= 3 && done_ * 4 >= total_ * next_quarter_) quarter = next_quarter_++;
  if (quarter == 0 || now - start_ < kPlainQuietSeconds) return;
  out_ << label_ << ": " << quarter * 25 << "% (" << done_ << "/" << total_ << ") "
       << format_fixed(now - start_, 1) << " s";
  if (!status_.empty()) out_ << " " << status_;
  out_ << "\n" << std::flush;
}

double Progress::finish(const std::string& status) {
  const double seconds = clock_() - start_;
  if (finished_) return seconds;
  finished_ = true;
  if (!status.empty()) status_ = status;
  std::ostringstream line;
  line << label_ << ": done " << done_ << "/" << total_ << " in " << format_fixed(seconds, 1)
       << " s";
  if (!status_.empty()) line << " " << status_;
  std::string text = line.str();
  if (style_ == ProgressStyle::kBar) {
    // Pad over the bar's characters so that none of them remain after the shorter final line.
    if (text.size() < drawn_width_) text.append(drawn_width_ - text.size(), ' ');
    out_ << "\r" << text << "\n" << std::flush;
  } else {
    out_ << text << "\n" << std::flush;
  }
  return seconds;
}

void Progress::draw_bar(double now) {
  last_draw_ = now;
  const double fraction = total_ > 0 ? static_cast<double>(done_) / total_ : 1.0;
  const int filled = static_cast<int>(std::floor(fraction * kBarWidth));
  const double elapsed = now - start_;
  std::ostringstream line;
  line << label_ << " [" << std::string(filled, '#') << std::string(kBarWidth - filled, '.')
       << "] ";
  const int percent = static_cast<int>(std::floor(fraction * 100));
  line << (percent < 10    ? "  "
           : percent < 100 ? " "
                           : "")
       << percent << "% " << done_ << "/" << total_ << " " << format_minutes(elapsed);
  if (done_ > 0 && done_ < total_) {
    line << "<" << format_minutes(elapsed * (total_ - done_) / done_);
  }
  if (!status_.empty()) line << " " << status_;
  std::string text = line.str();
  const size_t width = text.size();
  if (text.size() < drawn_width_) text.append(drawn_width_ - text.size(), ' ');
  drawn_width_ = width;
  out_ << "\r" << text << std::flush;
}

std::string format_fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string format_minutes(double seconds) {
  const auto total = static_cast<int64_t>(std::floor(std::max(seconds, 0.0)));
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", static_cast<long long>(total / 60),
                static_cast<long long>(total % 60));
  return buffer;
}

}  // namespace quantsim::apps
