// The encoding analyzers as Python classes with the reference's constructors
// (`quantsim.quantization.encoding_analyzer.*`): MinMaxEncodingAnalyzer(shape),
// PercentileEncodingAnalyzer(shape, num_bins=2048, percentile=100),
// SqnrEncodingAnalyzer(shape, num_bins=2048, *, asymmetric_delta_candidates=17, ...).
// Pickling keeps the configuration, not the statistics gathered so far.

#include "bindings.h"

#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/analyzers/sqnr.h>

namespace quantsim::python {

void bind_analyzers(py::module_& m) {
  py::class_<Statistics, std::shared_ptr<Statistics>>(m, "Statistics")
      .def_readonly("nan_count", &Statistics::nan_count);

  py::class_<EncodingAnalyzer, std::shared_ptr<EncodingAnalyzer>>(m, "EncodingAnalyzer")
      .def_property_readonly("observer_shape", &EncodingAnalyzer::shape)
      .def(
          "update_stats",
          [](EncodingAnalyzer& a, const at::Tensor& x) {
            return std::const_pointer_cast<Statistics>(a.update_stats(x));
          },
          py::arg("input"))
      .def("reset_stats", &EncodingAnalyzer::reset_stats)
      .def("compute_encodings", &EncodingAnalyzer::compute_encodings, py::arg("num_steps"),
           py::arg("is_symmetric"))
      .def("compute_dynamic_encodings", &EncodingAnalyzer::compute_dynamic_encodings,
           py::arg("input"), py::arg("num_steps"), py::arg("is_symmetric"))
      .def(
          "compute_encodings_from_stats",
          [](const EncodingAnalyzer& a, const Statistics& stats, int64_t num_steps,
             bool symmetric) {
            return a.compute_encodings_from_stats(stats, num_steps, symmetric);
          },
          py::arg("stats"), py::arg("num_steps"), py::arg("is_symmetric"))
      .def_property_readonly("nan_count", &EncodingAnalyzer::nan_count)
      .def("__deepcopy__", [](const EncodingAnalyzer& a, const py::dict&) { return a.clone(); });

  py::class_<MinMaxEncodingAnalyzer, EncodingAnalyzer, std::shared_ptr<MinMaxEncodingAnalyzer>>(
      m, "MinMaxEncodingAnalyzer")
      .def(py::init([](const py::object& shape) {
             return std::make_shared<MinMaxEncodingAnalyzer>(shape_from(shape));
           }),
           py::arg("shape"))
      .def(py::pickle([](const MinMaxEncodingAnalyzer& a) { return py::make_tuple(a.shape()); },
                      [](const py::tuple& state) {
                        return std::make_shared<MinMaxEncodingAnalyzer>(shape_from(state[0]));
                      }))
      .def("__repr__", [](const MinMaxEncodingAnalyzer& a) {
        return c10::str("MinMaxEncodingAnalyzer(shape=", at::IntArrayRef(a.shape()), ")");
      });

  py::class_<HistogramEncodingAnalyzer, EncodingAnalyzer,
             std::shared_ptr<HistogramEncodingAnalyzer>>(m, "HistogramEncodingAnalyzer")
      .def_property_readonly("num_bins", &HistogramEncodingAnalyzer::num_bins);

  py::class_<PercentileEncodingAnalyzer, HistogramEncodingAnalyzer,
             std::shared_ptr<PercentileEncodingAnalyzer>>(m, "PercentileEncodingAnalyzer")
      .def(py::init([](const py::object& shape, int64_t num_bins, double percentile) {
             return std::make_shared<PercentileEncodingAnalyzer>(shape_from(shape), num_bins,
                                                                 percentile);
           }),
           py::arg("shape"), py::arg("num_bins") = 2048, py::arg("percentile") = 100.0)
      .def_property_readonly("percentile", &PercentileEncodingAnalyzer::percentile)
      .def("set_percentile", &PercentileEncodingAnalyzer::set_percentile, py::arg("percentile"))
      .def(py::pickle(
          [](const PercentileEncodingAnalyzer& a) {
            return py::make_tuple(a.shape(), a.num_bins(), a.percentile());
          },
          [](const py::tuple& state) {
            return std::make_shared<PercentileEncodingAnalyzer>(
                shape_from(state[0]), state[1].cast<int64_t>(), state[2].cast<double>());
          }));

  py::class_<SqnrEncodingAnalyzer, HistogramEncodingAnalyzer,
             std::shared_ptr<SqnrEncodingAnalyzer>>(m, "SqnrEncodingAnalyzer")
      .def(py::init([](const py::object& shape, int64_t num_bins,
                       int64_t asymmetric_delta_candidates, int64_t symmetric_delta_candidates,
                       int64_t offset_candidates, int64_t max_parallelism, double gamma) {
             return std::make_shared<SqnrEncodingAnalyzer>(
                 shape_from(shape), SqnrOptions()
                                        .num_bins(num_bins)
                                        .asymmetric_delta_candidates(asymmetric_delta_candidates)
                                        .symmetric_delta_candidates(symmetric_delta_candidates)
                                        .offset_candidates(offset_candidates)
                                        .max_parallelism(max_parallelism)
                                        .gamma(gamma));
           }),
           py::arg("shape"), py::arg("num_bins") = 2048, py::kw_only(),
           py::arg("asymmetric_delta_candidates") = 17, py::arg("symmetric_delta_candidates") = 101,
           py::arg("offset_candidates") = 21, py::arg("max_parallelism") = 64,
           py::arg("gamma") = 3.0)
      .def(py::pickle(
          [](const SqnrEncodingAnalyzer& a) {
            const auto& o = a.options();
            return py::make_tuple(a.shape(), o.num_bins(), o.asymmetric_delta_candidates(),
                                  o.symmetric_delta_candidates(), o.offset_candidates(),
                                  o.max_parallelism(), o.gamma());
          },
          [](const py::tuple& s) {
            return std::make_shared<SqnrEncodingAnalyzer>(
                shape_from(s[0]), SqnrOptions()
                                      .num_bins(s[1].cast<int64_t>())
                                      .asymmetric_delta_candidates(s[2].cast<int64_t>())
                                      .symmetric_delta_candidates(s[3].cast<int64_t>())
                                      .offset_candidates(s[4].cast<int64_t>())
                                      .max_parallelism(s[5].cast<int64_t>())
                                      .gamma(s[6].cast<double>()));
          }));
}

}  // namespace quantsim::python
