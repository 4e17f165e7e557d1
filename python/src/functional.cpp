// The functional API (quantsim::affine::quantize / dequantize / quantize_dequantize,
// quantsim::floating::quantize_dequantize) and the integer grid rules (reference §1.1). The
// Python wrappers in quantsim.quantization.affine derive (qmin, qmax) from the reference's
// argument forms (bitwidth/signed, num_steps/signed, qmin/qmax) with these grid functions.

#include "bindings.h"

#include <quantsim/affine/functional.h>
#include <quantsim/affine/grid.h>
#include <quantsim/floating/format.h>
#include <quantsim/floating/functional.h>

namespace quantsim::python {

namespace {

std::vector<int64_t> blocks_of(const py::object& block_size) {
  return block_size.is_none() ? std::vector<int64_t>{} : shape_from(block_size);
}

py::tuple grid_tuple(const affine::Grid& grid) { return py::make_tuple(grid.qmin, grid.qmax); }

}  // namespace

void bind_functional(py::module_& m) {
  m.def(
      "quantize",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset, int64_t qmin,
         int64_t qmax, const py::object& block_size) {
        return affine::quantize(x, scale, offset, qmin, qmax, blocks_of(block_size));
      },
      py::arg("input"), py::arg("scale"), py::arg("offset"), py::arg("qmin"), py::arg("qmax"),
      py::arg("block_size") = py::none());
  m.def(
      "dequantize",
      [](const at::Tensor& q, const at::Tensor& scale, const at::Tensor& offset,
         const py::object& block_size) {
        return affine::dequantize(q, scale, offset, blocks_of(block_size));
      },
      py::arg("input"), py::arg("scale"), py::arg("offset"), py::arg("block_size") = py::none());
  m.def(
      "quantize_dequantize",
      [](const at::Tensor& x, const at::Tensor& scale, const at::Tensor& offset, int64_t qmin,
         int64_t qmax, const py::object& block_size) {
        return affine::quantize_dequantize(x, scale, offset, qmin, qmax, blocks_of(block_size));
      },
      py::arg("input"), py::arg("scale"), py::arg("offset"), py::arg("qmin"), py::arg("qmax"),
      py::arg("block_size") = py::none());
  m.def(
      "float_quantize_dequantize",
      [](const at::Tensor& x, int64_t exponent_bits, int64_t mantissa_bits,
         const py::object& maxval) {
        return floating::quantize_dequantize(
            x, floating::FloatFormat::ieee(exponent_bits, mantissa_bits),
            maxval.is_none() ? at::Tensor() : maxval.cast<at::Tensor>());
      },
      py::arg("input"), py::arg("exponent_bits"), py::arg("mantissa_bits"),
      py::arg("maxval") = py::none());

  // Grid rules: each returns (qmin, qmax) and raises as the reference does.
  m.def(
      "grid_from_bitwidth",
      [](int64_t bitwidth, bool is_signed) {
        return grid_tuple(affine::Grid::from_bitwidth(bitwidth, is_signed));
      },
      py::arg("bitwidth"), py::arg("signed"));
  m.def(
      "grid_from_num_steps",
      [](int64_t num_steps, bool is_signed) {
        return grid_tuple(affine::Grid::from_num_steps(num_steps, is_signed));
      },
      py::arg("num_steps"), py::arg("signed"));
  m.def(
      "grid_from_range",
      [](int64_t qmin, int64_t qmax) { return grid_tuple(affine::Grid::from_range(qmin, qmax)); },
      py::arg("qmin"), py::arg("qmax"));
}

}  // namespace quantsim::python
