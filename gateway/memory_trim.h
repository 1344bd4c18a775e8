// Gives memory freed after a burst back to the kernel.
//
// A connection storm (hundreds of TLS handshakes at once, each with ~34 KiB
// of record buffers) leaves megabytes free inside malloc's heaps once it is
// over; glibc returns only the top of a heap by itself, so the process keeps
// that high-water mark as RSS for good. Once a second this checks how much
// is free across malloc's arenas and, past a threshold, asks malloc_trim to
// release the free pages (madvise), so an idle gateway's RSS follows what
// its connections hold.
//
// Thread: runs on the io_context it is given (the main thread's); the
// workers are never stopped, malloc locks each arena briefly while trimming.
// Does nothing under AddressSanitizer (its allocator is not glibc's).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sag::gateway {

class MemoryTrim {
 public:
  static constexpr size_t kThreshold = 4 * 1024 * 1024;  // free bytes worth a trim
  static constexpr std::chrono::seconds kPeriod{1};

  explicit MemoryTrim(boost::asio::io_context& io) : timer_(io) {}
  void start() { schedule(); }
  void stop() { timer_.cancel(); }

  // One check: trims when more than `threshold` bytes are free in malloc's
  // arenas. Returns the free bytes seen (0 when not measurable).
  static size_t trim_if_worth_it(size_t threshold = kThreshold);

 private:
  void schedule();

  boost::asio::steady_timer timer_;
};

}  // namespace sag::gateway
