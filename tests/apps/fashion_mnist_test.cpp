// IDX reading and Fashion-MNIST loading on small generated files.
#include "apps/quantsim/fashion_mnist.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace quantsim::apps {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh directory per test, removed afterwards.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quantsim_idx_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_gz(const std::string& name, const Bytes& bytes) const {
    gzFile file = gzopen(path(name).c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(file);
    return path(name);
  }
  std::string write_plain(const std::string& name, const Bytes& bytes) const {
    std::ofstream(path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }

  fs::path dir_;
};

// An IDX header (unsigned bytes) followed by `data`.
Bytes idx(const std::vector<uint32_t>& sizes, const Bytes& data, uint8_t type = 0x08) {
  Bytes bytes = {0, 0, type, static_cast<uint8_t>(sizes.size())};
  for (uint32_t s : sizes) {
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<uint8_t>(s >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

Bytes iota_bytes(size_t n, uint8_t first = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();  // what() adds the C++ backtrace
  }
  return "<no error>";
}

TEST_F(IdxTest, ReadsGzipSizesAndValues) {
  const std::string file = write_gz("a.gz", idx({2, 3, 2}, iota_bytes(12, 250)));
  at::Tensor t = read_idx(file);
  EXPECT_EQ(t.scalar_type(), at::kByte);
  EXPECT_EQ(t.sizes(), at::IntArrayRef({2, 3, 2}));
  // 250..255 then wrapping to 0..5.
  EXPECT_EQ(t[0][0][0].item<int>(), 250);
  EXPECT_EQ(t[0][2][1].item<int>(), 255);
  EXPECT_EQ(t[1][0][0].item<int>(), 0);
  EXPECT_EQ(t[1][2][1].item<int>(), 5);
}

TEST_F(IdxTest, ReadsUncompressedFilesAndLargeSizes) {
  // A size above 2^16 exercises all four big-endian bytes.
  const std::string file = write_plain("b", idx({70000}, Bytes(70000, 7)));
  at::Tensor t = read_idx(file);
  EXPECT_EQ(t.sizes(), at::IntArrayRef({70000}));
  EXPECT_EQ(t.sum().item<int64_t>(), 7 * 70000);
}

TEST_F(IdxTest, Errors) {
  EXPECT_EQ(error_of([&] { read_idx(path("missing.gz")); }),
            "IDX file '" + path("missing.gz") + "': cannot open it");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("short.gz", {0, 0}));
            }),
            "IDX file '" + path("short.gz") + "': shorter than the 4-byte magic number");
  EXPECT_EQ(
      error_of([&] {
        read_idx(write_gz("magic.gz", {1, 0, 8, 1, 0, 0, 0, 1, 5}));
      }),
      "IDX file '" + path("magic.gz") + "': bad magic number: the first two bytes must be zero");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("float.gz", idx({1}, {0, 0, 0, 0}, 0x0D)));
            }),
            "IDX file '" + path("float.gz") +
                "': element type code 13 is not 8 (unsigned byte), the only type this reader "
                "supports");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("dims0.gz", {0, 0, 8, 0}));
            }),
            "IDX file '" + path("dims0.gz") + "': zero dimensions");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("header.gz", {0, 0, 8, 2, 0, 0, 0, 3}));
            }),
            "IDX file '" + path("header.gz") + "': header ends before its 2 sizes");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("trunc.gz", idx({2, 3}, iota_bytes(5))));
            }),
            "IDX file '" + path("trunc.gz") + "': truncated: 5 of 6 data bytes for sizes [2, 3]");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("extra.gz", idx({2, 3}, iota_bytes(7))));
            }),
            "IDX file '" + path("extra.gz") + "': bytes after the 6 elements of sizes [2, 3]");
  EXPECT_EQ(error_of([&] {
              read_idx(write_gz("huge.gz", idx({65536, 65536}, {})));
            }),
            "IDX file '" + path("huge.gz") +
                "': sizes [65536, 65536] exceed the supported 2^31 elements");
}

TEST_F(IdxTest, DirectoryIsAnErrorNamingIt) {
  // zlib opens a directory and fails reading it: "not a valid gzip stream" misled.
  EXPECT_EQ(error_of([&] { read_idx(dir_.string()); }),
            "IDX file '" + dir_.string() + "': cannot read it: it is a directory, not a file");
  // A directory with a data file's name, as --data pointing one level too high can give.
  fs::create_directories(dir_ / "train-images-idx3-ubyte.gz");
  write_gz("train-labels-idx1-ubyte.gz", idx({1}, {0}));
  EXPECT_EQ(error_of([&] { load_fashion_mnist(dir_.string()); }),
            "IDX file '" + path("train-images-idx3-ubyte.gz") +
                "': cannot read it: it is a directory, not a file");
}

