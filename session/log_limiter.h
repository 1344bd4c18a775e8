// Rate limit for warnings a client or a server can trigger at will (a
// misbehaving server on every request, a flood of refused connections), so
// stderr stays readable and costs nothing under attack.
//
// Thread: one owner (a worker, or a listener's accept loop); not shared.
#pragma once

#include <chrono>
#include <cstdint>

namespace sag::session {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogLimiter(Clock::duration period) : period_(period) {}

  // True when a line may be written at `now`: the first call, and then one
  // per `period`. A false return counts the line as suppressed; a true one
  // sets `suppressed` to the lines dropped since the last one written.
  bool allow(Clock::time_point now, uint64_t& suppressed) {
    if (written_ && now - last_ < period_) {
      ++dropped_;
      return false;
    }
    written_ = true;
    last_ = now;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  Clock::duration period_;
  Clock::time_point last_{};
  bool written_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace sag::session
