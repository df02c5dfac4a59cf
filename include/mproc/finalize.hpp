// mproc/finalize.hpp
//
// Finalizers: callbacks that run when this process exits, as Python's
// multiprocessing.util.Finalize. In a child started by mproc they run on its
// exit path (before _exit); in the main program, when it exits normally.
// A forked child starts with none of its parent's.

#pragma once

#include <functional>
#include <memory>

namespace mproc {

namespace detail {
struct FinalizerEntry;
}

// Finalize
//
// Registers `callback` to run once at exit: those with the highest
// exitpriority first, and among equals, the most recently registered first.
// Finalizers with an exitpriority of 0 or more run before the process's
// daemonic children are terminated and the others joined; those below 0,
// after. The handle can run it early or cancel it; dropping the handle does
// neither (the registration stays, as in Python). Copies share it.
class Finalize {
 public:
  explicit Finalize(std::function<void()> callback, int exitpriority = 0);

  // Finalize::operator()
  //
  // Runs the callback now, if it has not run and was not cancelled.
  void operator()();

  // Finalize::cancel()
  //
  // Unregisters the callback without running it.
  void cancel();

  // Finalize::still_active()
  //
  // Whether the callback is still to run.
  bool still_active() const;

 private:
  std::shared_ptr<detail::FinalizerEntry> entry_;
};

}  // namespace mproc
