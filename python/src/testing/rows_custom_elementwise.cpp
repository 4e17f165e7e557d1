// The rows of tests/nn/module_table_custom_elementwise_test.cpp (see rows.h).

#include "nn/module_table_custom_elementwise_test.cpp"

#include "rows.h"

namespace quantsim::python::testing {

std::vector<Row> custom_elementwise_rows() {
  std::vector<Row> all;
  for (auto& r : ::rows()) all.push_back(std::move(r));
  return all;
}

}  // namespace quantsim::python::testing
