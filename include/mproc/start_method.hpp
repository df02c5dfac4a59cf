// mproc/start_method.hpp
//
// How a child process is started, as Python's start methods:
//   * fork: the child is a copy of the parent (the default on Linux). Fast;
//     any callable can be a target. Beware threads in the parent: a lock
//     another thread held at fork() stays held in the child.
//   * spawn: the child is a fresh run of this program (/proc/self/exe, with
//     the same arguments, environment and working directory). mproc takes
//     over before main() and runs the target, so main() needs no guard and
//     no freeze_support(). The target and its arguments travel through the
//     codec: the target must be transferable (a function, a capture-less
//     lambda, a serializable function object) and handles travel as
//     descriptors.
//   * forkserver: one single-threaded server per process, started like a
//     spawn child on first use, forks each child: as fast as fork, as clean
//     as spawn, with spawn's rules for the target.
//
// The method is chosen globally with set_start_method() or per object with
// a Context (mproc/context.hpp).
//
// Example:
//
//   void work(mproc::Queue<int> results) { results.put(42); }
//
//   int main() {
//     mproc::set_start_method("spawn");
//     mproc::Queue<int> results;
//     mproc::Process p(work, results);
//     p.start();
//     std::printf("%d\n", results.get());
//     p.join();
//   }

#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mproc {

// StartMethod
//
// The three ways to start a child.
enum class StartMethod { fork, spawn, forkserver };

// start_method_name()
//
// "fork", "spawn" or "forkserver".
std::string_view start_method_name(StartMethod method) noexcept;

// parse_start_method()
//
// The method named `name`; std::invalid_argument for any other name
// (Python's ValueError "cannot find context for ...").
StartMethod parse_start_method(std::string_view name);

// set_start_method()
//
// Sets the method that Process, Pool and ProcessPoolExecutor use when no
// Context says otherwise. Once the method has been used (a process
// started, get_context() or get_start_method() called) or set, setting it
// again without `force` is a UsageError ("context has already been set"),
// as in Python. An empty name with `force` forgets the choice.
void set_start_method(std::string_view name, bool force = false);

// get_start_method()
//
// The name of the default method. Fixes the choice unless `allow_none`, in
// which case it is empty while nothing has been chosen.
std::string get_start_method(bool allow_none = false);

// get_all_start_methods()
//
// The methods this platform supports, the default first:
// {"fork", "spawn", "forkserver"}.
std::vector<std::string> get_all_start_methods();

// set_executable()
//
// The program that spawn (and the fork server) runs; empty, the default,
// is this program (/proc/self/exe). It must be a build of this program: the
// child finds the target by reference into its own code.
void set_executable(std::string path);

namespace detail {
// The prefix of Python's process names for a method: "Fork", "Spawn",
// "ForkServer" (ForkProcess-1, SpawnPoolWorker-2).
std::string_view start_method_prefix(StartMethod method) noexcept;
}  // namespace detail

}  // namespace mproc
