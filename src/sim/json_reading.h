#pragma once

// Reading JSON that users hand in (configs, encodings): bounded nesting, and errors that name the
// file, the position and the key instead of nlohmann's or the standard library's bare exceptions.
//
// Why a bound: nlohmann parses iteratively, but copying, comparing and dumping a value recurse
// once per level, so 100,000 nested `[` overflow the stack in whatever touches the value next
// (an error message that prints it, a copy into a plan). No file quantsim reads nests deeper than
// 6 levels.

#include <quantsim/errors.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace quantsim::detail {

/// Deepest nesting of arrays and objects accepted in a JSON document.
inline constexpr size_t kMaxJsonDepth = 100;

/// The value as an error message shows it: its JSON text, cut after `max_chars` characters
/// (a message must not hold a 100 MB list). NaN and infinities, which JSON cannot spell and
/// nlohmann dumps as `null`, show as `nan`, `inf`, `-inf`.
inline std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 120) {
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (!std::isfinite(number)) return c10::str(number);
  }
  std::string text = value.dump();
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

/// Where in a document a parse is: `param_encodings["conv1.weight"][0]["min"]`.
class JsonPath {
 public:
  void enter(bool array) { levels_.push_back({array, 0, false, {}}); }
  void leave() {
    levels_.pop_back();
    element_done();
  }
  void key(std::string key) {
    levels_.back().key = std::move(key);
    levels_.back().has_key = true;
  }
  /// A value (scalar or container) ended: the next one is the array's next element, or comes
  /// after the object's next key.
  void element_done() {
    if (levels_.empty()) return;
    auto& level = levels_.back();
    if (level.array) {
      ++level.index;
    } else {
      level.has_key = false;
    }
  }
  size_t depth() const { return levels_.size(); }

  /// The path; the middle of a very deep one is elided.
  std::string text() const {
    constexpr size_t kShown = 8;
    std::string out;
    for (size_t i = 0; i < levels_.size(); ++i) {
      if (levels_.size() > 2 * kShown && i == kShown) {
        out += "...(" + std::to_string(levels_.size() - 2 * kShown) + " levels)...";
        i = levels_.size() - kShown - 1;
        continue;
      }
      const auto& level = levels_[i];
      if (level.array) {
        out += "[" + std::to_string(level.index) + "]";
      } else if (level.has_key) {
        out += i == 0 ? level.key : "[" + json_excerpt(nlohmann::json(level.key), 60) + "]";
      }
    }
    return out;
  }

 private:
  struct Level {
    bool array;
    size_t index;  // of the element being parsed (arrays)
    bool has_key;  // between a key and the end of its value (objects)
    std::string key;
  };
  std::vector<Level> levels_;
};

/// " at `path`", or nothing at the top level.
inline std::string at_path(const JsonPath& path) {
  const auto text = path.text();
  return text.empty() ? std::string() : " at `" + text + "`";
}

/// Parses `text`. Errors are c10::ValueError with a message starting with `where` (which names
/// the file): malformed JSON (nlohmann's line and column), a number beyond double's range such
/// as `1e999`, nesting deeper than kMaxJsonDepth; each with the key path where it happened.
inline nlohmann::json parse_json(const std::string& text, const std::string& where) {
  using nlohmann::json;
  struct TooDeep {};
  JsonPath path;
  const json::parser_callback_t track = [&path](int /*depth*/, json::parse_event_t event,
                                                json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (path.depth() >= kMaxJsonDepth) throw TooDeep{};
        path.enter(event == json::parse_event_t::array_start);
        break;
      case json::parse_event_t::key:
        path.key(parsed.get<std::string>());
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        path.leave();
        break;
      case json::parse_event_t::value:
        path.element_done();
        break;
    }
    return true;
  };
  try {
    return json::parse(text, track);
  } catch (const TooDeep&) {
    QS_THROW(c10::ValueError, where, "JSON nested deeper than ", kMaxJsonDepth, " levels",
             at_path(path));
  } catch (const json::out_of_range& e) {
    // 406: a number literal that overflows double (`1e999`).
    QS_THROW(c10::ValueError, where, "number out of range", at_path(path), ": ", e.what());
  } catch (const json::exception& e) {
    QS_THROW(c10::ValueError, where, "malformed JSON", at_path(path), ": ", e.what());
  }
}

/// Reads and parses the file at `path` as parse_json does. c10::Error starting with `where` when
/// the file cannot be read: it does not exist, is a directory, or reading fails (the system's
/// reason, never a bare std::ios_base::failure).
inline nlohmann::json read_json_file(const std::string& path, const std::string& where) {
  std::error_code error;
  TORCH_CHECK(!std::filesystem::is_directory(path, error), where,
              "cannot read it: it is a directory, not a file");
  // stdio rather than a std::ifstream: a stream swallows a read error (or throws a
  // std::ios_base::failure that names no file) and would leave a truncated text to parse.
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  TORCH_CHECK(file, where, "cannot open the file: ", std::strerror(errno));
  std::string text;
  char chunk[1 << 14];
  size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0) text.append(chunk, got);
  TORCH_CHECK(!std::ferror(file.get()), where, "cannot read the file: ", std::strerror(errno));
  return parse_json(text, where);
}

/// c10::ValueError starting with `where` when `value` (built in memory, not parsed by
/// parse_json) nests deeper than kMaxJsonDepth; checked without recursion.
inline void check_json_depth(const nlohmann::json& value, const std::string& where) {
  std::vector<std::pair<const nlohmann::json*, size_t>> pending = {{&value, 0}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    TORCH_CHECK_VALUE(depth < kMaxJsonDepth, where, "JSON nested deeper than ", kMaxJsonDepth,
                      " levels");
    for (const auto& child : *node) pending.emplace_back(&child, depth + 1);
  }
}

}  // namespace quantsim::detail
