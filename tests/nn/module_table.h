#pragma once

// The table-driven test of the quantized module table (docs/modules.md §5): one `Row` per
// float module, the same checks run on every row.
//
// A test file builds its rows and instantiates the suite once:
//
//     std::vector<Row> rows() {
//       return {
//           row<qs::nn::QuantizationMixin>("Linear", 1, 1, [] { return torch::nn::Linear(4, 3); },
//                                          [] { return Args{randn({2, 4})}; }),
//           row("Dropout", 1, 1, [] { return torch::nn::Dropout(0.5); },
//               [] { return Args{randn({2, 3})}; }).random(),
//       };
//     }
//     INSTANTIATE_TEST_SUITE_P(Shape, ModuleTable, ::testing::ValuesIn(rows()), RowName());
//
// This header defines the TEST_Ps, so one test file of a binary includes it. With
// QUANTSIM_MODULE_TABLE_ROWS_ONLY defined it defines only the rows and their helpers, without
// gtest: python/src/testing/ includes the test files that way to compare the Python modules with
// the C++ ones row by row (python/tests/test_nn_table.py).
//
// Adding a row: one `row(...)` entry with the table's name and counts, a factory of the float
// module and its inputs; flags: `.random()` (re-seeded before each call), `.not_differentiable()`,
// `.without_backward()` (autograd has no derivative: not checked), `.with_filled_inputs({...})`
// (input quantizers of omitted arguments the op fills in), `.without_gradient_to({...})` (input
// quantizers whose input takes no gradient), `.with_param_keys({...})`
// (checked exactly), `.with_variant("...")` (another row of the same
// module). Inputs are the forward's arguments, all of them (AnyModule does not fill defaults), each
// of the exact declared type: tensors, optionals, tuples (an LSTM's (h0, c0)), PackedSequence,
// std::vector<at::Tensor> (Concat), scalars. Integer or undefined tensors are valid inputs: their
// quantizers must stay uninitialized. Results of any type with nn::TensorLeaves are compared leaf
// by leaf. Rows of a new group go in their own *_test.cpp (compile time: about 40 rows per file).
//
// For every row, with quantizers 8-bit QuantizeDequantize (activations asymmetric per tensor,
// parameters symmetric per tensor) in every slot:
//  * from_module gives the table's class (Quantized<Name> where the table lists a
//    QuantizationMixin class, else FakeQuantized<Name>), with the table's slot counts, printed as
//    `quantsim::nn::<Class>(`;
//  * with empty slots the output is the float module's, bit-exactly;
//  * compute_encodings() initializes the quantizer of every floating tensor present (inputs,
//    outputs, parameters) and no other;
//  * the calibrated output equals, bit-exactly, a reference composed here: the inputs bound to
//    input quantizers quantize-dequantized by those quantizers, the float module (a clone) run
//    with quantize-dequantized parameters, the output leaves quantize-dequantized by the output
//    quantizers;
//  * torch::save / torch::load into a fresh quantized module reproduces the output bit-exactly;
//  * backward reaches the quantized inputs and the ranges (min, max) of the input and output
//    quantizers.
//    A `.not_differentiable()` row is checked for the ranges only, and not at all when its
//    results are all integer or bool.

#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/registry.h>
#include <quantsim/nn/tensor_leaves.h>

#include <c10/util/Exception.h>
#include <c10/util/Type.h>
#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
#include <gtest/gtest.h>
#endif
#include <torch/nn/modules/container/any.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include "testing/printing.h"
#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
#include "testing/tolerance.h"
#endif

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

namespace quantsim::testing::module_table {

/// A function of a tensor leaf: its index among the arguments' (or results') leaves, its value.
using LeafFn = std::function<at::Tensor(size_t leaf, const at::Tensor& x)>;

/// One argument of a module's forward, of the exact type the forward declares (decayed):
/// `at::Tensor`, `c10::optional<at::IntArrayRef>`, ... (torch::nn::AnyModule checks the type).
/// Its tensors are seen as leaves, as the quantized modules see them (nn::TensorLeaves).
class Argument {
 public:
  template <typename T, typename = std::enable_if_t<!std::is_same_v<std::decay_t<T>, Argument>>>
  /* implicit */ Argument(T value)  // NOLINT(google-explicit-constructor)
      : num_leaves_(nn::TensorLeaves<T>::count),
        any_([value] { return torch::nn::AnyValue(value); }),
        map_([value](size_t first, const LeafFn& f) {
          return Argument(nn::TensorLeaves<T>::map(value, first, f));
        }) {}

