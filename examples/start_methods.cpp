// One child under each start method: fork (a copy of this process), spawn
// (a fresh run of this program) and forkserver (forked by a server that was
// itself spawned). Each child reports its name and pid through a Queue
// passed as an argument, which every method can transfer; the parent prints
// what came back, the exit code, and how long start() + join() took. The
// forkserver time includes starting the server, as this is its first use.
// The times vary between runs; expected/start_methods.txt matches them with
// <REGEX:...>.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <mproc/mproc.hpp>

// A plain function with a handle for argument: transferable under spawn
// and forkserver, where a capturing lambda would be NotTransferableError.
void report(mproc::Queue<std::string> reports) {
  reports.put(mproc::current_process().name() + " " + std::to_string(getpid()));
}

int main() {
  for (const std::string& method : mproc::get_all_start_methods()) {
    auto ctx = mproc::get_context(method);
    auto reports = ctx.Queue<std::string>();
    auto p = ctx.Process(report, reports);

    auto begin = std::chrono::steady_clock::now();
    p.start();
    p.join();
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - begin;

    // The child's own view of its pid must be the parent's; the pid itself
    // differs between runs, so only the agreement is printed.
    std::string reported = reports.get();
    auto space = reported.find(' ');
    std::string name = reported.substr(0, space);
    bool same_pid = std::stoi(reported.substr(space + 1)) == *p.pid();

    std::printf("%-10s  %-19s  pid %s  exitcode %d  start+join %.1f ms\n", method.c_str(), name.c_str(),
                same_pid ? "agrees" : "DIFFERS", *p.exitcode(), took.count());
    std::fflush(stdout);
  }
}
