// The simulation's configuration and quantizer placement (quantsim/sim/config.h,
// quantsim/sim/placement.h) for `quantsim.quantsim.QuantizationSimModel`: Python records the
// dataflow of its model with module hooks and asks the C++ core which slots to quantize and how,
// so that a Python simulation places its quantizers exactly as the C++ one (docs/python.md).
// Also the export finisher (quantsim/onnx/marked_export.h) for torch.onnx.export's marked graph.

#include "bindings.h"

#include <quantsim/onnx/marked_export.h>
#include <quantsim/sim/config.h>
#include <quantsim/sim/encodings_io.h>
#include <quantsim/sim/module_facts.h>
#include <quantsim/sim/placement.h>
#include <quantsim/sim/quantsim_model.h>

namespace quantsim::python {

namespace {

py::object range_object(const c10::optional<std::pair<double, double>>& range) {
  return range ? py::object(py::make_tuple(range->first, range->second)) : py::none();
}

py::object optional_bool(const c10::optional<bool>& value) {
  return value ? py::object(py::bool_(*value)) : py::none();
}

}  // namespace

void bind_sim(py::module_& m) {
  py::class_<QuantsimConfig>(m, "QuantsimConfig")
      .def_static("default_config", &QuantsimConfig::default_config)
      .def_static("from_file", &QuantsimConfig::from_file, py::arg("path"))
      .def_static(
          "parse",
          [](const py::handle& config, const std::string& source) {
            return QuantsimConfig::parse(from_python(config), source);
          },
          py::arg("config"), py::arg("source") = "config")
      .def_static("default_json", [] { return to_python(QuantsimConfig::default_json()); })
      .def_readonly("supergroups", &QuantsimConfig::supergroups)
      .def_readonly("model_input_quantized", &QuantsimConfig::model_input_quantized)
      .def_readonly("model_output_quantized", &QuantsimConfig::model_output_quantized)
      .def_readonly("per_channel_quantization", &QuantsimConfig::per_channel_quantization)
      .def_property_readonly(
          "default_params_is_symmetric",
          [](const QuantsimConfig& c) { return optional_bool(c.default_params.is_symmetric); })
      .def(
          "op",
          [](const QuantsimConfig& c, const std::string& type) {
            const OpConfig op = c.op(type);
            py::dict d;
            d["is_input_quantized"] = optional_bool(op.is_input_quantized);
            d["is_output_quantized"] = optional_bool(op.is_output_quantized);
            d["is_symmetric"] = optional_bool(op.is_symmetric);
            d["per_channel_quantization"] = optional_bool(op.per_channel_quantization);
            d["encoding_constraints"] = range_object(op.encoding_constraints);
            return d;
          },
          py::arg("type"))
      .def(
          "param",
          [](const QuantsimConfig& c, const std::string& type, const std::string& name) {
            const ParamConfig param = c.param(type, name);
            py::dict d;
            d["is_quantized"] = optional_bool(param.is_quantized);
            d["is_symmetric"] = optional_bool(param.is_symmetric);
            d["encoding_constraints"] = range_object(param.encoding_constraints);
            return d;
          },
          py::arg("type"), py::arg("name"));

  py::class_<PlacementOp>(m, "PlacementOp")
      .def(py::init([](std::string name, std::string type,
                       std::vector<std::vector<int64_t>> producers, std::vector<int64_t> consumers,
                       std::vector<int64_t> input_tensors, std::vector<int64_t> output_tensors,
                       bool called, int64_t groups) {
             PlacementOp op;
             op.name = std::move(name);
             op.type = std::move(type);
             TORCH_CHECK_VALUE(input_tensors.size() == producers.size() &&
                                   output_tensors.size() == consumers.size(),
                               "PlacementOp '", op.name,
                               "': one tensor id per input and output slot expected");
             op.producers = std::move(producers);
             op.consumers = std::move(consumers);
             op.input_tensors = std::move(input_tensors);
             op.output_tensors = std::move(output_tensors);
             op.called = called;
             op.groups = groups;
             return op;
           }),
           py::arg("name"), py::arg("type"), py::arg("producers"), py::arg("consumers"),
           py::arg("input_tensors"), py::arg("output_tensors"), py::arg("called"),
           py::arg("groups") = 1)
      .def_readonly("name", &PlacementOp::name)
      .def_readonly("type", &PlacementOp::type);

  m.def(
      "plan_slots",
      [](const std::vector<PlacementOp>& ops, const QuantsimConfig& config) {
        for (const auto& op : ops) {
          for (const auto& producers : op.producers) {
            for (const auto p : producers) {
              TORCH_CHECK_INDEX(p >= -1 && p < static_cast<int64_t>(ops.size()), "PlacementOp '",
                                op.name, "': producer index ", p, " out of range");
            }
          }
        }
        py::list plans;
        for (const auto& plan : plan_slots(ops, config)) {
          plans.append(py::make_tuple(plan.inputs, plan.outputs, plan.folded_batch_norm));
        }
        return plans;
      },
      py::arg("ops"), py::arg("config"),
      "(inputs, outputs, folded_batch_norm) per op: which slots the configuration quantizes");
  m.def(
      "place_activation",
      [](const QuantsimConfig& config, const std::string& type) {
        const auto placement = place_activation(config, type);
        return py::make_tuple(placement.symmetric, range_object(placement.encoding_constraints));
      },
      py::arg("config"), py::arg("type"), "(symmetric, encoding_constraints or None)");
  m.def(
      "place_param",
      [](const QuantsimConfig& config, const std::string& type, const std::string& name,
         const std::vector<int64_t>& sizes, bool folded_batch_norm) -> py::object {
        const auto placement = place_param(config, type, name, sizes, folded_batch_norm);
        if (!placement) return py::none();
        return py::make_tuple(py::tuple(py::cast(placement->shape)), placement->symmetric,
                              range_object(placement->encoding_constraints));
      },
      py::arg("config"), py::arg("type"), py::arg("name"), py::arg("sizes"),
      py::arg("folded_batch_norm") = false,
      "None, or (shape, symmetric, encoding_constraints or None)");
  m.def(
      "canonical_quant_scheme",
      [](const std::string& name) { return to_string(quant_scheme_from_string(name)); },
      py::arg("name"));
  m.def("onnx_op_type", &onnx_op_type, py::arg("module_class"));

  // The encodings files of a Python model (quantsim/sim/encodings_io.h), from its slots given
  // as (module, kind, key, engine, parameter or None) tuples in the reference's order.
  const auto slots_from = [](const py::list& items) {
    std::vector<QuantizedSlot> slots;
    for (const auto& item : items) {
      const auto t = item.cast<py::tuple>();
      QuantizedSlot slot;
      slot.module = t[0].cast<std::string>();
      slot.kind = t[1].cast<std::string>();
      slot.key = t[2].cast<std::string>();
      slot.quantizer = t[3].cast<std::shared_ptr<QuantizerBase>>();
      if (!t[4].is_none()) slot.parameter = t[4].cast<at::Tensor>();
      slots.push_back(std::move(slot));
    }
    return slots;
  };
  const auto options_from = [](const std::string& version, const py::object& quantizer_args,
                               const std::map<std::string, std::string>& tensor_names) {
    auto options =
        ExportOptions().version(encoding_version_from_string(version)).tensor_names(tensor_names);
    if (!quantizer_args.is_none()) options.quantizer_args(from_python(quantizer_args));
    return options;
  };
  m.def(
      "torch_encodings",
      [=](const py::list& slots, const py::object& quantizer_args) {
        return to_python(
            torch_encodings(slots_from(slots), options_from("0.6.1", quantizer_args, {})));
      },
      py::arg("slots"), py::arg("quantizer_args") = py::none(),
      "The `<prefix>_torch.encodings` content of the slots");
  m.def(
      "encodings",
      [=](const py::list& slots, const std::string& version, const py::object& quantizer_args,
          const std::map<std::string, std::string>& tensor_names) {
        return to_python(
            encodings(slots_from(slots), options_from(version, quantizer_args, tensor_names)));
      },
      py::arg("slots"), py::arg("version") = "0.6.1", py::arg("quantizer_args") = py::none(),
      py::arg("tensor_names") = std::map<std::string, std::string>{},
      "The `<prefix>.encodings` content of the slots, keyed by `tensor_names` (quantizer path -> "
      "graph tensor) when given");

  m.attr("QUANTIZER_MARKER_DOMAIN") = kQuantizerMarkerDomain;
  m.def(
      "graphs_from_marked_model",
      [](const py::bytes& marked, const py::dict& quantizers) {
        std::map<std::string, MarkedQuantizer> map;
        for (const auto& [key, value] : quantizers) {
          const auto pair = value.cast<py::tuple>();
          MarkedQuantizer entry;
          entry.quantizer = pair[0].cast<std::shared_ptr<QuantizerBase>>();
          if (!pair[1].is_none()) entry.weight = pair[1].cast<at::Tensor>();
          map[key.cast<std::string>()] = std::move(entry);
        }
        OnnxGraphs graphs;
        {
          py::gil_scoped_release release;
          graphs = graphs_from_marked_model(std::string(marked), map);
        }
        return py::make_tuple(py::bytes(graphs.float_model), py::bytes(graphs.qdq_model),
                              graphs.quantized_tensors);
      },
      py::arg("marked_model"), py::arg("quantizers"),
      "(float model bytes, QDQ model bytes, {quantizer path: tensor name}) from a model with "
      "marker nodes; `quantizers` maps each path to (engine, weight or None)");
}

}  // namespace quantsim::python
