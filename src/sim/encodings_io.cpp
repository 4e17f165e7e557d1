#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/nn/base_quantization_mixin.h>
#include <quantsim/sim/atomic_file.h>
#include <quantsim/sim/encodings_io.h>

#include "sim/json_reading.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>

namespace quantsim {
namespace {

using nlohmann::json;

/// A quantized module of a model and its name in named_modules() ("" for the model itself).
struct NamedQuantizedModule {
  std::string name;
  nn::BaseQuantizationMixin* module;
};

/// Every quantized module of `model`, the model first, then named_modules() order. The root is
/// looked at directly: named_modules(include_self) needs the model to be held by a shared_ptr.
std::vector<NamedQuantizedModule> quantized_modules(const torch::nn::Module& model) {
  std::vector<NamedQuantizedModule> found;
  if (auto* root = dynamic_cast<const nn::BaseQuantizationMixin*>(&model)) {
    // The export functions only read; the load functions receive a non-const model.
    found.push_back({"", const_cast<nn::BaseQuantizationMixin*>(root)});
  }
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto* module = dynamic_cast<nn::BaseQuantizationMixin*>(item.value().get())) {
      found.push_back({item.key(), module});
    }
  }
  return found;
}

/// `module.suffix`, or `suffix` for the root module "".
std::string join(const std::string& module, const std::string& suffix) {
  return module.empty() ? suffix : module + "." + suffix;
}

std::string quoted(const std::string& s) { return json(s).dump(); }

// ---- export -----------------------------------------------------------------------------------

/// One exported activation slot.
struct ActivationRecord {
  std::string module;
  std::string direction;  // "input" or "output"
  size_t index;
  json legacy;  // list of dicts
  std::string tensor_name() const { return join(module, direction + "_" + std::to_string(index)); }
  std::string quantizer_path() const {
    return join(module, direction + "_quantizers." + std::to_string(index));
  }
};

/// One exported parameter slot.
struct ParamRecord {
  std::string name;            // module.param
  std::string quantizer_path;  // module.param_quantizers.param
  json legacy;
  std::shared_ptr<QuantizerBase> quantizer;
  at::Tensor parameter;
};

struct Exported {
  std::vector<ActivationRecord> activations;
  std::vector<ParamRecord> params;
};

Exported collect(const torch::nn::Module& model) {
  Exported exported;
  for (const auto& [name, module] : quantized_modules(model)) {
    const auto add_activations = [&, &name = name](const char* direction, const auto& encodings) {
      for (size_t i = 0; i < encodings.size(); ++i) {
        if (encodings[i]) exported.activations.push_back({name, direction, i, *encodings[i]});
      }
    };
    add_activations("input", module->export_input_encodings());
    add_activations("output", module->export_output_encodings());
    const auto params = module->export_param_encodings();
    const auto own_parameters = module->as_module().named_parameters(/*recurse=*/false);
    for (const auto& key : module->param_quantizers->keys()) {  // slot order: weight, bias
      const auto it = params.find(key);
      if (it == params.end() || !it->second) continue;
      const auto* parameter = own_parameters.find(key);
      exported.params.push_back({join(name, key), join(name, "param_quantizers." + key),
                                 *it->second, module->param_quantizers->at(key),
                                 parameter ? *parameter : at::Tensor()});
    }
  }
  return exported;
}

/// The same records from slots named by the caller (QuantizedSlot), in the order given.
Exported collect(const std::vector<QuantizedSlot>& slots) {
  Exported exported;
  for (const auto& slot : slots) {
    TORCH_CHECK_VALUE(slot.quantizer != nullptr, "the ", slot.kind, " slot ", quoted(slot.key),
                      " of module ", quoted(slot.module), " has no quantizer");
    auto legacy = slot.quantizer->get_legacy_encodings();
    if (!legacy) continue;  // uninitialized: not exported
    if (slot.kind == "param") {
      exported.params.push_back({join(slot.module, slot.key),
                                 join(slot.module, "param_quantizers." + slot.key), *legacy,
                                 slot.quantizer, slot.parameter});
    } else {
      TORCH_CHECK_VALUE(slot.kind == "input" || slot.kind == "output",
                        "a slot's kind is \"input\", \"output\" or \"param\", got ",
                        quoted(slot.kind));
      exported.activations.push_back(
          {slot.module, slot.kind, static_cast<size_t>(std::stoul(slot.key)), *legacy});
    }
  }
  return exported;
}

