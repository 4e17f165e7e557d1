#include "nn/modules/registration.h"

namespace quantsim::nn {

// The rnn rows are registered here once their quantized classes exist.
void register_rnn_modules() {}

}  // namespace quantsim::nn
