#include <quantsim/nn/registry.h>

#include "nn/modules/registration.h"

namespace quantsim::nn {

void register_builtin_modules() {
  register_activation_modules();
  register_conv_modules();
  register_custom_elementwise_modules();
  register_custom_tensor_modules();
  register_linear_modules();
  register_loss_modules();
  register_normalization_modules();
  register_pooling_modules();
  register_rnn_modules();
  register_shape_modules();
}

}  // namespace quantsim::nn
