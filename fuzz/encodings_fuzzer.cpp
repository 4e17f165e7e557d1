// libFuzzer target: quantsim::load_encodings on any file — the torch layout it reads, the 0.6.1
// and 1.0.0 `<prefix>.encodings` layouts a user may pass by mistake, and anything else.
// A load that succeeds must leave a model whose forward gives no NaN.
//
// QUANTSIM_FUZZ_WRITE_SEEDS=<dir> writes the model's own exports (the seeds of
// fuzz/corpus/encodings) into <dir> and exits.

#include <quantsim/sim/encodings_io.h>

#include "fuzz_model.h"
#include "fuzz_support.h"

#include <cstdlib>
#include <fstream>
#include <memory>

namespace qs = quantsim;

namespace {

std::unique_ptr<qs::fuzz::Net> pristine_net;

void write_seeds(const std::string& dir) {
  const auto net = qs::fuzz::calibrated_net();
  const auto write = [&](const std::string& name, const nlohmann::json& j) {
    std::ofstream(dir + "/" + name) << j.dump(4);
  };
  write("torch_layout.json", qs::torch_encodings(*net));
  write("v0_6_1.json", qs::encodings(*net));
  write("v1_0_0.json",
        qs::encodings(*net, qs::ExportOptions().version(qs::EncodingVersion::k1_0_0)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("QUANTSIM_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  pristine_net = std::make_unique<qs::fuzz::Net>(qs::fuzz::calibrated_net());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& path = qs::fuzz::write_input(data, size);
  auto& net = *pristine_net;
  bool loaded = false;
  qs::fuzz::expect_accept_or_throw([&] {
    qs::load_encodings(*net, path);
    loaded = true;
  });
  if (!loaded) return 0;  // a refused load changes nothing (encodings_io_test pins that)
  torch::NoGradGuard no_grad;
  qs::fuzz::expect_accept_or_throw([&] {
    const auto out = net->forward(qs::fuzz::sample_input());
    qs::fuzz::require(!out.isnan().any().item<bool>(), "a loaded encoding gives NaN outputs");
  });
  *pristine_net = qs::fuzz::calibrated_net();  // the next input starts from the same model
  return 0;
}
