// A user's file: three quantized modules of the table and one forward each. The library
// instantiates their member functions (src/nn/modules/*.cpp); this file must compile none of
// them, only call them. The test `user_translation_unit_instantiates_no_quantized_member` reads
// this file's object with nm and fails on any definition of a mixin member (docs/benchmarks.md,
// "Build and CI time").

#include <quantsim/quantsim.h>

namespace qs = quantsim;

at::Tensor user_forward(const at::Tensor& x) {
  qs::nn::QuantizedConv2d conv(torch::nn::Conv2dOptions(3, 8, 3));
  qs::nn::QuantizedLinear fc(torch::nn::LinearOptions(8, 4));
  qs::nn::FakeQuantizedReLU relu;
  auto clone = fc->clone();
  return fc(relu(conv(x)).mean({2, 3}));
}
