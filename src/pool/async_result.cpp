#include "mproc/async_result.hpp"

#include <cstdio>

namespace mproc::detail {

void report_callback_error(const char* what) noexcept {
  std::fprintf(stderr, "mproc: exception in a result callback (ignored): %s\n", what);
  std::fflush(stderr);
}

}  // namespace mproc::detail
