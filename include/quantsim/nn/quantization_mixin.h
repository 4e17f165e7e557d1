#pragma once

/// `QuantizationMixin<Float>`: a fake-quantized module that can run a quantized kernel instead
/// of the float op (docs/modules.md §4).
///
/// A kernel receives the inputs and parameters as QuantizedTensors (grid values with their
/// encodings; a tensor without quantizer arrives with a null encoding, as its raw values) and
/// the output encoding, and returns a QuantizedTensor, which the module dequantizes. Without a
/// kernel, or inside compute_encodings(), the module takes the fake-quantization path, so that a
/// QuantizationMixin module without kernel is exactly its FakeQuantizationMixin counterpart.
///
///     qs::nn::QuantizedLinear qlinear(torch::nn::LinearOptions(4, 3));
///     qlinear->set_kernel([](const qs::nn::KernelArgs& args) {
///       auto x = args.real_input(0), w = args.real_parameter("weight");
///       auto y = torch::nn::functional::linear(x, w, args.real_parameter("bias"));
///       return qs::QuantizedTensor(args.output_encoding->quantize(y), args.output_encoding);
///     });

#include <quantsim/nn/fake_quantization_mixin.h>
#include <quantsim/tensor.h>

#include <ATen/ops/zeros.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace quantsim::nn {

/// What a quantized kernel receives.
struct KernelArgs {
  /// One per input quantizer, in slot order.
  std::vector<QuantizedTensor> inputs;
  /// The parameters the module owns directly (undefined ones left out), by name.
  std::map<std::string, QuantizedTensor> parameters;
  /// output_quantizers[0]'s encoding, or null.
  std::shared_ptr<EncodingBase> output_encoding;
  /// The module, for its options (`static_cast<const QuantizedLinearImpl&>(*module).options`).
  const torch::nn::Module* module = nullptr;

  /// Input `index` as real values: dequantized, or as given when it has no encoding.
  at::Tensor real_input(size_t index) const;
  /// Parameter `name` as real values; an undefined tensor when the module has no such parameter.
  at::Tensor real_parameter(const std::string& name) const;
};

/// A quantized kernel (see QuantizationMixin).
using Kernel = std::function<QuantizedTensor(const KernelArgs&)>;

template <typename Float>
class QuantizationMixin
    : public QuantizedModuleBase<Float, QuantizationMixin<Float>>,
      public detail::ForwardDeclaration<QuantizationMixin<Float>, decltype(&Float::forward),
                                        ModuleTraits<Float>::required_args> {
  using Base = QuantizedModuleBase<Float, QuantizationMixin<Float>>;
  friend Base;

 public:
  static constexpr const char* kPrefix = "Quantized";
  template <typename... Args, typename = detail::EnableIfNotTagged<Args...>>
  explicit QuantizationMixin(Args&&... args) : Base(std::forward<Args>(args)...) {}
  QuantizationMixin(FromFloat tag, const Float& float_module);
  using detail::ForwardDeclaration<QuantizationMixin<Float>, decltype(&Float::forward),
                                   ModuleTraits<Float>::required_args>::forward;

  /// This instance's kernel; an empty function forces the fake-quantization path even when the
  /// class has a default kernel.
  void set_kernel(Kernel kernel);
  /// Back to the class default.
  void reset_kernel();
  /// The kernel every instance of this class uses unless it has its own.
  static void set_default_kernel(Kernel kernel);
  static Kernel get_default_kernel();
  /// The instance's kernel if set, else the class default (possibly empty).
  Kernel get_kernel() const;

  template <typename... Args>
  typename Base::Result dispatch(Args&&... args) {
    if constexpr (std::is_same_v<typename Base::Result, at::Tensor>) {
      auto kernel = get_kernel();
      if (kernel && !this->is_calibrating()) return kernel_call(kernel, args...);
    }
    return this->fake_quantized_call(std::forward<Args>(args)...);
  }

 protected:
  void copy_state_from(const QuantizationMixin& other);

 private:
  /// One per class, in the library (a function-local static of an inline function would be
  /// one per shared object).
  static Kernel& default_kernel();

  template <typename... Args>
  at::Tensor kernel_call(const Kernel& kernel, const Args&... args) {
    KernelArgs call;
    call.module = this;
    // An input without a tensor (an absent optional) arrives empty.
    call.inputs.resize(Base::Traits::num_inputs, QuantizedTensor(at::zeros({0}), nullptr));
    size_t first = 0;
    auto collect = [&](size_t leaf, const at::Tensor& x) {
      const int input = Base::input_for_leaf(leaf);
      if (input >= 0 && x.defined() && x.is_floating_point()) {
        call.inputs[input] = to_grid(this->input_quantizers->at(input), x);
      }
      return x;
    };
    (
        [&](const auto& arg) {
          using Value = std::decay_t<decltype(arg)>;
          TensorLeaves<Value>::map(arg, first, collect);
          first += TensorLeaves<Value>::count;
        }(args),
        ...);
    for (auto& [name, slot] : parameter_slots<Float, typename Base::Traits>(*this)) {
      if (!slot->defined()) continue;
      auto quantizer =
          this->param_quantizers->contains(name) ? this->param_quantizers->at(name) : nullptr;
      call.parameters.emplace(name, quantizer && quantizer->is_initialized()
                                        ? quantizer->quantize_to_grid(*slot)
                                        : QuantizedTensor(*slot, nullptr));
    }
    auto output_quantizer =
        this->output_quantizers->size() ? this->output_quantizers->at(0) : nullptr;
    if (output_quantizer) call.output_encoding = output_quantizer->get_encoding();
    auto out = kernel(call);
    return out.encoding() ? out.dequantize().tensor() : out.tensor();
  }

  static QuantizedTensor to_grid(const std::shared_ptr<QuantizerBase>& quantizer,
                                 const at::Tensor& x) {
    return quantizer ? quantizer->quantize_to_grid(x) : QuantizedTensor(x, nullptr);
  }

  Kernel kernel_;
  bool has_kernel_ = false;
};

}  // namespace quantsim::nn

/// Declares, inside namespace quantsim::nn, that `Mixin<Float>` (FakeQuantizationMixin or
/// QuantizationMixin) and its bases are instantiated in the library: the member definitions are
/// not visible here anyway (<quantsim/nn/mixin_definitions.h>), but without this declaration
/// every file using the class would emit its vtable, and with it the float module's inline
/// virtual functions (clone, reset, pretty_print).
///
///     QUANTSIM_EXTERN_QUANTIZED_MODULE(FakeQuantizationMixin, torch::nn::LinearImpl);
#define QUANTSIM_EXTERN_QUANTIZED_MODULE(Mixin, Float)                                       \
  extern template class QuantizedModuleBase<Float, Mixin<Float>>;                            \
  extern template struct detail::ForwardDeclaration<Mixin<Float>, decltype(&Float::forward), \
                                                    ModuleTraits<Float>::required_args>;     \
  extern template class Mixin<Float>
