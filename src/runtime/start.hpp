// Starting a child under spawn and forkserver: the request the child reads
// first, the parent's side that sends it, and the two ways of making the
// process (posix_spawn of this program, or a fork by the fork server).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mproc/function.hpp"
#include "mproc/start_method.hpp"
#include "mproc/unique_fd.hpp"

namespace mproc::detail {

// The method a process uses: `requested`, else the default (which is then
// fixed, as Python's get_context() fixes it).
StartMethod resolve_start_method(std::optional<StartMethod> requested);

// The program spawn runs: set_executable()'s, else empty (this program).
std::string spawn_executable();

// The environment variable that tells a fresh run of the program that it is
// a child ("spawn:FD") or the fork server ("forkserver:FD"), FD being the
// inherited socket its parent talks on.
inline constexpr const char* kBootstrapVariable = "MPROC_BOOTSTRAP";

// What a spawn or forkserver child reads first from its socket: who it is,
// who its parent is, and what to run.
struct ChildRequest {
  std::uint64_t version = 0;  // kChildRequestVersion: both sides are one build
  std::string name;
  std::vector<int> identity;
  bool daemon = false;
  std::string parent_name;
  std::vector<int> parent_identity;
  int parent_pid = 0;
  UniqueFd parent_pidfd;
  std::optional<UniqueFd> tracker;  // the shared memory tracker the parent's tree shares
  std::string start_method;         // the parent's default, for the child's own children
  // A fork server's child starts with the server's environment, working
  // directory and standard streams: these are the parent's at start(), for
  // it to take (a spawn child gets them through exec).
  std::optional<std::vector<std::string>> environment;
  std::optional<std::string> working_directory;
  std::optional<UniqueFd> standard_output;
  std::optional<UniqueFd> standard_error;
  Function<void()> target;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(version, name, identity, daemon, parent_name, parent_identity, parent_pid, parent_pidfd, tracker,
            start_method, environment, working_directory, standard_output, standard_error, target);
  }
};
inline constexpr std::uint64_t kChildRequestVersion = 0x6d70726f63310001;

// Starts a process running this program (or set_executable()'s) whose
// bootstrap reads its request from `channel`, inherited at the same number.
// Returns its pid; std::system_error if it cannot be executed.
int spawn_program(int channel, const char* role);

// Asks this process's fork server (started on first use) for a child whose
// bootstrap reads its request from `channel`. The child is this process's
// own (the server forks it as its sibling). Returns its pid.
int forkserver_start_child(int channel);

// The fork server's pid, 0 if this process has none (for tests).
int forkserver_pid_for_testing() noexcept;

// In a fresh run started by spawn or for a fork server (the bootstrap
// variable is set), becomes that process and never returns; in any other
// run, returns at once.
void take_over_if_started_by_mproc();

// Just before main() (see wrap_main.cpp): keeps the program's arguments for
// spawn, makes the runtime, then take_over_if_started_by_mproc().
void prepare_program(int argc, char** argv);

// In a fresh run of the program (spawn, fork server child): reads the
// request from `channel`, becomes that process, runs its target and exits.
[[noreturn]] void run_requested_child(int channel);

// In a fresh run of the program: serves fork requests from its parent on
// `socket` until the parent goes, then exits.
[[noreturn]] void run_forkserver(int socket);

// The shared memory tracker's socket, for a spawn child to share (-1: no
// tracker), and the child's adoption of it. Defined only where the program
// uses SharedMemory (weak references, as tracker::start_before_children).
namespace tracker {
[[gnu::weak]] int socket_for_children() noexcept;
[[gnu::weak]] void adopt_socket(UniqueFd socket) noexcept;
}  // namespace tracker

}  // namespace mproc::detail
