// The quantizer modules (quantsim::affine::Quantize, QuantizeDequantize,
// GroupedBlockQuantizeDequantize, quantsim::floating::FloatQuantizeDequantize) as the engines of
// the Python quantizer classes (docs/python.md, "Quantizers"). A Python quantizer is a
// torch.nn.Module that owns one of these and registers the engine's own `min` / `max` tensors as
// its Parameters, so that autograd, optimizers and state_dict act on the tensors the C++ forward
// reads; everything else (grid, calibration, encodings, initialization tracking) is the engine's.

#include "bindings.h"

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/floating/quantizer.h>
#include <quantsim/quantizer_base.h>

#include <memory>
#include <sstream>

namespace quantsim::python {

namespace {

/// A quantizer's compute_encodings() scope as a Python context manager. On a normal exit the
/// range is set from the statistics; when the `with` block raised, nothing is set (the C++
/// guard's behaviour under an exception).
class Calibration {
 public:
  explicit Calibration(std::shared_ptr<QuantizerBase> quantizer)
      : quantizer_(std::move(quantizer)) {}

  void enter() {
    TORCH_CHECK(!guard_, "compute_encodings() context entered twice");
    guard_ = std::make_unique<CalibrationGuard>(quantizer_->compute_encodings());
  }
  void exit(bool raised) {
    if (!guard_) return;
    if (raised) guard_->cancel();
    auto closing = std::move(guard_);
    closing.reset();  // sets the range (may raise) unless cancelled
  }

