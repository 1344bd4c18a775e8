// Lets a log message through at most once per period, for events that can
// repeat thousands of times a second (a connection refused at
// limits.max_connections, an admin connection evicted): the first one is
// written at once, the next ones are counted and reported with the next
// message that goes through, so stderr stays readable and nothing is lost
// from the story (the exact numbers are in the metrics).
//
// Thread-safe and lock-free (one instance may be shared by every worker);
// the caller passes the time, so tests decide it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace sag::session {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration period = std::chrono::minutes(1)) : period_(period) {}
  LogThrottle(const LogThrottle&) = delete;
  LogThrottle& operator=(const LogThrottle&) = delete;

  // One event at `now`. True when the caller should write its message: the
  // first event, then the first one at least `period` after the last one
  // let through (times that go backwards hold messages back, never let
  // more through). On true, `held_back` (when given) gets the number of
  // events that returned false since the previous true; an event that
  // races with a true is counted in the message after.
  bool allow(Clock::time_point now, uint64_t* held_back = nullptr) {
    const int64_t t = now.time_since_epoch().count();
    int64_t next = next_.load(std::memory_order_relaxed);
    for (;;) {
      if (t < next) {
        held_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      if (next_.compare_exchange_weak(next, t + period_.count(), std::memory_order_relaxed))
        break;
    }
    const uint64_t held = held_.exchange(0, std::memory_order_relaxed);
    if (held_back) *held_back = held;
    return true;
  }

 private:
  const Clock::duration period_;
  // The earliest time (ticks since the clock's epoch) of the next message.
  std::atomic<int64_t> next_{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> held_{0};
};

}  // namespace sag::session