  /// How many tensor leaves the argument has.
  size_t num_leaves() const { return num_leaves_; }
  /// The argument (sharing its tensors) as what AnyModule::any_forward takes.
  torch::nn::AnyValue any() const { return any_(); }
  /// The argument with each leaf replaced by f(first + i, leaf i).
  Argument map(size_t first, const LeafFn& f) const { return map_(first, f); }

 private:
  size_t num_leaves_;
  std::function<torch::nn::AnyValue()> any_;
  std::function<Argument(size_t, const LeafFn&)> map_;
};

using Args = std::vector<Argument>;

/// The arguments with each leaf (numbered across all arguments) replaced by f(leaf, value).
inline Args map_leaves(const Args& args, const LeafFn& f) {
  Args mapped;
  size_t first = 0;
  for (const auto& arg : args) {
    mapped.push_back(arg.map(first, f));
    first += arg.num_leaves();
  }
  return mapped;
}

/// Every leaf of the arguments, in order (undefined tensors included).
inline std::vector<at::Tensor> leaves_of(const Args& args) {
  std::vector<at::Tensor> leaves;
  map_leaves(args, [&](size_t, const at::Tensor& x) {
    leaves.push_back(x);
    return x;
  });
  return leaves;
}

inline bool is_floating(const at::Tensor& x) { return x.defined() && x.is_floating_point(); }

/// One row of the module table: how to build the float module and inputs that fit it, what the
/// table says about it, and how the checks must treat it.
struct Row {
  /// The table's name (`Linear`), which the quantized class is named after.
  std::string name;
  /// Distinguishes several rows of one module (other inputs or options); empty for the first.
  std::string variant;
  /// True where the table lists a QuantizationMixin class (Quantized<Name>).
  bool quantization_mixin = false;
  /// Quantizer counts (docs/modules.md §5.2).
  size_t num_inputs = 0, num_outputs = 0;
  /// When set, the parameter quantizer keys in order.
  c10::optional<std::vector<std::string>> param_keys;
  /// ModuleTraits<Float>::input_leaf of each input quantizer.
  std::vector<int> input_leaf;
  std::type_index float_type = typeid(void);
  std::function<std::shared_ptr<torch::nn::Module>()> make_float;
  std::function<Args()> make_inputs;
  /// The float module / the quantized module (of the row's class) as an AnyModule; an empty
  /// AnyModule when the module is not of that type.
  std::function<torch::nn::AnyModule(const std::shared_ptr<torch::nn::Module>&)> float_any,
      quantized_any;
  /// The forward's result as its tensor leaves in leaf order (the elements of a vector leaf in
  /// turn), each leaf first replaced by post(leaf, y) when `post` is set.
  std::function<std::vector<at::Tensor>(const LeafFn& post, torch::nn::AnyValue&&)> output_leaves;
  /// The op draws random numbers: the generator is re-seeded before each call.
  bool is_random = false;
  /// Backward is checked to reach the inputs bound to input quantizers.
  bool is_differentiable = true;
  /// Input quantizers that see what the op fills in for an omitted (undefined) argument, the RNNs'
  /// zero state (docs/modules.md §5.3): calibrated although their argument is not a floating
  /// tensor.
  std::vector<size_t> filled_inputs;
  /// Input quantizers whose quantized input takes no gradient (BatchNorm's running statistics):
  /// the backward check skips their ranges.
  std::vector<size_t> inputs_without_gradient;
  /// Autograd has no derivative of the op at all (libtorch 1.13's floor_divide): backward throws.
  bool has_backward = true;
  /// The namespace of the quantized class: `quantsim::nn::custom::` for the custom float modules
  /// (docs/modules.md §6), else `quantsim::nn::`.
  std::string qualifier = "quantsim::nn::";

