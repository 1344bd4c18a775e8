// Time as seen by the persistence logic, injected so tests decide it.
#pragma once

#include <chrono>
#include <cstdint>

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
  int64_t unix_seconds() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace sag::affinity
