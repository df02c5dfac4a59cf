#include "support/helpers.hpp"

#include <cstdio>
#include <exception>
#include <map>
#include <string_view>

namespace mproc::testing {
namespace {

std::map<std::string, HelperFunction>& registry() {
  static std::map<std::string, HelperFunction> helpers;
  return helpers;
}

constexpr std::string_view kFlag = "--mproc-helper=";

}  // namespace

bool register_helper(const char* name, HelperFunction function) {
  registry()[name] = function;
  return true;
}

bool run_requested_helper(int argc, char** argv, int& exit_code) {
  if (argc < 2 || !std::string_view(argv[1]).starts_with(kFlag)) return false;
  std::string name(std::string_view(argv[1]).substr(kFlag.size()));
  auto found = registry().find(name);
  if (found == registry().end()) {
    std::fprintf(stderr, "no test helper named %s\n", name.c_str());
    exit_code = 127;
    return true;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    exit_code = found->second(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "helper %s threw: %s\n", name.c_str(), e.what());
    exit_code = 99;
  }
  return true;
}

}  // namespace mproc::testing