  Row& random() {
    is_random = true;
    return *this;
  }
  Row& not_differentiable() {
    is_differentiable = false;
    return *this;
  }
  Row& with_filled_inputs(std::vector<size_t> inputs) {
    filled_inputs = std::move(inputs);
    return *this;
  }
  Row& without_gradient_to(std::vector<size_t> inputs) {
    inputs_without_gradient = std::move(inputs);
    return *this;
  }
  Row& without_backward() {
    is_differentiable = false;
    has_backward = false;
    return *this;
  }
  Row& with_param_keys(std::vector<std::string> keys) {
    param_keys = std::move(keys);
    return *this;
  }
  Row& with_variant(std::string label) {
    variant = std::move(label);
    return *this;
  }
};

inline void PrintTo(const Row& row, std::ostream* os) {
  *os << row.name << (row.variant.empty() ? "" : "/" + row.variant);
}

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
/// gtest parameter names: the row's name and variant, alphanumeric.
struct RowName {
  std::string operator()(const ::testing::TestParamInfo<Row>& info) const {
    std::string name = info.param.name;
    for (char c : info.param.variant) {
      if (std::isalnum(static_cast<unsigned char>(c))) name += c;
    }
    return name;
  }
};
#else
// Declared only, so that the test files' using-declarations compile without gtest.
struct RowName;
class ModuleTable;
#endif  // QUANTSIM_MODULE_TABLE_ROWS_ONLY

namespace detail {

template <typename T, typename = void>
struct IsHolder : std::false_type {};
template <typename T>
struct IsHolder<T, std::void_t<typename T::ContainedType>> : std::true_type {};

/// The module type a factory returns (a holder's Impl, or the pointee).
template <typename Made>
struct ImplOf {
  using type = typename Made::element_type;
};
template <typename Made>
struct ImplOfHolder {
  using type = typename Made::ContainedType;
};

template <typename Made>
using Impl =
    typename std::conditional_t<IsHolder<Made>::value, ImplOfHolder<Made>, ImplOf<Made>>::type;

}  // namespace detail

/// A row for the float module the factory `make` returns (a holder or a shared_ptr), with
/// `num_inputs`/`num_outputs` quantizers (docs/modules.md §5.2) and the inputs `make_inputs`
/// returns. `Mixin` is the class from_module must give: nn::QuantizationMixin for the table's
/// Quantized<Name> rows.
template <template <typename> class Mixin = nn::FakeQuantizationMixin, typename Make,
          typename MakeInputs>
Row row(std::string name, size_t num_inputs, size_t num_outputs, Make make,
        MakeInputs make_inputs) {
  using Float = detail::Impl<std::decay_t<decltype(make())>>;
  using Quantized = Mixin<Float>;
  using Traits = nn::ModuleTraits<Float>;
  using Result = std::decay_t<typename nn::detail::ForwardOf<Float>::Result>;
  Row r;
  r.name = std::move(name);
  r.quantization_mixin = std::is_same_v<Quantized, nn::QuantizationMixin<Float>>;
  r.num_inputs = num_inputs;
  r.num_outputs = num_outputs;
  for (size_t i = 0; i < Traits::num_inputs; ++i) r.input_leaf.push_back(Traits::input_leaf(i));
  r.float_type = typeid(Float);
  constexpr const char* kCustom = "quantsim::nn::custom::";
  if (c10::demangle(typeid(Float).name()).rfind(kCustom, 0) == 0) r.qualifier = kCustom;
  r.make_float = [make] {
    auto made = make();
    std::shared_ptr<Float> module;
    if constexpr (detail::IsHolder<decltype(made)>::value) {
      module = made.ptr();
    } else {
      module = made;
    }
    // Parameters off their initial values (BatchNorm's 1 and 0 would quantize exactly).
    torch::NoGradGuard no_grad;
    for (auto& parameter : module->parameters()) {
      parameter.add_(at::randn_like(parameter) * 0.1);
    }
    return std::static_pointer_cast<torch::nn::Module>(module);
  };
  r.make_inputs = [make_inputs] { return Args(make_inputs()); };
  r.float_any = [](const std::shared_ptr<torch::nn::Module>& module) {
    auto typed = std::dynamic_pointer_cast<Float>(module);
    return typed ? torch::nn::AnyModule(typed) : torch::nn::AnyModule();
  };
  // The library's AnyModule of the quantized class (to_any_module: instantiated once, where the
  // class is registered), not one built here: each AnyModule<T> instantiated in this file costs
  // compile time, and there are two per row.
  r.quantized_any = [](const std::shared_ptr<torch::nn::Module>& module) {
    return std::dynamic_pointer_cast<Quantized>(module) ? nn::to_any_module(module)
                                                        : torch::nn::AnyModule();
  };
  r.output_leaves = [](const LeafFn& post, torch::nn::AnyValue&& value) {
    // TensorLeaves maps a tuple's elements in an unspecified order (GCC: last first): sort by
    // leaf, stably (a vector's elements share one leaf and come in order).
    std::vector<std::pair<size_t, at::Tensor>> indexed;
    auto collect = [&](size_t leaf, const at::Tensor& y) {
      indexed.emplace_back(leaf, post ? post(leaf, y) : y);
      return y;
    };
    nn::TensorLeaves<Result>::map(value.get<Result>(), 0, collect);
    std::stable_sort(indexed.begin(), indexed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<at::Tensor> leaves;
    for (auto& [leaf, y] : indexed) leaves.push_back(std::move(y));
    return leaves;
  };
  return r;
}

/// The forward of `module` on `args`; its result as tensor leaves, each replaced by
/// post(leaf, y) when `post` is set.
inline std::vector<at::Tensor> call(const Row& row, torch::nn::AnyModule& module, const Args& args,
                                    const LeafFn& post = nullptr) {
  constexpr uint64_t kSeed = 1234;
  if (row.is_random) torch::manual_seed(kSeed);
  std::vector<torch::nn::AnyValue> a;
  for (const auto& arg : args) a.push_back(arg.any());
  switch (a.size()) {
    case 1:
      return row.output_leaves(post, module.any_forward(std::move(a[0])));
    case 2:
      return row.output_leaves(post, module.any_forward(std::move(a[0]), std::move(a[1])));
    case 3:
      return row.output_leaves(
          post, module.any_forward(std::move(a[0]), std::move(a[1]), std::move(a[2])));
    case 4:
      return row.output_leaves(post, module.any_forward(std::move(a[0]), std::move(a[1]),
                                                        std::move(a[2]), std::move(a[3])));
    case 5:
      return row.output_leaves(post,
                               module.any_forward(std::move(a[0]), std::move(a[1]), std::move(a[2]),
                                                  std::move(a[3]), std::move(a[4])));
    case 6:
      return row.output_leaves(
          post, module.any_forward(std::move(a[0]), std::move(a[1]), std::move(a[2]),
                                   std::move(a[3]), std::move(a[4]), std::move(a[5])));
    case 7:
      return row.output_leaves(
          post,
          module.any_forward(std::move(a[0]), std::move(a[1]), std::move(a[2]), std::move(a[3]),
                             std::move(a[4]), std::move(a[5]), std::move(a[6])));
    case 8:
      return row.output_leaves(
          post,
          module.any_forward(std::move(a[0]), std::move(a[1]), std::move(a[2]), std::move(a[3]),
                             std::move(a[4]), std::move(a[5]), std::move(a[6]), std::move(a[7])));
    default:
      TORCH_CHECK(false, "rows with ", a.size(), " arguments are not supported");
      return {};
  }
}

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
/// Bit-exact equality of two results, leaf by leaf.
inline ::testing::AssertionResult leaves_equal(const std::vector<at::Tensor>& actual,
                                               const std::vector<at::Tensor>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << actual.size() << " output leaves vs " << expected.size();
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i].defined() != expected[i].defined()) {
      return ::testing::AssertionFailure()
             << "output leaf " << i << ": defined " << actual[i].defined() << " vs "
             << expected[i].defined();
    }
    if (!actual[i].defined()) continue;
    auto equal = bitwise_equal(actual[i].detach(), expected[i].detach());
    if (!equal) return equal << " (output leaf " << i << ")";
  }
  return ::testing::AssertionSuccess();
}
#endif  // QUANTSIM_MODULE_TABLE_ROWS_ONLY

