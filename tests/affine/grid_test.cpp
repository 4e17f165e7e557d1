#include <quantsim/affine/grid.h>

#include <gtest/gtest.h>

#include <stdexcept>

namespace qs = quantsim;
using qs::affine::Grid;

// Grid derivation (docs/quantization.md eq. (0)).
TEST(Grid, DerivesFromBitwidthAndNumSteps) {
  EXPECT_EQ(Grid::from_bitwidth(8, false), (Grid{0, 255}));
  EXPECT_EQ(Grid::from_bitwidth(8, true), (Grid{-128, 127}));
  EXPECT_EQ(Grid::from_bitwidth(4, true), (Grid{-8, 7}));
  EXPECT_EQ(Grid::from_num_steps(15, true), (Grid{-8, 7}));
  EXPECT_EQ(Grid::from_num_steps(254, true), (Grid{-127, 127}));
}
