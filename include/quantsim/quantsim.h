#pragma once

/// Umbrella header: everything quantsim offers. Users write `namespace qs = quantsim;`.

#include <quantsim/affine/encoding.h>
#include <quantsim/affine/functional.h>
#include <quantsim/affine/grid.h>
#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/analyzers/histogram.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>
#include <quantsim/encoding.h>
#include <quantsim/errors.h>
#include <quantsim/floating/encoding.h>
#include <quantsim/floating/format.h>
#include <quantsim/floating/functional.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/logging.h>
#include <quantsim/nn/custom.h>
#include <quantsim/nn/drop_in.h>
#include <quantsim/nn/float_modules.h>
#include <quantsim/nn/modules.h>
#include <quantsim/quantizer_base.h>
#include <quantsim/sim/atomic_file.h>
#include <quantsim/sim/config.h>
#include <quantsim/sim/encodings_io.h>
#include <quantsim/sim/quantsim_model.h>
#include <quantsim/tensor.h>
#include <quantsim/version.h>
