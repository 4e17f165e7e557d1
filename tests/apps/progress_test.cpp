// Progress output with a fixed clock: plain lines for logs, a redrawn bar for terminals.
#include "apps/quantsim/progress.h"

#include <gtest/gtest.h>

#include <sstream>

namespace quantsim::apps {
namespace {

TEST(Progress, PlainWritesALinePerQuarterAndOneWhenDone) {
  std::ostringstream out;
  double now = 10.0;
  {
    Progress progress(out, "epoch 1/2", 8, ProgressStyle::kPlain, [&] { return now; });
    now = 16.0;
    progress.advance(1, "loss 0.900");
    EXPECT_EQ(out.str(), "");
    now = 17.0;
    progress.advance(1, "loss 0.800");  // 2/8: 25%
    now = 18.5;
    progress.advance(3);  // 5/8 crosses 50% only; the status stays
    now = 19.0;
    progress.advance(1, "loss 0.700");  // 6/8: 75%
    now = 20.0;
    progress.advance(2, "loss 0.650");  // done: no quarter line, finish() writes it
    EXPECT_EQ(progress.done(), 8);
    EXPECT_DOUBLE_EQ(progress.finish(), 10.0);
    EXPECT_DOUBLE_EQ(progress.finish("ignored"), 10.0);  // once only
  }
  EXPECT_EQ(out.str(),
            "epoch 1/2: 25% (2/8) 7.0 s loss 0.800\n"
            "epoch 1/2: 50% (5/8) 8.5 s loss 0.800\n"
            "epoch 1/2: 75% (6/8) 9.0 s loss 0.700\n"
            "epoch 1/2: done 8/8 in 10.0 s loss 0.650\n");
}

TEST(Progress, PlainShortStepsWriteOnlyTheLastLine) {
  std::ostringstream out;
  double now = 0.0;
  Progress progress(out, "calibrate", 4, ProgressStyle::kPlain, [&] { return now; });
  for (int i = 0; i < 3; ++i) {
    now += 1.5;  // 4.5 s at 75%: still under the 5 s of silence
    progress.advance();
  }
  now = 5.0;
  progress.advance();
  progress.finish("ok");
  EXPECT_EQ(out.str(), "calibrate: done 4/4 in 5.0 s ok\n");
}

TEST(Progress, PlainJumpOverSeveralQuartersWritesTheLast) {
  std::ostringstream out;
  double now = 0.0;
  Progress progress(out, "calibrate", 4, ProgressStyle::kPlain, [&] { return now; });
  now = 6.0;
  progress.advance(3);
  now = 7.0;
  progress.advance(5);  // clamped to the total
  progress.finish("ok");
  EXPECT_EQ(out.str(), "calibrate: 75% (3/4) 6.0 s\ncalibrate: done 4/4 in 7.0 s ok\n");
}

TEST(Progress, DestructorFinishes) {
  std::ostringstream out;
  double now = 0.0;
  {
    Progress progress(out, "evaluate", 0, ProgressStyle::kPlain, [&] { return now; });
  }
  EXPECT_EQ(out.str(), "evaluate: done 0/0 in 0.0 s\n");
}

TEST(Progress, BarRedrawsInPlaceAtMostTenTimesASecond) {
  std::ostringstream out;
  double now = 0.0;
  Progress progress(out, "eval", 4, ProgressStyle::kBar, [&] { return now; });
  const std::string empty = "\reval [..............................]   0% 0/4 0:00";
  EXPECT_EQ(out.str(), empty);
  now = 0.05;
  progress.advance(1);  // within 0.1 s of the last drawing: not redrawn
  EXPECT_EQ(out.str(), empty);
  now = 10.0;
  progress.advance(1, "acc 90.00%");
  const std::string half = "\reval [###############...............]  50% 2/4 0:10<0:10 acc 90.00%";
  EXPECT_EQ(out.str(), empty + half);
  now = 10.02;
  progress.advance(2, "acc 91.00%");  // the last step is always drawn
  const std::string full = "\reval [##############################] 100% 4/4 0:10 acc 91.00%";
  // Padded over the longer previous bar (it had an ETA).
  EXPECT_EQ(out.str(), empty + half + full + std::string(half.size() - full.size(), ' '));
  progress.finish();
  // The final line is padded over the longer bar.
  std::string done = "\reval: done 4/4 in 10.0 s acc 91.00%";
  done.append(full.size() - done.size(), ' ');
  EXPECT_EQ(out.str(),
            empty + half + full + std::string(half.size() - full.size(), ' ') + done + "\n");
}

TEST(Progress, Formatting) {
  EXPECT_EQ(format_fixed(0.4149, 2), "0.41");
  EXPECT_EQ(format_fixed(-1.25, 1), "-1.2");  // printf rounds the binary value 1.25 to even
  EXPECT_EQ(format_minutes(7.9), "0:07");
  EXPECT_EQ(format_minutes(765), "12:45");
  EXPECT_EQ(format_minutes(-3), "0:00");
}

}  // namespace
}  // namespace quantsim::apps
