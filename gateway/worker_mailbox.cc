#include "gateway/worker_mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace sag::gateway {
namespace asio = boost::asio;

namespace {

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  return fd;
}

}  // namespace

// send() writes to efd_, a plain copy of the number: other threads call no
// method of fd_, an object of the worker's io_context.
WorkerMailbox::WorkerMailbox(asio::io_context& io) : efd_(make_eventfd()), fd_(io, efd_) {}

void WorkerMailbox::start() { wait(); }

void WorkerMailbox::send(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
  }
  // The counter only saturates after 2^64 - 2 unread writes; a failed
  // write then still leaves the fd readable, so the task is not lost.
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(efd_, &one, sizeof one);
}

void WorkerMailbox::wait() {
  fd_.async_wait(asio::posix::descriptor_base::wait_read, [this](boost::system::error_code ec) {
    if (ec) return;  // closed: the worker is going away
    // Read (reset) the counter before taking the queue: a task sent in
    // between is taken now and its write wakes an empty round, never the
    // reverse (a task left behind with no write to wake for it).
    uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(efd_, &count, sizeof count);
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(queue_);
    }
    wait();
    for (auto& task : tasks) task();
  });
}

}  // namespace sag::gateway
