#pragma once

/// Whole-file reads and writes for tests that check what quantsim wrote or make it read a file.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace quantsim::testing {

/// The file's bytes ("" when it cannot be opened).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

/// Replaces the file's content by `text`.
inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace quantsim::testing
