// The `quantsim` program; see cli.h.
#include "cli.h"

#include <iostream>

#ifdef __GLIBC__
#include <malloc.h>
#endif

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Training allocates and frees the same large activation blocks every step; glibc would hand
  // them back to the kernel each time, and page faults are expensive (see DESIGN.md).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  return quantsim::apps::run_command_line(argc, argv, std::cout, std::cerr);
}
