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

/// Keyed by the quantized type; guarded by registry_mutex().
std::map<std::type_index, AnyModuleFactory>& any_module_factories() {
  static std::map<std::type_index, AnyModuleFactory> entries;
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

void register_any_module_factory(std::type_index quantized_type, AnyModuleFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  any_module_factories()[quantized_type] = std::move(factory);
}

torch::nn::AnyModule to_any_module(const std::shared_ptr<torch::nn::Module>& module) {
  TORCH_CHECK_VALUE(module != nullptr, "to_any_module: the module is null");
  ensure_builtins();
  AnyModuleFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    const auto found = any_module_factories().find(std::type_index(typeid(*module)));
    if (found != any_module_factories().end()) factory = found->second;
  }
  TORCH_CHECK_TYPE(factory, "to_any_module: ", c10::demangle(typeid(*module).name()),
                   " is not a quantized module type registered with "
                   "quantsim::nn::register_quantized_module, so its static type is unknown here; "
                   "wrap it yourself with torch::nn::AnyModule(std::shared_ptr<ItsType>)");
  return factory(module);
}

std::string registration_hint(const std::string& type_name) {
  return c10::str(
      "Register the generic fake-quantized module for it with\n"
      "    #include <quantsim/nn/register_quantized_module.h>\n"
      "    quantsim::nn::register_quantized_module<",
      type_name,
      ">();\n"
      "(one input and one output quantizer; specialize quantsim::nn::ModuleTraits<",
      type_name, "> for other counts), or your own class with register_quantized_module<",
      type_name, ", MyQuantizedImpl>().");
}

std::shared_ptr<torch::nn::Module> from_module(const std::shared_ptr<torch::nn::Module>& module) {
  TORCH_CHECK_VALUE(module != nullptr, "from_module: the module is null");
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
  TORCH_CHECK(factory, "from_module: no quantized module is registered for ", type_name, ". ",
              registration_hint(type_name));
  return factory(*module);
}

}  // namespace quantsim::nn
