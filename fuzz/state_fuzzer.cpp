// libFuzzer target: quantsim::load_state on any file (a torch::save zip archive when valid).
//
// QUANTSIM_FUZZ_WRITE_SEEDS=<dir> writes the model's own saved state (the seed of
// fuzz/corpus/state) into <dir> and exits.

#include <quantsim/sim/encodings_io.h>

#include "fuzz_model.h"
#include "fuzz_support.h"

#include <cstdlib>
#include <memory>

namespace qs = quantsim;

namespace {
std::unique_ptr<qs::fuzz::Net> pristine_net;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("QUANTSIM_FUZZ_WRITE_SEEDS")) {
    qs::save_state(*qs::fuzz::calibrated_net(), std::string(dir) + "/calibrated.pt");
    std::exit(0);
  }
  pristine_net = std::make_unique<qs::fuzz::Net>(qs::fuzz::calibrated_net());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& path = qs::fuzz::write_input(data, size);
  bool loaded = false;
  qs::fuzz::expect_accept_or_throw([&] {
    qs::load_state(**pristine_net, path);
    loaded = true;
  });
  if (loaded) *pristine_net = qs::fuzz::calibrated_net();
  return 0;
}
