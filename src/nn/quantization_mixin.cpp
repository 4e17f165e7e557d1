#include <quantsim/nn/quantization_mixin.h>

#include <c10/util/Exception.h>

namespace quantsim::nn {

at::Tensor KernelArgs::real_input(size_t index) const {
  TORCH_CHECK(index < inputs.size(), "KernelArgs: input ", index, " of ", inputs.size());
  const auto& input = inputs[index];
  return input.encoding() ? input.dequantize().tensor() : input.tensor();
}

at::Tensor KernelArgs::real_parameter(const std::string& name) const {
  const auto found = parameters.find(name);
  if (found == parameters.end()) return at::Tensor();
  return found->second.encoding() ? found->second.dequantize().tensor() : found->second.tensor();
}

namespace detail {

std::string module_name_from_type(const std::string& type_name) {
  auto name =
      type_name.substr(type_name.rfind("::") == std::string::npos ? 0 : type_name.rfind("::") + 2);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0)
    name.resize(name.size() - 4);
  return name;
}

}  // namespace detail
}  // namespace quantsim::nn
