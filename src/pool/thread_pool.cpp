// The threads under ThreadPool: a queue of closures and the threads that
// run them.

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "mproc/process.hpp"
#include "mproc/thread_pool.hpp"

namespace mproc::detail {

class ThreadPoolCore {
 public:
  ThreadPoolCore(int threads, std::function<void()> initializer) : initializer_(std::move(initializer)) {
    int count = threads > 0 ? threads : cpu_count();
    threads_.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
  }

  ~ThreadPoolCore() {
    terminate();
    join(std::nullopt);
  }

  void submit(std::vector<ThreadTask> tasks) {
    {
      std::lock_guard lock(mutex_);
      if (state_ != State::running) throw UsageError("ThreadPool not running");
      for (ThreadTask& task : tasks) queue_.push_back(std::move(task));
    }
    work_cv_.notify_all();
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::running) state_ = State::closed;
    }
    work_cv_.notify_all();
  }

  void terminate() {
    std::deque<ThreadTask> dropped;
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::terminated) return;
      state_ = State::terminated;
      dropped.swap(queue_);
    }
    work_cv_.notify_all();
    auto error = std::make_exception_ptr(BrokenProcessPool("ThreadPool was terminated before the task ran"));
    for (ThreadTask& task : dropped) task.fail(error);
  }

  bool join(std::optional<std::chrono::nanoseconds> timeout) {
    std::unique_lock lock(mutex_);
    if (state_ == State::running) throw UsageError("ThreadPool.join(): close() or terminate() first");
    auto finished = [&] { return exited_ == threads_.size(); };
    if (timeout) {
      if (!exited_cv_.wait_for(lock, *timeout, finished)) return false;
    } else {
      exited_cv_.wait(lock, finished);
    }
    if (joined_) return true;
    joined_ = true;
    lock.unlock();
    for (std::thread& thread : threads_) {
      if (thread.get_id() == std::this_thread::get_id()) {
        thread.detach();  // joined from one of its own tasks
      } else {
        thread.join();
      }
    }
    return true;
  }

  int size() const noexcept { return static_cast<int>(threads_.size()); }

 private:
  enum class State { running, closed, terminated };

  void work() {
    if (initializer_) {
      try {
        initializer_();
      } catch (const std::exception& error) {
        report_callback_error(error.what());
      }
    }
    for (;;) {
      ThreadTask task;
      {
        std::unique_lock lock(mutex_);
        work_cv_.wait(lock, [&] { return !queue_.empty() || state_ != State::running; });
        if (queue_.empty()) {
          ++exited_;
          exited_cv_.notify_all();
          return;
        }
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task.run();
    }
  }

  std::function<void()> initializer_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable exited_cv_;
  std::deque<ThreadTask> queue_;
  State state_ = State::running;
  std::size_t exited_ = 0;
  bool joined_ = false;
  std::vector<std::thread> threads_;
};

std::shared_ptr<ThreadPoolCore> start_thread_pool(int threads, std::function<void()> initializer) {
  return std::make_shared<ThreadPoolCore>(threads, std::move(initializer));
}
void thread_pool_submit(ThreadPoolCore& pool, std::vector<ThreadTask> tasks) { pool.submit(std::move(tasks)); }
void thread_pool_close(ThreadPoolCore& pool) { pool.close(); }
void thread_pool_terminate(ThreadPoolCore& pool) { pool.terminate(); }
bool thread_pool_join(ThreadPoolCore& pool, std::optional<std::chrono::nanoseconds> timeout) {
  return pool.join(timeout);
}
int thread_pool_size(const ThreadPoolCore& pool) noexcept { return pool.size(); }

}  // namespace mproc::detail
