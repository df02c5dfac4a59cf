// Seed 001, "Synchronization" / "Condition": a consumer waits on a Condition
// until a producer, holding it, produces a resource and notifies.

#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include <mproc/mproc.hpp>

void consumer(mproc::Condition cond) {
  std::scoped_lock hold(cond);  // with cond:
  std::cout << "Consumer is waiting." << std::endl;
  cond.wait();
  std::cout << "Consumer consumed the resource." << std::endl;
}

void producer(mproc::Condition cond) {
  std::scoped_lock hold(cond);  // with cond:
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::cout << "Producer produced a resource." << std::endl;
  cond.notify();
}

void run() {
  mproc::Condition condition;
  mproc::Process p1(consumer, condition);
  mproc::Process p2(producer, condition);

  p1.start();
  // Not in the seed: if the producer took the condition first, its notify
  // would find no one waiting and the consumer would wait for ever (in
  // Python too). A moment here lets the consumer start waiting first.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  p2.start();

  p1.join();
  p2.join();
}

int main() { run(); }
