// The shared memory tracker.
//
// Why: a named segment (shm_open) outlives every process that maps it until
// someone calls shm_unlink. A process killed before unlinking leaks its
// segments in /dev/shm until reboot. Python's resource tracker cleans up
// only when the whole program has ended; this one also acts the moment a
// process dies without saying goodbye.
//
// How: the first process of a tree that needs the tracker starts it (a
// double fork, so that it is nobody's child to reap and never our zombie)
// and keeps one end of a SOCK_SEQPACKET socket pair. That end is inherited
// by forked children (close-on-exec, so not by exec'd programs): the whole
// tree talks to one tracker. Every send is one fixed-size record, delivered
// whole even when many processes send at once, and a dead tracker is an
// EPIPE (or ECONNRESET, when it died with records unread) for the sender,
// not a SIGPIPE:
//
//   REGISTER(pid, name, created)  pid holds the segment (created it, or attached)
//   UNREGISTER(pid, name)         the segment was unlinked: forget the name
//   GOODBYE(pid)                  pid is exiting normally
//
// and once, the other way, HELLO(tracker's pid) when the tracker is ready:
// the starting process waits for it rather than for the middle process of
// the double fork, which it cannot wait for when SIGCHLD is ignored or
// another waiter reaped it first.
//
// The tracker watches every registering pid through a pidfd. When one ends
// without a GOODBYE (it was killed, or left by _exit), its names that no
// other process still holds are unlinked at once. Names a process that said
// goodbye created stay, since a child may create a segment for its parent
// and exit normally, until every process of the tree has closed its end (end
// of file): the tracker then unlinks whatever is still registered, says so
// on stderr as Python does, and exits. Names it only attached are forgotten
// with its goodbye: it holds them no longer, and a holder that never lets go
// would keep a killed creator's segment until the end of the tree.
//
// A tracker unlinks only segments created by a process of its own tree.
// A segment another tree created and this one merely attached is left to
// its creator's tracker (Python 3.13 unlinks it, destroying what its creator
// still uses, unless track=False).
//
// The tracker is forked from a process that may have other threads (the
// runtime's reaper, the program's own): a lock one of them held at fork()
// stays locked forever in the child, and an allocator that is not fork-safe
// (ASan's) would hang. So the tracker never allocates: it forks with
// _Fork (no atfork handlers), its tables live in memory it maps itself,
// records have a fixed size, and it makes system calls only.
//
// Cost: see docs/shared_memory.md. Senders make one system call per record
// batch; the tracker drains in batches and runs at a lower priority.
//
// Ordering: a process writes GOODBYE before it exits, so by the time its
// pidfd reports the exit, the GOODBYE is in the socket. The tracker
// therefore looks at the pidfds FIRST, then drains the socket until it is
// empty, and acts only on the deaths it saw before that drain: each of them
// happened before the drain began, so that process's every record (its
// goodbye included) was queued before the drain and has been read. A death
// seen the other way round (drain, then pidfds) may have happened after the
// drain, its goodbye still unread: a normal exit would be taken for a kill
// and its segments unlinked under its parent. Deaths seen later wait for the
// next drain. pidfd_open failing with ESRCH while a REGISTER is read is a
// death seen during the drain, which goes on to the end: safe the same way.
//
// Known limit: pids are reused. If a registrant dies and its pid is reused
// before the tracker has read its REGISTER, the tracker watches the wrong
// process; the segment is then unlinked when that process ends, or at the
// end of file at the latest.

#include "shared_memory/tracker.hpp"

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <span>

#include "common/raise.hpp"
#include "os/io.hpp"
#include "os/memory.hpp"
#include "os/pidfd.hpp"
#include "os/poll.hpp"
#include "os/process.hpp"
#include "os/records.hpp"
#include "runtime/runtime.hpp"