/// x quantize-dequantized by the quantizer's own forward.
inline at::Tensor qdq(const std::shared_ptr<QuantizerBase>& quantizer, const at::Tensor& x) {
  auto affine = std::dynamic_pointer_cast<affine::QuantizeDequantizeImpl>(quantizer);
  TORCH_CHECK(affine, "the module table test fills slots with QuantizeDequantize quantizers");
  return affine->forward(x);
}

/// A float module of the row and its quantized module (sharing its state), with the inputs.
struct Instance {
  std::shared_ptr<torch::nn::Module> float_module, quantized_module;
  torch::nn::AnyModule float_any, quantized_any;
  nn::BaseQuantizationMixin* quantized = nullptr;

  explicit Instance(const Row& row)
      : float_module(row.make_float()),
        quantized_module(nn::from_module(float_module)),
        float_any(row.float_any(float_module)),
        quantized_any(row.quantized_any(quantized_module)),
        quantized(dynamic_cast<nn::BaseQuantizationMixin*>(quantized_module.get())) {}

  bool valid() const { return quantized != nullptr && !quantized_any.is_empty(); }
};

/// Fills every slot: activations 8-bit asymmetric per tensor, parameters 8-bit symmetric per
/// tensor.
inline void fill_slots(nn::BaseQuantizationMixin& module) {
  for (auto* slots : {&*module.input_quantizers, &*module.output_quantizers}) {
    for (const auto& key : slots->keys()) {
      (*slots)[key] = affine::QuantizeDequantize(std::vector<int64_t>{}, 8, false);
    }
  }
  for (const auto& key : module.param_quantizers->keys()) {
    module.param_quantizers[key] = affine::QuantizeDequantize(std::vector<int64_t>{}, 8, true);
  }
}

