#include "fashion_mnist.h"

#include <quantsim/errors.h>

#include <zlib.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>
#include <vector>

namespace quantsim::apps {
namespace {

constexpr uint8_t kUnsignedByte = 0x08;
constexpr int64_t kImageSide = 28;
constexpr int64_t kNumClasses = 10;
// Far above Fashion-MNIST's 47 MB; bounds what a corrupt header can make us allocate.
constexpr int64_t kMaxElements = int64_t{1} << 31;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

c10::Error idx_error(const std::string& path, const std::string& what) {
  return c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                    "IDX file '" + path + "': " + what);
}

// Reads exactly `n` bytes; gzread reads uncompressed files as they are, so plain IDX files work
// too. Returns the number of bytes read (less than n at the end of the data).
int64_t read_bytes(gzFile file, const std::string& path, uint8_t* out, int64_t n) {
  int64_t done = 0;
  while (done < n) {
    // gzread takes an unsigned count; read in chunks well below its limit.
    const auto chunk = static_cast<unsigned>(std::min<int64_t>(n - done, int64_t{1} << 24));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw idx_error(path, std::string("not a valid gzip stream (") + message + ")");
    }
    if (got == 0) break;
    done += got;
  }
  int code = 0;
  const char* message = gzerror(file, &code);
  if (code != Z_OK && code != Z_STREAM_END) {
    // A gzip stream cut short reads as fewer bytes with Z_BUF_ERROR.
    throw idx_error(path, std::string("not a valid gzip stream (") + message + ")");
  }
  return done;
}

std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path candidate = fs::path(dir) / name;
    if (fs::exists(candidate)) return candidate.string();
  }
  QS_THROW(c10::Error, "Fashion-MNIST: neither '", stem, ".gz' nor '", stem, "' in '", dir, "'");
}

Dataset load_split(const std::string& dir, const std::string& prefix) {
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  at::Tensor images = read_idx(images_path);
  at::Tensor labels = read_idx(labels_path);
  if (images.dim() != 3 || images.size(1) != kImageSide || images.size(2) != kImageSide) {
    throw idx_error(images_path,
                    "expected images of shape (N, 28, 28), got " + c10::str(images.sizes()));
  }
  if (labels.dim() != 1) {
    throw idx_error(labels_path, "expected labels of shape (N), got " + c10::str(labels.sizes()));
  }
  if (labels.size(0) != images.size(0)) {
    throw idx_error(labels_path, std::to_string(labels.size(0)) + " labels for " +
                                     std::to_string(images.size(0)) + " images in '" + images_path +
                                     "'");
  }
  if (labels.numel() > 0 && labels.max().item<int64_t>() >= kNumClasses) {
    throw idx_error(labels_path,
                    "label " + std::to_string(labels.max().item<int64_t>()) + " outside [0, 10)");
  }
  return Dataset{images.unsqueeze(1), labels.to(at::kLong)};
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw idx_error(path, "cannot read it: it is a directory, not a file");
  }
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) throw idx_error(path, "cannot open it");
  gzbuffer(file.get(), 1 << 20);

  uint8_t magic[4];
  if (read_bytes(file.get(), path, magic, 4) != 4) {
    throw idx_error(path, "shorter than the 4-byte magic number");
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw idx_error(path, "bad magic number: the first two bytes must be zero");
  }
  if (magic[2] != kUnsignedByte) {
    throw idx_error(path, "element type code " + std::to_string(magic[2]) +
                              " is not 8 (unsigned byte), the only type this reader supports");
  }
  const int dims = magic[3];
  if (dims == 0) throw idx_error(path, "zero dimensions");

  std::vector<uint8_t> header(4 * static_cast<size_t>(dims));
  if (read_bytes(file.get(), path, header.data(), static_cast<int64_t>(header.size())) !=
      static_cast<int64_t>(header.size())) {
    throw idx_error(path, "header ends before its " + std::to_string(dims) + " sizes");
  }
  std::vector<int64_t> sizes(dims);
  int64_t numel = 1;
  for (int d = 0; d < dims; ++d) {
    const uint8_t* b = &header[4 * d];
    sizes[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | b[3];
    numel *= sizes[d];
    if (numel > kMaxElements) {
      throw idx_error(path, "sizes " + c10::str(c10::IntArrayRef(sizes.data(), d + 1)) +
                                " exceed the supported 2^31 elements");
    }
  }

  at::Tensor data = at::empty(sizes, at::kByte);
  const int64_t got = read_bytes(file.get(), path, data.data_ptr<uint8_t>(), numel);
  if (got != numel) {
    throw idx_error(path, "truncated: " + std::to_string(got) + " of " + std::to_string(numel) +
                              " data bytes for sizes " + c10::str(data.sizes()));
  }
  uint8_t extra = 0;
  if (read_bytes(file.get(), path, &extra, 1) != 0) {
    throw idx_error(path, "bytes after the " + std::to_string(numel) + " elements of sizes " +
                              c10::str(data.sizes()));
  }
  return data;
}

Dataset Dataset::head(int64_t n) const {
  if (n >= size()) return *this;
  return Dataset{images.narrow(0, 0, n), labels.narrow(0, 0, n)};
}

FashionMnist load_fashion_mnist(const std::string& dir) {
  TORCH_CHECK(std::filesystem::is_directory(dir), "Fashion-MNIST: no directory '", dir,
              "'. Install the Debian package `dataset-fashion-mnist` "
              "(apt-get install dataset-fashion-mnist; scripts/setup.sh does), "
              "or pass --data DIR naming a copy of the four IDX files.");
  return FashionMnist{load_split(dir, "train"), load_split(dir, "t10k")};
}

at::Tensor normalize_images(const at::Tensor& images) {
  constexpr double kMean = 0.2860;
  constexpr double kStd = 0.3530;
  return images.to(at::kFloat).mul_(1.0 / (255.0 * kStd)).sub_(kMean / kStd);
}

}  // namespace quantsim::apps
