#pragma once

// The `main` every benchmark binary shares: keep glibc from returning large blocks (page faults
// cost ~190 ms per fresh 64 MiB here), run the registered benchmarks with a recording reporter,
// then print the binary's summary of ratios.

#include "run_times.h"

#include <benchmark/benchmark.h>

#include <malloc.h>

#include <cstdio>

namespace quantsim::bench {

inline int run_main(int argc, char** argv, const char* binary, void (*register_all)(),
                    void (*print_summary)(const RunTimes&)) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  std::printf("%s: glibc mallopt keeps large blocks (M_MMAP_THRESHOLD=M_TRIM_THRESHOLD=1 GiB)\n",
              binary);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(reporter.times);
  benchmark::Shutdown();
  return 0;
}

}  // namespace quantsim::bench
