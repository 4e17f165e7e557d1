#include "nn/modules/registration.h"

namespace quantsim::nn {

// The custom rows are registered here once their quantized classes exist.
void register_custom_modules() {}

}  // namespace quantsim::nn
