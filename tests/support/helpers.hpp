// Test support: the test binary is its own child process. A test can re-exec
// /proc/self/exe with `--mproc-helper=NAME args...`; main() then runs the
// helper registered under NAME instead of the tests, and exits with its result.

#pragma once

#include <string>
#include <vector>

namespace mproc::testing {

using HelperFunction = int (*)(const std::vector<std::string>& args);

// Registers `function` under `name`; returns true (for static registration).
bool register_helper(const char* name, HelperFunction function);

// If argv asks for a helper, runs it and returns true with its exit code.
bool run_requested_helper(int argc, char** argv, int& exit_code);

}  // namespace mproc::testing

// Defines a helper the test binary can be re-executed as:
//   MPROC_TEST_HELPER(echo) { return args.size(); }
#define MPROC_TEST_HELPER(name)                                                        \
  static int mproc_helper_##name(const std::vector<std::string>& args);                \
  [[maybe_unused]] static const bool mproc_helper_registered_##name =                  \
      ::mproc::testing::register_helper(#name, &mproc_helper_##name);                  \
  static int mproc_helper_##name([[maybe_unused]] const std::vector<std::string>& args)
