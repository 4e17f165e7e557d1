#pragma once

/// The custom float modules (docs/modules.md §6: `quantsim::nn::custom::Add`, ...): torch functions
/// as modules, so that each call site gets its own quantizers in the quantized module table.

#include <quantsim/nn/custom/detection.h>
#include <quantsim/nn/custom/elementwise.h>
#include <quantsim/nn/custom/linear.h>
#include <quantsim/nn/custom/normalization.h>
#include <quantsim/nn/custom/reduction.h>
#include <quantsim/nn/custom/scatter_gather.h>
#include <quantsim/nn/custom/spatial.h>
#include <quantsim/nn/custom/stateless.h>
#include <quantsim/nn/custom/stateless_ops.h>
#include <quantsim/nn/custom/tensor_ops.h>
