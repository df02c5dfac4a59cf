// forkserver: one server per process, a fresh run of this program that
// never reaches main(): single-threaded, with nothing of the parent's state,
// it forks each child on request. The child is made the parent's own
// (CLONE_PARENT), so the parent waits for it and watches it through a pidfd
// as it does a forked child; the child then reads its request on the socket
// the parent handed over (SCM_RIGHTS), as a spawn child does.
//
// The server talks on one end of a socketpair whose other end only its
// parent holds (close-on-exec, and closed in forked children): no address
// anyone could connect to, and it checks that the peer is its parent. It
// ends when that end closes, that is when its parent ends.

#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#include "codec/stack_guard.hpp"
#include "common/raise.hpp"
#include "mproc/errors.hpp"
#include "mproc/detail/code_ref.hpp"
#include "os/process.hpp"
#include "os/socket.hpp"
#include "runtime/runtime.hpp"
#include "runtime/start.hpp"

namespace mproc::detail {
namespace {

// One byte per request (with the child's socket); the reply is the pid, or
// minus the errno of the failed fork.
constexpr std::byte kRequest{0x66};
using Reply = std::int64_t;

bool send_reply(int socket, Reply reply) {
  return !os::send_with_fds(socket, std::as_bytes(std::span(&reply, 1)), {});
}

// The parent's side: the connection to the server, and the keeper thread
// that starts it.
class ForkServer {
 public:
  static ForkServer& get() {
    static ForkServer* server = new ForkServer();  // never destroyed: children may start to the end
    return *server;
  }

  int server_pid() {
    std::lock_guard lock(mutex_);
    return socket_.valid() ? server_pid_ : 0;
  }

  int start_child(int channel) {
    std::lock_guard lock(mutex_);
    ensure_running_locked();
    if (!send_request_locked(channel)) {
      // The server has gone (killed, or ended by a signal to the process
      // group) before it saw the request: a new one takes it.
      socket_.reset();
      ensure_running_locked();
      if (!send_request_locked(channel)) {
        socket_.reset();
        throw ProcessError("mproc: Process.start: the fork server ended at start-up (is the program set with "
                           "set_executable() a build of this one?)");
      }
    }
    std::optional<Reply> reply = read_reply_locked();
    if (!reply) {
      // It may have forked the child first: the request cannot be sent twice.
      socket_.reset();
      throw ProcessError("mproc: Process.start: the fork server ended while starting the child");
    }
    if (*reply <= 0) {
      throw std::system_error(static_cast<int>(-*reply), std::generic_category(),
                              "mproc: Process.start: the fork server could not fork");
    }
    return static_cast<int>(*reply);
  }

 private:
  ForkServer() {
    // A forked child has no server: the parent's socket would keep the
    // parent's server alive after the parent, and the keeper thread did not
    // come along.
    (void)os::at_fork(nullptr, nullptr, [] {
      ForkServer& self = get();
      new (&self.mutex_) std::mutex();
      new (&self.keeper_mutex_) std::mutex();
      new (&self.keeper_wake_) std::condition_variable();
      self.socket_.reset();
      self.keeper_running_ = false;
      self.launch_wanted_ = false;
      new (&self.launch_error_) std::exception_ptr();
    });
  }

  bool send_request_locked(int channel) {
    int fds[] = {channel};
    return !os::send_with_fds(socket_.get(), std::span(&kRequest, 1), fds);
  }

  std::optional<Reply> read_reply_locked() {
    Reply reply = 0;
    auto bytes = std::as_writable_bytes(std::span(&reply, 1));
    std::size_t got = 0;
    while (got < bytes.size()) {
      std::size_t no_fds = 0;
      auto read = os::receive_with_fds(socket_.get(), bytes.subspan(got), {}, no_fds);
      if (!read.ok() || read.value == 0) return std::nullopt;
      got += read.value;
    }
    return reply;
  }

