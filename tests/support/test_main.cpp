#include <gtest/gtest.h>

#include "mproc/process.hpp"
#include "support/helpers.hpp"

namespace {

// A test that fails before joining its children must not leave them
// running: the program's normal exit would wait for them.
class KillLeftoverChildren : public ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo& test) override {
    for (mproc::Process& child : mproc::active_children()) {
      ADD_FAILURE() << test.name() << " left child " << child.name() << " running; killing it";
      child.kill();
      child.join();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  if (mproc::testing::run_requested_helper(argc, argv, exit_code)) return exit_code;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new KillLeftoverChildren);
  return RUN_ALL_TESTS();
}
