#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/nn/convert.h>
#include <quantsim/nn/registry.h>
#include <quantsim/quantizer_base.h>

#include <c10/util/Type.h>

#include <string>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

namespace quantsim::nn {
namespace {

std::string type_name(const torch::nn::Module& module) {
  return c10::demangle(typeid(module).name());
}

std::string join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

/// How a path appears in messages: the root has none.
std::string quoted(const std::string& path) {
  return path.empty() ? std::string("the model itself") : "\"" + path + "\"";
}

/// Quantized modules and quantizers are taken over as they are, and never looked into.
bool is_quantized(const torch::nn::Module& module) {
  return dynamic_cast<const BaseQuantizationMixin*>(&module) != nullptr ||
         dynamic_cast<const QuantizerBase*>(&module) != nullptr;
}

bool is_registered_float(const torch::nn::Module& module) {
  const std::type_index type(typeid(module));
  return is_registered(type, MixinKind::kQuantization) ||
         is_registered(type, MixinKind::kFakeQuantization);
}

/// The first registered float module below `module` (not looking into quantized modules) with
/// its path, or nullopt.
c10::optional<std::pair<std::string, const torch::nn::Module*>> find_float_module(
    const torch::nn::Module& module, const std::string& path) {
  for (const auto& child : module.named_children()) {
    const auto child_path = join(path, child.key());
    const auto& value = *child.value();
    if (is_quantized(value)) continue;
    if (is_registered_float(value)) return std::make_pair(child_path, &value);
    if (auto found = find_float_module(value, child_path)) return found;
  }
  return c10::nullopt;
}

/// One conversion: remembers what each module became, so that a module reached twice becomes
/// one quantized module (shared weights stay shared).
class Converter {
 public:
  std::shared_ptr<torch::nn::Module> module(const std::shared_ptr<torch::nn::Module>& module,
                                            const std::string& path) {
    TORCH_CHECK_VALUE(module != nullptr, "convert: the module at ", quoted(path), " is null");
    const auto found = converted_.find(module.get());
    if (found != converted_.end()) return found->second;
    auto result = convert_new(module, path);
    converted_.emplace(module.get(), result);
    return result;
  }

  std::shared_ptr<torch::nn::SequentialImpl> sequential(const torch::nn::SequentialImpl& model,
                                                        const std::string& path) {
    auto result = std::make_shared<torch::nn::SequentialImpl>();
    start_container(model, *result);
    // Sequential registers each module under its name as it stores it: the children and the
    // AnyModules are in the same order.
    const auto children = model.named_children();
    TORCH_CHECK(children.size() == model.size(), "convert: the Sequential at ", quoted(path),
                " has ", children.size(), " registered children but holds ", model.size(),
                " modules; register its modules only through push_back");
    size_t index = 0;
    for (const auto& any : model) {
      const auto& name = children[index++].key();
      const auto child_path = join(path, name);
      auto converted = module(any.ptr(), child_path);
      if (converted == any.ptr()) {
        result->push_back(name, any);  // shares the module, keeps its static type
      } else {
        result->push_back(name, any_module(converted, child_path));
      }
    }
    return result;
  }

  std::shared_ptr<torch::nn::ModuleListImpl> module_list(const torch::nn::ModuleListImpl& model,
                                                         const std::string& path) {
    auto result = std::make_shared<torch::nn::ModuleListImpl>();
    start_container(model, *result);
    size_t index = 0;
    for (const auto& child : model) {
      result->push_back(module(child, join(path, std::to_string(index++))));
    }
    return result;
  }

  std::shared_ptr<torch::nn::ModuleDictImpl> module_dict(const torch::nn::ModuleDictImpl& model,
                                                         const std::string& path) {
    auto result = std::make_shared<torch::nn::ModuleDictImpl>();
    start_container(model, *result);
    std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> items;
    for (const auto& item : model.items()) {
      items.emplace_back(item.first, module(item.second, join(path, item.first)));
    }
    result->update(items);
    return result;
  }

