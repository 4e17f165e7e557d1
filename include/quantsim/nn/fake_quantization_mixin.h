#pragma once

/// `FakeQuantizationMixin<Float>`: a float torch::nn module with quantize-dequantize around its
/// own forward (docs/modules.md §2).
///
///     y = oq( Float::forward( iq(x), ... ) )   with each parameter p replaced by pq(p)
///
/// in a shallow copy of the float module that the call runs on: the module itself is never
/// written during a call, so that threads may call it at once (docs/simulation.md §10).
/// The class template is the whole implementation of every row of the module table: what
/// differs between rows is in ModuleTraits<Float>.

#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/module_traits.h>
#include <quantsim/nn/tensor_leaves.h>

#include <c10/util/Exception.h>
#include <c10/util/Type.h>
#include <torch/nn/module.h>

#include <array>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace quantsim::nn {

/// Tag of the constructor that wraps an existing float module (sharing its parameters).
struct FromFloat {};

namespace detail {

template <typename Method>
struct MethodSignature;
template <typename R, typename C, typename... A>
struct MethodSignature<R (C::*)(A...)> {
  using Result = R;
  using Arguments = std::tuple<A...>;
};
template <typename R, typename C, typename... A>
struct MethodSignature<R (C::*)(A...) const> : MethodSignature<R (C::*)(A...)> {};

template <typename Float>
using ForwardOf = MethodSignature<decltype(&Float::forward)>;

/// Declares `forward` with the float forward's exact signature, defaults included, so that the
/// quantized module works wherever the float one does (AnyModule, Sequential, direct calls).
/// Derived::call(args...) does the work. Its definitions are in <quantsim/nn/mixin_definitions.h>,
/// which only the translation units that instantiate a mixin include.
template <typename Derived, typename Method, size_t Required>
struct ForwardDeclaration;

template <typename Derived, typename R, typename C, typename... A>
struct ForwardDeclaration<Derived, R (C::*)(A...), kAllArguments> {
  R forward(A... a);
};
template <typename Derived, typename R, typename C, typename A0, typename A1>
struct ForwardDeclaration<Derived, R (C::*)(A0, A1), 1> {
  R forward(A0 a0, A1 a1 = {});
};
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2>
struct ForwardDeclaration<Derived, R (C::*)(A0, A1, A2), 1> {
  R forward(A0 a0, A1 a1 = {}, A2 a2 = {});
};
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2>
struct ForwardDeclaration<Derived, R (C::*)(A0, A1, A2), 2> {
  R forward(A0 a0, A1 a1, A2 a2 = {});
};
template <typename Derived, typename R, typename C, typename A0, typename A1, typename A2,
          typename A3, typename A4>
struct ForwardDeclaration<Derived, R (C::*)(A0, A1, A2, A3, A4), 3> {
  R forward(A0 a0, A1 a1, A2 a2, A3 a3 = {}, A4 a4 = {});
};

template <typename Float, typename = void>
struct HasWeight : std::false_type {};
template <typename Float>
struct HasWeight<Float, std::void_t<decltype(std::declval<Float&>().weight = at::Tensor())>>
    : std::true_type {};
template <typename Float, typename = void>
struct HasBias : std::false_type {};
template <typename Float>
struct HasBias<Float, std::void_t<decltype(std::declval<Float&>().bias = at::Tensor())>>
    : std::true_type {};

template <typename Traits, typename Float, typename = void>
struct HasParameterSlots : std::false_type {};
template <typename Traits, typename Float>
struct HasParameterSlots<Traits, Float,
                         std::void_t<decltype(Traits::parameter_slots(std::declval<Float&>()))>>
    : std::true_type {};

/// Whether ModuleTraits has a `complete_arguments(const Float&, Args&...)` hook for these
/// arguments (see QuantizedModuleBase::fake_quantized_call_on).
template <typename Traits, typename Float, typename Arguments, typename = void>
struct HasCompleteArguments : std::false_type {};
template <typename Traits, typename Float, typename... Args>
struct HasCompleteArguments<
    Traits, Float, std::tuple<Args...>,
    std::void_t<decltype(Traits::complete_arguments(
        std::declval<const Float&>(), std::declval<std::decay_t<Args>&>()...))>> : std::true_type {
};

/// Disables the forwarding constructors for the FromFloat tag and for copies.
template <typename... Args>
struct NotTagged : std::true_type {};
template <typename First, typename... Rest>
struct NotTagged<First, Rest...>
    : std::bool_constant<!std::is_same_v<std::decay_t<First>, FromFloat>> {};
template <typename... Args>
using EnableIfNotTagged = std::enable_if_t<NotTagged<Args...>::value>;

/// `Name` from a type name such as `ns::NameImpl`.
std::string module_name_from_type(const std::string& type_name);

}  // namespace detail

