// The rows of tests/nn/module_table_shape_loss_test.cpp (see rows.h).

#include "nn/module_table_shape_loss_test.cpp"

#include "rows.h"

namespace quantsim::python::testing {

std::vector<Row> shape_loss_rows() {
  std::vector<Row> all;
  for (auto& r : ::shape_rows()) all.push_back(std::move(r));
  for (auto& r : ::loss_rows()) all.push_back(std::move(r));
  return all;
}

}  // namespace quantsim::python::testing
