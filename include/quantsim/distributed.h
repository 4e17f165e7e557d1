#pragma once

/// Data-parallel calibration and QAT on torch.distributed's engine (c10d), docs/distributed.md.
/// Kept out of <quantsim/quantsim.h>: the c10d headers add compile time.

#include <quantsim/distributed/calibration.h>
#include <quantsim/distributed/gradients.h>
#include <quantsim/distributed/process_group.h>
