#include "onnx/aten_to_onnx.h"

#include "onnx/graph_builder.h"
#include "onnx/qdq.h"

#include <quantsim/affine/encoding.h>
#include <quantsim/errors.h>
#include <quantsim/ops.h>

#include <ATen/ATen.h>
#include <ATen/PadNd.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace quantsim::onnx_export {
namespace {

using torch::jit::Node;
using torch::jit::Value;

class Translator;
using Translation = std::function<void(Translator&, const Node*)>;
const std::unordered_map<std::string, Translation>& translations();

void set_float(::onnx::NodeProto& node, const std::string& name, double value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(::onnx::AttributeProto::FLOAT);
  attribute->set_f(static_cast<float>(value));
}
void set_ints(::onnx::NodeProto& node, const std::string& name,
              const std::vector<int64_t>& values) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(::onnx::AttributeProto::INTS);
  for (auto v : values) attribute->add_ints(v);
}
void set_string(::onnx::NodeProto& node, const std::string& name, const std::string& value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(::onnx::AttributeProto::STRING);
  attribute->set_s(value);
}

/// The state of one translation: the ONNX names of the traced values and the graph built so far.
class Translator {
 public:
  Translator(const CapturedGraph& captured, QuantizerNodes quantizers)
      : captured_(captured), quantizers_(quantizers) {}

  const CapturedGraph& captured() const { return captured_; }
  QuantizerNodes quantizers() const { return quantizers_; }
  ::onnx::GraphProto& graph() { return result_.graph; }
  TranslatedGraph& result() { return result_; }

  void run(const std::string& graph_name) {
    auto& graph = *captured_.graph;
    result_.graph.set_name(graph_name);
    for (size_t i = 0; i < graph.inputs().size(); ++i) {
      names_[graph.inputs()[i]] = captured_.input_names[i];
      add_value_info(result_.graph.add_input(), graph.inputs()[i], captured_.input_names[i]);
    }
    // Graph outputs take their names from the node producing them; an output that is an input,
    // a constant or a repeated value gets an Identity at the end.
    std::vector<size_t> identities;
    for (size_t i = 0; i < graph.outputs().size(); ++i) {
      const auto* value = graph.outputs()[i];
      const auto kind = value->node()->kind();
      if (kind == torch::jit::prim::Param || kind == torch::jit::prim::Constant ||
          reserved_.count(value) != 0) {
        identities.push_back(i);
      } else {
        reserved_[value] = captured_.output_names[i];
      }
    }
    if (quantizers_ == QuantizerNodes::kFloat) hand_output_names_to_quantized_tensors();
    for (const auto* node : graph.nodes()) {
      if (node->kind() == torch::jit::prim::Constant || consumed_.count(node) != 0) continue;
      current_ = node;
      const auto found = translations().find(node->kind().toQualString());
      if (found == translations().end()) {
        QS_THROW(c10::Error, "cannot export to ONNX: ", node->kind().toQualString(), " (",
                 captured_.module_path_of(node), ") has no ONNX translation");
      }
      try {
        found->second(*this, node);
      } catch (const c10::Error& e) {
        rethrow_with_prefix(e, c10::str("cannot export ", node->kind().toQualString(), " (",
                                        captured_.module_path_of(node), ") to ONNX: "));
      }
    }
    for (size_t i = 0; i < graph.outputs().size(); ++i) {
      const auto* value = graph.outputs()[i];
      const auto& name = captured_.output_names[i];
      if (std::find(identities.begin(), identities.end(), i) != identities.end() ||
          name_of(value) != name) {
        add_node(result_.graph, "Identity", {name_of(value)}, {name}, name + "/Identity");
      }
      add_value_info(result_.graph.add_output(), value, name);
    }
  }

  /// The ONNX name of a traced value: a tensor constant becomes an initializer on first use.
  std::string name_of(const Value* value) {
    const auto found = names_.find(value);
    if (found != names_.end()) return found->second;
    const auto constant = torch::jit::toIValue(value);
    TORCH_CHECK(constant && constant->isTensor(), "input ", value->debugName(),
                " is not a tensor the translation knows");
    const auto parameter = captured_.parameter_names.find(value);
    const auto name =
        parameter != captured_.parameter_names.end() ? parameter->second : fresh("constant");
    add_initializer(result_.graph, constant->toTensor().contiguous(), name);
    names_[value] = name;
    return name;
  }

  /// Names the outputs of the current node (a graph output keeps its output name).
  std::string output(size_t i = 0) { return output_of(current_->outputs()[i]); }
  std::string output_of(const Value* value) {
    const auto reserved = reserved_.find(value);
    auto name = reserved != reserved_.end() ? reserved->second : fresh(node_stem(value->node()));
    names_[value] = name;
    return name;
  }
  /// The current node's output is `input` (dropout in eval, a float-graph quantizer...).
  void alias(const Value* out, const Value* in) {
    if (reserved_.count(out) != 0) {
      add_node(result_.graph, "Identity", {name_of(in)}, {output_of(out)}, fresh("Identity"));
    } else {
      names_[out] = name_of(in);
    }
  }
  void consume(const Node* node) { consumed_.insert(node); }

