#pragma once

/// Fashion-MNIST: 70 000 grey 28x28 images of clothing in 10 classes, read from the IDX files
/// (optionally gzip-compressed) that the Debian package `dataset-fashion-mnist` installs.

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>

namespace quantsim::apps {

/// Where the Debian package `dataset-fashion-mnist` puts the four `.gz` files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The class names, by label.
inline constexpr std::array<const char*, 10> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Reads one IDX file of unsigned bytes (type code 0x08), gzip-compressed or not.
///
/// The format: two zero bytes, the type code, the number of dimensions `d`, then `d` big-endian
/// 32-bit sizes, then the elements in row-major order. Returns a uint8 tensor of those sizes.
/// c10::Error naming the file when it cannot be opened or is a directory, is not valid gzip, has a
/// bad magic number or an element type other than unsigned byte, is shorter than its header says,
/// or has bytes after the last element.
///
///     at::Tensor labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
///     // labels.sizes() == {10000}, dtype uint8
at::Tensor read_idx(const std::string& path);

/// Images and their labels.
struct Dataset {
  /// (N, 1, 28, 28) uint8 pixels, 0 = background.
  at::Tensor images;
  /// (N) int64 class indices in [0, 10).
  at::Tensor labels;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// The first `n` examples (all of them when n >= size()); shares storage.
  Dataset head(int64_t n) const;
};

/// The two splits of Fashion-MNIST.
struct FashionMnist {
  Dataset train;  ///< 60 000 examples
  Dataset test;   ///< 10 000 examples
};

/// Reads `train-{images,labels}` and `t10k-{images,labels}` (`-idx3-ubyte.gz` / `-idx1-ubyte.gz`,
/// or the same names without `.gz`) from `dir`.
///
/// When `dir` does not exist the error says which Debian package provides the data (and that
/// `--data DIR` reads another copy). The image and label files must agree on the number of
/// examples, images must be 28x28 and labels in [0, 10); otherwise c10::Error naming the file.
FashionMnist load_fashion_mnist(const std::string& dir = kFashionMnistDir);

/// Float network input from uint8 images: x / 255 normalised by the training set's mean (0.2860)
/// and standard deviation (0.3530), so that inputs are centred with unit variance.
at::Tensor normalize_images(const at::Tensor& images);

}  // namespace quantsim::apps
