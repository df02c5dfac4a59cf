// Assertions shared by the test files.

#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mproc::testing {

// Expects f() to throw Exception with `needle` in its message.
template <class Exception, class F>
void expect_throw_containing(F&& f, std::string_view needle) {
  try {
    f();
    ADD_FAILURE() << "nothing was thrown";
  } catch (const Exception& e) {
    EXPECT_NE(std::string_view(e.what()).find(needle), std::string_view::npos) << e.what();
  }
}

}  // namespace mproc::testing
