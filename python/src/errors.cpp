// quantsim's errors as Python exceptions (DESIGN.md, "Errors"): each c10 error kind becomes the
// Python exception the reference raises in the same situation, with the message without its C++
// backtrace. Registered first, so every binding that follows throws the right Python type.

#include "bindings.h"

#include <quantsim/errors.h>

#include <torch/csrc/Dtype.h>
#include <torch/csrc/DynamicTypes.h>

namespace quantsim::python {

void bind_errors(py::module_& m) {
  // Subclasses of RuntimeError, so `except RuntimeError` catches them as the reference's do.
  static py::exception<quantsim::EncodingError> encoding_error(m, "EncodingError",
                                                               PyExc_RuntimeError);
  static py::exception<quantsim::StatisticsNotFoundError> statistics_not_found(
      m, "StatisticsNotFoundError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const quantsim::EncodingError& e) {
      encoding_error(e.what_without_backtrace());
    } catch (const quantsim::StatisticsNotFoundError& e) {
      statistics_not_found(e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
    } catch (const c10::NotImplementedError& e) {
      PyErr_SetString(PyExc_NotImplementedError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
}

std::vector<int64_t> shape_from(const py::handle& shape) {
  if (py::isinstance<py::int_>(shape) && !py::isinstance<py::bool_>(shape)) {
    return {shape.cast<int64_t>()};
  }
  TORCH_CHECK_TYPE(py::isinstance<py::sequence>(shape) && !py::isinstance<py::str>(shape),
                   "`shape` must be an int or a sequence of ints, got ",
                   py::str(py::repr(shape)).cast<std::string>());
  std::vector<int64_t> sizes;
  for (const auto& item : shape) {
    TORCH_CHECK_TYPE(py::isinstance<py::int_>(item) && !py::isinstance<py::bool_>(item),
                     "`shape` must hold ints, got ", py::str(py::repr(shape)).cast<std::string>());
    sizes.push_back(item.cast<int64_t>());
  }
  return sizes;
}

py::object to_python(const nlohmann::json& value) {
  return py::module_::import("json").attr("loads")(value.dump());
}

nlohmann::json from_python(const py::handle& value) {
  const auto text = py::module_::import("json").attr("dumps")(value).cast<std::string>();
  return nlohmann::json::parse(text);
}

at::ScalarType dtype_from(const py::handle& dtype) {
  TORCH_CHECK_TYPE(THPDtype_Check(dtype.ptr()), "expected a torch.dtype, got ",
                   py::str(py::repr(dtype)).cast<std::string>());
  return reinterpret_cast<THPDtype*>(dtype.ptr())->scalar_type;
}

py::object dtype_object(at::ScalarType dtype) {
  return py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(torch::getTHPDtype(dtype)));
}

}  // namespace quantsim::python
