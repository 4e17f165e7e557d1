#pragma once

/// The registration function of each module group (src/nn/modules/<group>.cpp), called once by
/// register_builtin_modules(). Explicit calls, not static registrar objects: the linker drops
/// object files of a static library that nothing references.

namespace quantsim::nn {

void register_activation_modules();
void register_conv_modules();
void register_custom_elementwise_modules();
void register_custom_tensor_modules();
void register_linear_modules();
void register_loss_modules();
void register_normalization_modules();
void register_pooling_modules();
void register_rnn_modules();
void register_shape_modules();

}  // namespace quantsim::nn
