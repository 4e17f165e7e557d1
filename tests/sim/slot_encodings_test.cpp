// The encodings files of a model given as its quantizer slots (quantsim/sim/encodings_io.h,
// QuantizedSlot: what the Python package's QuantizationSimModel passes): the same content as
// from the C++ module tree, in both layouts and both versions.

#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/modules.h>
#include <quantsim/sim/encodings_io.h>

#include <gtest/gtest.h>

namespace qs = quantsim;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizeDequantizeImpl;

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    torch::manual_seed(0);
    conv = register_module("conv",
                           qs::nn::QuantizedConv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)));
    fc = register_module("fc", qs::nn::QuantizedLinear(torch::nn::LinearOptions(64, 3)));
  }
  qs::nn::QuantizedConv2d conv{nullptr};
  qs::nn::QuantizedLinear fc{nullptr};
};
TORCH_MODULE(Net);

void set_range(QuantizeDequantize& q, double min, double max) { q->set_range(min, max); }

}  // namespace

TEST(SlotEncodings, EqualTheModuleTreeEncodings) {
  Net net;
  QuantizeDequantize conv_in({}, 8, false), conv_out({}, 8, false), fc_out({}, 8, true);
  QuantizeDequantize conv_weight({4, 1, 1, 1}, 4, true), fc_weight({3, 1}, 8, true);
  set_range(conv_in, -1, 2.984375);
  set_range(conv_out, -0.5, 1.5);
  set_range(fc_out, -2, 2);
  conv_weight->set_range(-torch::rand({4, 1, 1, 1}) - 0.1, torch::rand({4, 1, 1, 1}) + 0.1);
  fc_weight->set_range(-torch::rand({3, 1}) - 0.1, torch::rand({3, 1}) + 0.1);
  net->conv->input_quantizers[0] = conv_in;
  net->conv->output_quantizers[0] = conv_out;
  net->conv->param_quantizers["weight"] = conv_weight;
  net->fc->output_quantizers[0] = fc_out;
  net->fc->param_quantizers["weight"] = fc_weight;
  // The reference's order: modules, each its inputs, outputs, parameters.
  const std::vector<qs::QuantizedSlot> slots = {
      {"conv", "input", "0", conv_in.ptr(), {}},
      {"conv", "output", "0", conv_out.ptr(), {}},
      {"conv", "param", "weight", conv_weight.ptr(), net->conv->weight},
      {"fc", "output", "0", fc_out.ptr(), {}},
      {"fc", "param", "weight", fc_weight.ptr(), net->fc->weight}};
  const auto args = nlohmann::json{{"quant_scheme", "post_training_tf"}};
  for (const auto version : {qs::EncodingVersion::k0_6_1, qs::EncodingVersion::k1_0_0}) {
    // Keyed by graph tensor names; conv's output and fc's input would be one tensor.
    const std::map<std::string, std::string> names = {
        {"conv.input_quantizers.0", "input"},
        {"conv.output_quantizers.0", "conv_out"},
        {"conv.param_quantizers.weight", "conv.weight"},
        {"fc.output_quantizers.0", "output"},
        {"fc.param_quantizers.weight", "fc.weight"}};
    const auto options = qs::ExportOptions().version(version).quantizer_args(args);
    EXPECT_EQ(qs::encodings(slots, options), qs::encodings(*net, options));
    const auto graph = qs::ExportOptions(options).tensor_names(names);
    EXPECT_EQ(qs::encodings(slots, graph), qs::encodings(*net, graph));
    EXPECT_EQ(qs::torch_encodings(slots, options), qs::torch_encodings(*net, options));
  }
  EXPECT_EQ(qs::encodings(slots).at("activation_encodings").size(), 3u);
  // An uninitialized quantizer is left out; a slot of another kind is an error.
  QuantizeDequantize empty({}, 8, false);
  EXPECT_EQ(qs::encodings({{"x", "input", "0", empty.ptr(), {}}}).at("activation_encodings"),
            nlohmann::json::object());
  EXPECT_THROW(qs::encodings({{"x", "weights", "0", conv_in.ptr(), {}}}), c10::ValueError);
  EXPECT_THROW(qs::encodings({{"x", "input", "0", nullptr, {}}}), c10::ValueError);
}
