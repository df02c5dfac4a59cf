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
    if (delete_when_done_) return;  // deleted by its last thread (see release())
    terminate();
    join(std::nullopt);
  }

  // The last reference went away. In one of the pool's own tasks, its
  // threads cannot be joined there: the tasks not started are failed, and
  // the last thread to leave deletes the pool.
  void release() {
    if (!on_pool_thread()) {
      delete this;
      return;
    }
    terminate();
    std::lock_guard lock(mutex_);
    delete_when_done_ = true;
    for (std::thread& thread : threads_) thread.detach();
  }

  void submit(std::vector<ThreadTask> tasks, bool from_stream) {
    {
      std::lock_guard lock(mutex_);
      bool open = state_ == State::running || (from_stream && state_ == State::closed && !joined_);
      if (!open) throw UsageError("ThreadPool not running");
      for (ThreadTask& task : tasks) queue_.push_back(std::move(task));
    }
    work_cv_.notify_all();
  }

  void add_stream(std::weak_ptr<OpenInput> stream) {
    std::lock_guard lock(mutex_);
    open_streams_locked();
    streams_.push_back(std::move(stream));
  }

  void input_ended() { work_cv_.notify_all(); }

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
    if (on_pool_thread()) throw UsageError("ThreadPool.join(): called from one of its own tasks");
    drain_streams();
    std::unique_lock lock(mutex_);
    auto finished = [&] { return exited_ == threads_.size(); };
    if (timeout) {
      if (!exited_cv_.wait_for(lock, *timeout, finished)) return false;
    } else {
      exited_cv_.wait(lock, finished);
    }
    if (joined_) {  // another thread joins them: wait for it
      exited_cv_.wait(lock, [&] { return threads_joined_; });
      return true;
    }
    joined_ = true;
    lock.unlock();
    for (std::thread& thread : threads_) thread.join();
    lock.lock();
    threads_joined_ = true;
    exited_cv_.notify_all();
    return true;
  }

  int size() const noexcept { return static_cast<int>(threads_.size()); }
  bool on_own_thread() const { return on_pool_thread(); }

 private:
  enum class State { running, closed, terminated };

  bool on_pool_thread() const {
    for (const std::thread& thread : threads_) {
      if (thread.get_id() == std::this_thread::get_id()) return true;
    }
    return false;
  }

  // After close(), open streams read the rest of their input now (see
  // OpenInput in mproc/imap.hpp).
  void drain_streams() {
    std::vector<std::shared_ptr<OpenInput>> open;
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::running) throw UsageError("ThreadPool.join(): close() or terminate() first");
      if (state_ != State::closed) return;
      for (const auto& weak : streams_) {
        if (auto stream = weak.lock()) open.push_back(std::move(stream));
      }
    }
    for (const auto& stream : open) stream->drain();
  }

  bool open_streams_locked() {
    std::erase_if(streams_, [](const std::weak_ptr<OpenInput>& weak) {
      auto stream = weak.lock();
      return !stream || stream->input_finished();
    });
    return !streams_.empty();
  }

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
        auto leaving = [&] {
          return state_ == State::terminated || (state_ == State::closed && !open_streams_locked());
        };
        work_cv_.wait(lock, [&] { return !queue_.empty() || leaving(); });
        if (queue_.empty()) {
          if (++exited_ == threads_.size() && delete_when_done_) {
            lock.unlock();
            delete this;
            return;
          }
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
  bool threads_joined_ = false;
  bool delete_when_done_ = false;
  std::vector<std::weak_ptr<OpenInput>> streams_;
  std::vector<std::thread> threads_;
};

std::shared_ptr<ThreadPoolCore> start_thread_pool(int threads, std::function<void()> initializer) {
  return std::shared_ptr<ThreadPoolCore>(new ThreadPoolCore(threads, std::move(initializer)),
                                         [](ThreadPoolCore* pool) { pool->release(); });
}
void thread_pool_submit(ThreadPoolCore& pool, std::vector<ThreadTask> tasks, bool from_stream) {
  pool.submit(std::move(tasks), from_stream);
}
void thread_pool_add_stream(ThreadPoolCore& pool, std::weak_ptr<OpenInput> stream) { pool.add_stream(std::move(stream)); }
void thread_pool_input_ended(ThreadPoolCore& pool) { pool.input_ended(); }
bool thread_pool_on_own_thread(const ThreadPoolCore& pool) { return pool.on_own_thread(); }
void thread_pool_close(ThreadPoolCore& pool) { pool.close(); }
void thread_pool_terminate(ThreadPoolCore& pool) { pool.terminate(); }
bool thread_pool_join(ThreadPoolCore& pool, std::optional<std::chrono::nanoseconds> timeout) {
  return pool.join(timeout);
}
int thread_pool_size(const ThreadPoolCore& pool) noexcept { return pool.size(); }

}  // namespace mproc::detail