namespace mproc::detail::tracker {
namespace {

enum class Kind : std::uint32_t { register_segment = 1, unregister_segment = 2, goodbye = 3, hello = 4 };

// One record: far below PIPE_BUF, and one send() on a SOCK_SEQPACKET socket,
// of its header and the name's bytes only.
struct Record {
  Kind kind;
  std::int32_t pid;
  std::uint32_t created;
  std::uint32_t length;
  char name[kMaxNameLength + 1];
};
static_assert(sizeof(Record) <= 512);

// ---------------------------------------------------------------------------
// The tracker process. Everything below runs after _Fork: system calls only.
// ---------------------------------------------------------------------------

constexpr int kMaxRegistrants = 1024;  // live processes holding segments
constexpr int kMaxEntries = 16384;      // (process, name) pairs
constexpr std::size_t kPathBytes = kMaxNameLength + 2;  // '/', the name, NUL
constexpr int kLingerMs = 10;

struct Registrant {
  int pid = 0;  // 0: a free slot
  int pidfd = -1;
  bool dead = false;  // ended without a goodbye; acted upon after the drain
};

// No initializers: the tables live in fresh (zero-filled) memory, and
// initializing 16384 entries would touch every page of them at start-up.
struct Entry {
  bool used;
  bool created;  // created by a process of this tree
  int pid;       // 0: its process said goodbye
  char path[kPathBytes];
};

struct Tables {
  Registrant registrants[kMaxRegistrants];
  int registrant_top = 0;  // slots above are free
  Entry entries[kMaxEntries];
  // Per entry, a hash of its path (odd), or 0 when the entry is unused:
  // scans for a name read this dense array (64 KiB) and compare paths only
  // when hashes match, not 16384 entries of 270 bytes each. A killed
  // creator of 16000 segments took 2.5 s to clean up without it.
  std::uint32_t keys[kMaxEntries];
  int entry_top = 0;
  os::RawPollEntry polls[kMaxRegistrants + 1];
  Record inbox[os::kMaxRecordBatch];
  std::size_t inbox_sizes[os::kMaxRecordBatch];
  bool warned_full = false;
  bool warned_unwatched = false;
};

// The tracker compares errors by their number, not through std::error_code's
// category (a virtual call): a sanitizer checks each virtual call, and its
// check needs a descriptor, which a tracker out of descriptors lacks.
void say(const char* text) noexcept { (void)os::write_all(2, std::as_bytes(std::span(text, std::strlen(text)))); }

void say_number(std::size_t n) noexcept {
  char digits[24];
  int i = sizeof(digits);
  digits[--i] = '\0';
  do {
    digits[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0 && i > 0);
  say(digits + i);
}

class Tracker {
 public:
  Tracker(Tables& tables, int socket) : t_(tables), socket_(socket) {}

  [[noreturn]] void run() noexcept {
    bool linger = false;
    for (;;) {
      int n = 0;
      // After a drain that found records, wait a moment without watching the
      // socket: senders then do not wake the tracker for each record (a
      // wake-up costs the sender several microseconds, and the tracker a
      // context switch), and the next drain takes a batch. The socket's
      // 4 MiB buffer holds thousands of records, so a sender rarely waits,
      // and then for at most kLingerMs. Deaths of watched processes still
      // wake the tracker at once.
      if (!linger) t_.polls[n++] = {socket_, os::kPollIn, 0};
      bool pending_death = false;
      for (int i = 0; i < t_.registrant_top; ++i) {
        const Registrant& r = t_.registrants[i];
        if (r.pid == 0) continue;
        if (r.dead) pending_death = true;
        else if (r.pidfd >= 0) t_.polls[n++] = {r.pidfd, os::kPollIn, 0};
      }
      (void)os::poll_in_place({t_.polls, static_cast<std::size_t>(n)}, pending_death ? 0 : linger ? kLingerMs : -1);
      mark_deaths();  // before the drain: see "Ordering" in the file comment
      int records = 0;
      if (drain(records)) finish();
      linger = records > 0;
      act_on_deaths();
    }
  }

 private:
  // Handles every waiting record, until none is left; true at end of file.
  bool drain(int& records) noexcept {
    for (;;) {
      auto got = os::receive_records_now(socket_, std::as_writable_bytes(std::span(t_.inbox)), sizeof(Record),
                                         t_.inbox_sizes);
      if (!got.ok()) return false;  // EAGAIN: the socket is empty
      for (std::size_t i = 0; i < got.value; ++i) {
        if (t_.inbox_sizes[i] == 0) return true;  // end of file
        ++records;
        Record& record = t_.inbox[i];
        std::size_t header = offsetof(Record, name);
        if (t_.inbox_sizes[i] < header || record.length > kMaxNameLength ||
            t_.inbox_sizes[i] != header + record.length) {
          continue;  // not ours
        }
        record.name[record.length] = '\0';
        switch (record.kind) {
          case Kind::register_segment: on_register(record.pid, record.name, record.created != 0); break;
          case Kind::unregister_segment: on_unregister(record.name); break;
          case Kind::goodbye: on_goodbye(record.pid); break;
          case Kind::hello: break;
        }
      }
    }
  }

  void act_on_deaths() noexcept {
    for (int i = 0; i < t_.registrant_top; ++i) {
      if (t_.registrants[i].pid != 0 && t_.registrants[i].dead) on_death(i);
    }
  }

  // Fresh looks at the pidfds, to act on after the next complete drain (see
  // the file comment). Returns how many watched registrants still live.
  int mark_deaths(int timeout_ms = 0) noexcept {
    int n = 0;
    int owners[kMaxRegistrants];
    for (int i = 0; i < t_.registrant_top; ++i) {
      const Registrant& r = t_.registrants[i];
      if (r.pid == 0 || r.dead || r.pidfd < 0) continue;
      owners[n] = i;
      t_.polls[n++] = {r.pidfd, os::kPollIn, 0};
    }
    if (n == 0) return 0;
    auto ready = os::poll_in_place({t_.polls, static_cast<std::size_t>(n)}, timeout_ms);
    if (!ready.ok()) return n;
    for (int k = 0; k < n; ++k) {
      if (t_.polls[k].revents != 0) t_.registrants[owners[k]].dead = true;
    }
    return n - ready.value;
  }

  static void to_path(const char* name, char* path) noexcept {
    path[0] = '/';
    std::size_t length = std::strlen(name);
    std::memcpy(path + 1, name, length + 1);
  }

  int find_registrant(int pid) const noexcept {
    for (int i = 0; i < t_.registrant_top; ++i) {
      if (t_.registrants[i].pid == pid) return i;
    }
    return -1;
  }

  void add_registrant(int pid) noexcept {
    int slot = -1;
    for (int i = 0; i < t_.registrant_top && slot < 0; ++i) {
      if (t_.registrants[i].pid == 0) slot = i;
    }
    if (slot < 0) {
      if (t_.registrant_top == kMaxRegistrants) return warn_full();
      slot = t_.registrant_top++;
    }
    Registrant& r = t_.registrants[slot];
    r = Registrant{};
    r.pid = pid;
    auto pidfd = os::pidfd_open(pid);
    if (pidfd.ok()) {
      r.pidfd = pidfd.value.release();
    } else if (pidfd.error.code.value() == ESRCH) {  // no virtual call: see say()
      r.dead = true;  // gone already: acted upon once this drain has read its goodbye, if any
    } else {
      warn_unwatched();
    }
  }

  // No descriptor left, most likely (the limit was raised at start): the
  // process's segments are cleaned at end of file only.
  void warn_unwatched() noexcept {
    if (t_.warned_unwatched) return;
    t_.warned_unwatched = true;
    say("mproc shared memory tracker: cannot watch a process (pidfd_open failed); "
        "its segments are cleaned up only when the program ends\n");
  }

  void warn_full() noexcept {
    if (t_.warned_full) return;
    t_.warned_full = true;
    say("mproc shared memory tracker: too many segments or processes to track; "
        "the rest are cleaned up only if their owners unlink them\n");
  }

  // FNV-1a, made odd so that 0 means "unused".
  static std::uint32_t key_of(const char* path) noexcept {
    std::uint32_t hash = 2166136261u;
    for (const char* c = path; *c != '\0'; ++c) hash = (hash ^ static_cast<unsigned char>(*c)) * 16777619u;
    return hash | 1u;
  }

  bool same_name(int j, std::uint32_t key, const char* path) const noexcept {
    return t_.keys[j] == key && std::strcmp(t_.entries[j].path, path) == 0;
  }

  void on_register(int pid, const char* name, bool created) noexcept {
    if (pid <= 0) return;
    if (find_registrant(pid) < 0) add_registrant(pid);
    char path[kPathBytes];
    to_path(name, path);
    std::uint32_t key = key_of(path);
    int free_slot = -1;
    for (int i = 0; i < t_.entry_top; ++i) {
      if (t_.keys[i] == 0) {
        if (free_slot < 0) free_slot = i;
        continue;
      }
      Entry& e = t_.entries[i];
      if (same_name(i, key, path) && e.pid == pid) {
        e.created = e.created || created;
        return;
      }
    }
    if (free_slot < 0) {
      if (t_.entry_top == kMaxEntries) return warn_full();
      free_slot = t_.entry_top++;
    }
    Entry& e = t_.entries[free_slot];
    e.used = true;
    e.created = created;
    e.pid = pid;
    std::memcpy(e.path, path, kPathBytes);
    t_.keys[free_slot] = key;
  }

  void on_unregister(const char* name) noexcept {
    char path[kPathBytes];
    to_path(name, path);
    std::uint32_t key = key_of(path);
    for (int i = 0; i < t_.entry_top; ++i) {
      if (same_name(i, key, path)) release_entry(i);
    }
  }

  void release_entry(int i) noexcept {
    t_.entries[i].used = false;
    t_.keys[i] = 0;
    while (t_.entry_top > 0 && !t_.entries[t_.entry_top - 1].used) --t_.entry_top;
  }

  void free_registrant(int i) noexcept {
    Registrant& r = t_.registrants[i];
    if (r.pidfd >= 0) {
      UniqueFd closing(r.pidfd);
    }
    r = Registrant{};
    while (t_.registrant_top > 0 && t_.registrants[t_.registrant_top - 1].pid == 0) --t_.registrant_top;
  }

  void on_goodbye(int pid) noexcept {
    int r = find_registrant(pid);
    if (r < 0) return;
    // What it created stays until end of file, held by no pid (a later
    // process with the same pid must not inherit it); what it attached, it
    // holds no longer.
    for (int i = 0; i < t_.entry_top; ++i) {
      Entry& e = t_.entries[i];
      if (!e.used || e.pid != pid) continue;
      if (e.created) e.pid = 0;
      else release_entry(i);
    }
    free_registrant(r);
  }

  void on_death(int r) noexcept {
    int pid = t_.registrants[r].pid;
    for (int i = 0; i < t_.entry_top; ++i) {
      Entry& e = t_.entries[i];
      if (!e.used || e.pid != pid) continue;
      bool held = false;
      std::uint32_t key = t_.keys[i];
      for (int j = 0; j < t_.entry_top; ++j) {
        if (j == i || !same_name(j, key, e.path)) continue;
        Entry& other = t_.entries[j];
        held = true;
        other.created = other.created || e.created;  // the tree's claim passes on
      }
      if (!held && e.created) (void)os::shm_remove(e.path);
      release_entry(i);
    }
    free_registrant(r);
  }

  bool first_of_its_name(int i) const noexcept {
    for (int j = 0; j < i; ++j) {
      if (same_name(j, t_.keys[i], t_.entries[i].path)) return false;
    }
    return true;
  }

  bool created_by_tree(int i) const noexcept {
    for (int j = 0; j < t_.entry_top; ++j) {
      if (same_name(j, t_.keys[i], t_.entries[i].path) && t_.entries[j].created) return true;
    }
    return false;
  }

  // End of file: every process of the tree is gone or has let go.
  [[noreturn]] void finish() noexcept {
    // A process killed at the very end: its names go quietly, as always.
    // Its descriptors close a moment before its pidfd reports the exit, so
    // allow living registrants a little time to be seen dead.
    for (int round = 0; round < 20 && mark_deaths(10) > 0;) ++round;
    for (int i = 0; i < t_.registrant_top; ++i) {
      if (t_.registrants[i].pid != 0 && t_.registrants[i].dead) on_death(i);
    }
    std::size_t leaked = 0;
    for (int i = 0; i < t_.entry_top; ++i) {
      if (t_.entries[i].used && first_of_its_name(i) && created_by_tree(i)) ++leaked;
    }
    if (leaked != 0) {
      say("mproc shared memory tracker: There appear to be ");
      say_number(leaked);
      say(" leaked shared_memory objects to clean up at shutdown:");
      for (int i = 0; i < t_.entry_top; ++i) {
        if (!t_.entries[i].used || !first_of_its_name(i) || !created_by_tree(i)) continue;
        say(" ");
        say(t_.entries[i].path);
        auto error = os::shm_remove(t_.entries[i].path);
        if (error && error.code.value() != ENOENT) say(" (could not unlink)");
      }
      say("\n");
    }
    os::exit_immediately(0);
  }

  Tables& t_;
  int socket_;
};

// Tells the process that started the tracker that it is up, and its pid.
void say_hello(int socket) noexcept {
  Record record{};
  record.kind = Kind::hello;
  record.pid = os::current_pid();
  std::span<const std::byte> pieces[] = {std::as_bytes(std::span(&record, 1)).first(offsetof(Record, name))};
  (void)os::send_records(socket, pieces);
}

// The tracker must outlive the program's handlers (which are not its own)
// and its process group: a kill of the group, or a ^C, would otherwise take
// it too and leak every segment it tracks.
void detach_from_program(int socket, int other_end) noexcept {
  os::reset_signal_handlers();
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) (void)os::ignore_signal(signal);
  (void)os::new_session();
  if (os::close_all_descriptors_except(socket, 2)) {
    // Other inherited descriptors stay open; the other end must not, or
    // the tracker never sees the end of the tree.
    UniqueFd closing(other_end);
  }
}

[[noreturn]] void run_tracker(int socket, int other_end) noexcept {
  detach_from_program(socket, other_end);
  // A pidfd per registrant: the soft limit (often 1024) is the program's
  // choice, not this process's need.
  (void)os::raise_descriptor_limit();
  // Its work can wait milliseconds; the program's cannot. A nice value of
  // 10 still gives it a tenth of a contended CPU, far more than it needs to
  // keep the one-second promise.
  (void)os::set_nice(10);
  auto memory = os::map_private(sizeof(Tables));
  if (!memory.ok()) {
    say("mproc shared memory tracker: cannot map its tables\n");
    os::exit_immediately(1);
  }
  // Zero-filled memory is a valid Tables: trivially constructible parts only.
  auto* tables = new (memory.value.data()) Tables;
  say_hello(socket);
  Tracker(*tables, socket).run();
}

// ---------------------------------------------------------------------------
// The client side, in every process of the tree.
// ---------------------------------------------------------------------------

class Client {
 public:
  static Client& get() {
    static Client* client = new Client();  // never destroyed: used at exit
    return *client;
  }

