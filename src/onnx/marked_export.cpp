#include <quantsim/onnx/marked_export.h>

#include "onnx/model_file.h"
#include "onnx/qdq.h"

#include <quantsim/errors.h>

#include <nlohmann/json.hpp>

#include <set>
#include <vector>

namespace quantsim {
namespace {

struct Marker {
  std::string quantizer;
  std::vector<int64_t> shape;
};

bool is_marker(const ::onnx::NodeProto& node) {
  return node.domain() == kQuantizerMarkerDomain && node.op_type() == "Quantizer";
}

Marker read_marker(const ::onnx::NodeProto& node) {
  TORCH_CHECK_VALUE(node.input_size() == 1 && node.output_size() == 1,
                    "graphs_from_marked_model: the marker node '", node.name(), "' has ",
                    node.input_size(), " inputs and ", node.output_size(),
                    " outputs (expected 1 and 1)");
  Marker marker;
  bool named = false;
  for (const auto& attribute : node.attribute()) {
    if (attribute.name() == "quantizer") {
      marker.quantizer = attribute.s();
      named = true;
    } else if (attribute.name() == "shape") {
      marker.shape.assign(attribute.ints().begin(), attribute.ints().end());
    }
  }
  TORCH_CHECK_VALUE(named, "graphs_from_marked_model: the marker node '", node.name(), "' (input '",
                    node.input(0), "') has no `quantizer` attribute");
  return marker;
}

std::string serialized(const ::onnx::ModelProto& model, const char* what) {
  std::string bytes;
  TORCH_CHECK(model.SerializeToString(&bytes), "graphs_from_marked_model: the ", what,
              " could not be serialized");
  return bytes;
}

/// Drops the initializers no node reads and no graph output names.
void drop_unread_initializers(::onnx::GraphProto& graph) {
  std::set<std::string> read;
  for (const auto& node : graph.node()) {
    for (const auto& input : node.input()) read.insert(input);
  }
  for (const auto& output : graph.output()) read.insert(output.name());
  auto* initializers = graph.mutable_initializer();
  for (int i = initializers->size() - 1; i >= 0; --i) {
    if (read.count(initializers->Get(i).name()) == 0) initializers->DeleteSubrange(i, 1);
  }
}

}  // namespace

OnnxGraphs graphs_from_marked_model(const std::string& marked_model,
                                    const std::map<std::string, MarkedQuantizer>& quantizers) {
  using namespace onnx_export;
  ::onnx::ModelProto marked;
  TORCH_CHECK_VALUE(marked.ParseFromString(marked_model),
                    "graphs_from_marked_model: the bytes are not an ONNX model");
  const auto& graph = marked.graph();
  std::set<std::string> graph_outputs, initializers;
  for (const auto& output : graph.output()) graph_outputs.insert(output.name());
  for (const auto& initializer : graph.initializer()) initializers.insert(initializer.name());

  OnnxGraphs graphs;
  ::onnx::GraphProto float_graph = graph, qdq_graph = graph;
  float_graph.clear_node();
  qdq_graph.clear_node();
  float_graph.clear_value_info();
  qdq_graph.clear_value_info();
  // A marker's output, in the float graph, is the tensor it quantizes.
  std::map<std::string, std::string> float_name;
  const auto resolved = [&](const std::string& name) {
    const auto it = float_name.find(name);
    return it == float_name.end() ? name : it->second;
  };
  for (const auto& node : graph.node()) {
    if (!is_marker(node)) {
      auto* copy = float_graph.add_node();
      *copy = node;
      for (auto& input : *copy->mutable_input()) input = resolved(input);
      *qdq_graph.add_node() = node;
      continue;
    }
    const Marker marker = read_marker(node);
    const auto found = quantizers.find(marker.quantizer);
    TORCH_CHECK_VALUE(found != quantizers.end() && found->second.quantizer != nullptr,
                      "graphs_from_marked_model: the marker of tensor '", node.input(0),
                      "' names the quantizer '", marker.quantizer,
                      "', which is not among the quantizers given");
    const std::string input = resolved(node.input(0));
    graphs.quantized_tensors[marker.quantizer] = input;
    if (graph_outputs.count(node.output(0)) != 0) {
      auto* identity = float_graph.add_node();
      identity->set_op_type("Identity");
      identity->set_name(marker.quantizer + "/identity");
      identity->add_input(input);
      identity->add_output(node.output(0));
    } else {
      float_name[node.output(0)] = input;
    }
    const auto& quantizer = *found->second.quantizer;
    if (found->second.weight.defined() && initializers.count(node.input(0)) != 0) {
      append_quantized_weight(qdq_graph, found->second.weight, node.output(0), quantizer,
                              marker.quantizer);
    } else {
      append_quantizer(qdq_graph, node.input(0), node.output(0), quantizer, marker.shape,
                       marker.quantizer);
    }
  }
  drop_unread_initializers(float_graph);
  drop_unread_initializers(qdq_graph);

  auto float_model = make_model(std::move(float_graph), kCheckedOpset);
  auto* entry = float_model.add_metadata_props();
  entry->set_key(kQuantizedTensorsMetadataKey);
  entry->set_value(nlohmann::json(graphs.quantized_tensors).dump());
  check_model(float_model, "the float ONNX graph");
  auto qdq_model = make_model(std::move(qdq_graph), kCheckedOpset);
  check_model(qdq_model, "the QDQ ONNX graph");
  graphs.float_model = serialized(float_model, "float ONNX model");
  graphs.qdq_model = serialized(qdq_model, "QDQ ONNX model");
  return graphs;
}

}  // namespace quantsim
