#include <quantsim/onnx/encodings.h>
#include <quantsim/onnx/export.h>

#include <quantsim/affine/grouped_block_quantizer.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/floating/quantizer.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <vector>

namespace quantsim {
namespace {

using nlohmann::json;

std::string quoted(const std::string& s) { return json(s).dump(); }

/// A quantizer path split into its module, its slot kind ("input", "output", "param") and the
/// slot's key: "conv1.output_quantizers.0" -> {"conv1", "output", "0"}, "param_quantizers.weight"
/// (the root's) -> {"", "param", "weight"}.
struct QuantizerSlot {
  std::string module, kind, key;
};

c10::optional<QuantizerSlot> parse_quantizer_path(const std::string& path) {
  for (const char* kind : {"input", "output", "param"}) {
    const std::string infix = std::string(kind) + "_quantizers.";
    size_t at = path.rfind(infix);
    if (at == std::string::npos || (at != 0 && path[at - 1] != '.')) continue;
    const auto key = path.substr(at + infix.size());
    if (key.empty() || key.find('.') != std::string::npos) continue;
    return QuantizerSlot{at == 0 ? "" : path.substr(0, at - 1), kind, key};
  }
  return c10::nullopt;
}

std::string join(const std::string& module, const std::string& suffix) {
  return module.empty() ? suffix : module + "." + suffix;
}

// ---- the 1.0.0 layout back to legacy dicts ------------------------------------------------------

/// The quantizer an entry is for, when the model is known: its module, and the parameter it
/// quantizes (undefined for an activation).
struct QuantizerOfEntry {
  const QuantizerBase* quantizer = nullptr;
  at::Tensor parameter;
  std::string path;
};

std::string field(const std::string& label, const char* key) { return label + "[\"" + key + "\"]"; }

const json& required(const json& entry, const char* key, const std::string& label) {
  TORCH_CHECK_VALUE(entry.contains(key), label, " has no \"", key, "\" entry: ", entry.dump());
  return entry.at(key);
}

int64_t integer(const json& v, const std::string& label) {
  TORCH_CHECK_VALUE(
      v.is_number_integer() && (!v.is_number_unsigned() ||
                                v.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()}),
      label, " must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

int64_t bitwidth(const json& entry, const char* key, const std::string& label) {
  const auto bw = integer(required(entry, key, label), field(label, key));
  // Grid::kMaxSignedBitwidth: the widest grid quantsim has (load_encodings checks the grid).
  TORCH_CHECK_VALUE(bw >= 1 && bw <= 54, field(label, key), " must be a bitwidth in [1, 54], got ",
                    bw);
  return bw;
}

/// A non-empty list of integers (offsets, per-block integer scales).
std::vector<int64_t> integers(const json& entry, const char* key, const std::string& label) {
  const auto& v = required(entry, key, label);
  TORCH_CHECK_VALUE(v.is_array() && !v.empty(), field(label, key),
                    " must be a non-empty list of integers, got ", v.dump());
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(integer(v[i], field(label, key) + "[" + std::to_string(i) + "]"));
  }
  return out;
}

/// A non-empty list of scales: numbers that are positive and finite as float32 (the dtype the
/// quantizer computes its scales in; the writer prints float32 values, which parse back exactly).
std::vector<float> scales(const json& entry, const std::string& label) {
  const auto& v = required(entry, "scale", label);
  TORCH_CHECK_VALUE(v.is_array() && !v.empty(), field(label, "scale"),
                    " must be a non-empty list of numbers, got ", v.dump());
  std::vector<float> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto here = field(label, "scale") + "[" + std::to_string(i) + "]";
    TORCH_CHECK_VALUE(v[i].is_number(), here, " must be a number, got ", v[i].dump());
    const auto s = static_cast<float>(v[i].get<double>());
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, here,
                      " must be a positive scale finite in float32, got ", v[i].dump());
    out.push_back(s);
  }
  return out;
}