  void ensure_running() {
    std::lock_guard lock(mutex_);
    ensure_running_locked();
  }

  bool running() const noexcept { return socket_.valid(); }

  // The socket a spawn child shares (its tree is this one), -1 if none.
  int socket_for_children() noexcept {
    std::lock_guard lock(mutex_);
    return socket_.valid() ? socket_.get() : -1;
  }

  // In a spawn child: the tracker is its parent's.
  void adopt(UniqueFd socket, int tracker_pid) noexcept {
    std::lock_guard lock(mutex_);
    socket_ = std::move(socket);
    tracker_pid_ = tracker_pid;
  }

  int tracker_pid() noexcept {
    std::lock_guard lock(mutex_);
    return socket_.valid() ? tracker_pid_ : 0;
  }

  void register_segment(std::string_view name, bool created) {
    std::lock_guard lock(mutex_);
    Record record = make(Kind::register_segment, name);
    record.created = created ? 1 : 0;
    ensure_running_locked();
    os::Error error = send_with_pending(&record);
    if (tracker_is_gone(error)) {
      // The tracker was killed: what it tracked is lost, but a new one
      // tracks from now on, as Python restarts its resource tracker.
      socket_.reset();
      pending_count_ = 0;
      ensure_running_locked();
      error = send_with_pending(&record);
    }
    check(error, "registering a shared memory segment with the tracker");
    registered_by_ = Runtime::get().pid();
  }