void add_common_fields(json& out, const ExportOptions& options) {
  out["version"] = to_string(options.version());
  out["excluded_layers"] = options.excluded_layers();
  if (options.quantizer_args()) out["quantizer_args"] = *options.quantizer_args();
}

bool is_float(const json& legacy) { return legacy.at(0).value("dtype", "int") == "float"; }

/// The 1.0.0 FLOAT entry: 4 keys.
json float_entry(const std::string& name, const json& legacy) {
  return {{"name", name},
          {"dtype", "FLOAT"},
          {"enc_type", "PER_TENSOR"},
          {"bw", legacy.at(0).at("bitwidth")}};
}

/// The 1.0.0 INT entry's 7 common keys, scales and legacy offsets channel by channel.
json int_entry(const std::string& name, const json& legacy, const char* enc_type) {
  json scale = json::array(), offset = json::array();
  for (const auto& d : legacy) {
    scale.push_back(d.at("scale"));
    offset.push_back(d.at("offset"));
  }
  return {{"name", name},
          {"dtype", "INT"},
          {"enc_type", enc_type},
          {"bw", legacy.at(0).at("bitwidth")},
          {"is_sym", legacy.at(0).at("is_symmetric") == "True"},
          {"scale", std::move(scale)},
          {"offset", std::move(offset)}};
}

/// The single number the 1.0.0 layout keeps of a block size (docs/simulation.md §7.5): -1 entries
/// made concrete from the parameter's shape (input dim / scale dim), then the first entry that is
/// not 1, else the second.
int64_t export_block_size(const affine::AffineQuantizerBase& quantizer, const at::Tensor& param,
                          const std::string& name) {
  const auto& shape = quantizer.shape();
  auto blocks = quantizer.block_size();
  const auto n = static_cast<int64_t>(blocks.size());
  for (int64_t i = 0; i < n; ++i) {
    if (blocks[i] != -1) continue;
    TORCH_CHECK(param.defined() && param.dim() >= n, "cannot export the block size of ", name,
                ": block size -1 needs the parameter");
    blocks[i] = param.size(param.dim() - n + i) / shape[i];
  }
  for (const auto b : blocks) {
    if (b != 1) return b;
  }
  return blocks.size() > 1 ? blocks[1] : blocks.at(0);
}

