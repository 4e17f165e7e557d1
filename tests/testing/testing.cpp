// Anchor of the quantsim_testing library (shared testers live in headers beside it).
#include "testing/tolerance.h"
