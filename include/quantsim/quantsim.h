#pragma once

/// Umbrella header: everything quantsim offers. Users write `namespace qs = quantsim;`.

#include <quantsim/affine/encoding.h>
#include <quantsim/affine/functional.h>
#include <quantsim/affine/grid.h>
#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/encoding.h>
#include <quantsim/errors.h>
#include <quantsim/quantizer_base.h>
#include <quantsim/tensor.h>
#include <quantsim/version.h>