std::vector<double> as_doubles(const at::Tensor& t) {
  const auto flat = t.detach().reshape({-1}).to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

std::vector<int64_t> as_ints(const at::Tensor& t) {
  const auto flat = t.detach().reshape({-1}).to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

json param_entry_1_0_0(const ParamRecord& record) {
  if (is_float(record.legacy)) return float_entry(record.name, record.legacy);
  if (auto* lpbq =
          dynamic_cast<const affine::GroupedBlockQuantizeDequantizeImpl*>(record.quantizer.get())) {
    const auto per_channel_scale = as_doubles(*lpbq->get_per_channel_scale());
    const int64_t dbw = lpbq->decompressed_bw();
    json entry = int_entry(record.name, record.legacy, "LPBQ");
    entry["bw"] = dbw;
    entry["compressed_bw"] = lpbq->bitwidth();
    entry["scale"] = per_channel_scale;
    entry["offset"] = std::vector<int64_t>(per_channel_scale.size(), -(int64_t{1} << (dbw - 1)));
    entry["per_block_int_scale"] = as_ints(*lpbq->get_per_block_integer_scale());
    entry["block_size"] = export_block_size(*lpbq, record.parameter, record.name);
    return entry;
  }
  const auto* affine = dynamic_cast<const affine::AffineQuantizerBase*>(record.quantizer.get());
  if (affine && !affine->block_size().empty()) {
    json entry = int_entry(record.name, record.legacy, "PER_BLOCK");
    entry["block_size"] = export_block_size(*affine, record.parameter, record.name);
    return entry;
  }
  return int_entry(record.name, record.legacy,
                   record.legacy.size() > 1 ? "PER_CHANNEL" : "PER_TENSOR");
}

json activation_entry_1_0_0(const ActivationRecord& record, const std::string& name) {
  TORCH_CHECK_VALUE(record.legacy.size() == 1, "the activation quantizer of ", name, " has ",
                    record.legacy.size(),
                    " channels; the 1.0.0 encodings format holds per-tensor activations only");
  if (is_float(record.legacy)) return float_entry(name, record.legacy);
  return int_entry(name, record.legacy, "PER_TENSOR");
}

std::string dump(const json& j) {
  // json.dump(sort_keys=True, indent=4): nlohmann objects are sorted maps; ASCII as Python's
  // default ensure_ascii; no trailing newline.
  return j.dump(4, ' ', /*ensure_ascii=*/true);
}

// ---- load -------------------------------------------------------------------------------------

/// Rethrows the exception being handled with `prefix` before its message, keeping its kind: a
/// c10::ValueError stays one (rethrow_with_prefix), any other exception becomes a c10::Error.
[[noreturn]] void rethrow_prefixed(const std::string& prefix) {
  try {
    throw;
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, prefix);
  } catch (const std::exception& e) {
    QS_THROW(c10::Error, prefix, e.what());
  }
}

std::string type_of(const json& j) { return j.type_name(); }

/// What one module receives: the entries of its slots, already checked.
struct ModulePlan {
  json inputs = json::object();
  json outputs = json::object();
  json params = json::object();
};

/// Checks one slot's entry against its quantizer, by setting it on a copy of the quantizer.
/// Returns false when the entry is to be left out (empty slot under non-strict; null entry).
bool check_entry(const nn::QuantizerSlotsImpl& slots, const std::string& key, const json& entry,
                 const std::string& label, const LoadOptions& options) {
  if (entry.is_null()) return false;
  const auto quantizer = slots.at(key);
  if (!quantizer) {
    TORCH_CHECK(!options.strict(), label, ": the ", slots.kind(), " slot ", quoted(key),
                " is empty (strict load; pass strict=false to skip it)");
    return false;
  }
  TORCH_CHECK_VALUE(entry.is_object() || entry.is_array(), label,
                    ": expected a legacy encoding dict or a list of them, got ", type_of(entry),
                    " ", detail::json_excerpt(entry));
  if (!quantizer->overwrite_allowed()) return true;  // the import skips it
  std::shared_ptr<QuantizerBase> copy;
  try {
    copy = std::dynamic_pointer_cast<QuantizerBase>(quantizer->clone());
  } catch (const c10::Error&) {
    // A quantizer type without clone(): its own set_legacy_encodings validates before changing
    // anything, but an error there happens after earlier entries were applied.
  }
  if (copy) {
    try {
      copy->set_legacy_encodings(entry.is_array() ? entry : json::array({entry}));
    } catch (...) {
      rethrow_prefixed(label + ": ");
    }
  }
  return true;
}

/// The slot entries of `direction` ("input"/"output") of one module, checked.
json plan_activation_slots(const nn::QuantizerSlotsImpl& slots, const json& entries,
                           const std::string& label, const LoadOptions& options) {
  TORCH_CHECK_VALUE(entries.is_object(), label,
                    ": expected an object keyed by slot (\"0\", ...), got ", type_of(entries), " ",
                    detail::json_excerpt(entries));
  json kept = json::object();
  for (const auto& [key, entry] : entries.items()) {
    const auto entry_label = label + "[" + quoted(key) + "]";
    if (!slots.contains(key)) {
      TORCH_CHECK(!options.strict(), entry_label, ": the module has no such ", slots.kind(),
                  " slot (it has ", slots.size(), ")");
      continue;
    }
    if (check_entry(slots, key, entry, entry_label, options)) kept[key] = entry;
  }
  return kept;
}

void load_encodings_checked(torch::nn::Module& model, const json& encodings,
                            const LoadOptions& options) {
  TORCH_CHECK_VALUE(
      encodings.is_object(),
      "expected a JSON object with \"activation_encodings\" and/or \"param_encodings\" "
      "(the _torch.encodings layout), got ",
      type_of(encodings));
  const bool has_activations = encodings.contains("activation_encodings");
  const bool has_params = encodings.contains("param_encodings");
  TORCH_CHECK_VALUE(has_activations || has_params,
                    "the encodings have neither \"activation_encodings\" nor \"param_encodings\"");
  for (const char* section : {"activation_encodings", "param_encodings"}) {
    if (!encodings.contains(section)) continue;
    const auto& value = encodings.at(section);
    TORCH_CHECK_VALUE(
        !value.is_array(), section,
        " is a list: this is the 1.0.0 <prefix>.encodings layout; load_encodings reads "
        "the <prefix>_torch.encodings file");
    TORCH_CHECK_VALUE(value.is_object(), section, " must be an object, got ", type_of(value));
  }

  const auto modules = quantized_modules(model);
  std::map<std::string, size_t> by_name;
  std::map<std::string, std::pair<size_t, std::string>> by_param;
  for (size_t i = 0; i < modules.size(); ++i) {
    by_name[modules[i].name] = i;
    for (const auto& key : modules[i].module->param_quantizers->keys()) {
      by_param[join(modules[i].name, key)] = {i, key};
    }
  }
  std::vector<ModulePlan> plans(modules.size());

  // 1. Check every entry; nothing changes yet.
  if (has_activations) {
    for (const auto& [name, directions] : encodings.at("activation_encodings").items()) {
      const auto label = "activation_encodings[" + quoted(name) + "]";
      const auto it = by_name.find(name);
      if (it == by_name.end()) {
        TORCH_CHECK(!options.strict(), label, ": the model has no quantized module named ",
                    quoted(name), " (strict load; pass strict=false to skip it)");
        continue;
      }
      TORCH_CHECK_VALUE(directions.is_object(), label,
                        ": expected an object with \"input\" and/or \"output\", got ",
                        type_of(directions), " ", detail::json_excerpt(directions));
      auto* module = modules[it->second].module;
      for (const auto& [direction, entries] : directions.items()) {
        const auto direction_label = label + "[" + quoted(direction) + "]";
        auto& plan = plans[it->second];
        if (direction == "input") {
          plan.inputs =
              plan_activation_slots(*module->input_quantizers, entries, direction_label, options);
        } else if (direction == "output") {
          plan.outputs =
              plan_activation_slots(*module->output_quantizers, entries, direction_label, options);
        } else {
          TORCH_CHECK(!options.strict(), direction_label,
                      ": unknown direction (expected \"input\" or \"output\")");
        }
      }
    }
  }
  if (has_params) {
    for (const auto& [name, entry] : encodings.at("param_encodings").items()) {
      const auto label = "param_encodings[" + quoted(name) + "]";
      const auto it = by_param.find(name);
      if (it == by_param.end()) {
        TORCH_CHECK(!options.strict(), label, ": no quantized module of the model has a parameter ",
                    quoted(name), " (strict load; pass strict=false to skip it)");
        continue;
      }
      const auto& [index, key] = it->second;
      if (check_entry(*modules[index].module->param_quantizers, key, entry, label, options)) {
        plans[index].params[key] = entry;
      }
    }
  }

  // 2. Apply. Every entry passed the checks the imports make, so these do not fail.
  const auto import_options = nn::ImportOptions()
                                  .strict(options.strict())
                                  .partial(options.partial())
                                  .requires_grad(options.requires_grad())
                                  .allow_overwrite(options.allow_overwrite());
  for (size_t i = 0; i < modules.size(); ++i) {
    auto* module = modules[i].module;
    if (has_activations) {
      module->import_input_encodings(plans[i].inputs, import_options);
      module->import_output_encodings(plans[i].outputs, import_options);
    }
    if (has_params) module->import_param_encodings(plans[i].params, import_options);
  }
}

// ---- state ------------------------------------------------------------------------------------

std::string shape_text(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes() << " " << t.scalar_type();
  return s.str();
}

/// The first difference between the structure of `expected` (the model's own state) and
/// `actual` (the file): missing or unexpected keys, tensors of another shape or dtype. Empty
/// when they match.
std::string first_mismatch(torch::serialize::InputArchive& expected,
                           torch::serialize::InputArchive& actual, const std::string& prefix) {
  auto expected_keys = expected.keys();
  auto actual_keys = actual.keys();
  std::sort(expected_keys.begin(), expected_keys.end());
  std::sort(actual_keys.begin(), actual_keys.end());
  for (const auto& key : expected_keys) {
    if (!std::binary_search(actual_keys.begin(), actual_keys.end(), key)) {
      return "the file has no " + quoted(join(prefix, key));
    }
  }
  for (const auto& key : actual_keys) {
    if (!std::binary_search(expected_keys.begin(), expected_keys.end(), key)) {
      return "the file has " + quoted(join(prefix, key)) + ", which the model does not";
    }
  }
  for (const auto& key : expected_keys) {
    const auto name = join(prefix, key);
    c10::IValue want, got;
    expected.read(key, want);
    actual.read(key, got);
    if (want.tagKind() != got.tagKind()) {
      return quoted(name) + " is a " + got.tagKind() + " in the file but a " + want.tagKind() +
             " in the model";
    }
    if (want.isTensor()) {
      const auto& w = want.toTensor();
      const auto& g = got.toTensor();
      if (w.defined() != g.defined() ||
          (w.defined() && (w.sizes() != g.sizes() || w.scalar_type() != g.scalar_type()))) {
        return quoted(name) + " is " + (g.defined() ? shape_text(g) : "undefined") +
               " in the file but " + (w.defined() ? shape_text(w) : "undefined") + " in the model";
      }
    } else if (want.isObject()) {
      torch::serialize::InputArchive expected_child, actual_child;
      expected.read(key, expected_child);
      actual.read(key, actual_child);
      auto mismatch = first_mismatch(expected_child, actual_child, name);
      if (!mismatch.empty()) return mismatch;
    }
  }
  return {};
}

/// Deepest bracket nesting accepted in the TorchScript code of a state archive.
constexpr int kMaxCodeNesting = 100;

bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

/// `a.b.c`, each part an identifier.
bool is_dotted_name(const std::string& s) {
  size_t begin = 0;
  while (true) {
    const size_t dot = s.find('.', begin);
    if (!is_identifier(
            s.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin))) {
      return false;
    }
    if (dot == std::string::npos) return true;
    begin = dot + 1;
  }
}