json legacy_dict(float scale, int64_t legacy_offset, int64_t bw, bool symmetric) {
  // As AffineEncoding::to_legacy_format: min = (o + qmin) * s, max = (o + qmax) * s in float32,
  // with o + qmin the legacy offset and qmax - qmin = 2^bw - 1; the 0.6.1 file of the same
  // quantizer holds these very numbers.
  const auto steps = (int64_t{1} << bw) - 1;
  return {{"min", static_cast<double>(scale * static_cast<float>(legacy_offset))},
          {"max", static_cast<double>(scale * static_cast<float>(legacy_offset + steps))},
          {"scale", static_cast<double>(scale)},
          {"offset", legacy_offset},
          {"bitwidth", bw},
          {"dtype", "int"},
          {"is_symmetric", symmetric ? "True" : "False"}};
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

/// The one number 1.0.0 keeps of a block size, as the writer computes it (docs/simulation.md
/// §7.5): -1 entries made concrete from the parameter's shape, then the first entry that is not
/// 1, else the second.
c10::optional<int64_t> written_block_size(const affine::AffineQuantizerBase& quantizer,
                                          const at::Tensor& parameter) {
  auto blocks = quantizer.block_size();
  const auto n = static_cast<int64_t>(blocks.size());
  for (int64_t i = 0; i < n; ++i) {
    if (blocks[i] != -1) continue;
    if (!parameter.defined() || parameter.dim() < n) return c10::nullopt;
    blocks[i] = parameter.size(parameter.dim() - n + i) / quantizer.shape()[i];
  }
  for (const auto b : blocks) {
    if (b != 1) return b;
  }
  return blocks.size() > 1 ? blocks[1] : blocks.at(0);
}

/// For each block of an LPBQ entry (flat index over the quantizer's shape), the index of its group
/// in the per-group `scale` list. Without the quantizer: the reference's layout, one group per
/// output channel holding that channel's blocks consecutively.
std::vector<int64_t> group_of_blocks(int64_t blocks, int64_t groups,
                                     const affine::GroupedBlockQuantizeDequantizeImpl* quantizer) {
  std::vector<int64_t> group(static_cast<size_t>(blocks));
  if (quantizer == nullptr) {
    for (int64_t b = 0; b < blocks; ++b) group[b] = b / (blocks / groups);
    return group;
  }
  const auto& shape = quantizer->shape();
  std::vector<int64_t> size_of_group, groups_along;
  for (size_t d = 0; d < shape.size(); ++d) {
    const auto g = quantizer->block_grouping()[d] == -1 ? shape[d] : quantizer->block_grouping()[d];
    size_of_group.push_back(g);
    groups_along.push_back(shape[d] / g);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t rest = b, flat_group = 0, stride = 1;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      const auto index = rest % shape[d];
      rest /= shape[d];
      flat_group += index / size_of_group[d] * stride;
      stride *= groups_along[d];
    }
    group[b] = flat_group;
  }
  return group;
}