#ifndef QUANTSIM_MODULE_TABLE_ROWS_ONLY
class ModuleTable : public ::testing::TestWithParam<Row> {
 protected:
  void SetUp() override { torch::manual_seed(0); }

  const Row& row() const { return GetParam(); }

  /// The input leaf input quantizer `index` is bound to, or null if it has none / it is absent.
  static const at::Tensor* bound_leaf(const Row& row, const std::vector<at::Tensor>& leaves,
                                      size_t index) {
    const int leaf = index < row.input_leaf.size() ? row.input_leaf[index] : -1;
    if (leaf < 0 || static_cast<size_t>(leaf) >= leaves.size()) return nullptr;
    return &leaves[static_cast<size_t>(leaf)];
  }

  /// The arguments with the leaves bound to input quantizers replaced by f(quantizer, leaf).
  static Args map_bound(const Row& row, const Args& args,
                        const std::function<at::Tensor(size_t input, const at::Tensor&)>& f) {
    return map_leaves(args, [&](size_t leaf, const at::Tensor& x) {
      for (size_t i = 0; i < row.input_leaf.size(); ++i) {
        if (row.input_leaf[i] == static_cast<int>(leaf)) return f(i, x);
      }
      return x;
    });
  }

  /// The composed reference of a calibrated module: quantize-dequantized inputs and parameters,
  /// the float op, quantize-dequantized outputs.
  static std::vector<at::Tensor> reference(const Row& row, Instance& instance, const Args& args) {
    auto& module = *instance.quantized;
    auto float_clone = instance.float_module->clone();
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : float_clone->named_parameters(/*recurse=*/false)) {
        auto quantizer = module.param_quantizers->contains(parameter.key())
                             ? module.param_quantizers->at(parameter.key())
                             : nullptr;
        if (quantizer) parameter.value().copy_(qdq(quantizer, parameter.value()));
      }
    }
    const auto inputs = map_bound(row, args, [&](size_t input, const at::Tensor& x) {
      auto quantizer = module.input_quantizers->at(input);
      return quantizer && is_floating(x) ? qdq(quantizer, x) : x;
    });
    auto float_any = row.float_any(float_clone);
    return call(row, float_any, inputs, [&](size_t leaf, const at::Tensor& y) {
      auto quantizer =
          leaf < module.output_quantizers->size() ? module.output_quantizers->at(leaf) : nullptr;
      return quantizer && is_floating(y) ? qdq(quantizer, y) : y;
    });
  }

  /// An Instance with every slot filled and calibrated on `args`.
  static Instance calibrated(const Row& row, const Args& args) {
    Instance instance(row);
    if (!instance.valid()) return instance;
    fill_slots(*instance.quantized);
    instance.quantized->compute_encodings([&] { call(row, instance.quantized_any, args); });
    return instance;
  }
};