  void ensure_running_locked() {
    if (socket_.valid()) return;
    os::SocketPair pair = unwrap(os::socket_pair(), "starting the fork server");
    // Ours is closed in forked children by the at-fork handler, the
    // server's end by its listing: neither may keep the server alive.
    socket_ = std::move(pair.first);
    InFlightFd server_end(std::move(pair.second));
    try {
      server_pid_ = launch_on_keeper(server_end.get());
    } catch (...) {
      socket_.reset();
      throw;
    }
  }

  // The server's children are made its siblings, and a child's
  // parent-death signal follows the thread that started the server. So a
  // thread that lives as long as this process starts it: the keeper, which
  // also reaps a server that ends.
  int launch_on_keeper(int server_end) {
    std::unique_lock lock(keeper_mutex_);
    if (!keeper_running_) {
      std::thread([this] { keep(); }).detach();
      keeper_running_ = true;
    }
    launch_wanted_ = true;
    launch_socket_ = server_end;
    launch_error_ = nullptr;
    keeper_wake_.notify_all();
    keeper_wake_.wait(lock, [&] { return !launch_wanted_; });
    if (launch_error_) std::rethrow_exception(std::exchange(launch_error_, nullptr));
    return launched_pid_;
  }

  void keep() {
    (void)os::block_all_signals_in_this_thread();
    for (;;) {
      int server = 0;
      {
        std::unique_lock lock(keeper_mutex_);
        keeper_wake_.wait(lock, [&] { return launch_wanted_; });
        try {
          server = spawn_program(launch_socket_, "forkserver");
          launched_pid_ = server;
        } catch (...) {
          launch_error_ = std::current_exception();
        }
        launch_wanted_ = false;
        keeper_wake_.notify_all();
      }
      if (server > 0) (void)os::wait_exitcode(server);
    }
  }

  std::mutex mutex_;  // one request at a time
  UniqueFd socket_;
  int server_pid_ = 0;

  std::mutex keeper_mutex_;
  std::condition_variable keeper_wake_;
  bool keeper_running_ = false;
  bool launch_wanted_ = false;
  int launch_socket_ = -1;
  int launched_pid_ = 0;
  std::exception_ptr launch_error_;
};

[[noreturn]] void server_fails(const char* why) {
  std::fprintf(stderr, "mproc: the fork server cannot serve: %s\n", why);
  std::fflush(stderr);
  os::exit_immediately(1);
}

}  // namespace

int forkserver_start_child(int channel) { return ForkServer::get().start_child(channel); }

int forkserver_pid_for_testing() noexcept { return ForkServer::get().server_pid(); }

void run_forkserver(int socket) {
  (void)os::set_close_on_exec(socket);
  auto peer = os::peer_pid(socket);
  if (!peer.ok() || peer.value != os::parent_pid()) server_fails("its socket does not lead to its parent");
  // Ctrl-C reaches the whole process group; the parent decides what it means.
  (void)os::ignore_signal(SIGINT);
  // Once here rather than in every child: the module tables, the program's
  // symbols, and the main thread's stack bounds (which the decoder's guard
  // reads from /proc/self/maps).
  warm_function_references();
  (void)stack_nearly_exhausted();
  for (;;) {
    std::byte request{};
    UniqueFd fds[1];
    std::size_t fd_count = 0;
    auto got = os::receive_with_fds(socket, std::span(&request, 1), fds, fd_count);
    if (!got.ok() || got.value == 0) os::exit_immediately(0);  // the parent has ended
    if (request != kRequest || fd_count != 1) {
      if (!send_reply(socket, -EINVAL)) os::exit_immediately(0);
      continue;
    }
    auto child = os::fork_sibling();
    if (child.ok() && child.value == 0) {
      UniqueFd(socket).reset();
      (void)os::default_signal(SIGINT);
      Runtime::get().after_bare_fork();
      run_requested_child(fds[0].release());
    }
    fds[0].reset();
    Reply reply = child.ok() ? Reply{child.value} : -Reply{child.error.code.value()};
    if (!send_reply(socket, reply)) os::exit_immediately(0);
  }
}

}  // namespace mproc::detail