/// One 1.0.0 entry (docs/simulation.md §7.5) as the legacy dicts the 0.6.1 layout holds for the
/// same quantizer, bit for bit: scales as written, min/max recomputed from scale and offset as
/// the writer computed them, LPBQ's final block scales as its quantizer computes them (eq. (7)).
/// `label` names the entry in messages; `target` is its quantizer when the model is known, to
/// check what the layout cannot say by itself (the block size, LPBQ's decompressed bitwidth and
/// groups, the number of channels).
json legacy_of_1_0_0(const json& entry, const std::string& label, bool is_activation,
                     const QuantizerOfEntry& target) {
  const auto& dtype = required(entry, "dtype", label);
  TORCH_CHECK_VALUE(dtype == "INT" || dtype == "FLOAT", field(label, "dtype"),
                    " must be \"INT\" or \"FLOAT\", got ", dtype.dump());
  const auto& enc_type_json = required(entry, "enc_type", label);
  TORCH_CHECK_VALUE(enc_type_json.is_string(), field(label, "enc_type"), " must be a string, got ",
                    enc_type_json.dump());
  const auto enc_type = enc_type_json.get<std::string>();
  if (dtype == "FLOAT") {
    TORCH_CHECK_VALUE(enc_type == "PER_TENSOR", field(label, "enc_type"),
                      " of a FLOAT entry must be \"PER_TENSOR\", got ", enc_type_json.dump());
    TORCH_CHECK_VALUE(
        target.quantizer == nullptr ||
            dynamic_cast<const floating::FloatQuantizeDequantizeImpl*>(target.quantizer) != nullptr,
        field(label, "dtype"), " is \"FLOAT\" but the quantizer `", target.path,
        "` is an integer quantizer (it takes INT entries)");
    return json::array({{{"bitwidth", bitwidth(entry, "bw", label)}, {"dtype", "float"}}});
  }
  const std::set<std::string> known = {"PER_TENSOR", "PER_CHANNEL", "PER_BLOCK", "LPBQ"};
  TORCH_CHECK_VALUE(known.count(enc_type) == 1, field(label, "enc_type"),
                    " must be PER_TENSOR, PER_CHANNEL, PER_BLOCK or LPBQ, got ",
                    enc_type_json.dump(),
                    enc_type == "VECTOR" ? " (quantsim has no vector quantizer)" : "");
  TORCH_CHECK_VALUE(!is_activation || enc_type == "PER_TENSOR", field(label, "enc_type"),
                    ": an activation's encoding is per tensor in the 1.0.0 layout, got ",
                    enc_type_json.dump());
  const auto bw = bitwidth(entry, "bw", label);
  const auto& is_sym = required(entry, "is_sym", label);
  TORCH_CHECK_VALUE(is_sym.is_boolean(), field(label, "is_sym"), " must be true or false, got ",
                    is_sym.dump());
  const bool symmetric = is_sym.get<bool>();
  const auto scale = scales(entry, label);
  const auto offset = integers(entry, "offset", label);
  TORCH_CHECK_VALUE(offset.size() == scale.size(), field(label, "offset"), " has ", offset.size(),
                    " values for ", scale.size(), " scales");
  TORCH_CHECK_VALUE(enc_type != "PER_TENSOR" || scale.size() == 1, field(label, "scale"),
                    " of a PER_TENSOR entry must hold one scale, got ", scale.size());

  const auto* affine = dynamic_cast<const affine::AffineQuantizerBase*>(target.quantizer);
  const auto* lpbq =
      dynamic_cast<const affine::GroupedBlockQuantizeDequantizeImpl*>(target.quantizer);
  if (target.quantizer != nullptr) {
    const char* kind = lpbq                            ? "LPBQ"
                       : affine == nullptr             ? "FLOAT"
                       : !affine->block_size().empty() ? "PER_BLOCK"
                                                       : "PER_TENSOR or PER_CHANNEL";
    const bool fits =
        lpbq ? enc_type == "LPBQ"
             : affine != nullptr && (!affine->block_size().empty()
                                         ? enc_type == "PER_BLOCK"
                                         : enc_type == "PER_TENSOR" || enc_type == "PER_CHANNEL");
    TORCH_CHECK_VALUE(fits, field(label, "enc_type"), " is ", enc_type_json.dump(),
                      " but the quantizer `", target.path, "` takes ", kind, " encodings");
  }

  if (enc_type == "PER_BLOCK") {
    const auto block_size =
        integer(required(entry, "block_size", label), field(label, "block_size"));
    TORCH_CHECK_VALUE(block_size >= 1, field(label, "block_size"), " must be positive, got ",
                      block_size);
    if (affine != nullptr) {
      const auto expected = written_block_size(*affine, target.parameter);
      TORCH_CHECK_VALUE(!expected || *expected == block_size, field(label, "block_size"), " is ",
                        block_size, " but the quantizer `", target.path, "` has blocks of ",
                        at::IntArrayRef(affine->block_size()), " (written as ",
                        expected.value_or(0), ")");
    }
  }
  if (affine != nullptr && enc_type != "LPBQ") {
    TORCH_CHECK_VALUE(static_cast<int64_t>(scale.size()) == numel_of(affine->shape()),
                      field(label, "scale"), " holds ", scale.size(), " scales but the quantizer `",
                      target.path, "` of shape ", at::IntArrayRef(affine->shape()), " needs ",
                      numel_of(affine->shape()));
  }

  json legacy = json::array();
  if (enc_type != "LPBQ") {
    const auto qmin = symmetric ? -(int64_t{1} << (bw - 1)) : int64_t{0};
    for (size_t i = 0; i < scale.size(); ++i) {
      // A symmetric grid's offset is 0: its legacy offset is qmin.
      TORCH_CHECK_VALUE(!symmetric || offset[i] == qmin, field(label, "offset"), "[", i,
                        "] of a symmetric ", bw, "-bit entry must be ", qmin, ", got ", offset[i]);
      legacy.push_back(legacy_dict(scale[i], offset[i], bw, symmetric));
    }
    return legacy;
  }

  // LPBQ: `bw` is the decompressed bitwidth, `scale` one float per group (eq. (6)),
  // `per_block_int_scale` the integers of eq. (7) for every block.
  const auto compressed_bw = bitwidth(entry, "compressed_bw", label);
  TORCH_CHECK_VALUE(compressed_bw <= bw, field(label, "compressed_bw"), " (", compressed_bw,
                    ") must not exceed the decompressed bitwidth \"bw\" (", bw, ")");
  TORCH_CHECK_VALUE(symmetric, field(label, "is_sym"), " of an LPBQ entry must be true");
  for (size_t i = 0; i < offset.size(); ++i) {
    TORCH_CHECK_VALUE(offset[i] == -(int64_t{1} << (bw - 1)), field(label, "offset"), "[", i,
                      "] of an LPBQ entry must be ", -(int64_t{1} << (bw - 1)), ", got ",
                      offset[i]);
  }
  if (lpbq != nullptr) {
    TORCH_CHECK_VALUE(lpbq->decompressed_bw() == bw, field(label, "bw"), " is ", bw,
                      " but the quantizer `", target.path, "` decompresses to ",
                      lpbq->decompressed_bw(), " bits");
  }
  const auto block_ints = integers(entry, "per_block_int_scale", label);
  const auto levels = int64_t{1} << (bw - compressed_bw);
  for (size_t i = 0; i < block_ints.size(); ++i) {
    TORCH_CHECK_VALUE(block_ints[i] >= 1 && block_ints[i] <= levels,
                      field(label, "per_block_int_scale"), "[", i, "] must be in [1, ", levels,
                      "], got ", block_ints[i]);
  }
  integer(required(entry, "block_size", label), field(label, "block_size"));
  const auto blocks = static_cast<int64_t>(block_ints.size());
  const auto groups = static_cast<int64_t>(scale.size());
  if (lpbq != nullptr) {
    const auto expected = written_block_size(*lpbq, target.parameter);
    const auto block_size = entry.at("block_size").get<int64_t>();
    TORCH_CHECK_VALUE(!expected || *expected == block_size, field(label, "block_size"), " is ",
                      block_size, " but the quantizer `", target.path, "` has blocks of ",
                      at::IntArrayRef(lpbq->block_size()), " (written as ", expected.value_or(0),
                      ")");
    TORCH_CHECK_VALUE(blocks == numel_of(lpbq->shape()), field(label, "per_block_int_scale"),
                      " holds ", blocks, " integers but the quantizer `", target.path,
                      "` of shape ", at::IntArrayRef(lpbq->shape()), " has ",
                      numel_of(lpbq->shape()), " blocks");
    int64_t expected_groups = 1;
    for (size_t d = 0; d < lpbq->shape().size(); ++d) {
      const auto g = lpbq->block_grouping()[d];
      expected_groups *= g == -1 ? 1 : lpbq->shape()[d] / g;
    }
    TORCH_CHECK_VALUE(groups == expected_groups, field(label, "scale"), " holds ", groups,
                      " group scales but the quantizer `", target.path, "` has ", expected_groups,
                      " groups");
  } else {
    TORCH_CHECK_VALUE(blocks % groups == 0, field(label, "per_block_int_scale"), " holds ", blocks,
                      " integers, not a multiple of the ", groups, " group scales");
  }
  const auto group = group_of_blocks(blocks, groups, lpbq);
  for (int64_t b = 0; b < blocks; ++b) {
    // Eq. (7) as the quantizer computes it in float32: the integer times its group's scale.
    const auto final_scale = static_cast<float>(block_ints[b]) * scale[group[b]];
    legacy.push_back(
        legacy_dict(final_scale, -(int64_t{1} << (compressed_bw - 1)), compressed_bw, true));
  }
  return legacy;
}