  void unregister_segment(std::string_view name, bool deferrable) noexcept {
    std::lock_guard lock(mutex_);
    if (!socket_.valid()) return;
    Record record = make(Kind::unregister_segment, name);
    if (deferrable && pending_count_ < kMaxPending) {
      pending_[pending_count_++] = record;
      return;
    }
    (void)send_with_pending(&record);
  }

  // A normal exit: the names this process created stay until the tree is
  // gone. Deferred UNREGISTERs go out even from a process that registered
  // nothing (a child unlinking its parent's segment), or the tracker would
  // unlink and report them at the end.
  void goodbye() noexcept {
    std::lock_guard lock(mutex_);
    if (!socket_.valid()) return;
    if (registered_by_ == Runtime::get().pid()) {
      Record record = make(Kind::goodbye, {});
      (void)send_with_pending(&record);
    } else {
      (void)send_with_pending(nullptr);
    }
  }

 private:
  Client() {
    // A child starts with a fresh mutex (another thread may have held ours
    // at fork()) and none of its parent's pending records; the socket it
    // keeps is the tree's.
    (void)os::at_fork(nullptr, nullptr, [] {
      new (&get().mutex_) std::mutex();
      get().pending_count_ = 0;
    });
    Runtime& runtime = Runtime::get();
    runtime.add_child_exit_hook([] { get().goodbye(); });
    std::atexit([] { get().goodbye(); });
  }

