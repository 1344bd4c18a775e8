// The access log (docs/behaviour.md#access-log): one line per request, written after the
// response ends. Workers format their line and hand it over under a short
// lock; a dedicated thread does the write(2), so a slow disk or a blocked
// stdout pipe never stalls a worker. Past a bound the newest lines are
// dropped and counted rather than buffered without limit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "config/gateway_config.h"

namespace sag::session {

struct AccessRecord {
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::chrono::system_clock::time_point start;  // accept or first byte
  std::string_view listener;
  std::string_view backend;  // "-" when none
  std::string_view server;   // "-" when the gateway answered itself
  // Milliseconds; -1 where the phase was not reached.
  int64_t tq = -1, tw = -1, tc = -1, tr = -1, tt = -1;
  unsigned status = 0;
  uint64_t bytes = 0;
  std::string_view persist;  // "new", "cookie-hit", ... or "-"
  uint32_t retries = 0;
  std::string_view method;
  std::string_view path;
  std::string_view protocol;  // "HTTP/1.1"
  std::string_view termination = "ok";  // how it ended (session/gateway_error.h)
};

class AccessLog {
 public:
  // nullptr with `error` set when the file can't be opened. A config with an
  // empty path gives a log whose enabled() is false.
  static std::unique_ptr<AccessLog> open(const config::AccessLogConfig& config,
                                         std::string& error);
  ~AccessLog();  // writes out what is buffered

  bool enabled() const { return fd_ >= 0; }
  // Thread-safe; never blocks on I/O.
  void write(const AccessRecord& record);
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // Formats into `out` (appends); exposed for tests.
  static void format_text(const AccessRecord& r, std::string& out);
  static void format_json(const AccessRecord& r, std::string& out);

 private:
  AccessLog(int fd, bool owns_fd, config::LogFormat format);
  void run();

  const int fd_;
  const bool owns_fd_;
  const config::LogFormat format_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;  // guarded by mutex_
  bool stop_ = false;    // guarded by mutex_
  std::atomic<uint64_t> dropped_{0};
  std::thread writer_;
};

}  // namespace sag::session