// from_module gives the table's class with the table's slots (docs/modules.md §5, §7).
TEST_P(ModuleTable, FromModuleGivesTheTableClass) {
  Instance instance(row());
  ASSERT_NE(instance.quantized, nullptr) << "not a quantized module";
  ASSERT_FALSE(instance.quantized_any.is_empty())
      << "from_module did not give " << (row().quantization_mixin ? "Quantized" : "FakeQuantized")
      << row().name;
  EXPECT_EQ(nn::is_registered(row().float_type, nn::MixinKind::kQuantization),
            row().quantization_mixin);
  EXPECT_EQ(instance.quantized->input_quantizers->size(), row().num_inputs);
  EXPECT_EQ(instance.quantized->output_quantizers->size(), row().num_outputs);
  if (row().param_keys) {
    EXPECT_EQ(instance.quantized->param_quantizers->keys(), *row().param_keys);
  }
  // One slot per directly owned parameter.
  std::vector<std::string> owned;
  for (const auto& p : instance.float_module->named_parameters(/*recurse=*/false)) {
    owned.push_back(p.key());
  }
  EXPECT_EQ(instance.quantized->param_quantizers->keys(), owned);
  const std::string prefix = row().qualifier +
                             (row().quantization_mixin ? "Quantized" : "FakeQuantized") +
                             row().name + "(";
  const auto text = printed(*instance.quantized_module);
  EXPECT_EQ(text.substr(0, prefix.size()), prefix) << text;
}

// With every slot empty the quantized module is its float module (docs/modules.md §1).
TEST_P(ModuleTable, EmptySlotsComputeTheFloatModule) {
  Instance instance(row());
  ASSERT_TRUE(instance.valid());
  const auto args = row().make_inputs();
  const auto expected = call(row(), instance.float_any, args);
  EXPECT_TRUE(leaves_equal(call(row(), instance.quantized_any, args), expected));
}

// compute_encodings() initializes the quantizer of every floating tensor present and no other.
TEST_P(ModuleTable, CalibrationInitializesTheQuantizersOfFloatingTensors) {
  const auto args = row().make_inputs();
  auto instance = calibrated(row(), args);
  ASSERT_TRUE(instance.valid());
  auto& module = *instance.quantized;
  const auto inputs = leaves_of(args);
  for (size_t i = 0; i < module.input_quantizers->size(); ++i) {
    const auto* x = bound_leaf(row(), inputs, i);
    const auto& filled = row().filled_inputs;
    EXPECT_EQ(module.input_quantizers[static_cast<int64_t>(i)]->is_initialized(),
              (x != nullptr && is_floating(*x)) ||
                  std::find(filled.begin(), filled.end(), i) != filled.end())
        << "input quantizer " << i;
  }
  const auto outputs = call(row(), instance.quantized_any, args);
  for (size_t j = 0; j < module.output_quantizers->size(); ++j) {
    EXPECT_EQ(module.output_quantizers[static_cast<int64_t>(j)]->is_initialized(),
              j < outputs.size() && is_floating(outputs[j]))
        << "output quantizer " << j;
  }
  for (const auto& key : module.param_quantizers->keys()) {
    EXPECT_TRUE(module.param_quantizers[key]->is_initialized()) << "parameter quantizer " << key;
  }
}

