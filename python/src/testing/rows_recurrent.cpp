// The rows of tests/nn/module_table_recurrent_test.cpp (see rows.h).

#include "nn/module_table_recurrent_test.cpp"

#include "rows.h"

namespace quantsim::python::testing {

std::vector<Row> recurrent_rows() {
  std::vector<Row> all;
  for (auto& r : ::recurrent_rows()) all.push_back(std::move(r));
  return all;
}

}  // namespace quantsim::python::testing