/// Where the forward reads each parameter: the tensor members a quantized forward temporarily
/// replaces by their quantized values. Default: members `weight` and `bias` when the float type
/// has them. ModuleTraits may define instead (the RNNs do: their forward reads a cached weight
/// list)
///
///     static std::vector<std::pair<std::string, at::Tensor*>> parameter_slots(Float&);
template <typename Float, typename Traits = ModuleTraits<Float>>
std::vector<std::pair<std::string, at::Tensor*>> parameter_slots(Float& module) {
  if constexpr (detail::HasParameterSlots<Traits, Float>::value) {
    return Traits::parameter_slots(module);
  } else {
    std::vector<std::pair<std::string, at::Tensor*>> slots;
    if constexpr (detail::HasWeight<Float>::value) slots.emplace_back("weight", &module.weight);
    if constexpr (detail::HasBias<Float>::value) slots.emplace_back("bias", &module.bias);
    return slots;
  }
}

/// What FakeQuantizationMixin and QuantizationMixin share: construction, slots, the quantized
/// call, clone and printing. `Derived` is the concrete class (CRTP).
template <typename Float, typename Derived>
class QuantizedModuleBase : public Float, public BaseQuantizationMixin {
 public:
  using FloatModule = Float;
  using Traits = ModuleTraits<Float>;

  /// Builds the float module from the same arguments as the float module's constructor.
  template <typename... Args, typename = detail::EnableIfNotTagged<Args...>>
  explicit QuantizedModuleBase(Args&&... args) : Float(std::forward<Args>(args)...) {
    init();
  }
  /// Wraps `float_module`: parameters, buffers and submodules are shared (in-place edits are
  /// seen by both; re-assigning a parameter on one does not affect the other). Torch's Module is
  /// a virtual base: the most derived class copies it from `float_module`.
  QuantizedModuleBase(FromFloat, const Float& float_module);
  ~QuantizedModuleBase() override;

  /// The float forward's result type.
  using Result = typename detail::ForwardOf<Float>::Result;

  /// The class name of the table row (`Linear`, `Add`, ...).
  static std::string name() {
    if constexpr (Traits::name != nullptr) {
      return Traits::name;
    } else {
      return detail::module_name_from_type(c10::demangle(typeid(Float).name()));
    }
  }

  /// The quantized class's name after its prefix: name(), unless the table renames it.
  static std::string class_name() {
    if constexpr (Traits::class_name != nullptr) {
      return Traits::class_name;
    } else {
      return name();
    }
  }

  std::shared_ptr<torch::nn::Module> get_original_module() const override;
  torch::nn::Module& as_module() override;
  const torch::nn::Module& as_module() const override;

  /// A deep copy of the quantized module (Cloneable<Float>::clone would return the float type):
  /// parameters, buffers and quantizers cloned, a quantizer shared by several slots still shared.
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

  void pretty_print(std::ostream& stream) const override;

  /// The quantized forward: `forward` (declared with the float signature) calls it.
  template <typename... Args>
  Result call(Args&&... args) {
    auto forward = this->begin_forward();  // also the lazy initialization (docs/modules.md §2)
    return static_cast<Derived*>(this)->dispatch(std::forward<Args>(args)...);
  }

  /// The quantized `forward_with_packed_input` of RNN, LSTM and GRU (only those declare one):
  /// input quantizer 0 applies to the packed data, the others to the hidden state as in forward.
  template <typename F = Float, typename Method = decltype(&F::forward_with_packed_input)>
  typename detail::MethodSignature<Method>::Result forward_with_packed_input(
      const torch::nn::utils::rnn::PackedSequence& input,
      std::tuple_element_t<1, typename detail::MethodSignature<Method>::Arguments> hx = {}) {
    auto forward = this->begin_forward();
    return fake_quantized_method_call(&F::forward_with_packed_input, input, std::move(hx));
  }