/// The quantizer at `path` in `model` and, for a parameter quantizer, its parameter.
QuantizerOfEntry find_quantizer(const torch::nn::Module& model, const std::string& path,
                                const QuantizerSlot& slot) {
  QuantizerOfEntry found;
  found.path = path;
  const auto modules = model.named_modules(/*name_prefix=*/"", /*include_self=*/false);
  if (const auto* module = modules.find(path)) {
    found.quantizer = dynamic_cast<const QuantizerBase*>(module->get());
  }
  if (slot.kind == "param") {
    const auto parameters = model.named_parameters();
    if (const auto* parameter = parameters.find(join(slot.module, slot.key))) {
      found.parameter = *parameter;
    }
  }
  return found;
}

}  // namespace

std::map<std::string, std::string> read_quantized_tensors(const std::string& onnx_path) {
  const std::string where = "reading the quantized tensors of " + quoted(onnx_path) + ": ";
  std::ifstream in(onnx_path, std::ios::binary);
  TORCH_CHECK(in, where, "cannot open the file");
  ::onnx::ModelProto model;
  TORCH_CHECK(model.ParseFromIstream(&in), where, "not an ONNX model");
  for (const auto& entry : model.metadata_props()) {
    if (entry.key() != kQuantizedTensorsMetadataKey) continue;
    json parsed;
    try {
      parsed = json::parse(entry.value());
      return parsed.get<std::map<std::string, std::string>>();
    } catch (const std::exception& e) {
      QS_THROW(c10::Error, where, "the metadata ", quoted(kQuantizedTensorsMetadataKey),
               " is no {quantizer: tensor} object: ", e.what());
    }
  }
  QS_THROW(c10::Error, where, "the model has no metadata ", quoted(kQuantizedTensorsMetadataKey),
           " (the float graph quantsim::export_onnx writes as <prefix>.onnx has it; a QDQ graph "
           "does not)");
}

