// libFuzzer target: the Fashion-MNIST IDX reader (apps/quantsim/fashion_mnist.h) on any file,
// gzip-compressed or not. What it returns must be a uint8 tensor holding the file's elements.

#include "apps/quantsim/fashion_mnist.h"

#include "fuzz_support.h"

namespace qs = quantsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& path = qs::fuzz::write_input(data, size);
  qs::fuzz::expect_accept_or_throw([&] {
    const auto images = qs::apps::read_idx(path);
    qs::fuzz::require(images.scalar_type() == at::kByte, "read_idx returned a non-uint8 tensor");
    // Without gzip, the file is the 4-byte magic, 4 bytes per size, then the elements.
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    qs::fuzz::require(gzip || size == 4 + 4 * static_cast<size_t>(images.dim()) +
                                          static_cast<size_t>(images.numel()),
                      "read_idx accepted a file whose size does not match its header");
  });
  return 0;
}
