// Precompiled header of the Python extension: torch's Python bindings and pybind11, which every
// translation unit of the extension includes.
#pragma once
#include <torch/csrc/utils/pybind.h>
#include <torch/extension.h>
