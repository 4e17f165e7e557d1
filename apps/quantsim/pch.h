// Precompiled header of the quantsim program: the torch headers its translation units share.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>
