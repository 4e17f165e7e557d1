// The operator library is registered in any executable that links libquantsim, even one that
// references none of its symbols (CMakeLists.txt: --undefined=quantsim_ops_library). This file
// must reference nothing of src/ops/: without the link option the test fails.

#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>

TEST(OpsRegistration, LinkingTheLibraryRegistersTheOperators) {
  EXPECT_TRUE(
      c10::Dispatcher::singleton().findSchema({"quantsim::quantize_dequantize", ""}).has_value());
  EXPECT_TRUE(c10::Dispatcher::singleton()
                  .findSchema({"quantsim::float_quantize_dequantize", ""})
                  .has_value());
}