json torch_encodings_from_graph_keyed(const json& encodings,
                                      const std::map<std::string, std::string>& quantized_tensors,
                                      const torch::nn::Module* model) {
  TORCH_CHECK_VALUE(encodings.is_object(), "expected a <prefix>.encodings JSON object, got ",
                    encodings.type_name());
  std::string version = "0.6.1";
  if (encodings.contains("version")) {
    const auto& v = encodings.at("version");
    TORCH_CHECK_VALUE(v == "0.6.1" || v == "1.0.0",
                      "\"version\" must be \"0.6.1\" or \"1.0.0\", got ", v.dump());
    version = v.get<std::string>();
  }
  const bool is_1_0_0 = version == "1.0.0";
  for (const char* section : {"activation_encodings", "param_encodings"}) {
    if (!encodings.contains(section)) continue;
    const auto& content = encodings.at(section);
    TORCH_CHECK_VALUE(
        is_1_0_0 ? content.is_array() : content.is_object(), "\"", section, "\" must be ",
        is_1_0_0 ? "a list of entries" : "an object {tensor: [legacy dicts]}", " in the ", version,
        " layout, got ", content.is_array() ? "a list" : content.type_name(),
        content.is_array() ? " (the 1.0.0 layout; is \"version\" missing?)" : "");
  }
  // tensor -> the quantizer slots that quantize it
  std::map<std::string, std::vector<QuantizerSlot>> slots_of;
  for (const auto& [path, tensor] : quantized_tensors) {
    const auto slot = parse_quantizer_path(path);
    if (slot) slots_of[tensor].push_back(*slot);
  }
  // The 0.6.1 sections: as written, or made from the 1.0.0 entries.
  json sections = json::object();
  for (const char* section : {"activation_encodings", "param_encodings"}) {
    if (!encodings.contains(section)) continue;
    if (!is_1_0_0) {
      sections[section] = encodings.at(section);
      continue;
    }
    json by_name = json::object();
    const auto& entries = encodings.at(section);
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& entry = entries[i];
      auto label = std::string(section) + "[" + std::to_string(i) + "]";
      TORCH_CHECK_VALUE(entry.is_object(), label, " must be an object, got ", entry.dump());
      const auto& name = required(entry, "name", label);
      TORCH_CHECK_VALUE(name.is_string(), field(label, "name"), " must be a string, got ",
                        name.dump());
      const auto tensor = name.get<std::string>();
      label += " (" + quoted(tensor) + ")";
      TORCH_CHECK_VALUE(!by_name.contains(tensor), label,
                        ": a second entry for that tensor (one entry per tensor)");
      const auto found = slots_of.find(tensor);
      TORCH_CHECK_VALUE(found != slots_of.end(), label,
                        ": no quantizer of the model quantizes a tensor of that name");
      for (const auto& slot : found->second) {
        TORCH_CHECK_VALUE(
            (slot.kind == "param") == (std::string(section) == "param_encodings"), label,
            ": the tensor is ", slot.kind == "param" ? "a parameter" : "an activation",
            " (its quantizer is `", join(slot.module, slot.kind + "_quantizers." + slot.key), "`)");
      }
      QuantizerOfEntry target;
      if (model != nullptr) {
        const auto& slot = found->second.front();
        target =
            find_quantizer(*model, join(slot.module, slot.kind + "_quantizers." + slot.key), slot);
      }
      by_name[tensor] =
          legacy_of_1_0_0(entry, label, std::string(section) == "activation_encodings", target);
    }
    sections[section] = std::move(by_name);
  }

  json activations = json::object(), params = json::object();
  for (const auto& [section, content] : sections.items()) {
    const bool is_param_section = section == "param_encodings";
    for (const auto& [tensor, entry] : content.items()) {
      const auto label = section + "[" + quoted(tensor) + "]";
      const auto found = slots_of.find(tensor);
      TORCH_CHECK_VALUE(found != slots_of.end(), label,
                        ": no quantizer of the model quantizes a tensor of that name");
      TORCH_CHECK_VALUE(entry.is_array() && !entry.empty(), label,
                        ": expected a list of legacy encoding dicts, got ", entry.type_name());
      for (const auto& slot : found->second) {
        TORCH_CHECK_VALUE((slot.kind == "param") == is_param_section, label, ": the tensor is ",
                          slot.kind == "param" ? "a parameter" : "an activation",
                          " (its quantizer is `",
                          join(slot.module, slot.kind + "_quantizers." + slot.key), "`)");
        if (is_param_section) {
          params[join(slot.module, slot.key)] = entry;
        } else {
          activations[slot.module][slot.kind][slot.key] = entry.size() == 1 ? entry.at(0) : entry;
        }
      }
    }
  }
  json out = {{"activation_encodings", std::move(activations)},
              {"param_encodings", std::move(params)}};
  for (const char* key : {"version", "excluded_layers", "quantizer_args"}) {
    if (encodings.contains(key)) out[key] = encodings.at(key);
  }
  return out;
}

}  // namespace quantsim
