#pragma once

/// `quantsim demo --nproc N`: N local ranks of this program, started as torchrun starts them
/// (docs/distributed.md §7).

#include <ostream>

namespace quantsim::apps {

/// Starts `nproc` copies of this program (/proc/self/exe) with `argv` and MASTER_ADDR=127.0.0.1,
/// MASTER_PORT (a free port), RANK, WORLD_SIZE set, and waits for them. When a rank fails, the
/// others are given `grace_seconds` to stop on their own (their next collective fails) and are
/// then killed. Returns 0 when every rank succeeded, else the first failed rank's exit status
/// (128 + signal when killed). Each failed rank is named on `err` as it is reaped ("quantsim:
/// rank 1 of 2 failed (exit status 1); stopping the others", then the peers it brought down, or
/// "... killed after 60 s"); the ranks' own messages say which failure was the cause.
int launch_local_ranks(int argc, const char* const* argv, int nproc, std::ostream& err,
                       int grace_seconds = 60);

}  // namespace quantsim::apps