/// A type annotation: `Tensor`, `__torch__.m.Module`, `Optional[Tensor]`, `List[int]`.
bool is_type_expression(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '[' ||
           c == ']' || c == ',' || c == ' ';
  });
}

/// `[]` or `["a", "b", ]`.
bool is_string_list(const std::string& s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  size_t i = 1;
  while (i < s.size() - 1) {
    if (s[i] != '"') return false;
    const size_t close = s.find('"', i + 1);
    if (close == std::string::npos || s.compare(close, 3, "\", ") != 0) return false;
    i = close + 3;
  }
  return i == s.size() - 1;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

/// One line of the class declarations torch::save writes for a torch::nn::Module (save_state's
/// only code): `class Module(Module):`, then indented `__parameters__ = [...]`,
/// `__buffers__ = [...]`, `__annotations__ = []`, `__annotations__["0"] = __torch__.m.Module` and
/// `name : Type`.
bool is_saved_declaration(const std::string& line) {
  if (line.empty()) return true;
  if (starts_with(line, "class ")) {
    const size_t open = line.find('(');
    return open != std::string::npos && line.size() > open + 3 &&
           line.compare(line.size() - 2, 2, "):") == 0 && is_identifier(line.substr(6, open - 6)) &&
           is_dotted_name(line.substr(open + 1, line.size() - open - 3));
  }
  if (!starts_with(line, "  ")) return false;
  const std::string body = line.substr(2);
  for (const char* list : {"__parameters__ = ", "__buffers__ = ", "__annotations__ = "}) {
    if (starts_with(body, list)) return is_string_list(body.substr(std::strlen(list)));
  }
  if (starts_with(body, "__annotations__[\"")) {
    const size_t close = body.find("\"] = ");
    return close != std::string::npos && is_dotted_name(body.substr(close + 5));
  }
  const size_t colon = body.find(" : ");
  return colon != std::string::npos && is_identifier(body.substr(0, colon)) &&
         is_type_expression(body.substr(colon + 3));
}

/// Refuses a `code/*.py` record of a state archive holding anything but the declarations
/// save_state writes: torch's TorchScript importer (libtorch 1.13) reads a class attribute it
/// does not know (`__parimeters__ = ["min", "max", ]`, one changed byte, found by
/// fuzz/state_fuzzer) through a bad pointer and crashes the process.
void check_code_declarations(const std::string& record, const char* text, size_t size,
                             const std::string& where) {
  size_t begin = 0;
  int line_number = 1;
  while (begin < size) {
    const char* end = static_cast<const char*>(std::memchr(text + begin, '\n', size - begin));
    const size_t length = end == nullptr ? size - begin : static_cast<size_t>(end - text) - begin;
    const std::string line(text + begin, length);
    TORCH_CHECK(is_saved_declaration(line), where, "not a saved state: its code ", quoted(record),
                " line ", line_number,
                " is not a declaration save_state writes: ", quoted(line.substr(0, 80)));
    begin += length + 1;
    ++line_number;
  }
}

/// Refuses an archive whose TorchScript code (`code/*.py`, compiled by torch::jit::load) nests
/// brackets deeper than kMaxCodeNesting: torch's parser recurses once per level and overflows
/// the stack on a crafted file. save_state writes class declarations nesting 1 or 2 deep.
/// Brackets inside string literals count too; no state file has deep ones there either.
void check_code_nesting(const std::string& path, const std::string& where) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, where + "not a saved state: ");
  }
  for (const auto& record : reader->getAllRecords()) {
    if (record.size() < 3 || record.compare(record.size() - 3, 3, ".py") != 0) continue;
    at::DataPtr data;
    size_t size = 0;
    try {
      std::tie(data, size) = reader->getRecord(record);
    } catch (const c10::Error& e) {
      rethrow_with_prefix(e, where + "not a saved state: ");
    }
    const auto* text = static_cast<const char*>(data.get());
    int depth = 0;
    for (size_t i = 0; i < size; ++i) {
      const char c = text[i];
      if (c == '(' || c == '[' || c == '{') {
        TORCH_CHECK(++depth <= kMaxCodeNesting, where, "not a saved state: its code ",
                    quoted(record), " nests brackets deeper than ", kMaxCodeNesting, " levels");
      } else if (c == ')' || c == ']' || c == '}') {
        --depth;
      }
    }
    check_code_declarations(record, text, size, where);
  }
}