  static Record make(Kind kind, std::string_view name) noexcept {
    Record record{};
    record.kind = kind;
    record.pid = Runtime::get().pid();  // no system call: kept up to date across fork()
    record.length = static_cast<std::uint32_t>(std::min(name.size(), kMaxNameLength));
    if (record.length != 0) std::memcpy(record.name, name.data(), record.length);
    return record;
  }

  // Only a record's header and its name's bytes travel: less to copy, and
  // more records fit the socket's buffer.
  static std::span<const std::byte> wire(const Record& record) noexcept {
    return std::as_bytes(std::span(&record, 1)).first(offsetof(Record, name) + record.length);
  }

  // A tracker that died with records unread resets the connection; one
  // that read them all is a closed pipe.
  static bool tracker_is_gone(const os::Error& error) noexcept {
    return error.code == std::errc::broken_pipe || error.code == std::errc::connection_reset ||
           error.code == std::errc::not_connected;
  }

  // Sends the deferred records, then `last` (if any), in one system call.
  os::Error send_with_pending(const Record* last) noexcept {
    std::span<const std::byte> records[kMaxPending + 1];
    int n = 0;
    for (int i = 0; i < pending_count_; ++i) records[n++] = wire(pending_[i]);
    if (last != nullptr) records[n++] = wire(*last);
    if (n == 0) return {};
    os::Error error = os::send_records(socket_.get(), {records, static_cast<std::size_t>(n)});
    pending_count_ = 0;
    return error;
  }