// The calibrated output is oq(op(iq(x), pq(params))) bit-exactly (docs/modules.md eq. (M1)).
TEST_P(ModuleTable, CalibratedOutputIsTheQuantizedComposition) {
  const auto args = row().make_inputs();
  auto instance = calibrated(row(), args);
  ASSERT_TRUE(instance.valid());
  const auto actual = call(row(), instance.quantized_any, args);
  EXPECT_TRUE(leaves_equal(actual, reference(row(), instance, args)));
}

// torch::save / torch::load into a fresh quantized module with the same slots.
TEST_P(ModuleTable, SaveLoadReproducesTheOutput) {
  const auto args = row().make_inputs();
  auto instance = calibrated(row(), args);
  ASSERT_TRUE(instance.valid());
  const auto expected = call(row(), instance.quantized_any, args);
  std::stringstream archive;
  torch::save(instance.quantized_module, archive);

  Instance fresh(row());
  ASSERT_TRUE(fresh.valid());
  fill_slots(*fresh.quantized);
  torch::load(fresh.quantized_module, archive);
  EXPECT_TRUE(leaves_equal(call(row(), fresh.quantized_any, args), expected));
}

// Gradients reach the quantized inputs and the ranges of the activation quantizers.
TEST_P(ModuleTable, BackwardReachesInputsAndQuantizerRanges) {
  if (!row().has_backward) GTEST_SKIP() << "autograd has no derivative of " << row().name;
  auto args = row().make_inputs();
  auto instance = calibrated(row(), args);
  ASSERT_TRUE(instance.valid());
  auto& module = *instance.quantized;
  if (row().is_differentiable) {
    args = map_bound(row(), args, [](size_t, const at::Tensor& x) {
      return is_floating(x) ? x.detach().requires_grad_(true) : x;
    });
  }
  const auto outputs = call(row(), instance.quantized_any, args);
  at::Tensor total;
  for (const auto& y : outputs) {
    if (!is_floating(y) || !y.requires_grad()) continue;
    total = total.defined() ? total + y.sum() : y.sum();
  }
  if (!total.defined()) {
    // Only integer or bool results (comparisons, indices, masks): there is no backward.
    ASSERT_FALSE(row().is_differentiable) << "no output requires grad";
    for (const auto& y : outputs) {
      EXPECT_FALSE(is_floating(y)) << "a floating output does not require grad";
    }
    return;
  }
  total.backward();

  auto expect_range_grads = [](const std::shared_ptr<QuantizerBase>& quantizer,
                               const std::string& what) {
    auto affine = std::dynamic_pointer_cast<affine::QuantizeDequantizeImpl>(quantizer);
    ASSERT_NE(affine, nullptr) << what;
    EXPECT_TRUE(affine->min.grad().defined()) << what << ": no gradient on min";
    EXPECT_TRUE(affine->max.grad().defined()) << what << ": no gradient on max";
  };
  const auto inputs = leaves_of(args);
  for (size_t i = 0; i < module.input_quantizers->size(); ++i) {
    const auto* x = bound_leaf(row(), inputs, i);
    if (x == nullptr || !is_floating(*x)) continue;
    const auto& no_gradient = row().inputs_without_gradient;
    if (std::find(no_gradient.begin(), no_gradient.end(), i) != no_gradient.end()) continue;
    const std::string what = "input quantizer " + std::to_string(i);
    expect_range_grads(module.input_quantizers->at(i), what);
    if (row().is_differentiable) {
      EXPECT_TRUE(x->grad().defined()) << what << ": no gradient on its input";
    }
  }
  for (size_t j = 0; j < module.output_quantizers->size() && j < outputs.size(); ++j) {
    if (!is_floating(outputs[j])) continue;
    expect_range_grads(module.output_quantizers->at(j), "output quantizer " + std::to_string(j));
  }
}

#endif  // QUANTSIM_MODULE_TABLE_ROWS_ONLY

}  // namespace quantsim::testing::module_table