  /// A fresh name "<stem>_<n>" for nodes and intermediate tensors.
  std::string fresh(const std::string& stem) { return c10::str(stem, "_", counter_[stem]++); }
  /// The prefix of the nodes of one quantizer call: `stem` (its path) the first time, then
  /// "<stem>#<n>" (a quantizer shared by two inputs is called twice, and ONNX names are unique).
  std::string quantizer_prefix(const std::string& stem) {
    const auto n = quantizer_calls_[stem]++;
    return n == 0 ? stem : c10::str(stem, "#", n);
  }

  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs) {
    return add_node(result_.graph, op, inputs, outputs, fresh(op));
  }
  /// One-output node into a fresh tensor; returns its name.
  std::string op(const std::string& op, const std::vector<std::string>& inputs,
                 ::onnx::NodeProto** made = nullptr) {
    auto name = fresh(op + "_out");
    auto& n = node(op, inputs, {name});
    if (made) *made = &n;
    return name;
  }

  // ---- constant arguments ------------------------------------------------------------------
  static c10::IValue constant(const Value* value) {
    const auto found = torch::jit::toIValue(value);
    TORCH_CHECK(found.has_value(), "argument ", value->debugName(),
                " is computed in the graph, the translation needs a constant");
    return *found;
  }
  static bool is_none(const Value* value) {
    const auto found = torch::jit::toIValue(value);
    return found.has_value() && found->isNone();
  }
  void check_static(const Value* value) const {
    TORCH_CHECK(captured_.batch_dependent.count(value) == 0, "argument ", value->debugName(),
                " is the batch size, which the ONNX graph keeps dynamic; the op has no dynamic "
                "form here");
  }
  int64_t int_arg(const Value* value) const {
    check_static(value);
    return constant(value).toInt();
  }
  double float_arg(const Value* value) const { return constant(value).toScalar().toDouble(); }
  bool bool_arg(const Value* value) const { return constant(value).toBool(); }
  std::vector<int64_t> ints_arg(const Value* value) const {
    check_static(value);
    const auto v = constant(value);
    if (v.isInt()) return {v.toInt()};
    return v.toIntVector();
  }
  /// An int[] argument as a 1-D int64 tensor: entries that are the batch size come from the
  /// first input's shape at run time.
  std::string ints_input(const Value* value) {
    const auto found = captured_.batch_dependent.find(value);
    const auto values = constant(value).isInt() ? std::vector<int64_t>{constant(value).toInt()}
                                                : constant(value).toIntVector();
    if (found == captured_.batch_dependent.end()) return ints(values);
    std::vector<std::string> pieces;
    size_t begin = 0;
    for (auto position : found->second) {
      if (position > begin) {
        pieces.push_back(ints({values.begin() + begin, values.begin() + position}));
      }
      pieces.push_back(batch_size());
      begin = position + 1;
    }
    if (begin < values.size()) pieces.push_back(ints({values.begin() + begin, values.end()}));
    ::onnx::NodeProto* concat = nullptr;
    auto name = op("Concat", pieces, &concat);
    set_attribute(*concat, "axis", 0);
    return name;
  }
  /// A 1-D int64 initializer.
  std::string ints(const std::vector<int64_t>& values) {
    return add_initializer(result_.graph, at::tensor(values, at::kLong), fresh("ints"));
  }
  /// A scalar initializer of `like`'s dtype.
  std::string scalar(double value, const Value* like) {
    return add_initializer(result_.graph,
                           at::scalar_tensor(value, at::TensorOptions(dtype_of(like))),
                           fresh("scalar"));
  }
  /// An argument that is a tensor or a number (add's `other`): a number becomes a scalar of
  /// `like`'s dtype, as aten's type promotion gives for a tensor and a Python number.
  std::string tensor_or_scalar(const Value* value, const Value* like) {
    const auto v = torch::jit::toIValue(value);
    if (v && (v->isDouble() || v->isInt() || v->isBool())) {
      return scalar(v->toScalar().toDouble(), like);
    }
    return name_of(value);
  }

  // ---- types -------------------------------------------------------------------------------
  static c10::TensorTypePtr tensor_type(const Value* value) {
    auto type = value->type()->cast<c10::TensorType>();
    TORCH_CHECK(type, "value ", value->debugName(), " is not a tensor");
    return type;
  }
  static at::ScalarType dtype_of(const Value* value) {
    const auto constant = torch::jit::toIValue(value);
    if (constant && constant->isTensor()) return constant->toTensor().scalar_type();
    const auto type = tensor_type(value)->scalarType();
    TORCH_CHECK(type.has_value(), "the dtype of ", value->debugName(), " is unknown");
    return *type;
  }
  static int64_t rank_of(const Value* value) {
    const auto constant = torch::jit::toIValue(value);
    if (constant && constant->isTensor()) return constant->toTensor().dim();
    const auto rank = tensor_type(value)->dim();
    TORCH_CHECK(rank.has_value(), "the rank of ", value->debugName(), " is unknown");
    return static_cast<int64_t>(*rank);
  }
  /// The traced sizes (the example batch in dim 0 of a batch-carrying tensor).
  static std::vector<int64_t> sizes_of(const Value* value) {
    const auto constant = torch::jit::toIValue(value);
    if (constant && constant->isTensor()) return constant->toTensor().sizes().vec();
    const auto sizes = tensor_type(value)->sizes().concrete_sizes();
    TORCH_CHECK(sizes.has_value(), "the shape of ", value->debugName(), " is unknown");
    return *sizes;
  }
  /// Sizes with -1 for the batch dim of values computed from the inputs.
  std::vector<int64_t> dynamic_sizes_of(const Value* value) const {
    auto sizes = sizes_of(value);
    if (!torch::jit::toIValue(value).has_value() && !sizes.empty()) sizes[0] = -1;
    return sizes;
  }
  static int64_t normalized_dim(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

 private:
  /// In the float graph a quantizer is no node: when one produces a graph output, the tensor it
  /// quantizes takes the output's name (rather than an Identity copying it there), so that the
  /// encodings key the graph's output.
  void hand_output_names_to_quantized_tensors() {
    bool moved = true;
    while (moved) {
      moved = false;
      for (auto it = reserved_.begin(); it != reserved_.end(); ++it) {
        const auto* node = it->first->node();
        if (std::strncmp(node->kind().toQualString(), "quantsim::", 10) != 0) continue;
        const auto* input = node->input(0);
        const auto kind = input->node()->kind();
        if (kind == torch::jit::prim::Param || kind == torch::jit::prim::Constant ||
            input->uses().size() != 1 || reserved_.count(input) != 0) {
          continue;
        }
        reserved_[input] = it->second;
        reserved_.erase(it);
        moved = true;
        break;
      }
    }
  }
  void add_value_info(::onnx::ValueInfoProto* info, const Value* value, const std::string& name) {
    info->set_name(name);
    auto* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(onnx_type(dtype_of(value)));
    auto* shape = tensor->mutable_shape();
    const auto sizes = sizes_of(value);
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (d == 0) {
        shape->add_dim()->set_dim_param("batch");
      } else {
        shape->add_dim()->set_dim_value(sizes[d]);
      }
    }
  }
  /// 1-D int64 [batch] from the first input's shape.
  std::string batch_size() {
    if (batch_size_.empty()) {
      ::onnx::NodeProto* shape = nullptr;
      batch_size_ = op("Shape", {captured_.input_names[0]}, &shape);
      set_attribute(*shape, "start", 0);
      set_attribute(*shape, "end", 1);
    }
    return batch_size_;
  }
  static std::string node_stem(const Node* node) {
    std::string stem = node->kind().toUnqualString();
    while (!stem.empty() && stem.front() == '_') stem.erase(stem.begin());
    return stem.empty() ? "value" : stem;
  }

  const CapturedGraph& captured_;
  QuantizerNodes quantizers_;
  TranslatedGraph result_;
  std::unordered_map<const Value*, std::string> names_, reserved_;
  std::unordered_set<const Node*> consumed_;
  std::unordered_map<std::string, int64_t> counter_, quantizer_calls_;
  std::string batch_size_;
  const Node* current_ = nullptr;
};

// ---- translations ---------------------------------------------------------------------------

using T = Translator;

Translation unary(const std::string& onnx_op) {
  return
      [onnx_op](T& t, const Node* n) { t.node(onnx_op, {t.name_of(n->input(0))}, {t.output()}); };
}

Translation binary(const std::string& onnx_op) {
  return [onnx_op](T& t, const Node* n) {
    t.node(onnx_op,
           {t.tensor_or_scalar(n->input(0), n->input(1)),
            t.tensor_or_scalar(n->input(1), n->input(0))},
           {t.output()});
  };
}

/// add/sub(x, y, alpha): x +- alpha * y.
Translation add_sub(const std::string& onnx_op) {
  return [onnx_op](T& t, const Node* n) {
    auto y = t.tensor_or_scalar(n->input(1), n->input(0));
    if (n->inputs().size() > 2 && t.float_arg(n->input(2)) != 1.0) {
      y = t.op("Mul", {y, t.scalar(t.float_arg(n->input(2)), n->input(0))});
    }
    t.node(onnx_op, {t.name_of(n->input(0)), y}, {t.output()});
  };
}

void identity(T& t, const Node* n) { t.alias(n->output(), n->input(0)); }

void dropout(T& t, const Node* n) {
  TORCH_CHECK(!t.bool_arg(n->input(2)),
              "dropout in training mode; call eval() on the model before exporting");
  identity(t, n);
}

void clip(T& t, const Node* n, double low, double high) {
  t.node("Clip", {t.name_of(n->input(0)), t.scalar(low, n->input(0)), t.scalar(high, n->input(0))},
         {t.output()});
}