 protected:
  /// Per-instance state a clone carries over besides the quantizers (QuantizationMixin: kernel).
  void copy_state_from(const Derived& /*other*/) {}

  /// The fake-quantization path: quantized inputs and parameters, float op, quantized outputs.
  template <typename... Args>
  Result fake_quantized_call(Args&&... args) {
    auto float_forward = [](Float& target, auto&&... a) -> Result {
      return target.Float::forward(std::forward<decltype(a)>(a)...);
    };
    return fake_quantized_call_on(float_forward, std::forward<Args>(args)...);
  }

  /// The same path around another float method, e.g.
  /// `fake_quantized_method_call(&Float::forward_with_packed_input, packed, hx)`: the argument
  /// and result leaves bind to the quantizers as forward's do.
  template <typename Method, typename... Args>
  auto fake_quantized_method_call(Method method, Args&&... args) {
    auto float_method = [method](Float& target, auto&&... a) {
      return (target.*method)(std::forward<decltype(a)>(a)...);
    };
    return fake_quantized_call_on(float_method, std::forward<Args>(args)...);
  }

  /// Runs `op(float_module, arguments...)` on the quantized arguments under the parameter patch.
  /// When ModuleTraits has a hook `static void complete_arguments(const Float&, Args&... args)`, it
  /// first fills in what the float op would default (the RNNs' zero hidden state), so that the
  /// input quantizers see the values the op really uses (docs/modules.md §5.3).
  template <typename Op, typename... Args>
  auto fake_quantized_call_on(Op& op, Args&&... args) {
    if constexpr (detail::HasCompleteArguments<Traits, Float, std::tuple<Args...>>::value) {
      std::tuple<std::decay_t<Args>...> completed(std::forward<Args>(args)...);
      std::apply(
          [this](auto&... a) {
            Traits::complete_arguments(static_cast<const Float&>(*this), a...);
          },
          completed);
      return std::apply(
          [&](auto&... a) {
            return fake_quantized_call_indexed(std::index_sequence_for<Args...>{}, op,
                                               std::move(a)...);
          },
          completed);
    } else {
      return fake_quantized_call_indexed(std::index_sequence_for<Args...>{}, op,
                                         std::forward<Args>(args)...);
    }
  }

  template <size_t... I, typename Op, typename... Args>
  auto fake_quantized_call_indexed(std::index_sequence<I...>, Op& op, Args&&... args) {
    ParameterPatch patch(*this);
    auto result =
        op(patch.target(),
           quantized_argument<Args, first_leaf<I, Args...>()>(std::forward<Args>(args))...);
    return map_outputs(std::move(result));
  }

  /// The index of argument I's first leaf.
  template <size_t I, typename... Args>
  static constexpr size_t first_leaf() {
    constexpr size_t counts[] = {TensorLeaves<std::decay_t<Args>>::count..., 0};
    size_t sum = 0;
    for (size_t j = 0; j < I; ++j) sum += counts[j];
    return sum;
  }

  /// The input quantizer bound to argument leaf `leaf`, or -1.
  static int input_for_leaf(size_t leaf) {
    for (size_t i = 0; i < Traits::num_inputs; ++i) {
      if (Traits::input_leaf(i) == static_cast<int>(leaf)) return static_cast<int>(i);
    }
    return -1;
  }

  template <typename R>
  R map_outputs(R result) {
    if constexpr (TensorLeaves<std::decay_t<R>>::count == 0) {
      return result;
    } else {
      auto quantize = [this](size_t leaf, const at::Tensor& y) {
        return leaf < Traits::num_outputs ? quantize_output(leaf, y) : y;
      };
      return TensorLeaves<std::decay_t<R>>::map(result, 0, quantize);
    }
  }

