// Time as seen by the persistence logic, injected so tests decide it.
#pragma once

#include <chrono>
#include <cstdint>

#include "config/base/coarse_clock.h"

namespace sag::affinity {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch (cookie dates; same on every replica).
  virtual int64_t unix_seconds() const = 0;
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  // Coarse readings (base/coarse_clock.h): seconds for cookie dates, TTLs
  // of affinity entries; nothing here measures a short interval.
  int64_t unix_seconds() const override { return base::coarse_unix_seconds(); }
  std::chrono::steady_clock::time_point steady_now() const override {
    return base::coarse_steady_now();
  }
};

}  // namespace sag::affinity
