// libFuzzer target: QuantsimConfig::from_file on any file; a configuration it accepts must set
// up a QuantizationSimModel that calibrates and runs without NaN, or be refused there with an
// exception.

#include <quantsim/sim/config.h>
#include <quantsim/sim/quantsim_model.h>

#include "fuzz_model.h"
#include "fuzz_support.h"

namespace qs = quantsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& path = qs::fuzz::write_input(data, size);
  qs::fuzz::expect_accept_or_throw([&] {
    const auto config = qs::QuantsimConfig::from_file(path);
    torch::NoGradGuard no_grad;
    auto net = qs::fuzz::Net();
    net->eval();
    const auto input = qs::fuzz::sample_input();
    qs::QuantizationSimModel sim(
        net.ptr(), [&] { net->forward(input); }, qs::SimOptions().config(config));
    sim.compute_encodings([&] { net->forward(input); });
    const auto out = net->forward(input);
    qs::fuzz::require(!out.isnan().any().item<bool>(), "an accepted config gives NaN outputs");
  });
  return 0;
}
