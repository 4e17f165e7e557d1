// `quantsim._C`: libquantsim for the Python package (docs/python.md). Importing it also registers
// the `quantsim` operator library, so `torch.ops.quantsim.*` exist once `quantsim` is imported.

#include "bindings.h"

#include <quantsim/version.h>

PYBIND11_MODULE(_C, m) {
  namespace qp = quantsim::python;
  m.doc() = "quantsim's C++ core: quantizers, encoding analyzers, encodings and kernels";
  qp::bind_errors(m);
  qp::bind_encodings(m);
  qp::bind_analyzers(m);
  qp::bind_functional(m);
  qp::bind_quantizers(m);
  qp::bind_sim(m);
  qp::bind_distributed(m);
  qp::bind_custom_ops(m);
  m.attr("__version__") = quantsim::kVersion;
}