 private:
  std::shared_ptr<QuantizerBase> quantizer_;
  std::unique_ptr<CalibrationGuard> guard_;
};

affine::QuantizerOptions affine_options(const py::object& shape, int64_t qmin, int64_t qmax,
                                        bool symmetric,
                                        std::shared_ptr<EncodingAnalyzer> encoding_analyzer,
                                        const py::object& block_size) {
  affine::QuantizerOptions options(shape_from(shape), qmin, qmax, symmetric);
  options.encoding_analyzer(std::move(encoding_analyzer));
  if (!block_size.is_none()) options.block_size(shape_from(block_size));
  return options;
}

py::object optional_tensor(const c10::optional<at::Tensor>& t) {
  return t ? py::cast(*t) : py::none();
}

at::ScalarType dtype_or_float(const py::object& dtype) {
  return dtype.is_none() ? at::kFloat : dtype_from(dtype);
}

std::string printed(const torch::nn::Module& module) {
  std::ostringstream stream;
  module.pretty_print(stream);
  return stream.str();
}

py::dict tensors_of(const torch::OrderedDict<std::string, at::Tensor>& items) {
  py::dict result;
  for (const auto& item : items) {
    result[py::str(item.key())] = item.value().defined() ? py::cast(item.value()) : py::none();
  }
  return result;
}

}  // namespace

// The engines derive from torch::nn::Module virtually and from Cloneable<...>: their bases sit at
// offsets, so each class is declared py::multiple_inheritance() (pybind11 would otherwise reuse a
// derived pointer as a base pointer, and a virtual call would land in another function).
void bind_quantizers(py::module_& m) {
  py::class_<Calibration>(m, "Calibration")
      .def("__enter__", [](Calibration& c) { c.enter(); })
      .def("__exit__", [](Calibration& c, const py::object& type, const py::object&,
                          const py::object&) { c.exit(!type.is_none()); });

  py::class_<QuantizerBase, std::shared_ptr<QuantizerBase>>(m, "QuantizerBase")
      .def("is_initialized", &QuantizerBase::is_initialized)
      .def("allow_overwrite", &QuantizerBase::allow_overwrite, py::arg("mode"))
      .def_property_readonly("overwrite_allowed", &QuantizerBase::overwrite_allowed)
      .def_property_readonly("is_calibrating", &QuantizerBase::is_calibrating)
      .def("compute_encodings",
           [](const std::shared_ptr<QuantizerBase>& q) { return Calibration(q); })
      .def("fake_quantize", &QuantizerBase::fake_quantize, py::arg("input"))
      .def(
          "quantize_to_grid",
          [](QuantizerBase& q, const at::Tensor& x) {
            auto grid = q.quantize_to_grid(x);
            return py::make_tuple(grid.tensor(), grid.encoding());
          },
          py::arg("input"))
      .def("observe_only", &QuantizerBase::observe_only, py::arg("input"))
      .def("get_encoding", &QuantizerBase::get_encoding)
      .def("get_legacy_encodings",
           [](const QuantizerBase& q) -> py::object {
             auto encodings = q.get_legacy_encodings();
             return encodings ? to_python(*encodings) : py::none();
           })
      .def(
          "set_legacy_encodings",
          [](QuantizerBase& q, const py::object& encodings) {
            q.set_legacy_encodings(from_python(encodings));
          },
          py::arg("encodings"))
      .def_property_readonly("bitwidth", &QuantizerBase::bitwidth)
      .def("initialization_flags", &QuantizerBase::initialization_flags)
      .def("set_initialization_flags", &QuantizerBase::set_initialization_flags, py::arg("flags"))
      .def("replace_parameter", &QuantizerBase::replace_parameter, py::arg("name"),
           py::arg("value"))
      .def("named_parameters",
           [](const QuantizerBase& q) { return tensors_of(q.named_parameters(false)); })
      .def("named_buffers",
           [](const QuantizerBase& q) { return tensors_of(q.named_buffers(false)); })
      .def_property_readonly("revision", &QuantizerBase::revision)
      .def("clone",
           [](const QuantizerBase& q) {
             return std::dynamic_pointer_cast<QuantizerBase>(q.clone());
           })
      .def("__repr__", [](const QuantizerBase& q) { return printed(q); });

  py::class_<affine::AffineQuantizerBase, QuantizerBase,
             std::shared_ptr<affine::AffineQuantizerBase>>(m, "AffineQuantizerBase",
                                                           py::multiple_inheritance())
      .def_property_readonly("shape", &affine::AffineQuantizerBase::shape)
      .def_property_readonly("block_size",
                             [](const affine::AffineQuantizerBase& q) -> py::object {
                               if (q.block_size().empty()) return py::none();
                               return py::tuple(py::cast(q.block_size()));
                             })
      .def_property_readonly("encoding_analyzer", &affine::AffineQuantizerBase::encoding_analyzer)
      .def_property_readonly("qmin", &affine::AffineQuantizerBase::qmin)
      .def_property_readonly("qmax", &affine::AffineQuantizerBase::qmax)
      .def_property_readonly("symmetric", &affine::AffineQuantizerBase::symmetric)
      .def_property_readonly("num_steps", &affine::AffineQuantizerBase::num_steps)
      .def_property_readonly("signed", &affine::AffineQuantizerBase::is_signed)
      .def(
          "set_bitwidth",
          [](affine::AffineQuantizerBase& q, double bitwidth) { q.set_bitwidth(bitwidth); },
          py::arg("bitwidth"))
      .def("set_signed", &affine::AffineQuantizerBase::set_signed, py::arg("signed"))
      .def("set_percentile", &affine::AffineQuantizerBase::set_percentile, py::arg("percentile"))
      .def("set_range",
           py::overload_cast<const at::Tensor&, const at::Tensor&>(
               &affine::AffineQuantizerBase::set_range),
           py::arg("min"), py::arg("max"))
      .def("set_range", py::overload_cast<double, double>(&affine::AffineQuantizerBase::set_range),
           py::arg("min"), py::arg("max"))
      .def(
          "get_min",
          [](const affine::AffineQuantizerBase& q, const py::object& dtype) {
            return optional_tensor(q.get_min(dtype_or_float(dtype)));
          },
          py::arg("dtype") = py::none())
      .def(
          "get_max",
          [](const affine::AffineQuantizerBase& q, const py::object& dtype) {
            return optional_tensor(q.get_max(dtype_or_float(dtype)));
          },
          py::arg("dtype") = py::none())
      .def(
          "get_scale",
          [](const affine::AffineQuantizerBase& q, const py::object& dtype) {
            return optional_tensor(q.get_scale(dtype_or_float(dtype)));
          },
          py::arg("dtype") = py::none())
      .def(
          "get_offset",
          [](const affine::AffineQuantizerBase& q, const py::object& dtype) {
            return optional_tensor(q.get_offset(dtype_or_float(dtype)));
          },
          py::arg("dtype") = py::none());

  py::class_<affine::QuantizeImpl, affine::AffineQuantizerBase,
             std::shared_ptr<affine::QuantizeImpl>>(m, "Quantize", py::multiple_inheritance())
      .def(py::init([](const py::object& shape, int64_t qmin, int64_t qmax, bool symmetric,
                       std::shared_ptr<EncodingAnalyzer> analyzer, const py::object& block_size) {
             return std::make_shared<affine::QuantizeImpl>(
                 affine_options(shape, qmin, qmax, symmetric, std::move(analyzer), block_size));
           }),
           py::arg("shape"), py::arg("qmin"), py::arg("qmax"), py::arg("symmetric"),
           py::arg("encoding_analyzer") = nullptr, py::arg("block_size") = py::none())
      .def(
          "forward",
          [](affine::QuantizeImpl& q, const at::Tensor& x) {
            auto grid = q.forward(x);
            return py::make_tuple(grid.tensor(), grid.encoding());
          },
          py::arg("input"));

  py::class_<affine::QuantizeDequantizeImpl, affine::AffineQuantizerBase,
             std::shared_ptr<affine::QuantizeDequantizeImpl>>(m, "QuantizeDequantize",
                                                              py::multiple_inheritance())
      .def(py::init([](const py::object& shape, int64_t qmin, int64_t qmax, bool symmetric,
                       std::shared_ptr<EncodingAnalyzer> analyzer, const py::object& block_size) {
             return std::make_shared<affine::QuantizeDequantizeImpl>(
                 affine_options(shape, qmin, qmax, symmetric, std::move(analyzer), block_size));
           }),
           py::arg("shape"), py::arg("qmin"), py::arg("qmax"), py::arg("symmetric"),
           py::arg("encoding_analyzer") = nullptr, py::arg("block_size") = py::none())
      .def("forward", &affine::QuantizeDequantizeImpl::forward, py::arg("input"));

  py::class_<affine::GroupedBlockQuantizeDequantizeImpl, affine::AffineQuantizerBase,
             std::shared_ptr<affine::GroupedBlockQuantizeDequantizeImpl>>(
      m, "GroupedBlockQuantizeDequantize", py::multiple_inheritance())
      .def(py::init([](const py::object& shape, int64_t qmin, int64_t qmax, bool symmetric,
                       int64_t decompressed_bw, std::shared_ptr<EncodingAnalyzer> analyzer,
                       const py::object& block_size, const py::object& block_grouping) {
             return std::make_shared<affine::GroupedBlockQuantizeDequantizeImpl>(
                 affine_options(shape, qmin, qmax, symmetric, std::move(analyzer), block_size),
                 decompressed_bw,
                 block_grouping.is_none() ? std::vector<int64_t>{} : shape_from(block_grouping));
           }),
           py::arg("shape"), py::arg("qmin"), py::arg("qmax"), py::arg("symmetric"),
           py::arg("decompressed_bw"), py::arg("encoding_analyzer") = nullptr,
           py::arg("block_size") = py::none(), py::arg("block_grouping") = py::none())
      .def("forward", &affine::GroupedBlockQuantizeDequantizeImpl::forward, py::arg("input"))
      .def_property_readonly("decompressed_bw",
                             &affine::GroupedBlockQuantizeDequantizeImpl::decompressed_bw)
      .def_property_readonly("block_grouping",
                             &affine::GroupedBlockQuantizeDequantizeImpl::block_grouping)
      .def(
          "get_per_channel_scale",
          [](const affine::GroupedBlockQuantizeDequantizeImpl& q, const py::object& dtype) {
            return optional_tensor(q.get_per_channel_scale(dtype_or_float(dtype)));
          },
          py::arg("dtype") = py::none())
      .def("get_per_block_integer_scale", [](const affine::GroupedBlockQuantizeDequantizeImpl& q) {
        return optional_tensor(q.get_per_block_integer_scale());
      });

  py::class_<floating::FloatQuantizeDequantizeImpl, QuantizerBase,
             std::shared_ptr<floating::FloatQuantizeDequantizeImpl>>(m, "FloatQuantizeDequantize",
                                                                     py::multiple_inheritance())
      .def(py::init([](const py::object& exponent_bits, const py::object& mantissa_bits,
                       const py::object& dtype, std::shared_ptr<EncodingAnalyzer> analyzer) {
             const bool bits_given = !exponent_bits.is_none() || !mantissa_bits.is_none();
             TORCH_CHECK_VALUE(bits_given != !dtype.is_none(),
                               "FloatQuantizeDequantize takes either exponent_bits and "
                               "mantissa_bits, or dtype, not ",
                               bits_given ? "both" : "neither");
             auto options = bits_given
                                ? floating::FloatQuantizerOptions(exponent_bits.cast<int64_t>(),
                                                                  mantissa_bits.cast<int64_t>())
                                : floating::FloatQuantizerOptions(dtype_from(dtype));
             options.encoding_analyzer(std::move(analyzer));
             return std::make_shared<floating::FloatQuantizeDequantizeImpl>(options);
           }),
           py::arg("exponent_bits") = py::none(), py::arg("mantissa_bits") = py::none(),
           py::arg("dtype") = py::none(), py::arg("encoding_analyzer") = nullptr)
      .def("forward", &floating::FloatQuantizeDequantizeImpl::forward, py::arg("input"))
      .def_property_readonly("exponent_bits", &floating::FloatQuantizeDequantizeImpl::exponent_bits)
      .def_property_readonly("mantissa_bits", &floating::FloatQuantizeDequantizeImpl::mantissa_bits)
      .def_property_readonly("encoding_analyzer",
                             &floating::FloatQuantizeDequantizeImpl::encoding_analyzer)
      .def("is_float16", &floating::FloatQuantizeDequantizeImpl::is_float16)
      .def("is_bfloat16", &floating::FloatQuantizeDequantizeImpl::is_bfloat16);
}

}  // namespace quantsim::python
