#pragma once

#define QUANTSIM_VERSION_MAJOR 0
#define QUANTSIM_VERSION_MINOR 1
#define QUANTSIM_VERSION_PATCH 0

namespace quantsim {
/// "major.minor.patch" of this build.
inline constexpr const char* kVersion = "0.1.0";
}  // namespace quantsim