TEST_F(IdxTest, CorruptGzipIsAnError) {
  // A valid gzip file cut in the middle of its deflate stream.
  const std::string whole = write_gz("whole.gz", idx({4000}, iota_bytes(4000)));
  std::ifstream in(whole, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes cut(content.begin(), content.begin() + static_cast<std::ptrdiff_t>(content.size() / 2));
  const std::string file = write_plain("cut.gz", cut);
  const std::string message = error_of([&] { read_idx(file); });
  EXPECT_EQ(message.rfind("IDX file '" + file + "': not a valid gzip stream (", 0), 0u) << message;
}

// Writes a miniature Fashion-MNIST: `train` and `test` examples, labels i % 10.
void write_dataset(IdxTest* t,
                   const std::function<std::string(const std::string&, const Bytes&)>& write,
                   uint32_t train, uint32_t test, uint32_t side = 28, uint8_t bad_label = 0) {
  for (auto [prefix, n] : {std::pair<std::string, uint32_t>{"train", train}, {"t10k", test}}) {
    Bytes labels(n);
    for (uint32_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
    if (bad_label && n > 0) labels[n - 1] = bad_label;
    write(prefix + "-images-idx3-ubyte.gz", idx({n, side, side}, Bytes(n * side * side, 3)));
    write(prefix + "-labels-idx1-ubyte.gz", idx({n}, labels));
  }
  (void)t;
}

TEST_F(IdxTest, LoadsBothSplits) {
  write_dataset(
      this, [&](const std::string& n, const Bytes& b) { return write_gz(n, b); }, 12, 3);
  FashionMnist data = load_fashion_mnist(dir_.string());
  EXPECT_EQ(data.train.images.sizes(), at::IntArrayRef({12, 1, 28, 28}));
  EXPECT_EQ(data.train.labels.scalar_type(), at::kLong);
  EXPECT_EQ(data.train.labels[11].item<int64_t>(), 1);
  EXPECT_EQ(data.test.size(), 3);
  EXPECT_EQ(data.test.images.sum().item<int64_t>(), 3 * 3 * 28 * 28);
  Dataset head = data.train.head(5);
  EXPECT_EQ(head.size(), 5);
  EXPECT_EQ(head.images.size(0), 5);
  EXPECT_EQ(data.train.head(100).size(), 12);
}

TEST_F(IdxTest, LoadsUncompressedCopies) {
  // The same names without .gz (a copy someone gunzipped).
  write_dataset(
      this,
      [&](const std::string& n, const Bytes& b) {
        return write_plain(n.substr(0, n.size() - 3), b);
      },
      4, 2);
  EXPECT_EQ(load_fashion_mnist(dir_.string()).train.size(), 4);
}

TEST_F(IdxTest, MissingDirectoryNamesTheDebianPackage) {
  const std::string message = error_of([&] { load_fashion_mnist(path("nowhere")); });
  EXPECT_NE(message.find("no directory '" + path("nowhere") + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("Debian package `dataset-fashion-mnist`"), std::string::npos) << message;
  EXPECT_NE(message.find("--data DIR"), std::string::npos) << message;
}

TEST_F(IdxTest, DatasetErrors) {
  const auto gz = [&](const std::string& n, const Bytes& b) { return write_gz(n, b); };
  EXPECT_EQ(error_of([&] { load_fashion_mnist(dir_.string()); }),
            "Fashion-MNIST: neither 'train-images-idx3-ubyte.gz' nor 'train-images-idx3-ubyte' "
            "in '" +
                dir_.string() + "'");

  write_dataset(this, gz, 4, 2, /*side=*/27);
  EXPECT_EQ(error_of([&] { load_fashion_mnist(dir_.string()); }),
            "IDX file '" + path("train-images-idx3-ubyte.gz") +
                "': expected images of shape (N, 28, 28), got [4, 27, 27]");

  write_dataset(this, gz, 4, 2, 28, /*bad_label=*/10);
  EXPECT_EQ(error_of([&] { load_fashion_mnist(dir_.string()); }),
            "IDX file '" + path("train-labels-idx1-ubyte.gz") + "': label 10 outside [0, 10)");

  write_dataset(this, gz, 4, 2);
  gz("t10k-labels-idx1-ubyte.gz", idx({3}, {0, 1, 2}));
  EXPECT_EQ(error_of([&] { load_fashion_mnist(dir_.string()); }),
            "IDX file '" + path("t10k-labels-idx1-ubyte.gz") + "': 3 labels for 2 images in '" +
                path("t10k-images-idx3-ubyte.gz") + "'");
}

TEST(NormalizeImages, MapsPixelsToTheStandardisedScale) {
  at::Tensor pixels = at::tensor({0, 73, 255}, at::kByte);
  at::Tensor x = normalize_images(pixels);
  EXPECT_EQ(x.scalar_type(), at::kFloat);
  // (p / 255 - 0.2860) / 0.3530
  EXPECT_NEAR(x[0].item<float>(), -0.810198, 1e-6);
  EXPECT_NEAR(x[1].item<float>(), (73 / 255.0 - 0.2860) / 0.3530, 1e-6);
  EXPECT_NEAR(x[2].item<float>(), 2.022663, 1e-6);
}

}  // namespace
}  // namespace quantsim::apps
