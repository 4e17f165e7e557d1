// Encodings (quantsim::EncodingBase and its kinds) as Python classes: the `encoding` a
// QuantizedTensor / DequantizedTensor carries and a quantizer's get_encoding() returns. They are
// immutable values; the Python names and properties are the reference's
// (`quantsim.quantization.affine.AffineEncoding`, `...float.FloatEncoding`).

#include "bindings.h"

#include <quantsim/affine/encoding.h>
#include <quantsim/encoding.h>
#include <quantsim/floating/encoding.h>

#include <torch/csrc/Dtype.h>

namespace quantsim::python {

using affine::AffineEncoding;

namespace {

py::object optional_tensor(const at::Tensor& t) { return t.defined() ? py::cast(t) : py::none(); }

/// `encoding.to(...)`: torch.dtype and/or device arguments in any order, as Tensor.to takes them.
std::shared_ptr<EncodingBase> encoding_to(const EncodingBase& encoding, const py::args& args,
                                          const py::kwargs& kwargs) {
  c10::optional<c10::Device> device;
  c10::optional<at::ScalarType> dtype;
  auto take = [&](const py::handle& value) {
    if (value.is_none()) return;
    if (THPDtype_Check(value.ptr())) {
      dtype = dtype_from(value);
    } else {
      device = c10::Device(py::str(value).cast<std::string>());
    }
  };
  for (const auto& arg : args) take(arg);
  if (kwargs.contains("dtype")) take(kwargs["dtype"]);
  if (kwargs.contains("device")) take(kwargs["device"]);
  return encoding.to(device, dtype);
}

}  // namespace

void bind_encodings(py::module_& m) {
  py::class_<EncodingBase, std::shared_ptr<EncodingBase>>(m, "EncodingBase")
      .def_property_readonly("mapping", &EncodingBase::mapping)
      .def_property_readonly("bitwidth", &EncodingBase::bitwidth)
      .def_property_readonly("granularity", &EncodingBase::granularity)
      .def_property_readonly("dtype", [](const EncodingBase& e) { return dtype_object(e.dtype()); })
      .def("quantize", &EncodingBase::quantize, py::arg("input"))
      .def("dequantize", &EncodingBase::dequantize, py::arg("input"))
      .def("to", &encoding_to)
      .def("_to_legacy_format",
           [](const EncodingBase& e) { return to_python(e.to_legacy_format()); })
      // Shallow copy shares the tensors; deepcopy (and clone) copies them (reference §4).
      .def("__copy__", &EncodingBase::copy)
      .def("__deepcopy__", [](const EncodingBase& e, const py::dict&) { return e.clone(); })
      .def("clone", &EncodingBase::clone)
      .def("detach", &EncodingBase::detach);

  py::class_<AffineEncoding, EncodingBase, std::shared_ptr<AffineEncoding>>(m, "AffineEncoding")
      .def(py::init([](at::Tensor scale, at::Tensor offset, int64_t qmin, int64_t qmax,
                       bool symmetry, const py::object& block_size) {
             std::vector<int64_t> blocks;
             if (!block_size.is_none()) blocks = shape_from(block_size);
             return std::make_shared<AffineEncoding>(std::move(scale), std::move(offset),
                                                     affine::Grid::from_range(qmin, qmax), symmetry,
                                                     std::move(blocks));
           }),
           py::arg("scale"), py::arg("offset"), py::arg("qmin"), py::arg("qmax"),
           py::arg("symmetry") = false, py::arg("block_size") = py::none())
      .def_property_readonly("scale", &AffineEncoding::scale)
      .def_property_readonly("offset", &AffineEncoding::offset)
      .def_property_readonly("qmin", &AffineEncoding::qmin)
      .def_property_readonly("qmax", &AffineEncoding::qmax)
      .def_property_readonly("num_steps", &AffineEncoding::num_steps)
      .def_property_readonly("symmetry", &AffineEncoding::symmetry)
      .def_property_readonly("signed", &AffineEncoding::is_signed)
      .def_property_readonly("min", &AffineEncoding::min)
      .def_property_readonly("max", &AffineEncoding::max)
      .def_property_readonly("block_size",
                             [](const AffineEncoding& e) -> py::object {
                               if (e.block_size().empty()) return py::none();
                               return py::tuple(py::cast(e.block_size()));
                             })
      .def("__repr__", [](const AffineEncoding& e) {
        return c10::str("AffineEncoding(qmin=", e.qmin(), ", qmax=", e.qmax(),
                        ", symmetry=", e.symmetry() ? "True" : "False",
                        ", granularity=", e.granularity(), ")");
      });

  py::class_<floating::FloatEncoding, EncodingBase, std::shared_ptr<floating::FloatEncoding>>(
      m, "FloatEncoding")
      .def(py::init([](int64_t mantissa_bits, int64_t exponent_bits, const py::object& maxval) {
             return std::make_shared<floating::FloatEncoding>(
                 mantissa_bits, exponent_bits,
                 maxval.is_none() ? at::Tensor() : maxval.cast<at::Tensor>());
           }),
           py::arg("mantissa_bits"), py::arg("exponent_bits"), py::arg("maxval") = py::none())
      .def_property_readonly("mantissa_bits", &floating::FloatEncoding::mantissa_bits)
      .def_property_readonly("exponent_bits", &floating::FloatEncoding::exponent_bits)
      .def_property_readonly(
          "maxval", [](const floating::FloatEncoding& e) { return optional_tensor(e.maxval()); });
}

}  // namespace quantsim::python
