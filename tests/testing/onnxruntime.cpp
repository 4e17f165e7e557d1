#include "testing/onnxruntime.h"

#include <quantsim/errors.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

// Set by tests/CMakeLists.txt for this file: the checkout and the version package.json pins.
#ifndef QUANTSIM_SOURCE_DIR
#error "QUANTSIM_SOURCE_DIR must name the checkout"
#endif
#ifndef QUANTSIM_ONNXRUNTIME_VERSION
#error "QUANTSIM_ONNXRUNTIME_VERSION must name the pinned onnxruntime-node version"
#endif

extern char** environ;

namespace quantsim::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::string node_command() {
  const std::string node = environment("QUANTSIM_NODE");
  return node.empty() ? "node" : node;
}

fs::path onnxruntime_dir() {
  const std::string dir = environment("QUANTSIM_ONNXRUNTIME_DIR");
  if (!dir.empty()) return dir;
  std::string cache = environment("XDG_CACHE_HOME");
  if (cache.empty()) cache = environment("HOME") + "/.cache";
  return fs::path(cache) / "quantsim" / ("onnxruntime-node-" QUANTSIM_ONNXRUNTIME_VERSION);
}

fs::path script_path() { return fs::path(QUANTSIM_SOURCE_DIR) / "tools/onnxruntime/run_model.js"; }

/// Runs `argv` (argv[0] looked up on PATH) with stdout and stderr into `log`; its exit status,
/// or -1 when it could not be started.
int run_process(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A fresh folder under the system's temporary directory, removed with its content on scope exit.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (fs::temp_directory_path() / "quantsim-ort-XXXXXX").string();
    TORCH_CHECK(mkdtemp(pattern.data()) != nullptr, "cannot create a folder like ", pattern);
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const char* dtype_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kChar:
      return "int8";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      QS_THROW(c10::TypeError, "run_in_onnxruntime: unsupported input dtype ", type);
  }
}

at::ScalarType scalar_type(const std::string& name) {
  static const std::map<std::string, at::ScalarType> types = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"int64", at::kLong}, {"int32", at::kInt},
      {"int8", at::kChar},     {"uint8", at::kByte},     {"bool", at::kBool}};
  const auto it = types.find(name);
  TORCH_CHECK_TYPE(it != types.end(), "run_in_onnxruntime: unsupported output dtype ", name);
  return it->second;
}

void write_inputs(const std::vector<OrtInputs>& runs, const fs::path& manifest_path) {
  std::ofstream data(manifest_path.parent_path() / "inputs.bin", std::ios::binary);
  json manifest_runs = json::array();
  int64_t offset = 0;
  for (const auto& inputs : runs) {
    json run = json::object();
    for (const auto& [name, tensor] : inputs) {
      const at::Tensor contiguous = tensor.cpu().contiguous();
      const int64_t bytes = contiguous.numel() * contiguous.element_size();
      run[name] = {{"dtype", dtype_name(contiguous.scalar_type())},
                   {"shape", contiguous.sizes().vec()},
                   {"offset", offset},
                   {"bytes", bytes}};
      data.write(static_cast<const char*>(contiguous.data_ptr()), bytes);
      offset += bytes;
    }
    manifest_runs.push_back(std::move(run));
  }
  TORCH_CHECK(data.good(), "run_in_onnxruntime: cannot write the inputs in ",
              manifest_path.parent_path().string());
  std::ofstream(manifest_path) << json{{"data", "inputs.bin"}, {"runs", manifest_runs}}.dump();
}

std::vector<std::vector<at::Tensor>> read_outputs(const fs::path& manifest_path) {
  const json manifest = json::parse(read_text(manifest_path));
  const std::string data =
      read_text(manifest_path.parent_path() / manifest.at("data").get<std::string>());
  std::vector<std::vector<at::Tensor>> runs;
  for (const auto& run : manifest.at("runs")) {
    std::vector<at::Tensor> outputs;
    for (const auto& name : manifest.at("output_names")) {
      const json& entry = run.at(name.get<std::string>());
      at::Tensor tensor = at::empty(entry.at("shape").get<std::vector<int64_t>>(),
                                    at::TensorOptions(scalar_type(entry.at("dtype"))));
      const auto offset = entry.at("offset").get<size_t>();
      const auto bytes = entry.at("bytes").get<size_t>();
      TORCH_CHECK(bytes == static_cast<size_t>(tensor.numel() * tensor.element_size()) &&
                      offset + bytes <= data.size(),
                  "run_in_onnxruntime: output '", name.get<std::string>(), "' of ",
                  manifest_path.string(), " does not match its data");
      std::memcpy(tensor.data_ptr(), data.data() + offset, bytes);
      outputs.push_back(std::move(tensor));
    }
    runs.push_back(std::move(outputs));
  }
  return runs;
}

}  // namespace

std::string onnxruntime_unavailable_reason() {
  static const std::string reason = [] {
    const fs::path package = onnxruntime_dir() / "node_modules/onnxruntime-node/package.json";
    if (!fs::exists(package)) {
      return "no onnxruntime-node in " + package.parent_path().string() +
             " (scripts/setup.sh installs it; $QUANTSIM_ONNXRUNTIME_DIR names another folder)";
    }
    TemporaryDirectory scratch;
    if (run_process({node_command(), "--version"}, scratch.path() / "log") != 0) {
      return "'" + node_command() + " --version' fails (scripts/setup.sh installs nodejs; " +
             "$QUANTSIM_NODE names another node)";
    }
    return std::string();
  }();
  return reason;
}

bool onnxruntime_available() { return onnxruntime_unavailable_reason().empty(); }

std::vector<std::vector<at::Tensor>> run_in_onnxruntime(const std::string& model_path,
                                                        const std::vector<OrtInputs>& runs,
                                                        OrtOptimization level) {
  const std::string reason = onnxruntime_unavailable_reason();
  TORCH_CHECK(reason.empty(), "run_in_onnxruntime: ", reason);
  TemporaryDirectory scratch;
  const fs::path inputs = scratch.path() / "inputs.json";
  const fs::path outputs = scratch.path() / "outputs.json";
  const fs::path log = scratch.path() / "log";
  write_inputs(runs, inputs);
  ::setenv("QUANTSIM_ONNXRUNTIME_DIR", onnxruntime_dir().c_str(), /*overwrite=*/1);
  const int status =
      run_process({node_command(), script_path().string(), "--model", model_path, "--inputs",
                   inputs.string(), "--outputs", outputs.string(), "--optimization",
                   level == OrtOptimization::kDisabled ? "disabled" : "all"},
                  log);
  TORCH_CHECK(status == 0, "ONNX Runtime failed on '", model_path, "' (exit status ", status,
              "): ", read_text(log));
  return read_outputs(outputs);
}

std::vector<at::Tensor> run_in_onnxruntime(const std::string& model_path, const OrtInputs& inputs,
                                           OrtOptimization level) {
  return run_in_onnxruntime(model_path, std::vector<OrtInputs>{inputs}, level).at(0);
}

}  // namespace quantsim::testing
