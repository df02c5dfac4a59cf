#include "mproc/finalize.hpp"

#include "runtime/runtime.hpp"

namespace mproc {

Finalize::Finalize(std::function<void()> callback, int exitpriority)
    : entry_(std::make_shared<detail::FinalizerEntry>()) {
  entry_->callback = std::move(callback);
  entry_->priority = exitpriority;
  detail::Runtime& runtime = detail::Runtime::get();
  runtime.add_finalizer(entry_);
  runtime.ensure_exit_handler();
}

void Finalize::operator()() {
  if (detail::Runtime::get().deactivate_finalizer(*entry_)) entry_->callback();
}

void Finalize::cancel() { (void)detail::Runtime::get().deactivate_finalizer(*entry_); }

bool Finalize::still_active() const { return detail::Runtime::get().finalizer_active(*entry_); }

}  // namespace mproc