/// The first non-empty line of `message`, without a trailing colon: torch's script errors
/// (torch::jit::ErrorReport) start with an empty line and go on with a source excerpt.
std::string first_line(const std::string& message) {
  size_t begin = message.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return message;
  size_t end = message.find('\n', begin);
  if (end == std::string::npos) end = message.size();
  while (end > begin &&
         (message[end - 1] == ':' || std::isspace(static_cast<unsigned char>(message[end - 1])))) {
    --end;
  }
  return message.substr(begin, end - begin);
}

}  // namespace

EncodingVersion encoding_version_from_string(const std::string& version) {
  if (version == "0.6.1") return EncodingVersion::k0_6_1;
  if (version == "1.0.0") return EncodingVersion::k1_0_0;
  TORCH_CHECK_NOT_IMPLEMENTED(false, "encoding version ", quoted(version),
                              " is not supported; expected \"0.6.1\" or \"1.0.0\"");
}

std::string to_string(EncodingVersion version) {
  return version == EncodingVersion::k1_0_0 ? "1.0.0" : "0.6.1";
}

namespace {

json torch_encodings_of(const Exported& exported, const ExportOptions& options) {
  json activations = json::object();
  for (const auto& record : exported.activations) {
    activations[record.module][record.direction][std::to_string(record.index)] =
        record.legacy.size() == 1 ? record.legacy.at(0) : record.legacy;
  }
  json params = json::object();
  for (const auto& record : exported.params) params[record.name] = record.legacy;
  json out = {{"activation_encodings", std::move(activations)},
              {"param_encodings", std::move(params)}};
  add_common_fields(out, options);
  return out;
}

}  // namespace

