// Precompiled header of the quantsim library: the torch headers every translation unit needs.
#pragma once
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>
