#pragma once

/// Every quantized module of the module table (spec §3.6, §3.7), the mixins, from_module and
/// convert.

#include <quantsim/nn/calibration.h>
#include <quantsim/nn/convert.h>
#include <quantsim/nn/modules/activation.h>
#include <quantsim/nn/modules/conv.h>
#include <quantsim/nn/modules/custom_elementwise.h>
#include <quantsim/nn/modules/custom_tensor.h>
#include <quantsim/nn/modules/linear.h>
#include <quantsim/nn/modules/loss.h>
#include <quantsim/nn/modules/normalization.h>
#include <quantsim/nn/modules/pooling.h>
#include <quantsim/nn/modules/rnn.h>
#include <quantsim/nn/modules/shape.h>
#include <quantsim/nn/registry.h>