json torch_encodings(const torch::nn::Module& model, const ExportOptions& options) {
  return torch_encodings_of(collect(model), options);
}

json torch_encodings(const std::vector<QuantizedSlot>& slots, const ExportOptions& options) {
  return torch_encodings_of(collect(slots), options);
}

namespace {

/// The activation records of `<prefix>.encodings`: one per tensor. Records are in the order the
/// reference writes its tensor-keyed dict (modules in named_modules() order, inputs before
/// outputs), so of the records naming one tensor the last one is the one the reference keeps.
std::vector<const ActivationRecord*> one_record_per_tensor(
    const std::vector<ActivationRecord>& records, const ExportOptions& options) {
  std::map<std::string, size_t> group_of;
  for (size_t g = 0; g < options.shared_tensors().size(); ++g) {
    for (const auto& name : options.shared_tensors()[g]) group_of[name] = g;
  }
  std::map<size_t, const ActivationRecord*> last_of_group;
  for (const auto& record : records) {
    if (auto it = group_of.find(record.tensor_name()); it != group_of.end()) {
      last_of_group[it->second] = &record;
    }
  }
  std::vector<const ActivationRecord*> kept;
  for (const auto& record : records) {
    auto it = group_of.find(record.tensor_name());
    if (it == group_of.end() || last_of_group.at(it->second) == &record) kept.push_back(&record);
  }
  return kept;
}

/// The records keyed by the graph's tensor names (ExportOptions::tensor_names): each renamed,
/// those the graph does not hold dropped, one per name (the last, as one_record_per_tensor).
template <typename Record, typename PathOf>
std::vector<Record> one_record_per_graph_tensor(const std::vector<Record>& records,
                                                const std::map<std::string, std::string>& names,
                                                const PathOf& path_of, std::string Record::*name) {
  std::map<std::string, size_t> last;
  std::vector<Record> renamed;
  for (const auto& record : records) {
    const auto found = names.find(path_of(record));
    if (found == names.end()) continue;
    renamed.push_back(record);
    renamed.back().*name = found->second;
    last[found->second] = renamed.size() - 1;
  }
  std::vector<Record> kept;
  for (size_t i = 0; i < renamed.size(); ++i) {
    if (last.at(renamed[i].*name) == i) kept.push_back(std::move(renamed[i]));
  }
  return kept;
}

/// An activation record under a graph tensor's name.
struct NamedActivation {
  const ActivationRecord* record;
  std::string name;
};

json encodings_of(Exported exported, const ExportOptions& options) {
  std::vector<NamedActivation> graph_activations;
  if (!options.tensor_names().empty()) {
    std::vector<NamedActivation> all;
    for (const auto& record : exported.activations) all.push_back({&record, ""});
    graph_activations = one_record_per_graph_tensor(
        all, options.tensor_names(),
        [](const NamedActivation& a) { return a.record->quantizer_path(); },
        &NamedActivation::name);
    exported.params = one_record_per_graph_tensor(
        exported.params, options.tensor_names(),
        [](const ParamRecord& p) { return p.quantizer_path; }, &ParamRecord::name);
  } else {
    for (const auto* record : one_record_per_tensor(exported.activations, options)) {
      graph_activations.push_back({record, record->tensor_name()});
    }
  }
  json out;
  if (options.version() == EncodingVersion::k1_0_0) {
    json activations = json::array(), params = json::array();
    for (const auto& named : graph_activations) {
      activations.push_back(activation_entry_1_0_0(*named.record, named.name));
    }
    for (const auto& record : exported.params) params.push_back(param_entry_1_0_0(record));
    out = {{"activation_encodings", std::move(activations)},
           {"param_encodings", std::move(params)}};
  } else {
    json activations = json::object(), params = json::object();
    for (const auto& named : graph_activations) activations[named.name] = named.record->legacy;
    for (const auto& record : exported.params) params[record.name] = record.legacy;
    out = {{"activation_encodings", std::move(activations)},
           {"param_encodings", std::move(params)}};
  }
  add_common_fields(out, options);
  return out;
}

}  // namespace

