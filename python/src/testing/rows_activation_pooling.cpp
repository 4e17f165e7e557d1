// The rows of tests/nn/module_table_activation_pooling_test.cpp (see rows.h).

#include "nn/module_table_activation_pooling_test.cpp"

#include "rows.h"

namespace quantsim::python::testing {

std::vector<Row> activation_pooling_rows() {
  std::vector<Row> all;
  for (auto& r : ::activation_rows()) all.push_back(std::move(r));
  for (auto& r : ::pooling_rows()) all.push_back(std::move(r));
  return all;
}

}  // namespace quantsim::python::testing
