// Precompiled header of the fuzz targets: the torch and quantsim headers they share.
#pragma once
#include <quantsim/quantsim.h>
#include <torch/torch.h>