json encodings(const torch::nn::Module& model, const ExportOptions& options) {
  return encodings_of(collect(model), options);
}

json encodings(const std::vector<QuantizedSlot>& slots, const ExportOptions& options) {
  return encodings_of(collect(slots), options);
}

void export_encodings(const torch::nn::Module& model, const std::string& dir,
                      const std::string& prefix, const ExportOptions& options) {
  TORCH_CHECK_VALUE(!prefix.empty() && prefix.find('/') == std::string::npos,
                    "export_encodings: `prefix` must be a non-empty file name prefix, got ",
                    quoted(prefix));
  // Both contents first: an export that cannot be computed writes nothing.
  const auto encodings_text = dump(encodings(model, options));
  const auto torch_text = dump(torch_encodings(model, options));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  TORCH_CHECK(!error, "export_encodings: cannot create the directory ", quoted(dir), ": ",
              error.message());
  const auto base = std::filesystem::path(dir) / prefix;
  write_files_atomically(
      {{base.string() + ".encodings", [&](std::ostream& os) { os << encodings_text; }},
       {base.string() + "_torch.encodings", [&](std::ostream& os) { os << torch_text; }}});
}

void load_encodings(torch::nn::Module& model, const json& torch_encodings,
                    const LoadOptions& options) {
  detail::check_json_depth(torch_encodings, "load_encodings: ");
  try {
    load_encodings_checked(model, torch_encodings, options);
  } catch (...) {
    rethrow_prefixed("load_encodings: ");
  }
}

