// spawn: the parent runs this program afresh; the fresh run is taken over
// just before main() (by __wrap_main, wrap_main.cpp; or by the library
// constructor below where main() is not wrapped), so no freeze_support() and
// no guard in main; it reads the child's request from the inherited socket,
// runs the target and leaves by the child exit path. A fork server's
// children start the same way, from a fork of the server instead of an exec.

#include <climits>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "common/raise.hpp"
#include "mproc/connection.hpp"
#include "mproc/detail/code_ref.hpp"
#include "mproc/errors.hpp"
#include "os/process.hpp"
#include "runtime/runtime.hpp"
#include "runtime/start.hpp"

namespace mproc::detail {
namespace {

// The program's arguments as main() gets them: a spawn child gets the same.
// The pointer array is copied before main() runs (main() may reorder it, as
// GoogleTest does), the strings are not.
int program_argc = 0;
char** program_argv = nullptr;

void save_program_arguments(int argc, char** argv) {
  if (argc <= 0 || argv == nullptr) return;
  auto** copy = static_cast<char**>(std::calloc(static_cast<std::size_t>(argc) + 1, sizeof(char*)));
  if (copy == nullptr) return;
  std::memcpy(copy, argv, static_cast<std::size_t>(argc) * sizeof(char*));
  program_argc = argc;
  program_argv = copy;
}

[[noreturn]] void fail_to_start(const char* role, const char* why) {
  std::fprintf(stderr, "mproc: a %s child could not start: %s\n", role, why);
  std::fflush(stderr);
  os::exit_immediately(1);
}

// This process's environment with `entry` (the bootstrap variable) added.
std::vector<char*> environment_with(std::string& entry) {
  std::vector<char*> environment;
  std::size_t prefix = std::strlen(kBootstrapVariable);
  for (char** variable = os::environment(); variable != nullptr && *variable != nullptr; ++variable) {
    if (std::strncmp(*variable, kBootstrapVariable, prefix) == 0 && (*variable)[prefix] == '=') continue;
    environment.push_back(*variable);
  }
  environment.push_back(entry.data());
  environment.push_back(nullptr);
  return environment;
}

std::shared_ptr<ProcessState> parent_described_by(ChildRequest& request) {
  auto parent = std::make_shared<ProcessState>();
  parent->kind = ProcessKind::parent_view;
  parent->name = std::move(request.parent_name);
  parent->identity = std::move(request.parent_identity);
  parent->pid = request.parent_pid;
  parent->pidfd = std::move(request.parent_pidfd);
  parent->started = true;
  return parent;
}

std::shared_ptr<ProcessState> child_described_by(ChildRequest& request) {
  auto self = std::make_shared<ProcessState>();
  self->name = std::move(request.name);
  self->identity = std::move(request.identity);
  self->daemon = request.daemon;
  self->target = make_target<true>(std::move(request.target), std::tuple<>{});
  self->created_by = os::current_pid();
  self->started_by = os::parent_pid();
  self->pid = os::current_pid();
  self->started = true;
  return self;
}

ChildRequest read_request(int channel) {
  (void)os::set_close_on_exec(channel);  // no grandchild inherits it
  Connection connection = Connection::from_socket(UniqueFd(channel), true, false);
  TrustedReferencesScope trusted;  // our parent checked them: see the scope's comment
  auto request = connection.recv<ChildRequest>();
  if (request.version != kChildRequestVersion) throw DecodeError("the request comes from another build of mproc");
  return request;
}

}  // namespace

void take_over_if_started_by_mproc() {
  std::optional<std::string> bootstrap = os::take_environment_variable(kBootstrapVariable);
  if (!bootstrap) return;
  std::size_t colon = bootstrap->find(':');
  std::string role = bootstrap->substr(0, colon);
  const char* number = colon == std::string::npos ? "" : bootstrap->c_str() + colon + 1;
  char* end = nullptr;
  long channel = std::strtol(number, &end, 10);
  if (*number == '\0' || *end != '\0' || channel < 3 || channel > INT_MAX) {
    fail_to_start("spawn", "malformed MPROC_BOOTSTRAP");
  }
  if (role == "spawn") run_requested_child(static_cast<int>(channel));
  if (role == "forkserver") run_forkserver(static_cast<int>(channel));
  fail_to_start("spawn", "malformed MPROC_BOOTSTRAP");
}

}  // namespace mproc::detail

// Defined in wrap_main.cpp, which is linked in exactly when the program's
// main() is wrapped (the link option --wrap=main makes the C library call it
// instead of main).
extern "C" [[gnu::weak]] int __wrap_main(int argc, char** argv, char** environment);  // NOLINT: the linker's name

namespace mproc::detail {
namespace {

// Runs before main() in every process of a program linked with mproc, and
// in any library carrying its own copy of mproc when it is loaded. Where
// main() is wrapped, it leaves everything to prepare_program(), so that the
// take-over waits for every static initializer (those of libraries linked
// after mproc included). Otherwise (a shared mproc, a program linked by
// hand, a loaded library) the take-over happens here, and nothing else: a
// library that is loaded and unloaded again must leave nothing behind.
[[gnu::constructor]] void take_over_unless_main_is_wrapped(int argc, char** argv, char** /*environment*/) {
  if (&__wrap_main != nullptr) return;
  program_argc = argc;
  program_argv = argv;
  take_over_if_started_by_mproc();
}

}  // namespace

void prepare_program(int argc, char** argv) {
  save_program_arguments(argc, argv);
  // Made now, while the program most likely has one thread: a fork() while
  // another thread is constructing it would leave the child waiting on its
  // guard.
  (void)Runtime::get();
  take_over_if_started_by_mproc();
}

void ChildBootstrap::run(const std::shared_ptr<ProcessState>& self) {
  Process process(self);
  run_and_exit(process, *self);
}

int spawn_program(int channel, const char* role) {
  std::string executable = spawn_executable();
  const char* path = executable.empty() ? os::kSelfExe : executable.c_str();
  std::string entry = std::string(kBootstrapVariable) + "=" + role + ":" + std::to_string(channel);
  std::vector<char*> environment = environment_with(entry);
  std::vector<char*> arguments;
  for (int i = 0; i < program_argc; ++i) arguments.push_back(program_argv[i]);
  if (arguments.empty()) arguments.push_back(const_cast<char*>(path));
  arguments.push_back(nullptr);
  int inherit[] = {channel};
  auto started = os::spawn(path, arguments.data(), inherit, environment.data());
  if (!started.ok()) {
    throw std::system_error(started.error.code,
                            std::string("mproc: Process.start: cannot run ") + path + " (" + role + ")");
  }
  return started.value;
}

void run_requested_child(int channel) {
  std::shared_ptr<ProcessState> self;
  try {
    ChildRequest request = read_request(channel);
    if (request.tracker && tracker::adopt_socket != nullptr) tracker::adopt_socket(std::move(*request.tracker));
    set_start_method(request.start_method, true);
    if (request.environment) os::replace_environment(*request.environment);
    if (request.working_directory) check(os::change_directory(*request.working_directory), "starting a child");
    if (request.standard_output) check(os::redirect(request.standard_output->get(), 1), "starting a child");
    if (request.standard_error) check(os::redirect(request.standard_error->get(), 2), "starting a child");
    self = child_described_by(request);
    Runtime::get().enter_fresh_child(self, parent_described_by(request));
  } catch (const std::exception& e) {
    fail_to_start("spawn", e.what());
  }
  // `self` lives to the end: run_child() never returns.
  ChildBootstrap::run(self);
  os::exit_immediately(1);
}

}  // namespace mproc::detail