  void ensure_running_locked() {
    if (socket_.valid()) return;
    constexpr std::string_view context = "starting the shared memory tracker";
    os::SocketPair pair = unwrap(os::record_pair(), context);
    int tracker_end = pair.first.get();
    int client_end = pair.second.get();
    int middle = unwrap(os::fork_bare(), context);
    if (middle == 0) {
      // The middle process: its child, the tracker, is reparented when it
      // exits, so the tracker is nobody's zombie.
      auto tracker = os::fork_bare();
      if (!tracker.ok()) os::exit_immediately(1);
      if (tracker.value == 0) run_tracker(tracker_end, client_end);
      os::exit_immediately(0);
    }
    pair.first.reset();
    // Room for thousands of records: a burst of creates does not wait for
    // the tracker's next drain (see kLingerMs).
    (void)os::set_send_buffer(client_end, 4 << 20);
    reap_middle(middle, context);
    tracker_pid_ = unwrap(await_hello(client_end), context);
    socket_ = std::move(pair.second);
  }

  // ECHILD: SIGCHLD is ignored (the kernel reaped it) or another thread's
  // waitpid(-1) took it. Either way it is gone; the hello says whether the
  // tracker started.
  static void reap_middle(int middle, std::string_view context) {
    auto code = os::wait_exitcode(middle);
    if (!code.ok() && code.error.code != std::errc::no_child_process) raise(code.error, context);
  }