void load_encodings(torch::nn::Module& model, const std::string& path, const LoadOptions& options) {
  const std::string where = "load_encodings: " + quoted(path) + ": ";
  const json encodings = detail::read_json_file(path, where);
  try {
    load_encodings_checked(model, encodings, options);
  } catch (...) {
    rethrow_prefixed(where);
  }
}

void save_state(const torch::nn::Module& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  model.save(archive);
  write_file_atomically(path, [&](std::ostream& os) { archive.save_to(os); });
}

void load_state(torch::nn::Module& model, const std::string& path) {
  const std::string where = "load_state: " + quoted(path) + ": ";
  std::error_code error;
  TORCH_CHECK(!std::filesystem::is_directory(path, error), where,
              "cannot read it: it is a directory, not a file");
  {
    std::ifstream probe(path, std::ios::binary);
    TORCH_CHECK(probe, where, "cannot open the file: ", std::strerror(errno));
  }
  check_code_nesting(path, where);
  torch::serialize::InputArchive file;
  try {
    file.load_from(path);
  } catch (const c10::Error& e) {
    rethrow_with_prefix(e, where + "not a saved state: ");
  } catch (const std::exception& e) {
    // The archive's code does not compile: torch::jit::ErrorReport, std::runtime_error.
    QS_THROW(c10::Error, where, "not a saved state: ", first_line(e.what()));
  }
  // The model's own state: what the file must look like, and what to restore should the load
  // fail halfway.
  torch::serialize::InputArchive snapshot;
  std::stringstream snapshot_bytes;
  {
    torch::serialize::OutputArchive out;
    model.save(out);
    out.save_to(snapshot_bytes);
  }
  snapshot.load_from(snapshot_bytes);
  const auto mismatch = first_mismatch(snapshot, file, "");
  TORCH_CHECK(mismatch.empty(), where,
              "does not match the model (saved from another model?): ", mismatch);
  try {
    model.load(file);
  } catch (...) {
    model.load(snapshot);
    rethrow_prefixed(where);
  }
}

}  // namespace quantsim
