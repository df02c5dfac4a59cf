#include <gtest/gtest.h>

#include "support/helpers.hpp"

int main(int argc, char** argv) {
  int exit_code = 0;
  if (mproc::testing::run_requested_helper(argc, argv, exit_code)) return exit_code;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
