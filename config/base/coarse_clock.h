// Clock reads for times that need no better than a few milliseconds:
// deadlines, idle times of pooled connections, store TTLs, cookie dates.
//
// The kernel's coarse clocks are its time as of the last tick, read from
// the vDSO without reading the TSC: about 6 ns here against 23 ns for
// steady_clock::now(), which a request used to call a dozen times. A
// coarse reading is of the same clock as the fine one (CLOCK_MONOTONIC,
// CLOCK_REALTIME), never ahead of it, and one tick (coarse_resolution(),
// 4 ms on this kernel) behind it at most, plus however late the kernel ran
// that tick (usually a fraction of a millisecond here, in a VM; up to 3 ms
// under load). Anything measuring an interval (latency, response time)
// keeps the fine clocks.
// Where the coarse clocks are missing (clock_gettime fails), the fine ones
// stand in. Thread-safe; no state but the resolution, read once.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace sag::base {

inline std::chrono::steady_clock::time_point coarse_steady_now() {
  timespec ts;
  if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::steady_clock::now();
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// How far coarse_steady_now() lags steady_clock::now() but for a late
// tick: added to a coarse time that must not come early (a deadline).
inline std::chrono::steady_clock::duration coarse_resolution() {
  static const std::chrono::steady_clock::duration res = [] {
    timespec ts{0, 0};
    if (::clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::steady_clock::duration(std::chrono::milliseconds(10));
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }();
  return res;
}

inline int64_t coarse_unix_seconds() {
  timespec ts;
  if (::clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  return static_cast<int64_t>(ts.tv_sec);
}

}  // namespace sag::base
