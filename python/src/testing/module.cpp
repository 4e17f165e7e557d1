// `quantsim._testing`: test-only extension (never installed) that runs the C++ module table rows
// (tests/nn/module_table_*_test.cpp) so that python/tests/test_nn_table.py can compare every
// Python quantized module with its C++ counterpart bit for bit.
//
// run(i) replays, for row i, the sequence a Python test replays on the matching torch.nn module:
//   1. the float module's state and the inputs (cloned before any call: some ops write into
//      their inputs or buffers);
//   2. the float module's output; the quantized module's output with empty slots;
//   3. every slot filled (activations 8-bit asymmetric, parameters 8-bit symmetric, per tensor),
//      one calibration call inside compute_encodings(), then the calibrated output;
//   4. one more call whose outputs go backward (see backward()).
// Random rows re-seed the generator (1234) before each call, as the C++ table test does.
//
// It links its own copy of libquantsim (static), whose operator library must not be registered
// twice in one process: the test loads it in a process of its own, without quantsim._C.

#include <torch/csrc/utils/pybind.h>

#include "rows.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace py = pybind11;
namespace mt = quantsim::testing::module_table;
using quantsim::python::testing::Row;

const std::vector<Row>& all_rows() {
  static const std::vector<Row> rows = [] {
    namespace t = quantsim::python::testing;
    std::vector<Row> all;
    for (auto make : {t::activation_pooling_rows, t::layers_rows, t::shape_loss_rows,
                      t::recurrent_rows, t::custom_elementwise_rows, t::custom_tensor_rows}) {
      for (auto& r : make()) all.push_back(std::move(r));
    }
    return all;
  }();
  return rows;
}

py::object tensor_or_none(const at::Tensor& t) {
  if (!t.defined()) return py::none();
  return py::cast(t.detach().clone());
}

py::list leaves_list(const std::vector<at::Tensor>& leaves) {
  py::list out;
  for (const auto& t : leaves) out.append(tensor_or_none(t));
  return out;
}

/// Per slot: None, or (min, max) of its QuantizeDequantize quantizer.
py::list ranges(const quantsim::nn::QuantizerSlotsImpl& slots) {
  py::list out;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto q = std::dynamic_pointer_cast<quantsim::affine::QuantizeDequantizeImpl>(slots.at(i));
    if (!q || !q->is_initialized()) {
      out.append(py::none());
    } else {
      out.append(py::make_tuple(tensor_or_none(q->min), tensor_or_none(q->max)));
    }
  }
  return out;
}

/// The arguments' leaves in leaf order (mt::leaves_of lists a tuple's elements in the order GCC
/// evaluates them, last first: an LSTM's (h0, c0) as c0, h0), a vector's elements in turn, each
/// with its leaf index (a vector's elements share one).
std::vector<std::pair<size_t, at::Tensor>> indexed_input_leaves(const mt::Args& args) {
  std::vector<std::pair<size_t, at::Tensor>> indexed;
  mt::map_leaves(args, [&](size_t leaf, const at::Tensor& x) {
    indexed.emplace_back(leaf, x);
    return x;
  });
  std::stable_sort(indexed.begin(), indexed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return indexed;
}

std::vector<at::Tensor> input_leaves(const mt::Args& args) {
  std::vector<at::Tensor> leaves;
  for (auto& [leaf, x] : indexed_input_leaves(args)) leaves.push_back(std::move(x));
  return leaves;
}

py::dict describe(const Row& row) {
  py::dict d;
  d["name"] = row.name;
  d["variant"] = row.variant;
  d["quantized"] = row.quantization_mixin;
  d["num_inputs"] = row.num_inputs;
  d["num_outputs"] = row.num_outputs;
  d["input_leaves"] = row.input_leaf;
  d["random"] = row.is_random;
  d["custom"] = row.qualifier == "quantsim::nn::custom::";
  d["differentiable"] = row.is_differentiable;
  d["has_backward"] = row.has_backward;
  return d;
}

/// Per slot: None, or (min.grad, max.grad) of its QuantizeDequantize quantizer.
py::list range_grads(const quantsim::nn::QuantizerSlotsImpl& slots) {
  py::list out;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto q = std::dynamic_pointer_cast<quantsim::affine::QuantizeDequantizeImpl>(slots.at(i));
    if (!q) {
      out.append(py::none());
    } else {
      out.append(py::make_tuple(tensor_or_none(q->min.grad()), tensor_or_none(q->max.grad())));
    }
  }
  return out;
}

