#include "support/child.hpp"

#include <csignal>
#include <filesystem>
#include <string>
#include <system_error>

#include "os/pidfd.hpp"
#include "os/poll.hpp"

namespace mproc::testing {

bool process_exists(int pid) {
  return std::filesystem::exists("/proc/" + std::to_string(pid)) && ::kill(pid, 0) == 0;
}

bool ends_within(int pid, std::chrono::milliseconds timeout) {
  auto pidfd = os::pidfd_open(pid);
  if (!pidfd.ok()) return true;  // already gone
  os::PollEntry entry{pidfd.value.get()};
  auto polled = os::poll_readable({&entry, 1}, timeout);
  return polled.ok() && polled.value > 0;
}

ChildProcess ChildProcess::spawn(const std::string& path, const std::vector<std::string>& args,
                                 const std::vector<int>& inherit) {
  std::vector<std::string> storage;
  storage.push_back(path);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  auto started = os::spawn(path.c_str(), argv.data(), inherit);
  if (!started.ok()) throw std::system_error(started.error.code, "posix_spawn " + path);
  return ChildProcess(started.value);
}

ChildProcess ChildProcess::spawn_helper(const std::string& helper,
                                        const std::vector<std::string>& args,
                                        const std::vector<int>& inherit) {
  std::vector<std::string> all{"--mproc-helper=" + helper};
  all.insert(all.end(), args.begin(), args.end());
  return spawn(os::kSelfExe, all, inherit);
}

int ChildProcess::wait() {
  auto waited = os::wait_exitcode(pid_);
  pid_ = -1;
  if (!waited.ok()) throw std::system_error(waited.error.code, "waitpid");
  return waited.value;
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  (void)os::kill(pid_, SIGKILL);
  (void)os::wait_exitcode(pid_);
}

}  // namespace mproc::testing
