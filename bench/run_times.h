#pragma once

// Keeps one time per benchmark for the summaries the benchmark binaries print: the median when
// --benchmark_repetitions gives one (this machine is shared and noisy), else the single run.

#include <benchmark/benchmark.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace quantsim::bench {

class RunTimes {
 public:
  void record(const std::vector<benchmark::BenchmarkReporter::Run>& runs) {
    using Run = benchmark::BenchmarkReporter::Run;
    for (const auto& r : runs) {
      const std::string name = r.run_name.str();
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (median || (r.run_type == Run::RT_Iteration && !medians_.count(name))) {
        times_[name] = r.GetAdjustedRealTime();
      }
      if (median) medians_.insert(name);
    }
  }

  /// Time of `name` registered with `->Arg(threads)->UseRealTime()`, 0 if it did not run.
  double time(const std::string& name, int threads) const {
    const auto it = times_.find(name + "/" + std::to_string(threads) + "/real_time");
    return it == times_.end() ? 0.0 : it->second;
  }

 private:
  std::map<std::string, double> times_;
  std::set<std::string> medians_;
};

/// A console reporter that also records run times for a summary.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    times.record(runs);
  }
  RunTimes times;
};

}  // namespace quantsim::bench