/// Conv / ConvTranspose. `groups_index` and `dilation_index` locate those arguments (aten's
/// conv ops order them differently); stride and padding are inputs 3 and 4 everywhere. A string
/// padding ('valid', 'same') becomes explicit pads: 'same' (stride 1, as torch requires) pads
/// dilation * (k - 1) in all, half of it before, the rest after, as torch's _convolution_same
/// does (which pads the odd remainder with zeros after the input: the same sum).
void convolution(T& t, const Node* n, bool transposed, const std::vector<int64_t>& output_padding,
                 int64_t groups_index, int64_t dilation_index = 5) {
  const auto x = n->input(0), w = n->input(1);
  std::vector<std::string> inputs{t.name_of(x), t.name_of(w)};
  if (!t.is_none(n->input(2))) inputs.push_back(t.name_of(n->input(2)));
  const auto spatial = T::rank_of(w) - 2;
  const auto expand = [&](std::vector<int64_t> v) {
    if (v.size() == 1) v.assign(spatial, v[0]);
    return v;
  };
  const auto stride = expand(t.ints_arg(n->input(3)));
  const auto dilation = expand(t.ints_arg(n->input(dilation_index)));
  const auto wsizes = T::sizes_of(w);
  std::vector<int64_t> pads;
  const auto padding_arg = T::constant(n->input(4));
  if (padding_arg.isString()) {
    const auto& mode = padding_arg.toStringRef();
    TORCH_CHECK(mode == "valid" || mode == "same", "padding '", mode, "'");
    pads.assign(2 * spatial, 0);
    for (int64_t d = 0; mode == "same" && d < spatial; ++d) {
      TORCH_CHECK(stride[d] == 1, "padding 'same' with stride ", at::IntArrayRef(stride));
      const auto total = dilation[d] * (wsizes[2 + d] - 1);
      pads[d] = total / 2;
      pads[spatial + d] = total - total / 2;
    }
  } else {
    pads = expand(t.ints_arg(n->input(4)));
    pads.insert(pads.end(), pads.begin(), pads.end());
  }
  auto& node = t.node(transposed ? "ConvTranspose" : "Conv", inputs, {t.output()});
  set_ints(node, "kernel_shape", {wsizes.begin() + 2, wsizes.end()});
  set_ints(node, "strides", stride);
  set_ints(node, "pads", pads);
  set_ints(node, "dilations", dilation);
  set_attribute(node, "group", t.int_arg(n->input(groups_index)));
  if (transposed) set_ints(node, "output_padding", expand(output_padding));
}

/// Gemm(x, w, b, transB) when mat2 is aten::t(w) used once, else Gemm on mat2 as it is.
void addmm(T& t, const Node* n) {
  const auto* mat2 = n->input(2);
  std::string b;
  int64_t trans_b = 0;
  if (mat2->node()->kind() == c10::Symbol::fromQualString("aten::t") && mat2->uses().size() == 1) {
    b = t.name_of(mat2->node()->input(0));
    trans_b = 1;
  } else {
    b = t.name_of(mat2);
  }
  auto& node = t.node("Gemm", {t.name_of(n->input(1)), b, t.name_of(n->input(0))}, {t.output()});
  set_float(node, "beta", t.float_arg(n->input(3)));
  set_float(node, "alpha", t.float_arg(n->input(4)));
  set_attribute(node, "transB", trans_b);
}

