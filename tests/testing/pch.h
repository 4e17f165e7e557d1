// Precompiled header of the test binaries: gtest, torch and quantsim's umbrella header (parsed
// once, with the module table's class declarations, instead of once per test file).
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <quantsim/quantsim.h>
