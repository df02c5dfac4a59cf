#include "common/raise.hpp"

#include <string>
#include <system_error>

namespace mproc::detail {

void raise(const os::Error& error, std::string_view context) {
  std::string what(error.call);
  if (!context.empty()) {
    what += " (";
    what += context;
    what += ')';
  }
  throw std::system_error(error.code, what);
}

}  // namespace mproc::detail
