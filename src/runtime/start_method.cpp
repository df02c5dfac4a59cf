// The default start method and the program spawn runs, as Python's
// DefaultContext keeps them: chosen once, then fixed unless forced.

#include "mproc/start_method.hpp"

#include "mproc/context.hpp"

#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "mproc/errors.hpp"
#include "runtime/start.hpp"

namespace mproc {
namespace {

// The chosen method is an atomic, not under a mutex, so that a child forked
// while another thread chooses cannot inherit a held lock.
constexpr int kNotChosen = -1;

struct Defaults {
  std::atomic<int> chosen{kNotChosen};  // Python's _actual_context
  std::mutex executable_mutex;
  std::string executable;
};

Defaults& defaults() {
  static Defaults* state = new Defaults();  // used by children's start-up to the very end
  return *state;
}

constexpr StartMethod kDefaultMethod = StartMethod::fork;

// Each method's name, and the prefix of Python's names for its processes,
// in the enum's order.
struct MethodNames {
  std::string_view name;
  std::string_view prefix;
};
constexpr MethodNames kMethods[] = {{"fork", "Fork"}, {"spawn", "Spawn"}, {"forkserver", "ForkServer"}};

}  // namespace

std::string_view start_method_name(StartMethod method) noexcept { return kMethods[static_cast<int>(method)].name; }

StartMethod parse_start_method(std::string_view name) {
  for (StartMethod method : {StartMethod::fork, StartMethod::spawn, StartMethod::forkserver}) {
    if (start_method_name(method) == name) return method;
  }
  throw std::invalid_argument("mproc: cannot find context for '" + std::string(name) +
                              "' (the start methods are fork, spawn and forkserver)");
}

void set_start_method(std::string_view name, bool force) {
  int method = kNotChosen;
  if (!name.empty() || !force) method = static_cast<int>(parse_start_method(name));
  std::atomic<int>& chosen = defaults().chosen;
  if (force) {
    chosen.store(method);
    return;
  }
  int expected = kNotChosen;
  if (!chosen.compare_exchange_strong(expected, method)) {
    throw UsageError("mproc: set_start_method: context has already been set (to '" +
                     std::string(start_method_name(static_cast<StartMethod>(expected))) +
                     "'); pass force=true to change it");
  }
}

std::string get_start_method(bool allow_none) {
  int chosen = defaults().chosen.load();
  if (chosen == kNotChosen && allow_none) return {};
  return std::string(start_method_name(detail::resolve_start_method(std::nullopt)));
}

std::vector<std::string> get_all_start_methods() { return {"fork", "spawn", "forkserver"}; }

Context get_context(std::string_view name) {
  if (name.empty()) return Context(detail::resolve_start_method(std::nullopt));
  return Context(parse_start_method(name));
}

void set_executable(std::string path) {
  Defaults& state = defaults();
  std::lock_guard lock(state.executable_mutex);
  state.executable = std::move(path);
}

namespace detail {

StartMethod resolve_start_method(std::optional<StartMethod> requested) {
  if (requested) return *requested;
  std::atomic<int>& chosen = defaults().chosen;
  int expected = kNotChosen;
  if (chosen.compare_exchange_strong(expected, static_cast<int>(kDefaultMethod))) return kDefaultMethod;
  return static_cast<StartMethod>(expected);
}

std::string_view start_method_prefix(StartMethod method) noexcept {
  return kMethods[static_cast<int>(method)].prefix;
}

std::string spawn_executable() {
  Defaults& state = defaults();
  std::lock_guard lock(state.executable_mutex);
  return state.executable;
}

}  // namespace detail
}  // namespace mproc
