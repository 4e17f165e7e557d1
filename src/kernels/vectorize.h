#pragma once

// QS_VECTORIZE marks a kernel loop function to be compiled twice, for AVX2 and for the baseline
// x86-64, the variant chosen when the library is loaded (GCC target_clones). Everything the loop
// calls must be inlined into it to benefit (helpers are `always_inline`, loops take no callbacks).

// Clang (the sanitizer and fuzzing build, scripts/run-sanitizers.sh) does not multiversion
// function templates, so it compiles the baseline only. Nor does GCC's ThreadSanitizer build:
// the ifunc resolvers it would instrument run at load time, before the TSan runtime is set up,
// and crash the process.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define QS_VECTORIZE __attribute__((target_clones("avx2", "default")))
#else
#define QS_VECTORIZE
#endif
