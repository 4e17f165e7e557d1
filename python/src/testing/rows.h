#pragma once

/// The C++ module table rows (tests/nn/module_table_*_test.cpp, compiled without their gtest
/// suites: the target defines QUANTSIM_MODULE_TABLE_ROWS_ONLY), one function per test file, for
/// the test-only extension `quantsim._testing`.

#include "nn/module_table.h"

#include <vector>

namespace quantsim::python::testing {

using quantsim::testing::module_table::Row;

std::vector<Row> activation_pooling_rows();
std::vector<Row> layers_rows();
std::vector<Row> shape_loss_rows();
std::vector<Row> recurrent_rows();
std::vector<Row> custom_elementwise_rows();
std::vector<Row> custom_tensor_rows();

}  // namespace quantsim::python::testing
