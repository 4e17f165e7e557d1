#pragma once

/// What the simulation knows about the float module of each row of the quantized module table,
/// looked up by the row's name (`SimModule::type`: "Conv2d", "Add"). The answers are columns of
/// the table in tools/module_table.py, which generates their definitions
/// (src/sim/module_facts.cpp).
///
///     quantsim::onnx_op_type("Linear");                 // "Gemm"
///     quantsim::weight_channel_axis("ConvTranspose2d");  // 1

#include <cstdint>
#include <string>

namespace quantsim {

/// The ONNX op type a module class exports to ("Conv2d" -> "Conv", "Linear" -> "Gemm"), or "" when
/// it has none the configuration files use.
std::string onnx_op_type(const std::string& module_class);

/// The axis of the output channels of a module class's weight, along which per-channel
/// encodings run: 1 for a transposed conv's (in, out / groups, k...) weight, else 0.
int64_t weight_channel_axis(const std::string& module_class);

}  // namespace quantsim
