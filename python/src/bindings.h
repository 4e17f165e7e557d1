#pragma once

/// The pieces of the extension module `quantsim._C` (docs/python.md): each binds one layer of
/// libquantsim; module.cpp calls them in dependency order.

#include <torch/csrc/utils/pybind.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace quantsim::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_encodings(py::module_& m);
void bind_analyzers(py::module_& m);
void bind_functional(py::module_& m);
void bind_quantizers(py::module_& m);
void bind_sim(py::module_& m);
void bind_distributed(py::module_& m);
void bind_custom_ops(py::module_& m);

/// A shape as the reference takes it: an int `n` is `(n,)`, any sequence of ints (tuple, list,
/// torch.Size) is itself; c10::TypeError otherwise.
std::vector<int64_t> shape_from(const py::handle& shape);

/// JSON values to Python objects and back, through Python's json module (encodings and configs
/// are small: the round trip through text costs nothing that matters).
py::object to_python(const nlohmann::json& value);
nlohmann::json from_python(const py::handle& value);

/// A torch.dtype object as an at::ScalarType; c10::TypeError for anything else.
at::ScalarType dtype_from(const py::handle& dtype);
/// The torch.dtype object of an at::ScalarType.
py::object dtype_object(at::ScalarType dtype);

}  // namespace quantsim::python
