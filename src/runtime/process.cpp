// Process: the parent's side (start, join, signals, close) and the free
// functions of process.hpp. The child's side is in bootstrap.cpp.

#include "mproc/process.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <typeinfo>

#include "common/demangle.hpp"
#include "common/raise.hpp"
#include "mproc/codec.hpp"
#include "mproc/connection.hpp"
#include "os/socket.hpp"
#include "mproc/errors.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"
#include "runtime/runtime.hpp"

namespace mproc {
namespace {

using detail::ProcessKind;
using detail::ProcessState;
using detail::Runtime;

[[noreturn]] void misuse(const char* operation, const std::string& why) {
  throw UsageError(std::string("mproc: Process::") + operation + ": " + why);
}

bool is_current(const ProcessState& s) { return Runtime::get().is_current(s); }

// A child started by this very process (not one inherited through fork).
bool is_own_child(const ProcessState& s) {
  return s.kind == ProcessKind::child && s.started && s.started_by == os::current_pid();
}

// Locks a child's state, which only the process that started it may do: in
// any other process the mutex is a copy, perhaps taken at fork() by a thread
// that does not exist there. For any other process, locks nothing.
std::unique_lock<std::mutex> lock_if_own(const ProcessState& s) {
  if (!is_own_child(s)) return {};
  return std::unique_lock(s.mutex);
}

bool pidfd_ready(int pidfd, std::optional<std::chrono::nanoseconds> timeout) {
  os::PollEntry entry{pidfd};
  return detail::unwrap(os::poll_readable({&entry, 1}, timeout), "Process.join") > 0;
}

void send_signal(ProcessState& s, const char* operation, int signal) {
  if (s.kind != ProcessKind::child) misuse(operation, "can only signal a child process");
  if (!s.started) misuse(operation, "process not started");
  if (!is_own_child(s)) misuse(operation, "can only signal a child process");
  std::lock_guard lock(s.mutex);
  if (s.exitcode) return;
  os::Error error = os::pidfd_send_signal(s.pidfd.get(), signal);
  if (error && error.code != std::errc::no_such_process) detail::raise(error, operation);
}

// A request this large or smaller fits a socket's buffer: it is sent before
// the child exists.
constexpr std::size_t kRequestSentFirst = 64 * 1024;

std::size_t encoded_size(const EncodedMessage& message) {
  std::size_t size = message.bytes().size();
  for (const ByteView& buffer : message.buffers()) size += buffer.size();
  return size;
}

// This process's environment, working directory and standard output and
// error, for a fork server's child to take. A directory that has been
// removed, or a stream that is closed, is left as the server's.
void describe_surroundings(detail::ChildRequest& request) {
  std::vector<std::string> environment;
  for (char** variable = os::environment(); variable != nullptr && *variable != nullptr; ++variable) {
    environment.emplace_back(*variable);
  }
  request.environment = std::move(environment);
  auto directory = os::current_directory();
  if (directory.ok()) request.working_directory = std::move(directory.value);
  auto output = os::duplicate(1);
  if (output.ok()) request.standard_output = std::move(output.value);
  auto error = os::duplicate(2);
  if (error.ok()) request.standard_error = std::move(error.value);
}

}  // namespace

Process::Process() : Process(ProcessOptions{}) {}

Process::Process(ProcessOptions options) : Process(std::move(options), nullptr) {}

Process::Process(ProcessOptions options, std::unique_ptr<detail::ProcessTarget> target)
    : state_(std::make_shared<ProcessState>()) {
  state_->created_by = os::current_pid();
  state_->identity = Runtime::get().next_identity();
  state_->name = options.name.empty() ? detail::default_name(state_->identity) : std::move(options.name);
  state_->daemon = options.daemon;
  state_->requested_method = options.start_method;
  state_->target = std::move(target);
}

Process::~Process() = default;

ProcessState& Process::state(const char* operation) const {
  if (!state_) misuse(operation, "this Process was moved from");
  if (state_->closed) misuse(operation, "process object is closed");
  return *state_;
}

void Process::run() {
  ProcessState& s = state("run");
  if (s.target) s.target->call();
}

void Process::start() {
  ProcessState& s = state("start");
  if (s.kind != ProcessKind::child || s.created_by != os::current_pid()) {
    misuse("start", "can only start a process object created by the current process");
  }
  if (s.started) misuse("start", "cannot start a process twice");
  Runtime& runtime = Runtime::get();
  if (runtime.current()->daemon) misuse("start", "daemonic processes are not allowed to have children");
  StartMethod method = detail::resolve_start_method(s.requested_method);
  // Checked before anything is made: a target that cannot travel starts nothing.
  std::optional<Function<void()>> target;
  if (method != StartMethod::fork) target = transferable_target(method);
  runtime.ensure_exit_handler();

  // Everything a forked child needs is made here, so that it allocates
  // nothing between fork() and running its target.
  runtime.prepare_for_child();
  s.started_by = os::current_pid();
  s.method = method;
  // Buffered output would otherwise be written by both processes.
  std::cout.flush();
  std::fflush(nullptr);
  if (method == StartMethod::fork) {
    start_forked();
  } else {
    start_fresh(method, std::move(*target));
  }
}

Function<void()> Process::transferable_target(StartMethod method) const {
  ProcessState& s = *state_;
  if (typeid(*this) != typeid(Process)) {
    throw NotTransferableError(std::string("mproc: Process.start: a Process subclass (") + detail::demangle(typeid(*this).name()) +
                               ") cannot be started under the " + std::string(start_method_name(method)) +
                               " start method: the child would have to rebuild it. Pass a target (and its "
                               "arguments) to Process instead, or use the fork start method");
  }
  if (!s.target) return {};
  return s.target->transferable();
}

void Process::start_forked() {
  ProcessState& s = *state_;
  Runtime& runtime = Runtime::get();
  runtime.enroll(state_);
  auto forked = os::fork();
  if (!forked.ok()) {
    runtime.forget(s);
    detail::raise(forked.error, "Process.start");
  }
  int pid = forked.value;
  if (pid == 0) detail::run_child(*this, s);
  adopt_child(pid);
}

void Process::start_fresh(StartMethod method, Function<void()> target) {
  ProcessState& s = *state_;
  Runtime& runtime = Runtime::get();
  detail::ChildRequest request;
  request.version = detail::kChildRequestVersion;
  request.name = s.name;
  request.identity = s.identity;
  request.daemon = s.daemon;
  runtime.describe_parent(request);
  if (detail::tracker::socket_for_children != nullptr) {
    int tracker = detail::tracker::socket_for_children();
    if (tracker >= 0) request.tracker = detail::unwrap(os::duplicate(tracker), "Process.start");
  }
  request.start_method = get_start_method();
  if (method == StartMethod::forkserver) describe_surroundings(request);
  request.target = std::move(target);

  // Whatever cannot be encoded fails here, before a child exists (the
  // request is encoded again when sent: a copy of small parts).
  bool send_first = encoded_size(encode(request)) <= kRequestSentFirst;

  os::SocketPair pair = detail::unwrap(os::socket_pair(), "Process.start");
  detail::InFlightFd mine(std::move(pair.first));
  detail::InFlightFd theirs(std::move(pair.second));
  Connection connection;
  if (send_first) {
    // The child finds its request waiting: no wake-up to wait for. Once it
    // is all in the socket, a copy of this end in a child forked meanwhile
    // keeps nobody waiting.
    connection = Connection::from_socket(mine.release(), false, true);
    connection.send(request);
  }
  runtime.enroll(state_);
  int pid = 0;
  try {
    pid = method == StartMethod::spawn ? detail::spawn_program(theirs.get(), "spawn")
                                       : detail::forkserver_start_child(theirs.get());
  } catch (...) {
    runtime.forget(s);
    throw;
  }
  theirs.reset();
  adopt_child(pid);
  if (send_first) return;
  connection = Connection::from_socket(mine.release(), false, true);
  try {
    connection.send(request);
  } catch (const std::system_error& e) {
    // A child that died before reading shows it in its exit code; any other
    // failure leaves a child that cannot run: stop it.
    bool gone = e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset;
    if (!gone) kill();
    if (!gone) throw;
  } catch (...) {
    kill();
    throw;
  }
}

// The child `pid` has started: watch it through a pidfd.
void Process::adopt_child(int pid) {
  ProcessState& s = *state_;
  Runtime& runtime = Runtime::get();
  auto pidfd = os::pidfd_open(pid);
  if (!pidfd.ok()) {
    // Without a pidfd the child cannot be watched: do not leave it behind.
    (void)os::kill(pid, SIGKILL);
    (void)os::wait_exitcode(pid);
    runtime.forget(s);
    detail::raise(pidfd.error, "Process.start");
  }
  {
    std::lock_guard lock(s.mutex);
    s.pid = pid;
    s.pidfd = std::move(pidfd.value);
    s.started = true;
  }
  runtime.watch(s);
}

StartMethod Process::start_method() const {
  ProcessState& s = state("start_method");
  if (s.started) return s.method;
  return detail::resolve_start_method(s.requested_method);
}

void Process::join() { join_for(std::nullopt); }

bool Process::join_for(std::optional<std::chrono::nanoseconds> timeout) {
  ProcessState& s = state("join");
  if (is_current(s)) misuse("join", "can only join a child process");
  if (s.kind == ProcessKind::parent_view) return pidfd_ready(s.pidfd.get(), timeout);
  if (s.kind != ProcessKind::child) misuse("join", "can only join a child process");
  if (!s.started) misuse("join", "can only join a started process");
  if (!is_own_child(s)) misuse("join", "can only join a child process");
  // While a joiner waits, the reaper leaves this child to it (see runtime.cpp),
  // and close() refuses to close its pidfd.
  ++s.joiners;
  {
    std::lock_guard lock(s.mutex);
    const char* refusal = s.closed ? "process object is closed" : nullptr;
    if (refusal != nullptr || s.exitcode) --s.joiners;
    if (refusal != nullptr) misuse("join", refusal);
    if (s.exitcode) return true;
  }
  bool ended = false;
  try {
    if (pidfd_ready(s.pidfd.get(), timeout)) {
      std::lock_guard lock(s.mutex);
      ended = s.try_reap_locked();
    }
  } catch (...) {
    --s.joiners;
    Runtime::get().rewatch(s);
    throw;
  }
  --s.joiners;
  if (ended) {
    Runtime::get().forget(s);
  } else {
    Runtime::get().rewatch(s);  // the reaper may have skipped it meanwhile
  }
  return ended;
}

bool Process::is_alive() const {
  ProcessState& s = state("is_alive");
  if (is_current(s)) return true;
  if (s.kind == ProcessKind::parent_view) return s.pidfd.valid() && !pidfd_ready(s.pidfd.get(), std::chrono::nanoseconds(0));
  if (!s.started) return false;
  if (!is_own_child(s)) misuse("is_alive", "can only test a child process");
  std::lock_guard lock(s.mutex);
  return !s.try_reap_locked();
}

std::optional<int> Process::pid() const {
  ProcessState& s = state("pid");
  if (is_current(s) || s.kind == ProcessKind::main) return os::current_pid();
  if (!s.started) return std::nullopt;
  return s.pid.load();
}

std::optional<int> Process::exitcode() const {
  ProcessState& s = state("exitcode");
  if (!is_own_child(s)) return std::nullopt;
  std::lock_guard lock(s.mutex);
  s.try_reap_locked();
  return s.exitcode;
}

void Process::terminate() { send_signal(state("terminate"), "terminate", SIGTERM); }

void Process::kill() { send_signal(state("kill"), "kill", SIGKILL); }

void Process::close() {
  ProcessState& s = state("close");
  // The running process's own object holds the code it is running.
  if (is_current(s)) misuse("close", "cannot close the current process");
  if (is_own_child(s)) {
    {
      std::lock_guard lock(s.mutex);
      if (!s.try_reap_locked()) {
        misuse("close", "cannot close a process while it is still running; join() or terminate() it first");
      }
      if (s.joiners.load() > 0) misuse("close", "cannot close a process while another thread joins it");
      s.closed = true;  // from here on, join() in another thread refuses
    }
    Runtime::get().forget(s);
  }
  auto lock = lock_if_own(s);
  s.closed = true;
  s.pidfd.reset();
  s.target.reset();
}

int Process::sentinel() const {
  ProcessState& s = state("sentinel");
  if (s.kind == ProcessKind::parent_view) return s.pidfd.get();
  if (is_current(s) || s.kind != ProcessKind::child) misuse("sentinel", "only a child process has a sentinel");
  if (!s.started) misuse("sentinel", "process not started");
  auto lock = lock_if_own(s);
  return s.pidfd.get();
}

const std::string& Process::name() const { return state("name").name; }

void Process::set_name(std::string name) { state("set_name").name = std::move(name); }

bool Process::daemon() const { return state("daemon").daemon; }

void Process::set_daemon(bool daemon) {
  ProcessState& s = state("set_daemon");
  if (s.started) misuse("set_daemon", "process has already started");
  s.daemon = daemon;
}

Process current_process() { return Process(Runtime::get().current()); }

std::optional<Process> parent_process() {
  auto parent = Runtime::get().parent();
  if (!parent) return std::nullopt;
  return Process(std::move(parent));
}

std::vector<Process> active_children() {
  std::vector<Process> children;
  for (auto& child : Runtime::get().live_children()) children.push_back(Process(std::move(child)));
  return children;
}

int cpu_count() { return os::usable_cpu_count(); }

void exit(int code) {
  if (Runtime::get().in_child()) throw detail::ExitRequest{code};
  std::exit(code);
}

}  // namespace mproc