void transpose_t(T& t, const Node* n) {
  // Folded into Gemm's transB by addmm when its only use is there.
  const auto* out = n->output();
  if (out->uses().size() == 1 &&
      out->uses()[0].user->kind() == c10::Symbol::fromQualString("aten::addmm") &&
      out->uses()[0].offset == 2) {
    return;
  }
  if (T::rank_of(n->input(0)) < 2) return identity(t, n);
  auto& node = t.node("Transpose", {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "perm", {1, 0});
}

void transpose(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  std::vector<int64_t> perm(rank);
  for (int64_t i = 0; i < rank; ++i) perm[i] = i;
  std::swap(perm[T::normalized_dim(t.int_arg(n->input(1)), rank)],
            perm[T::normalized_dim(t.int_arg(n->input(2)), rank)]);
  auto& node = t.node("Transpose", {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "perm", perm);
}

void permute(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  auto perm = t.ints_arg(n->input(1));
  for (auto& p : perm) p = T::normalized_dim(p, rank);
  auto& node = t.node("Transpose", {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "perm", perm);
}

void reshape(T& t, const Node* n) {
  t.node("Reshape", {t.name_of(n->input(0)), t.ints_input(n->input(1))}, {t.output()});
}

void flatten(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto start = T::normalized_dim(t.int_arg(n->input(1)), rank);
  const auto end = T::normalized_dim(t.int_arg(n->input(2)), rank);
  const auto sizes = T::sizes_of(n->input(0));
  // 0 copies the input's dim (the dynamic batch among them), -1 is the flattened run.
  std::vector<int64_t> shape(start, 0);
  shape.push_back(-1);
  for (int64_t d = end + 1; d < rank; ++d) shape.push_back(sizes[d]);
  if (rank == 0) shape = {1};
  t.node("Reshape", {t.name_of(n->input(0)), t.ints(shape)}, {t.output()});
}

void unsqueeze(T& t, const Node* n) {
  const auto dim = T::normalized_dim(t.int_arg(n->input(1)), T::rank_of(n->input(0)) + 1);
  t.node("Unsqueeze", {t.name_of(n->input(0)), t.ints({dim})}, {t.output()});
}

void squeeze(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto sizes = T::sizes_of(n->input(0));
  std::vector<int64_t> axes;
  if (n->inputs().size() > 1) {
    for (auto d : t.ints_arg(n->input(1))) {
      d = T::normalized_dim(d, rank);
      if (sizes[d] == 1) axes.push_back(d);
    }
  } else {
    for (int64_t d = 0; d < rank; ++d) {
      if (sizes[d] == 1) axes.push_back(d);
    }
  }
  TORCH_CHECK(std::find(axes.begin(), axes.end(), 0) == axes.end() ||
                  torch::jit::toIValue(n->input(0)).has_value(),
              "squeezing the batch dim (traced with batch size 1) would fix the batch size");
  if (axes.empty()) return identity(t, n);
  t.node("Squeeze", {t.name_of(n->input(0)), t.ints(axes)}, {t.output()});
}

void slice(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto dim = T::normalized_dim(t.int_arg(n->input(1)), rank);
  const auto start = t.is_none(n->input(2)) ? 0 : t.int_arg(n->input(2));
  const auto end =
      t.is_none(n->input(3)) ? std::numeric_limits<int64_t>::max() : t.int_arg(n->input(3));
  if (dim == 0 && start == 0 && end >= t.captured().batch_size && t.int_arg(n->input(4)) == 1) {
    return identity(t, n);  // x[:] on the batch dim
  }
  t.node("Slice",
         {t.name_of(n->input(0)), t.ints({start}), t.ints({end}), t.ints({dim}),
          t.ints({t.int_arg(n->input(4))})},
         {t.output()});
}

void narrow(T& t, const Node* n) {
  const auto dim = T::normalized_dim(t.int_arg(n->input(1)), T::rank_of(n->input(0)));
  const auto start = t.int_arg(n->input(2)), length = t.int_arg(n->input(3));
  t.node("Slice",
         {t.name_of(n->input(0)), t.ints({start}), t.ints({start + length}), t.ints({dim})},
         {t.output()});
}

/// The tensors of a prim::ListConstruct argument.
std::vector<const Value*> tensor_list(const Value* list) {
  TORCH_CHECK(list->node()->kind() == torch::jit::prim::ListConstruct,
              "a tensor list that is not built in the graph");
  return {list->node()->inputs().begin(), list->node()->inputs().end()};
}

void cat(T& t, const Node* n) {
  std::vector<std::string> inputs;
  for (const auto* v : tensor_list(n->input(0))) inputs.push_back(t.name_of(v));
  auto& node = t.node("Concat", inputs, {t.output()});
  set_attribute(node, "axis", T::normalized_dim(t.int_arg(n->input(1)), T::rank_of(n->output())));
}

void list_construct(T& t, const Node* n) {
  // Tensor lists are read by their users (cat); nothing to emit.
  for (const auto& use : n->output()->uses()) {
    TORCH_CHECK(use.user->kind() == c10::Symbol::fromQualString("aten::cat"), "a list used by ",
                use.user->kind().toQualString());
  }
  (void)t;
}

/// split/chunk/split_with_sizes: an ONNX Split into the outputs of the prim::ListUnpack reading
/// the list.
void split_into(T& t, const Node* n, int64_t dim, const std::vector<int64_t>& sizes) {
  const auto* list = n->output();
  TORCH_CHECK(
      list->uses().size() == 1 && list->uses()[0].user->kind() == torch::jit::prim::ListUnpack,
      "the list of pieces is used other than unpacked");
  const auto* unpack = list->uses()[0].user;
  t.consume(unpack);
  std::vector<std::string> outputs;
  for (const auto* v : unpack->outputs()) outputs.push_back(t.output_of(v));
  auto& node = t.node("Split", {t.name_of(n->input(0)), t.ints(sizes)}, outputs);
  set_attribute(node, "axis", dim);
}

void split(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto dim = T::normalized_dim(t.int_arg(n->input(2)), rank);
  const auto total = T::sizes_of(n->input(0))[dim];
  TORCH_CHECK(dim != 0, "splitting the batch dim");
  std::vector<int64_t> sizes;
  const auto arg = T::constant(n->input(1));
  if (arg.isIntList()) {
    sizes = arg.toIntVector();
  } else {
    const auto size = arg.toInt();
    for (int64_t begin = 0; begin < total; begin += size)
      sizes.push_back(std::min(size, total - begin));
  }
  split_into(t, n, dim, sizes);
}

void chunk(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto dim = T::normalized_dim(t.int_arg(n->input(2)), rank);
  TORCH_CHECK(dim != 0, "chunking the batch dim");
  const auto total = T::sizes_of(n->input(0))[dim];
  const auto chunks = t.int_arg(n->input(1));
  const auto size = (total + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t begin = 0; begin < total; begin += size)
    sizes.push_back(std::min(size, total - begin));
  split_into(t, n, dim, sizes);
}

/// torch's pad list (last dim first, (begin, end) pairs) as ONNX pads (all begins, then ends).
std::vector<int64_t> onnx_pads(const std::vector<int64_t>& pad, int64_t rank) {
  std::vector<int64_t> pads(2 * rank, 0);
  for (size_t i = 0; i + 1 < pad.size() + 1 && i / 2 < static_cast<size_t>(rank); i += 2) {
    const auto d = rank - 1 - static_cast<int64_t>(i / 2);
    pads[d] = pad[i];
    pads[d + rank] = pad[i + 1];
  }
  return pads;
}

void pad_node(T& t, const Node* n, const std::vector<int64_t>& pad, const std::string& mode,
              double value) {
  const auto rank = T::rank_of(n->input(0));
  std::vector<std::string> inputs{t.name_of(n->input(0)), t.ints(onnx_pads(pad, rank))};
  if (mode == "constant") inputs.push_back(t.scalar(value, n->input(0)));
  auto& node = t.node("Pad", inputs, {t.output()});
  set_string(node, "mode", mode);
}

/// Circular padding (no ONNX Pad mode in opset 17): along each padded dim, the input's last
/// `begin` entries, the input, its first `end` entries, by Slice and Concat; copies, so exact.
void circular_pad(T& t, const Node* n, const std::vector<int64_t>& pad) {
  const auto rank = T::rank_of(n->input(0));
  const auto sizes = T::sizes_of(n->input(0));
  TORCH_CHECK(pad.size() % 2 == 0 && static_cast<int64_t>(pad.size()) / 2 < rank,
              "circular padding ", at::IntArrayRef(pad), " of a rank-", rank, " tensor");
  std::vector<std::pair<int64_t, std::pair<int64_t, int64_t>>> padded;  // dim, (begin, end)
  for (size_t i = 0; i < pad.size(); i += 2) {
    const auto d = rank - 1 - static_cast<int64_t>(i / 2);
    TORCH_CHECK(pad[i] >= 0 && pad[i + 1] >= 0 && pad[i] <= sizes[d] && pad[i + 1] <= sizes[d],
                "circular padding ", at::IntArrayRef(pad), ": each amount must be in [0, ",
                "the padded dim's size] (negative amounts crop)");
    if (pad[i] > 0 || pad[i + 1] > 0) padded.push_back({d, {pad[i], pad[i + 1]}});
  }
  if (padded.empty()) return identity(t, n);
  auto x = t.name_of(n->input(0));
  for (size_t k = 0; k < padded.size(); ++k) {
    const auto [d, amounts] = padded[k];
    std::vector<std::string> pieces;
    if (amounts.first > 0) {
      pieces.push_back(t.op("Slice", {x, t.ints({-amounts.first}),
                                      t.ints({std::numeric_limits<int64_t>::max()}), t.ints({d})}));
    }
    pieces.push_back(x);
    if (amounts.second > 0) {
      pieces.push_back(t.op("Slice", {x, t.ints({0}), t.ints({amounts.second}), t.ints({d})}));
    }
    if (k + 1 == padded.size()) {
      set_attribute(t.node("Concat", pieces, {t.output()}), "axis", d);
    } else {
      ::onnx::NodeProto* concat = nullptr;
      x = t.op("Concat", pieces, &concat);
      set_attribute(*concat, "axis", d);
    }
  }
}

void pad_enum(T& t, const Node* n) {
  const auto mode = static_cast<at::padding_mode>(t.int_arg(n->input(2)));
  if (mode == at::padding_mode::circular) return circular_pad(t, n, t.ints_arg(n->input(1)));
  const double value = t.is_none(n->input(3)) ? 0.0 : t.float_arg(n->input(3));
  const char* onnx_mode = mode == at::padding_mode::constant  ? "constant"
                          : mode == at::padding_mode::reflect ? "reflect"
                                                              : "edge";
  pad_node(t, n, t.ints_arg(n->input(1)), onnx_mode, value);
}

/// aten::to (any overload): a Cast to the output's dtype, nothing when it is the input's.
void to(T& t, const Node* n) {
  const auto dtype = T::dtype_of(n->output());
  if (dtype == T::dtype_of(n->input(0))) return identity(t, n);
  auto& node = t.node("Cast", {t.name_of(n->input(0))}, {t.output()});
  set_attribute(node, "to", onnx_type(dtype));
}

/// `value` cast to the dtype of `like` when the two differ: an op's dtype argument (softmax,
/// sum, ...: torch casts the input first), or aten's promotion of integer sums to int64.
std::string cast_to_dtype_of(T& t, const Value* value, const Value* like) {
  const auto dtype = T::dtype_of(like);
  if (T::dtype_of(value) == dtype) return t.name_of(value);
  ::onnx::NodeProto* cast = nullptr;
  auto name = t.op("Cast", {t.name_of(value)}, &cast);
  set_attribute(*cast, "to", onnx_type(dtype));
  return name;
}

/// The index of the schema argument `name` of an aten node (overloads order them differently:
/// sum(self, *, dtype) and sum.dim_IntList(self, dim, keepdim, *, dtype)).
c10::optional<size_t> argument_index(const Node* n, const char* name) {
  const auto* schema = n->maybeSchema();
  TORCH_CHECK(schema != nullptr, "no schema for ", n->kind().toQualString());
  for (size_t i = 0; i < schema->arguments().size(); ++i) {
    if (schema->arguments()[i].name() == name) return i;
  }
  return c10::nullopt;
}

void softmax_like(T& t, const Node* n, const std::string& onnx_op) {
  auto& node = t.node(onnx_op, {cast_to_dtype_of(t, n->input(0), n->output())}, {t.output()});
  set_attribute(node, "axis", T::normalized_dim(t.int_arg(n->input(1)), T::rank_of(n->input(0))));
}

/// Reductions over `dim` (None or empty: all dims) with keepdim.
void reduce(T& t, const Node* n, const std::string& onnx_op, bool axes_as_input) {
  const auto rank = T::rank_of(n->input(0));
  std::vector<int64_t> axes;
  const auto dim = argument_index(n, "dim");
  if (dim && !t.is_none(n->input(*dim))) {
    for (auto d : t.ints_arg(n->input(*dim))) axes.push_back(T::normalized_dim(d, rank));
  }
  const auto keepdim_index = argument_index(n, "keepdim");
  const bool keepdim = keepdim_index && t.bool_arg(n->input(*keepdim_index));
  std::vector<std::string> inputs{cast_to_dtype_of(t, n->input(0), n->output())};
  if (axes_as_input && !axes.empty()) inputs.push_back(t.ints(axes));
  auto& node = t.node(onnx_op, inputs, {t.output()});
  set_attribute(node, "keepdims", keepdim ? 1 : 0);
  if (!axes_as_input && !axes.empty()) set_ints(node, "axes", axes);
}

/// A pooling op's per-dim argument as ONNX wants it: one entry per spatial dim (aten accepts one
/// for all), `fallback` when aten was given none.
std::vector<int64_t> pooling_argument(std::vector<int64_t> v, int64_t spatial,
                                      std::vector<int64_t> fallback) {
  if (v.empty()) return fallback;
  if (v.size() == 1) v.assign(spatial, v[0]);
  return v;
}

void max_pool(T& t, const Node* n) {
  const auto kernel = t.ints_arg(n->input(1));
  const auto spatial = static_cast<int64_t>(kernel.size());
  const auto expand = [spatial](std::vector<int64_t> v, std::vector<int64_t> fallback) {
    return pooling_argument(std::move(v), spatial, std::move(fallback));
  };
  auto& node = t.node("MaxPool", {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "kernel_shape", kernel);
  set_ints(node, "strides", expand(t.ints_arg(n->input(2)), kernel));
  auto pads = expand(t.ints_arg(n->input(3)), std::vector<int64_t>(spatial, 0));
  pads.insert(pads.end(), pads.begin(), pads.end());
  set_ints(node, "pads", pads);
  set_ints(node, "dilations", expand(t.ints_arg(n->input(4)), std::vector<int64_t>(spatial, 1)));
  set_attribute(node, "ceil_mode", t.bool_arg(n->input(5)) ? 1 : 0);
}

void avg_pool(T& t, const Node* n) {
  const auto kernel = t.ints_arg(n->input(1));
  const auto spatial = static_cast<int64_t>(kernel.size());
  const auto expand = [spatial](std::vector<int64_t> v, std::vector<int64_t> fallback) {
    return pooling_argument(std::move(v), spatial, std::move(fallback));
  };
  if (n->inputs().size() > 6) {
    TORCH_CHECK(t.is_none(n->input(6)), "divisor_override has no ONNX AveragePool attribute");
  }
  auto& node = t.node("AveragePool", {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "kernel_shape", kernel);
  set_ints(node, "strides", expand(t.ints_arg(n->input(2)), kernel));
  auto pads = expand(t.ints_arg(n->input(3)), std::vector<int64_t>(spatial, 0));
  pads.insert(pads.end(), pads.begin(), pads.end());
  set_ints(node, "pads", pads);
  set_attribute(node, "ceil_mode", t.bool_arg(n->input(4)) ? 1 : 0);
  set_attribute(node, "count_include_pad", t.bool_arg(n->input(5)) ? 1 : 0);
}

/// Adaptive pooling to sizes that divide the input: a pooling of kernel = stride = in / out.
void adaptive_pool(T& t, const Node* n, const std::string& onnx_op) {
  const auto in = T::sizes_of(n->input(0));
  auto out = t.ints_arg(n->input(1));
  const auto spatial = static_cast<int64_t>(out.size());
  std::vector<int64_t> kernel;
  for (int64_t i = 0; i < spatial; ++i) {
    const auto size = in[in.size() - spatial + i];
    TORCH_CHECK(out[i] >= 1 && size % out[i] == 0, "output size ", at::IntArrayRef(out),
                " does not divide the input's ", at::IntArrayRef(in));
    kernel.push_back(size / out[i]);
  }
  if (n->outputs().size() > 1) {
    TORCH_CHECK(!n->outputs()[1]->hasUses(), "the indices of a max pooling");
  }
  auto& node = t.node(onnx_op, {t.name_of(n->input(0))}, {t.output()});
  set_ints(node, "kernel_shape", kernel);
  set_ints(node, "strides", kernel);
}

/// div(x, y, rounding_mode) on floating tensors. None: Div. 'trunc': torch's trunc(x / y), as
/// Ceil below zero and Floor elsewhere (opset 17 has no Trunc; both keep the zero's sign).
/// 'floor': torch's Python floor division (c10::div_floor_floating and its vectorized twin),
/// step by step: mod = fmod(x, y); d = (x - mod) / y, minus 1 where mod != 0 and its sign
/// differs from y's; f = floor(d), plus 1 where d - f > 0.5; copysign(0, x / y) where d == 0;
/// x / y where y == 0.
void divide(T& t, const Node* n, const std::string& mode) {
  const auto x = t.name_of(n->input(0));
  const auto y = t.tensor_or_scalar(n->input(1), n->input(0));
  if (mode.empty()) return (void)t.node("Div", {x, y}, {t.output()});
  TORCH_CHECK(mode == "trunc" || mode == "floor", "rounding_mode '", mode, "'");
  TORCH_CHECK(at::isFloatingType(T::dtype_of(n->input(0))) &&
                  T::dtype_of(n->input(0)) == T::dtype_of(n->output()),
              "rounding_mode '", mode, "' on ", T::dtype_of(n->input(0)),
              " (exported for floating tensors only: ONNX's integer Div truncates, and torch "
              "promotes integer operands of another dtype)");
  const auto zero = t.scalar(0, n->input(0)), one = t.scalar(1, n->input(0));
  const auto quotient = t.op("Div", {x, y});
  if (mode == "trunc") {
    t.node("Where",
           {t.op("Less", {quotient, zero}), t.op("Ceil", {quotient}), t.op("Floor", {quotient})},
           {t.output()});
    return;
  }
  ::onnx::NodeProto* fmod = nullptr;
  const auto mod = t.op("Mod", {x, y}, &fmod);
  set_attribute(*fmod, "fmod", 1);
  auto d = t.op("Div", {t.op("Sub", {x, mod}), y});
  const auto signs_differ =
      t.op("And", {t.op("Not", {t.op("Equal", {mod, zero})}),
                   t.op("Xor", {t.op("Less", {y, zero}), t.op("Less", {mod, zero})})});
  d = t.op("Where", {signs_differ, t.op("Sub", {d, one}), d});
  auto floordiv = t.op("Floor", {d});
  const auto round_up = t.op("Greater", {t.op("Sub", {d, floordiv}), t.scalar(0.5, n->input(0))});
  floordiv = t.op("Where", {round_up, t.op("Add", {floordiv, one}), floordiv});
  // copysign(0, x / y): x / y is finite where d == 0, so x / y * 0 is the zero of its sign.
  floordiv = t.op("Where", {t.op("Equal", {d, zero}), t.op("Mul", {quotient, zero}), floordiv});
  t.node("Where", {t.op("Equal", {y, zero}), quotient, floordiv}, {t.output()});
}

void div(T& t, const Node* n) {
  const bool has_mode = n->inputs().size() > 2 && !t.is_none(n->input(2));
  divide(t, n, has_mode ? T::constant(n->input(2)).toStringRef() : std::string());
}

std::string ones_or(T& t, const Value* v, int64_t size, double fill, const Value* like) {
  if (!t.is_none(v)) return t.name_of(v);
  return add_initializer(t.graph(), at::full({size}, fill, at::TensorOptions(T::dtype_of(like))),
                         t.fresh(fill == 1.0 ? "ones" : "zeros"));
}

void batch_norm(T& t, const Node* n) {
  TORCH_CHECK(!t.bool_arg(n->input(5)),
              "BatchNorm in training mode; call eval() on the model before exporting");
  const auto channels = T::sizes_of(n->input(0))[1];
  auto& node = t.node("BatchNormalization",
                      {t.name_of(n->input(0)), ones_or(t, n->input(1), channels, 1, n->input(0)),
                       ones_or(t, n->input(2), channels, 0, n->input(0)), t.name_of(n->input(3)),
                       t.name_of(n->input(4))},
                      {t.output()});
  set_float(node, "epsilon", t.float_arg(n->input(7)));
}

void layer_norm(T& t, const Node* n) {
  const auto shape = t.ints_arg(n->input(1));
  int64_t size = 1;
  for (auto s : shape) size *= s;
  std::vector<std::string> inputs{t.name_of(n->input(0))};
  const auto weight = ones_or(t, n->input(2), size, 1, n->input(0));
  inputs.push_back(t.is_none(n->input(2)) ? t.op("Reshape", {weight, t.ints(shape)}) : weight);
  if (!t.is_none(n->input(3))) inputs.push_back(t.name_of(n->input(3)));
  auto& node = t.node("LayerNormalization", inputs, {t.output()});
  set_attribute(node, "axis", -static_cast<int64_t>(shape.size()));
  set_float(node, "epsilon", t.float_arg(n->input(4)));
}

/// `w` of shape [C] reshaped to [C, 1, ...] so that it broadcasts over the dims after C.
std::string per_channel(T& t, const Value* w, int64_t rank) {
  std::vector<int64_t> shape{-1};
  for (int64_t d = 2; d < rank; ++d) shape.push_back(1);
  return t.op("Reshape", {t.name_of(w), t.ints(shape)});
}

void instance_norm(T& t, const Node* n) {
  TORCH_CHECK(t.bool_arg(n->input(5)),
              "InstanceNorm with running statistics (track_running_stats in eval mode)");
  const auto channels = T::sizes_of(n->input(0))[1];
  auto& node = t.node("InstanceNormalization",
                      {t.name_of(n->input(0)), ones_or(t, n->input(1), channels, 1, n->input(0)),
                       ones_or(t, n->input(2), channels, 0, n->input(0))},
                      {t.output()});
  set_float(node, "epsilon", t.float_arg(n->input(7)));
}

/// GroupNorm (no opset-17 operator): InstanceNormalization over (N, G, -1), then the
/// per-channel affine transform.
void group_norm(T& t, const Node* n) {
  const auto x = n->input(0);
  const auto groups = t.int_arg(n->input(1));
  const auto rank = T::rank_of(x);
  const auto grouped = t.op("Reshape", {t.name_of(x), t.ints({0, groups, -1})});
  const auto ones = add_initializer(
      t.graph(), at::ones({groups}, at::TensorOptions(T::dtype_of(x))), t.fresh("ones"));
  const auto zeros = add_initializer(
      t.graph(), at::zeros({groups}, at::TensorOptions(T::dtype_of(x))), t.fresh("zeros"));
  ::onnx::NodeProto* norm = nullptr;
  const auto normalized = t.op("InstanceNormalization", {grouped, ones, zeros}, &norm);
  set_float(*norm, "epsilon", t.float_arg(n->input(4)));
  auto y = t.op("Reshape", {normalized, t.op("Shape", {t.name_of(x)})});
  if (!t.is_none(n->input(2))) y = t.op("Mul", {y, per_channel(t, n->input(2), rank)});
  if (!t.is_none(n->input(3))) y = t.op("Add", {y, per_channel(t, n->input(3), rank)});
  t.node("Identity", {y}, {t.output()});
}

void prelu(T& t, const Node* n) {
  const auto rank = T::rank_of(n->input(0));
  const auto slope = T::sizes_of(n->input(1))[0] == 1 || rank < 2
                         ? t.name_of(n->input(1))
                         : per_channel(t, n->input(1), rank);
  t.node("PRelu", {t.name_of(n->input(0)), slope}, {t.output()});
}

void gelu(T& t, const Node* n) {
  const auto x = n->input(0);
  const auto approximate = T::constant(n->input(1)).toStringRef();
  std::string inner;
  if (approximate == "tanh") {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const auto cube = t.op("Mul", {t.op("Mul", {t.name_of(x), t.name_of(x)}), t.name_of(x)});
    const auto sum = t.op("Add", {t.name_of(x), t.op("Mul", {cube, t.scalar(0.044715, x)})});
    inner = t.op("Tanh", {t.op("Mul", {sum, t.scalar(std::sqrt(2.0 / M_PI), x)})});
  } else {
    TORCH_CHECK(approximate == "none", "approximate='", approximate, "'");
    // 0.5 x (1 + erf(x / sqrt(2)))
    inner = t.op("Erf", {t.op("Mul", {t.name_of(x), t.scalar(M_SQRT1_2, x)})});
  }
  const auto half_x = t.op("Mul", {t.name_of(x), t.scalar(0.5, x)});
  t.node("Mul", {half_x, t.op("Add", {inner, t.scalar(1.0, x)})}, {t.output()});
}

void softplus(T& t, const Node* n) {
  const auto x = n->input(0);
  const auto beta = t.float_arg(n->input(1));
  if (beta == 1.0) {
    t.node("Softplus", {t.name_of(x)}, {t.output()});
  } else {
    const auto scaled = t.op("Softplus", {t.op("Mul", {t.name_of(x), t.scalar(beta, x)})});
    t.node("Div", {scaled, t.scalar(beta, x)}, {t.output()});
  }
}

void upsample(T& t, const Node* n, const std::string& mode, bool has_align_corners) {
  const auto x = n->input(0);
  const auto in = T::sizes_of(x);
  const auto out = T::sizes_of(n->output());
  const auto spatial = static_cast<int64_t>(in.size()) - 2;
  std::string coordinates = "asymmetric";
  if (has_align_corners) {
    coordinates = t.bool_arg(n->input(2)) ? "align_corners" : "pytorch_half_pixel";
  }
  // The output's spatial sizes, with N and C from the input (the batch stays dynamic).
  const auto leading = t.op("Shape", {t.name_of(x)});
  ::onnx::NodeProto* first = nullptr;
  (void)first;
  const auto nc = t.op("Slice", {leading, t.ints({0}), t.ints({2})});
  ::onnx::NodeProto* concat = nullptr;
  const auto sizes = t.op("Concat", {nc, t.ints({out.end() - spatial, out.end()})}, &concat);
  set_attribute(*concat, "axis", 0);
  auto& node = t.node("Resize", {t.name_of(x), "", "", sizes}, {t.output()});
  set_string(node, "mode", mode);
  set_string(node, "coordinate_transformation_mode", coordinates);
  if (mode == "nearest") set_string(node, "nearest_mode", "floor");
}

void embedding(T& t, const Node* n) {
  auto& node = t.node("Gather", {t.name_of(n->input(0)), t.name_of(n->input(1))}, {t.output()});
  set_attribute(node, "axis", 0);
}

// ---- quantsim:: nodes -------------------------------------------------------------------------

/// The quantizer a quantsim:: node belongs to: the one that marked it while tracing
/// (CapturedGraph::quantizer_paths); for a node no quantizer marked (the operator called
/// directly), the module owning the parameters its encoding comes from (its scale), else a fresh
/// "quantizer_<i>".
std::string quantizer_path(T& t, const Node* n, const Value* encoding_input) {
  const auto marked = t.captured().quantizer_paths.find(n);
  if (marked != t.captured().quantizer_paths.end()) return marked->second;
  if (encoding_input == nullptr) return t.fresh("quantizer");
  const auto found = t.captured().constant_sources.find(encoding_input);
  if (found != t.captured().constant_sources.end() && !found->second.empty()) {
    const auto& path = found->second.front();
    const auto dot = path.rfind('.');
    return dot == std::string::npos ? std::string() : path.substr(0, dot);
  }
  return t.fresh("quantizer");
}

void quantize_dequantize(T& t, const Node* n) {
  const auto x = n->input(0);
  const auto path = quantizer_path(t, n, n->input(1));
  const auto input_name = t.name_of(x);
  t.result().quantized_tensors[path] = input_name;
  if (t.quantizers() == QuantizerNodes::kFloat) return identity(t, n);
  const auto block_size = t.ints_arg(n->input(5));
  const affine::AffineEncoding encoding(
      T::constant(n->input(1)).toTensor(), T::constant(n->input(2)).toTensor(),
      affine::Grid{t.int_arg(n->input(3)), t.int_arg(n->input(4))}, false, block_size);
  const auto output = t.output();
  const auto prefix = t.quantizer_prefix(path.empty() ? input_name : path);
  const auto weight = torch::jit::toIValue(x);
  if (weight && weight->isTensor()) {
    append_quantized_weight(t.graph(), weight->toTensor(), output, encoding, prefix);
  } else {
    append_quantize_dequantize(t.graph(), input_name, output, encoding, t.dynamic_sizes_of(x),
                               prefix);
  }
}

/// quantsim::quantize (to grid integers, as floats) and quantsim::dequantize (back): in the float
/// graph the pair is the identity (the quantizer is recorded at its quantize).
void quantize_only(T& t, const Node* n) {
  const auto x = n->input(0);
  const auto path = quantizer_path(t, n, n->input(1));
  t.result().quantized_tensors[path] = t.name_of(x);
  if (t.quantizers() == QuantizerNodes::kFloat) return identity(t, n);
  const affine::AffineEncoding encoding(
      T::constant(n->input(1)).toTensor(), T::constant(n->input(2)).toTensor(),
      affine::Grid{t.int_arg(n->input(3)), t.int_arg(n->input(4))}, false, t.ints_arg(n->input(5)));
  append_quantize(t.graph(), t.name_of(x), t.output(), encoding, t.dynamic_sizes_of(x),
                  t.quantizer_prefix(path.empty() ? t.name_of(x) : path));
}

void dequantize_only(T& t, const Node* n) {
  if (t.quantizers() == QuantizerNodes::kFloat) return identity(t, n);
  const auto q = n->input(0);
  const auto scale = T::constant(n->input(1)).toTensor();
  // The grid is not an argument of dequantize (eq. (2) needs none): that of the quantize the
  // integers come from, else a 16-bit one, which qdq.h computes as eq. (2) in float32 ops.
  affine::Grid grid{-32768, 32767};
  if (q->node()->kind() == c10::Symbol::fromQualString("quantsim::quantize")) {
    grid = affine::Grid{t.int_arg(q->node()->input(3)), t.int_arg(q->node()->input(4))};
  }
  const affine::AffineEncoding encoding(scale, T::constant(n->input(2)).toTensor(), grid, false,
                                        t.ints_arg(n->input(3)));
  append_dequantize(t.graph(), t.name_of(q), t.output(), encoding, t.dynamic_sizes_of(q),
                    t.fresh("dequantize"));
}

void float_quantize_dequantize(T& t, const Node* n) {
  const auto x = n->input(0);
  const bool has_maxval = !t.is_none(n->input(5));
  const auto path = quantizer_path(t, n, has_maxval ? n->input(5) : nullptr);
  t.result().quantized_tensors[path] = t.name_of(x);
  if (t.quantizers() == QuantizerNodes::kFloat) return identity(t, n);
  const auto bias = T::constant(n->input(3));
  const auto format =
      ops::float_format(t.int_arg(n->input(1)), t.int_arg(n->input(2)),
                        bias.isNone() ? c10::nullopt : c10::optional<int64_t>(bias.toInt()),
                        t.float_arg(n->input(4)));
  append_float_quantize_dequantize(t.graph(), t.name_of(x), t.output(), format, has_maxval,
                                   t.quantizer_prefix(path.empty() ? t.name_of(x) : path));
}

// ---- the table --------------------------------------------------------------------------------

std::unordered_map<std::string, Translation> make_translations() {
  std::unordered_map<std::string, Translation> table;
  const auto add = [&](std::initializer_list<const char*> names, const Translation& fn) {
    for (const auto* name : names) {
      table[c10::str("aten::", name)] = fn;
      table[c10::str("aten::", name, "_")] = fn;  // the in-place form: the tracer's SSA value
    }
  };
  // Convolution, linear algebra.
  add({"_convolution"}, [](T& t, const Node* n) {
    convolution(t, n, t.bool_arg(n->input(6)), t.ints_arg(n->input(7)), 8);
  });
  // _convolution_mode: a string padding ('same', 'valid') with conv2d's arguments.
  add({"conv1d", "conv2d", "conv3d", "_convolution_mode"},
      [](T& t, const Node* n) { convolution(t, n, false, {}, 6); });
  add({"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}, [](T& t, const Node* n) {
    // (input, weight, bias, stride, padding, output_padding, groups, dilation)
    convolution(t, n, true, t.ints_arg(n->input(5)), 6, 7);
  });
  add({"addmm"}, addmm);
  add({"matmul", "mm", "bmm"}, [](T& t, const Node* n) {
    t.node("MatMul", {t.name_of(n->input(0)), t.name_of(n->input(1))}, {t.output()});
  });
  add({"linear"}, [](T& t, const Node* n) {
    const auto wt = t.op("Transpose", {t.name_of(n->input(1))});
    if (t.is_none(n->input(2))) {
      t.node("MatMul", {t.name_of(n->input(0)), wt}, {t.output()});
    } else {
      t.node("Add", {t.op("MatMul", {t.name_of(n->input(0)), wt}), t.name_of(n->input(2))},
             {t.output()});
    }
  });
  add({"t"}, transpose_t);
  // Normalization, embedding.
  add({"batch_norm"}, batch_norm);
  add({"layer_norm"}, layer_norm);
  add({"group_norm"}, group_norm);
  add({"instance_norm"}, instance_norm);
  add({"embedding"}, embedding);
  // Activations.
  add({"relu"}, unary("Relu"));
  add({"relu6"}, [](T& t, const Node* n) { clip(t, n, 0, 6); });
  add({"hardtanh"},
      [](T& t, const Node* n) { clip(t, n, t.float_arg(n->input(1)), t.float_arg(n->input(2))); });
  add({"leaky_relu"}, [](T& t, const Node* n) {
    auto& node = t.node("LeakyRelu", {t.name_of(n->input(0))}, {t.output()});
    set_float(node, "alpha", t.float_arg(n->input(1)));
  });
  add({"prelu"}, prelu);
  add({"elu"}, [](T& t, const Node* n) {
    TORCH_CHECK(t.float_arg(n->input(2)) == 1.0 && t.float_arg(n->input(3)) == 1.0,
                "elu with scale or input_scale other than 1");
    auto& node = t.node("Elu", {t.name_of(n->input(0))}, {t.output()});
    set_float(node, "alpha", t.float_arg(n->input(1)));
  });
  add({"selu"}, unary("Selu"));
  add({"celu"}, [](T& t, const Node* n) {
    auto& node = t.node("Celu", {t.name_of(n->input(0))}, {t.output()});
    set_float(node, "alpha", t.float_arg(n->input(1)));
  });
  add({"gelu"}, gelu);
  add({"silu"}, [](T& t, const Node* n) {
    const auto x = t.name_of(n->input(0));
    t.node("Mul", {x, t.op("Sigmoid", {x})}, {t.output()});
  });
  add({"mish"}, [](T& t, const Node* n) {
    const auto x = t.name_of(n->input(0));
    t.node("Mul", {x, t.op("Tanh", {t.op("Softplus", {x})})}, {t.output()});
  });
  add({"sigmoid"}, unary("Sigmoid"));
  add({"tanh"}, unary("Tanh"));
  add({"hardsigmoid"}, [](T& t, const Node* n) {
    auto& node = t.node("HardSigmoid", {t.name_of(n->input(0))}, {t.output()});
    set_float(node, "alpha", 1.0 / 6);
    set_float(node, "beta", 0.5);
  });
  add({"hardswish"}, unary("HardSwish"));
  add({"softplus"}, softplus);
  add({"softsign"}, unary("Softsign"));
  add({"softmax"}, [](T& t, const Node* n) { softmax_like(t, n, "Softmax"); });
  add({"log_softmax"}, [](T& t, const Node* n) { softmax_like(t, n, "LogSoftmax"); });
  // Pooling.
  add({"max_pool1d", "max_pool2d", "max_pool3d"}, max_pool);
  add({"avg_pool1d", "avg_pool2d", "avg_pool3d"}, avg_pool);
  add({"adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"},
      [](T& t, const Node* n) { adaptive_pool(t, n, "AveragePool"); });
  add({"adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"},
      [](T& t, const Node* n) { adaptive_pool(t, n, "MaxPool"); });
  // Shapes.
  add({"flatten"}, flatten);
  add({"view", "reshape"}, reshape);
  add({"permute"}, permute);
  add({"transpose"}, transpose);
  add({"cat", "concat"}, cat);
  add({"split", "split_with_sizes"}, split);
  add({"chunk"}, chunk);
  add({"slice"}, slice);
  add({"narrow"}, narrow);
  add({"squeeze"}, squeeze);
  add({"unsqueeze"}, unsqueeze);
  add({"_pad_enum"}, pad_enum);
  add({"constant_pad_nd"}, [](T& t, const Node* n) {
    pad_node(t, n, t.ints_arg(n->input(1)), "constant", t.float_arg(n->input(2)));
  });
  add({"reflection_pad1d", "reflection_pad2d", "reflection_pad3d"},
      [](T& t, const Node* n) { pad_node(t, n, t.ints_arg(n->input(1)), "reflect", 0); });
  add({"replication_pad1d", "replication_pad2d", "replication_pad3d"},
      [](T& t, const Node* n) { pad_node(t, n, t.ints_arg(n->input(1)), "edge", 0); });
  add({"contiguous", "clone", "detach"}, identity);
  add({"to", "type_as"}, to);
  add({"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}, dropout);
  // Elementwise arithmetic.
  add({"add"}, add_sub("Add"));
  add({"sub"}, add_sub("Sub"));
  add({"mul"}, binary("Mul"));
  add({"div", "true_divide"}, div);
  // floor_divide (Python's //): torch 1.13 rounds it as div(..., rounding_mode='floor').
  add({"floor_divide"}, [](T& t, const Node* n) { divide(t, n, "floor"); });
  add({"pow"}, binary("Pow"));
  add({"maximum"}, binary("Max"));
  add({"minimum"}, binary("Min"));
  add({"neg"}, unary("Neg"));
  add({"exp"}, unary("Exp"));
  add({"log"}, unary("Log"));
  add({"sqrt"}, unary("Sqrt"));
  add({"rsqrt"}, [](T& t, const Node* n) {
    t.node("Reciprocal", {t.op("Sqrt", {t.name_of(n->input(0))})}, {t.output()});
  });
  add({"reciprocal"}, unary("Reciprocal"));
  add({"abs"}, unary("Abs"));
  add({"sign"}, unary("Sign"));
  add({"floor"}, unary("Floor"));
  add({"ceil"}, unary("Ceil"));
  add({"round"}, unary("Round"));
  add({"erf"}, unary("Erf"));
  add({"sin"}, unary("Sin"));
  add({"cos"}, unary("Cos"));
  add({"clamp", "clip"}, [](T& t, const Node* n) {
    const auto x = n->input(0);
    const auto bound = [&](const Value* v) {
      return t.is_none(v) ? std::string() : t.tensor_or_scalar(v, x);
    };
    t.node("Clip", {t.name_of(x), bound(n->input(1)), bound(n->input(2))}, {t.output()});
  });
  // Reductions (opset 17: ReduceSum's axes are an input, the others' an attribute).
  add({"sum"}, [](T& t, const Node* n) { reduce(t, n, "ReduceSum", true); });
  add({"mean"}, [](T& t, const Node* n) { reduce(t, n, "ReduceMean", false); });
  add({"amax"}, [](T& t, const Node* n) { reduce(t, n, "ReduceMax", false); });
  add({"amin"}, [](T& t, const Node* n) { reduce(t, n, "ReduceMin", false); });
  add({"prod"}, [](T& t, const Node* n) {
    const auto rank = T::rank_of(n->input(0));
    const auto x = cast_to_dtype_of(t, n->input(0), n->output());
    if (n->inputs().size() <= 2) {  // prod(x, dtype)
      auto& node = t.node("ReduceProd", {x}, {t.output()});
      set_attribute(node, "keepdims", 0);
      return;
    }
    auto& node = t.node("ReduceProd", {x}, {t.output()});
    set_ints(node, "axes", {T::normalized_dim(t.int_arg(n->input(1)), rank)});
    set_attribute(node, "keepdims", t.bool_arg(n->input(2)) ? 1 : 0);
  });
  add({"max", "min"}, [](T& t, const Node* n) {
    const bool is_max = n->kind() == c10::Symbol::fromQualString("aten::max");
    if (n->inputs().size() == 1) {  // max(x): over everything
      auto& node =
          t.node(is_max ? "ReduceMax" : "ReduceMin", {t.name_of(n->input(0))}, {t.output()});
      set_attribute(node, "keepdims", 0);
      return;
    }
    if (n->outputs().size() == 1) return binary(is_max ? "Max" : "Min")(t, n);  // max(x, y)
    const auto rank = T::rank_of(n->input(0));
    const auto dim = T::normalized_dim(t.int_arg(n->input(1)), rank);
    const auto keep = t.bool_arg(n->input(2)) ? 1 : 0;
    auto& values =
        t.node(is_max ? "ReduceMax" : "ReduceMin", {t.name_of(n->input(0))}, {t.output(0)});
    set_ints(values, "axes", {dim});
    set_attribute(values, "keepdims", keep);
    if (n->outputs()[1]->hasUses()) {
      auto& indices = t.node(is_max ? "ArgMax" : "ArgMin", {t.name_of(n->input(0))}, {t.output(1)});
      set_attribute(indices, "axis", dim);
      set_attribute(indices, "keepdims", keep);
    }
  });
  // Resampling.
  add({"upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d"},
      [](T& t, const Node* n) { upsample(t, n, "nearest", false); });
  add({"upsample_linear1d", "upsample_bilinear2d", "upsample_trilinear3d"},
      [](T& t, const Node* n) { upsample(t, n, "linear", true); });
  // Lists the graph builds for cat.
  table["prim::ListConstruct"] = list_construct;
  // quantsim's operator library.
  table["quantsim::quantize_dequantize"] = quantize_dequantize;
  table["quantsim::float_quantize_dequantize"] = float_quantize_dequantize;
  table["quantsim::quantize"] = quantize_only;
  table["quantsim::dequantize"] = dequantize_only;
  return table;
}

const std::unordered_map<std::string, Translation>& translations() {
  static const auto table = make_translations();
  return table;
}

}  // namespace

TranslatedGraph translate(const CapturedGraph& captured, QuantizerNodes quantizers,
                          const std::string& graph_name) {
  Translator translator(captured, quantizers);
  translator.run(graph_name);
  return std::move(translator.result());
}

std::vector<std::string> supported_aten_ops() {
  std::vector<std::string> names;
  for (const auto& entry : translations()) {
    if (entry.first.rfind("aten::", 0) == 0) names.push_back(entry.first);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace quantsim::onnx_export