  /// The float module the op runs on, with each quantized parameter in its slot. The quantized
  /// values go into a shallow copy of the float module (~0.2 us), never into this module's own
  /// members, so that calls running at once on several threads do not see each other's slots
  /// (docs/simulation.md, "Threads"). The copy shares every tensor and child of this module, so
  /// in-place updates (batch norm's running statistics) and gradients reach them; a module
  /// without quantized parameters runs on itself.
  class ParameterPatch {
   public:
    explicit ParameterPatch(QuantizedModuleBase& module) : target_(&static_cast<Float&>(module)) {
      const auto slots = parameter_slots<Float, Traits>(module);
      std::vector<std::pair<size_t, at::Tensor>> quantized;
      for (size_t i = 0; i < slots.size(); ++i) {
        const auto& [name, slot] = slots[i];
        if (!slot->defined() || !module.param_quantizers->contains(name)) continue;
        auto value = module.quantized_parameter(name, *slot);
        if (value.unsafeGetTensorImpl() == slot->unsafeGetTensorImpl()) continue;
        quantized.emplace_back(i, std::move(value));
      }
      if (quantized.empty()) return;
      copy_ = std::make_shared<Float>(static_cast<const Float&>(module));
      const auto copy_slots = parameter_slots<Float, Traits>(*copy_);
      for (auto& [i, value] : quantized) *copy_slots[i].second = std::move(value);
      target_ = copy_.get();
    }
    ParameterPatch(const ParameterPatch&) = delete;
    ParameterPatch& operator=(const ParameterPatch&) = delete;

    Float& target() const { return *target_; }

   private:
    Float* target_;
    std::shared_ptr<Float> copy_;
  };

  /// The argument with its leaves bound to input quantizers replaced by their quantized values.
  template <typename Arg, size_t FirstLeaf>
  decltype(auto) quantized_argument(Arg&& arg) {
    using Value = std::decay_t<Arg>;
    if constexpr (TensorLeaves<Value>::count == 0) {
      return std::forward<Arg>(arg);
    } else {
      auto quantize = [this](size_t leaf, const at::Tensor& x) {
        const int input = input_for_leaf(leaf);
        return input < 0 ? x : quantize_input(static_cast<size_t>(input), x);
      };
      return TensorLeaves<Value>::map(arg, FirstLeaf, quantize);
    }
  }

  /// The float module sharing this module's state, without the quantizer containers.
  std::shared_ptr<Float> float_copy() const {
    auto copy = std::make_shared<Float>(static_cast<const Float&>(*this));
    for (const char* name : {"input_quantizers", "output_quantizers", "param_quantizers"}) {
      if (copy->named_children().contains(name)) copy->unregister_module(name);
    }
    return copy;
  }

 private:
  void init();
};

/// The fake-quantized module of float module `Float` (`FakeQuantizedLinearImpl` is
/// `FakeQuantizationMixin<torch::nn::LinearImpl>`), with the float module's constructors and
/// forward signature.
///
///     qs::nn::FakeQuantizedConv2d conv(torch::nn::Conv2dOptions(3, 8, 3).padding(1));
///     conv->param_quantizers["weight"] = qs::affine::QuantizeDequantize({8, 1, 1, 1}, 8, true);
///     at::Tensor y = conv(x);
template <typename Float>
class FakeQuantizationMixin
    : public QuantizedModuleBase<Float, FakeQuantizationMixin<Float>>,
      public detail::ForwardDeclaration<FakeQuantizationMixin<Float>, decltype(&Float::forward),
                                        ModuleTraits<Float>::required_args> {
  using Base = QuantizedModuleBase<Float, FakeQuantizationMixin<Float>>;

 public:
  static constexpr const char* kPrefix = "FakeQuantized";
  template <typename... Args, typename = detail::EnableIfNotTagged<Args...>>
  explicit FakeQuantizationMixin(Args&&... args) : Base(std::forward<Args>(args)...) {}
  FakeQuantizationMixin(FromFloat tag, const Float& float_module);
  using detail::ForwardDeclaration<FakeQuantizationMixin<Float>, decltype(&Float::forward),
                                   ModuleTraits<Float>::required_args>::forward;

  template <typename... Args>
  typename Base::Result dispatch(Args&&... args) {
    return this->fake_quantized_call(std::forward<Args>(args)...);
  }
};

}  // namespace quantsim::nn
