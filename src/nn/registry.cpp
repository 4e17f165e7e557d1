#include <quantsim/errors.h>
#include <quantsim/nn/registry.h>

#include <c10/util/Type.h>

#include <map>
#include <mutex>
#include <utility>

namespace quantsim::nn {
namespace {

using Registry = std::map<std::pair<std::type_index, MixinKind>, QuantizedFactory>;

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

Registry& registry() {
  static Registry entries;
  return entries;
}

/// Registers the table the first time anyone looks at the registry. Called outside the mutex:
/// the registration functions take it themselves.
void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, register_builtin_modules);
}

}  // namespace

void register_quantized_factory(std::type_index float_type, MixinKind kind,
                                QuantizedFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[{float_type, kind}] = std::move(factory);
}

bool is_registered(std::type_index float_type, MixinKind kind) {
  ensure_builtins();
  std::lock_guard<std::mutex> lock(registry_mutex());
  return registry().count({float_type, kind}) > 0;
}

std::shared_ptr<torch::nn::Module> from_module(const std::shared_ptr<torch::nn::Module>& module) {
  QS_CHECK_ARG(module != nullptr, "from_module: the module is null");
  const auto type_name = c10::demangle(typeid(*module).name());
  TORCH_CHECK(dynamic_cast<const BaseQuantizationMixin*>(module.get()) == nullptr,
              "from_module: ", type_name, " is already a quantized module");
  ensure_builtins();
  QuantizedFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    for (auto kind : {MixinKind::kQuantization, MixinKind::kFakeQuantization}) {
      const auto found = registry().find({std::type_index(typeid(*module)), kind});
      if (found != registry().end()) {
        factory = found->second;
        break;
      }
    }
  }
  TORCH_CHECK(factory, "from_module: no quantized module is registered for ", type_name,
              ". Register the generic fake-quantized module for it with\n"
              "    quantsim::nn::register_quantized_module<",
              type_name,
              ">();\n"
              "(one input and one output quantizer; specialize quantsim::nn::ModuleTraits<",
              type_name, "> for other counts), or your own class with register_quantized_module<",
              type_name, ", MyQuantizedImpl>().");
  return factory(*module);
}

}  // namespace quantsim::nn