  // The tracker's pid, once it is ready; end of file if it never started.
  static os::Result<int> await_hello(int socket) noexcept {
    Record hello{};
    auto got = os::receive_record(socket, std::as_writable_bytes(std::span(&hello, 1)));
    if (!got.ok()) return {0, got.error};
    if (got.value != offsetof(Record, name) || hello.kind != Kind::hello || hello.pid <= 0)
      return {0, os::Error::of(EAGAIN, "fork")};
    return {hello.pid, {}};
  }

  // UNREGISTERs of segments with generated names wait here for this
  // process's next record (or its goodbye), which carries them in the same
  // system call: create + unlink then costs one call, not two. Harmless if
  // they are lost with a killed process: the tracker then unlinks a name
  // that is gone (ENOENT), and a generated name is never created again.
  static constexpr int kMaxPending = 15;
  Record pending_[kMaxPending];
  int pending_count_ = 0;

  std::mutex mutex_;
  UniqueFd socket_;
  int registered_by_ = 0;  // the pid that registered last: only it says goodbye
  int tracker_pid_ = 0;
};

}  // namespace

void register_segment(std::string_view name, bool created) { Client::get().register_segment(name, created); }

void unregister_segment(std::string_view name, bool deferrable) noexcept {
  Client::get().unregister_segment(name, deferrable);
}

void ensure_running() { Client::get().ensure_running(); }

int socket_for_children() noexcept { return Client::get().socket_for_children(); }

void adopt_socket(UniqueFd socket) noexcept { Client::get().adopt(std::move(socket), 0); }

// A program that uses SharedMemory starts the tracker before its first
// Process: the child then shares it, and a segment the child creates and
// leaves to its parent survives the child's exit (a tracker of the child's
// own would see the end of its tree and unlink it). A function the runtime
// calls through a weak reference, not a static initializer: a plugin
// carrying its own copy of mproc must not register anything when loaded.
void start_before_children() noexcept {
  try {
    ensure_running();
  } catch (const std::exception&) {
    // The child starts a tracker of its own if it needs one; the error, if
    // it persists, surfaces where a segment is registered.
  }
}

bool running() noexcept { return Client::get().running(); }

int pid_for_testing() noexcept { return Client::get().tracker_pid(); }

}  // namespace mproc::detail::tracker
