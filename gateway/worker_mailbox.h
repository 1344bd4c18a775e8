// How other threads reach a worker. The worker's io_context runs without
// locks (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE: about 220 instructions a
// request were the scheduler's uncontended mutex), so asio::post from
// another thread would race with it. Instead, tasks go into a queue with a
// mutex of its own, and an eventfd the worker's reactor waits on wakes it:
// the lock is taken per message, never per request.
//
// Thread: send() from any thread. start() and the tasks run on the thread
// that runs the io_context (start() may also run before that thread starts,
// on the thread that made the mailbox).
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace sag::gateway {

class WorkerMailbox {
 public:
  // Throws std::system_error when no eventfd can be made.
  explicit WorkerMailbox(boost::asio::io_context& io);
  WorkerMailbox(const WorkerMailbox&) = delete;
  WorkerMailbox& operator=(const WorkerMailbox&) = delete;

  // Waits for mail on the io_context (which, while the mailbox lives, never
  // runs out of work). Once.
  void start();
  // Runs `task` on the io_context's thread, after the tasks sent before it.
  // Tasks taken in one round all run, even after one of them stopped the
  // io_context. A task that throws ends run() (a worker's thread then ends
  // the process) and the rest of its round is dropped.
  void send(std::function<void()> task);

 private:
  void wait();

  const int efd_;  // the eventfd, which fd_ owns: what send() writes to
  boost::asio::posix::stream_descriptor fd_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;  // under mu_
};

}  // namespace sag::gateway
