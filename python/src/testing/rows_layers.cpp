// The rows of tests/nn/module_table_layers_test.cpp (see rows.h).

#include "nn/module_table_layers_test.cpp"

#include "rows.h"

namespace quantsim::python::testing {

std::vector<Row> layers_rows() {
  std::vector<Row> all;
  for (auto& r : ::normalization_rows()) all.push_back(std::move(r));
  for (auto& r : ::conv_rows()) all.push_back(std::move(r));
  for (auto& r : ::linear_rows()) all.push_back(std::move(r));
  return all;
}

}  // namespace quantsim::python::testing