 private:
  std::shared_ptr<torch::nn::Module> convert_new(const std::shared_ptr<torch::nn::Module>& module,
                                                 const std::string& path) {
    const auto& type = typeid(*module);
    if (is_quantized(*module)) return module;
    // Exact types only: a subclass has members and a forward of its own that a new base-class
    // container would drop; it is treated as a module of the user's below. (dynamic_cast:
    // Module is a virtual base.)
    if (type == typeid(torch::nn::SequentialImpl)) {
      return sequential(dynamic_cast<const torch::nn::SequentialImpl&>(*module), path);
    }
    if (type == typeid(torch::nn::ModuleListImpl)) {
      return module_list(dynamic_cast<const torch::nn::ModuleListImpl&>(*module), path);
    }
    if (type == typeid(torch::nn::ModuleDictImpl)) {
      return module_dict(dynamic_cast<const torch::nn::ModuleDictImpl&>(*module), path);
    }
    if (is_registered_float(*module)) return from_module(module);
    const auto name = type_name(*module);
    TORCH_CHECK(!module->children().empty(), "convert: no quantized module is registered for ",
                quoted(path), " (", name, "). ", registration_hint(name));
    if (const auto found = find_float_module(*module, path)) {
      TORCH_CHECK(false, "convert: ", quoted(found->first), " (", type_name(*found->second),
                  ") is a float module inside ", quoted(path), " (", name,
                  "), a module convert cannot rebuild: its members are holders of their float "
                  "types. Write ",
                  name,
                  " with quantsim::nn::drop_in (namespace nn = quantsim::nn::drop_in;), build it "
                  "from Sequential/ModuleList/ModuleDict, or register a quantized class for it. ",
                  registration_hint(name));
    }
    return module;  // a module of the user's, already quantized inside
  }

  /// The new container takes the original's training mode; set while it is empty, so that the
  /// children keep their own. Parameters and buffers of the container itself are shared.
  static void start_container(const torch::nn::Module& original, torch::nn::Module& copy) {
    copy.train(original.is_training());
    for (const auto& parameter : original.named_parameters(/*recurse=*/false)) {
      copy.register_parameter(parameter.key(), parameter.value(),
                              parameter.value().requires_grad());
    }
    for (const auto& buffer : original.named_buffers(/*recurse=*/false)) {
      copy.register_buffer(buffer.key(), buffer.value());
    }
  }

  static torch::nn::AnyModule any_module(const std::shared_ptr<torch::nn::Module>& module,
                                         const std::string& path) {
    try {
      return to_any_module(module);
    } catch (const c10::TypeError& error) {
      rethrow_with_prefix(error, "convert: " + quoted(path) + " cannot stay in a Sequential: ");
    }
  }

  std::unordered_map<const torch::nn::Module*, std::shared_ptr<torch::nn::Module>> converted_;
};

}  // namespace

torch::nn::Sequential convert(const torch::nn::Sequential& model) {
  TORCH_CHECK_VALUE(!model.is_empty(), "convert: the Sequential holder is empty (nullptr)");
  return torch::nn::Sequential(Converter().sequential(*model, ""));
}

torch::nn::ModuleList convert(const torch::nn::ModuleList& model) {
  TORCH_CHECK_VALUE(!model.is_empty(), "convert: the ModuleList holder is empty (nullptr)");
  return torch::nn::ModuleList(Converter().module_list(*model, ""));
}

torch::nn::ModuleDict convert(const torch::nn::ModuleDict& model) {
  TORCH_CHECK_VALUE(!model.is_empty(), "convert: the ModuleDict holder is empty (nullptr)");
  return torch::nn::ModuleDict(Converter().module_dict(*model, ""));
}

std::shared_ptr<torch::nn::Module> convert(const std::shared_ptr<torch::nn::Module>& model) {
  return Converter().module(model, "");
}

}  // namespace quantsim::nn