/// The C++ table test's backward (BackwardReachesInputsAndQuantizerRanges): the floating inputs
/// bound to input quantizers require grad (differentiable rows), the sum of the floating outputs
/// that require grad goes backward; its gradients on the inputs, ranges and parameters.
void backward(const Row& row, mt::Instance& instance, const mt::Args& args, py::dict& result) {
  mt::Args grad_args = args;
  if (row.is_differentiable) {
    grad_args = mt::map_leaves(args, [&](size_t leaf, const at::Tensor& x) {
      for (int bound : row.input_leaf) {
        if (bound == static_cast<int>(leaf) && mt::is_floating(x)) {
          return x.detach().requires_grad_(true);
        }
      }
      return x;
    });
  }
  const auto outputs = mt::call(row, instance.quantized_any, grad_args);
  at::Tensor total;
  for (const auto& y : outputs) {
    if (!mt::is_floating(y) || !y.requires_grad()) continue;
    total = total.defined() ? total + y.sum() : y.sum();
  }
  if (!total.defined()) return;
  {
    py::gil_scoped_release no_gil;  // the autograd engine refuses to run holding it
    total.backward();
  }
  py::list input_grads;
  for (const auto& x : input_leaves(grad_args)) {
    input_grads.append(x.defined() ? tensor_or_none(x.grad()) : py::none());
  }
  result["input_grads"] = input_grads;
  auto& module = *instance.quantized;
  result["input_range_grads"] = range_grads(*module.input_quantizers);
  result["output_range_grads"] = range_grads(*module.output_quantizers);
  result["param_range_grads"] = range_grads(*module.param_quantizers);
  py::dict param_grads;
  for (const auto& p : instance.float_module->named_parameters()) {
    param_grads[py::str(p.key())] = tensor_or_none(p.value().grad());
  }
  result["param_grads"] = param_grads;
}

py::dict run(size_t index) {
  const auto& rows = all_rows();
  TORCH_CHECK_INDEX(index < rows.size(), "row ", index, " of ", rows.size());
  const Row& row = rows[index];
  torch::manual_seed(0);
  const auto args = row.make_inputs();
  mt::Instance instance(row);
  TORCH_CHECK(instance.valid(), row.name, ": from_module did not give the table's class");
  py::dict result = describe(row);
  py::dict state;
  for (const auto& p : instance.float_module->named_parameters()) {
    state[py::str(p.key())] = tensor_or_none(p.value());
  }
  for (const auto& b : instance.float_module->named_buffers()) {
    state[py::str(b.key())] = tensor_or_none(b.value());
  }
  result["state"] = state;
  result["inputs"] = leaves_list(input_leaves(args));
  py::list leaf_ids;
  for (const auto& entry : indexed_input_leaves(args)) leaf_ids.append(entry.first);
  result["input_leaf_ids"] = leaf_ids;
  result["float_output"] = leaves_list(mt::call(row, instance.float_any, args));
  result["empty_output"] = leaves_list(mt::call(row, instance.quantized_any, args));
  auto& module = *instance.quantized;
  mt::fill_slots(module);
  module.compute_encodings([&] { mt::call(row, instance.quantized_any, args); });
  result["output"] = leaves_list(mt::call(row, instance.quantized_any, args));
  result["input_ranges"] = ranges(*module.input_quantizers);
  result["output_ranges"] = ranges(*module.output_quantizers);
  py::dict params;
  const auto keys = module.param_quantizers->keys();
  py::list param_ranges = ranges(*module.param_quantizers);
  for (size_t i = 0; i < keys.size(); ++i) params[py::str(keys[i])] = param_ranges[i];
  result["param_ranges"] = params;
  if (row.has_backward) backward(row, instance, args, result);
  return result;
}

}  // namespace

PYBIND11_MODULE(_testing, m) {
  m.doc() =
      "test-only: the C++ module table rows, run as python/tests/test_nn_table.py replays them";
  m.def("rows", [] {
    py::list out;
    for (const auto& row : all_rows()) out.append(describe(row));
    return out;
  });
  m.def("run", &run, py::arg("index"));
}
