// A downstream program: quantize-dequantize a tensor with a calibrated quantizer.
#include <quantsim/quantsim.h>

#include <iostream>

int main() {
  namespace qs = quantsim;
  auto q = qs::affine::QuantizeDequantize({}, /*bitwidth=*/8, /*symmetric=*/false);
  const auto x = at::tensor({-2.0f, 1.0f});
  q->compute_encodings([&] { q(x); });
  const auto y = q(x);
  std::cout << "quantsim " << qs::kVersion << " qdq: " << y[0].item<float>() << " "
            << y[1].item<float>() << "\n";
  return q->is_initialized() ? 0 : 1;
}
